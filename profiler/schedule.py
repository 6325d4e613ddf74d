"""In which order blocks are measured, and what happens to a block that does not settle.

Slow drift (a warming SoC, a background job) would bias a whole block
family if families were measured one after another; interleaving them
round-robin spreads any drift over every family.  A block whose timing
spread stays above the protocol's bound is put back into a later round
(by then the disturbance has often passed) and flagged in the store if it
never settles.  Pure logic, no I/O: the worker and the Ray driver share it.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import Any, Generic, Hashable, Iterable, Protocol, TypeVar

__all__ = ["interleave", "Schedule", "Decision"]


class _Keyed(Protocol):
    key: str
    family: str


T = TypeVar("T", bound=_Keyed)


def interleave(items: Iterable[T]) -> list[T]:
    """Round-robin over families (in first-seen order), keeping each family's own order."""
    groups: "OrderedDict[Hashable, deque[T]]" = OrderedDict()
    for item in items:
        groups.setdefault(item.family, deque()).append(item)
    out: list[T] = []
    while groups:
        for fam in list(groups):
            out.append(groups[fam].popleft())
            if not groups[fam]:
                del groups[fam]
    return out


@dataclass(frozen=True)
class Decision:
    """What to do with a finished measurement: store it (maybe flagged), or retry later."""

    action: str  # "store" | "retry"
    flagged: bool = False
    payload: Any = None


@dataclass
class Schedule(Generic[T]):
    """Rounds of interleaved items; unsettled ones come back next round, up to `max_attempts`.

    `report(item, settled, payload, spread)` keeps the payload with the smallest
    spread across attempts, so a block that never settles is stored with its
    best try and `flagged=True`.
    """

    items: list[T]
    max_attempts: int = 2
    round: int = 1
    attempts: dict[str, int] = field(default_factory=dict)
    flagged: list[str] = field(default_factory=list)
    retried: int = 0
    _queue: deque = field(default_factory=deque)
    _later: list = field(default_factory=list)
    _best: dict = field(default_factory=dict)
    _done: int = 0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be >= 1")
        self._queue = deque(interleave(self.items))

    def resume_retries(self, items: Iterable[T], attempts: dict[str, int]) -> None:
        """Items an earlier (crashed) run left unsettled: they join the next round, not this one,
        with the tries already spent counted, so a crash cannot make them outrank fresh work."""
        items = list(items)
        self.items = [*self.items, *items]
        for item in items:
            self.attempts[item.key] = min(attempts.get(item.key, 1), self.max_attempts - 1)
        self._later.extend(items)
        if not self._queue and self._later:
            self._queue = deque(interleave(self._later))
            self._later = []

    @property
    def total(self) -> int:
        return len(self.items)

    @property
    def done(self) -> int:
        return self._done

    def next(self) -> T | None:
        """The next item to measure, starting a new round when this one is used up."""
        if not self._queue and self._later:
            self._queue = deque(interleave(self._later))
            self._later = []
            self.round += 1
        return self._queue.popleft() if self._queue else None

    def report(self, item: T, settled: bool, payload: Any = None, spread: float = 0.0) -> Decision:
        n = self.attempts[item.key] = self.attempts.get(item.key, 0) + 1
        best = self._best.get(item.key)
        if best is None or spread < best[0]:
            best = self._best[item.key] = (spread, payload)
        if settled:
            self._best.pop(item.key, None)
            self._done += 1
            return Decision("store", False, payload)
        if n < self.max_attempts:
            self._later.append(item)
            self.retried += 1
            return Decision("retry", False, payload)
        self._best.pop(item.key, None)
        self._done += 1
        self.flagged.append(item.key)
        return Decision("store", True, best[1])
