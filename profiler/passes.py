"""Several passes over the same items, and one value out of them.

Why passes: one timing of a block is one moment of the device; a burst of
foreign work or a frequency step lands on whichever blocks happen to run then.
Shuffled passes put each item in a different moment each time, so a
disturbance hits one pass of an item rather than all of them, and passes that
disagree show which items need another look.  Pure logic: the worker feeds it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence, TypeVar

__all__ = ["PassValue", "combine", "disagree", "shuffled", "reference_item", "cost_proxy"]

T = TypeVar("T")


@dataclass
class PassValue:
    """One accepted pass of one item: its (scaled) median and the statistics behind it."""

    pass_no: int
    median_ms: float
    settled: bool
    scale: float = 1.0
    t: float = 0.0
    stats: dict = field(default_factory=dict, repr=False)  # the statistics to store, already scaled


def combine(values: Sequence[float]) -> float:
    """The estimate of several passes: the fastest.

    Foreign work (a neighbour's burst, a host's contention, a warm phone) only ever
    slows a timing; nothing makes a device faster than itself.  So the fastest pass is
    the nearest to the device's own speed, and noise takes it below that by about its
    CI (a pass aims at ~1.4%).  Measured on this VM's stores (RESULTS, issue 17): the
    fastest pass made a loaded and a quiet profile agree on 99% of blocks within 5% and
    84-98% of networks within 10%, against 95-97% and 69-87% for the median of the passes.
    """
    if not values:
        raise ValueError("combine needs at least one value")
    return float(min(values))


def disagree(values: Sequence[float], bound: float) -> bool:
    """True when the two fastest passes differ by more than `bound` (relative).

    The estimate is the fastest pass (`combine`); a second pass within `bound` of it
    confirms it.  Slower passes beyond that were disturbed and are outvoted, not
    re-measured for ever.
    """
    if len(values) < 2:
        return False
    lo, hi = sorted(values)[:2]
    return lo <= 0 or hi / lo - 1.0 > bound


def shuffled(items: Iterable[T], seed: int) -> list[T]:
    """A shuffled copy (one seed per pass, so a rerun shuffles the same way)."""
    out = list(items)
    random.Random(seed).shuffle(out)
    return out


def cost_proxy(spec: Any) -> float:
    """Multiply-adds of a block, roughly (1x1 expand, kxk depthwise, 1x1 project): to rank blocks by size."""
    mid = max(1.0, spec.cin * float(spec.expansion))
    out_res = spec.resolution / max(1, spec.stride)
    return (spec.resolution ** 2 * spec.cin * mid / max(1, spec.groups)
            + out_res ** 2 * mid * spec.kernel ** 2 + out_res ** 2 * mid * spec.cout / max(1, spec.groups))


def reference_item(items: Sequence[T]) -> T | None:
    """The reference: the block of median size (not a skip), so its timing is neither tiny nor slow.

    A profile of whole networks only takes it from the networks' space: timing a network
    as the reference would cost as much as the profile itself.
    """
    blocks = [i for i in items if getattr(i, "spec", None) is not None and i.spec.op != "skip"]
    if not blocks:
        blocks = [i for i in items if getattr(i, "spec", None) is not None]
    if not blocks:
        spaces = [i.space for i in items if getattr(i, "space", "")]
        if not spaces:
            return items[0] if items else None
        from hwnas.profiler.enumerate import block_items
        from hwnas.search.space import get_space

        blocks = [i for i in block_items(list(get_space(spaces[0]).unique_blocks())) if i.spec.op != "skip"]
    ranked = sorted(blocks, key=lambda i: (cost_proxy(i.spec), i.key))
    return ranked[len(ranked) // 2]
