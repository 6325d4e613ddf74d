"""Glue between a fitted latency model and the search's cost objects.

`search` never imports `latency_models` (DESIGN.md); this module reads a
model file with `hwnas.latency_models.io.load_model` and hands its tables over as
plain arrays (`latency_models.export.cost_table`), from which the space's
family builds its cost (`search.build.build_cost`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hwnas.search.space import InputError, SearchSpace

__all__ = ["load_cost"]


def load_cost(latency: Any, space: SearchSpace) -> Any:
    """The search cost for `space` from a fitted `LatencyModel` or a model file (wrong space: one-line error)."""
    from hwnas.latency_models.export import cost_table
    from hwnas.latency_models.io import load_model
    from hwnas.search.build import build_cost

    model = load_model(latency) if isinstance(latency, (str, Path)) else latency
    if model.space != space.name:
        where = f" {latency}" if isinstance(latency, (str, Path)) else ""
        raise InputError(
            f"latency model{where} is for space {model.space!r}, not {space.name!r}; "
            f"fit one for {space.name} (`space`={space.name})"
        )
    return build_cost(space, cost_table(model, space))
