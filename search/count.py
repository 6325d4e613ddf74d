"""MACs and parameter counts, from torch's own FLOP counter.

No hand-kept formula table: the counter runs the very modules the profiler
measures, so counts cannot drift from them.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import torch
from torch.utils.flop_counter import FlopCounterMode

from hwnas.search.blocks import build_block
from hwnas.search.space import BlockSpec

__all__ = ["BlockCount", "count_block", "count_blocks"]


@dataclass(frozen=True)
class BlockCount:
    macs: int
    params: int
    output_shape: tuple[int, ...]


@lru_cache(maxsize=4096)
def count_block(spec: BlockSpec) -> BlockCount:
    """MACs (FLOPs / 2, conv and linear layers) and parameters of one block at batch 1."""
    module = build_block(spec).eval()
    x = torch.zeros(spec.input_shape)
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        y = module(x)
    params = sum(p.numel() for p in module.parameters())
    return BlockCount(macs=counter.get_total_flops() // 2, params=params, output_shape=tuple(y.shape))


def count_blocks(specs: list[BlockSpec]) -> list[BlockCount]:
    return [count_block(s) for s in specs]


def summarize(specs: list[BlockSpec]) -> dict:
    """Layer-by-layer table (block, shapes, MACs, params) and totals, as plain data."""
    rows = []
    for i, (spec, c) in enumerate(zip(specs, count_blocks(specs))):
        rows.append({
            "index": i,
            "block": spec.label,
            "key": spec.key,
            "op": spec.op,
            "family": spec.family,
            "input_shape": list(spec.input_shape),
            "output_shape": list(c.output_shape),
            "macs": c.macs,
            "params": c.params,
        })
    return {
        "layers": rows,
        "total_macs": sum(r["macs"] for r in rows),
        "total_params": sum(r["params"] for r in rows),
    }
