"""Glue between a fitted latency model and the search's cost objects.

`search` never imports `latency_models` (DESIGN.md); this module reads a
model file with `hwnas.latency_models.io.load_model` and hands its tables over as
plain arrays: FBNet-style spaces get a `hwnas.search.fbnet.cost.LayerCost`, channel-search
spaces (FBNetV2) a `hwnas.search.fbnetv2.cost.ChannelCost`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hwnas.search.fbnet.cost import LayerCost
from hwnas.search.space import InputError, SearchSpace

__all__ = ["load_cost"]


def load_cost(path: str | Path, space: SearchSpace) -> Any:
    """The search cost for `space` from the latency model at `path` (wrong space: one-line error)."""
    from hwnas.latency_models.export import channel_table, layer_table
    from hwnas.latency_models.io import load_model

    model = load_model(path)
    if model.space != space.name:
        raise InputError(
            f"latency model {path} is for space {model.space!r}, not {space.name!r}; "
            f"fit one for {space.name} with `hwnas fit --space {space.name}`"
        )
    if space.channel_options:
        from hwnas.search.fbnetv2.cost import ChannelCost

        return ChannelCost.from_table(channel_table(model, space), space)
    table = layer_table(model, space)
    cost = LayerCost(table.table_ms, table.fixed_ms, tuple(table.candidates), table.space, device=table.device)
    cost.check_space(space)
    return cost
