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
    resumed: bool = False  # taken by an earlier, interrupted process (see `SteadyRun._needs_more`)


def combine(values: Sequence[float], bound: float | None = None) -> float:
    """The estimate of several passes: the fastest, averaged with the next when they agree.

    Foreign work (a neighbour's burst, a host's contention, a warm phone) only ever
    slows a timing; nothing makes a device faster than itself.  So the fastest pass is
    the nearest to the device's own speed (measured on this VM's stores, RESULTS issue 17:
    a loaded and a quiet profile agreed on 99% of blocks within 5% against 95-97% for the
    median of the passes).  When the second fastest lies within `bound` of it, the two are
    the same undisturbed speed and their mean halves the noise the minimum alone keeps
    (the minimum of two is biased low by noise, and its spread is ~0.8x one pass's):
    redone on six bench_noise runs' pass history, quiet~loaded block agreement rose by
    1.7 points on average (95/96/87/97/92/69% against 91/94/87/95/93/66%), networks within
    ±10% unchanged.  Without `bound`: the fastest.
    """
    if not values:
        raise ValueError("combine needs at least one value")
    ordered = sorted(values)
    if bound is not None and len(ordered) > 1 and not disagree(ordered, bound):
        return float((ordered[0] + ordered[1]) / 2)
    return float(ordered[0])


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
