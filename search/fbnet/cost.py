"""Latency costs for the search, built from plain arrays.

`search` never imports `latency_models`: the glue in `hwnas.wiring` turns a
fitted model into the arrays here (a per-(layer, candidate) table in ms and
the fixed ms of stem, head, classifier and per-network overhead).  Tests and
benchmarks can build the same object from MACs or from any table they like.

The expected latency of a distribution W (layers x candidates) is
``fixed_ms + (W * table_ms).sum()`` — FBNet's additive model — so it is
differentiable in the architecture parameters through W.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import torch

from hwnas.search.space import InputError, SearchSpace

__all__ = ["LayerCost", "mac_cost"]


@dataclass(frozen=True)
class LayerCost:
    """Per-(layer, candidate) latency table of an FBNet-style space, in milliseconds."""

    table_ms: np.ndarray
    fixed_ms: float
    candidates: tuple[str, ...]
    space: str
    device: str = "unknown"
    units: str = "ms"
    _tensor: torch.Tensor = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        table = np.asarray(self.table_ms, dtype=np.float64)
        if table.ndim != 2 or table.shape[1] != len(self.candidates):
            raise InputError(
                f"latency table must be (layers x {len(self.candidates)} candidates), got shape {table.shape}"
            )
        if not np.all(np.isfinite(table)) or not np.isfinite(self.fixed_ms):
            raise InputError("latency table holds non-finite values")
        object.__setattr__(self, "table_ms", table)
        object.__setattr__(self, "_tensor", torch.as_tensor(table, dtype=torch.float32))

    @property
    def num_layers(self) -> int:
        return int(self.table_ms.shape[0])

    def check_space(self, space: SearchSpace) -> None:
        """Refuse a table made for another space (a user mistake: one line)."""
        if space.name != self.space:
            raise InputError(f"latency table is for space {self.space!r}, not {space.name!r}")
        if space.num_layers != self.num_layers or tuple(space.candidates) != tuple(self.candidates):
            raise InputError(
                f"latency table has {self.num_layers} layers x {len(self.candidates)} candidates; "
                f"space {space.name} has {space.num_layers} x {len(space.candidates)}"
            )

    def expected(self, weights: torch.Tensor) -> torch.Tensor:
        """Expected latency (ms) of mixing weights W (layers x candidates); differentiable in W."""
        table = self._tensor.to(device=weights.device, dtype=weights.dtype)
        return self.fixed_ms + (weights * table).sum()

    def arch_ms(self, indices: Sequence[int]) -> float:
        """Predicted latency of one architecture given as candidate indices per layer."""
        idx = np.asarray(indices, dtype=np.int64)
        return float(self.fixed_ms + self.table_ms[np.arange(self.num_layers), idx].sum())

    def min_ms(self) -> float:
        """The fastest architecture the table allows (fixed part plus each layer's cheapest op)."""
        return float(self.fixed_ms + self.table_ms.min(axis=1).sum())

    def max_ms(self) -> float:
        return float(self.fixed_ms + self.table_ms.max(axis=1).sum())


def mac_cost(space: SearchSpace, ms_per_mmac: float = 0.01, overhead_ms: float = 0.0) -> LayerCost:
    """A proxy cost proportional to MACs, for tests and benchmarks that need no fitted model.

    Not a latency model: it only gives the search a table of the right shape
    whose values rank blocks the way their arithmetic does.
    """
    from hwnas.search.count import count_block

    table = np.array([[count_block(layer.block(op)).macs / 1e6 * ms_per_mmac for op in space.candidates]
                      for layer in space.layers])
    fixed = sum(count_block(s).macs for s in space.fixed_blocks()) / 1e6 * ms_per_mmac + overhead_ms
    return LayerCost(table, float(fixed), tuple(space.candidates), space.name, device="macs-proxy")
