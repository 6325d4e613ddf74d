"""The device's speed curve: a reference item timed at regular intervals, and what to do when it moves.

Why: a phone that warms up, or a laptop whose other work starts, changes speed
in the middle of a profile; every item timed then is off by the same factor,
and nothing in its own spread shows it (a steadily slower device is a precise
one).  A fixed reference, re-timed every few items, makes the change visible.
The items between two reference timings form a *batch*; the two timings
bracket it:

- both in band (within `band` of the baseline): the batch is believed;
- faster than the band: the baseline was taken while the device was slowed (load
  only slows), so the baseline moves down to it and the batch is re-queued;
- one reference timing off band after an in-band one: the batch is *held*, and
  the next timing decides for both batches. Back in band, it was a transient (a
  burst of a fraction of a second, seen on a quiet VM): both are believed, and the
  few items the burst hit disagree with their other pass and get another one.
  Still off band, the speed changed: both are re-queued;
- otherwise the batch is re-queued (measured again later), until the drift has
  lasted `patience` reference timings in a row at one level (their ratios within
  2·band of each other: a step, not foreign load jittering the reference).  Then
  the drift is persistent,
  and the profiler either waits (a device that reports its thermal state cools
  down first) or, when the speed is stable at its new level (the two bracketing
  timings agree), accepts the batch scaled by the measured speed ratio.  Which
  of the two it did is recorded with every pass.

Pure logic, no I/O or clock of its own: the worker feeds it timings.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field

__all__ = ["DriftPolicy", "Verdict", "SpeedCurve"]


@dataclass(frozen=True)
class DriftPolicy:
    """How the speed curve judges a batch (ratios are reference timing / baseline)."""

    band: float = 0.12  # |ratio - 1| within this: the device runs at its baseline speed (a quiet
    # 2-core VM alone swings the reference 0.97-1.11x; at 0.06 it re-queued 176 of 141 items, 3.2x the plain cost)
    patience: int = 3  # off-band timings in a row before the drift counts as persistent
    action: str = "auto"  # persistent drift: "wait" (cool down), "scale" (by the ratio), "auto" (wait if thermal)
    baseline_runs: int = 3  # reference timings whose median is the baseline
    hold: bool = True  # one off-band timing holds its batch for the next to decide (False: re-queue at once)

    def __post_init__(self) -> None:
        if not 0 < self.band < 1:
            raise ValueError(f"band must be in (0, 1), got {self.band}")
        if self.patience < 1:
            raise ValueError(f"patience must be >= 1, got {self.patience}")
        if self.action not in ("auto", "wait", "scale"):
            raise ValueError(f"action must be auto, wait or scale, got {self.action!r}")
        if self.baseline_runs < 1:
            raise ValueError(f"baseline_runs must be >= 1, got {self.baseline_runs}")


@dataclass(frozen=True)
class Verdict:
    """What to do with the batch a reference timing closes.

    `action`: "accept" (store as measured, or divided by `scale` when it is not 1),
    "requeue" (measure the batch again), "wait" (requeue, and let the device
    cool before going on) or "hold" (keep the batch; the next verdict decides it).
    A verdict that follows a "hold" applies to the held batch too.
    """

    action: str
    ratio: float
    scale: float = 1.0
    persistent: bool = False
    reason: str = ""


@dataclass
class SpeedCurve:
    """Reference timings against time, and the verdict on each batch they close."""

    policy: DriftPolicy = field(default_factory=DriftPolicy)
    baseline_ms: float | None = None
    points: list[dict] = field(default_factory=list)  # {t, ms, ratio, action}
    _warmup: list[float] = field(default_factory=list)
    _off: int = 0
    _last_ratio: float | None = None
    _gave_up_waiting: bool = False
    _recent: list = field(default_factory=list)  # the off-band ratios of the current drift
    _held: bool = False  # the last verdict was "hold"

    @property
    def ready(self) -> bool:
        return self.baseline_ms is not None

    def add_baseline(self, t: float, ms: float) -> bool:
        """One baseline timing; True once enough are in (the baseline is their median)."""
        self._warmup.append(float(ms))
        self.points.append({"t": t, "ms": float(ms), "ratio": None, "action": "baseline"})
        if len(self._warmup) >= self.policy.baseline_runs:
            self.baseline_ms = statistics.median(self._warmup)
            for p in self.points:
                if p["action"] == "baseline":
                    p["ratio"] = p["ms"] / self.baseline_ms
            self._last_ratio = 1.0
        return self.ready

    def in_band(self, ratio: float) -> bool:
        return abs(ratio - 1.0) <= self.policy.band

    def judge(self, t: float, ms: float, thermal_known: bool = False) -> Verdict:
        """Verdict on the batch that ends with this reference timing (`ms` at time `t`)."""
        if self.baseline_ms is None:
            raise RuntimeError("judge() before the baseline is complete")
        ratio = float(ms) / self.baseline_ms
        before = self._last_ratio if self._last_ratio is not None else 1.0
        held, self._held = self._held, False
        if held and self.in_band(ratio):
            # The one off-band timing before was a transient: the held batch and this one stand.
            self._last_ratio, self._off, self._recent = ratio, 0, []
            self.points.append({"t": t, "ms": float(ms), "ratio": ratio, "action": "accept"})
            return Verdict("accept", ratio, reason="transient: one reference timing off band")
        if (self.policy.hold and ratio > 1.0 + self.policy.band and self.in_band(before)
                and not self._gave_up_waiting):
            self._held, self._last_ratio, self._off, self._recent = True, ratio, 1, [ratio]
            self.points.append({"t": t, "ms": float(ms), "ratio": ratio, "action": "hold"})
            return Verdict("hold", ratio, reason="one timing off band: the next decides")
        if ratio < 1.0 - self.policy.band:
            # Faster than the baseline: foreign load only slows a device, so the baseline was
            # taken while it was slowed. It moves to the faster level; nothing is scaled by it,
            # and the batch (timed at an unknown level) is measured again.
            self.baseline_ms = float(ms)
            self._last_ratio, self._off, self._recent = 1.0, 0, []
            self.points.append({"t": t, "ms": float(ms), "ratio": ratio, "action": "rebaseline"})
            return Verdict("requeue", ratio, reason="faster than the baseline: baseline moved")
        self._last_ratio = ratio
        if self.in_band(ratio) and self.in_band(before):
            self._off = 0
            self._recent = []
            self._gave_up_waiting = False
            verdict = Verdict("accept", ratio)
        else:
            self._off = self._off + 1 if not self.in_band(ratio) else 0
            self._recent = (self._recent + [ratio])[-self.policy.patience:]
            # Stable: the speed sits at one new level, not jumping about (foreign load on a host
            # makes the reference jitter; scaling by a jittering ratio would corrupt the table).
            stable = (abs(ratio - before) <= self.policy.band * max(ratio, before)
                      and max(self._recent) <= min(self._recent) * (1 + 2 * self.policy.band))
            if self._off < self.policy.patience or not stable or self.in_band(ratio):
                why = ("speed changed during the batch" if not stable else
                       "back in band, batch began out of band" if self.in_band(ratio) else
                       f"off band ({self._off}/{self.policy.patience})")
                verdict = Verdict("requeue", ratio, reason=why)
            else:
                action = self.policy.action
                if action == "auto":
                    action = "wait" if thermal_known else "scale"
                if self._gave_up_waiting:
                    action = "scale"
                if action == "wait":
                    verdict = Verdict("wait", ratio, persistent=True, reason="persistent drift: cooling down")
                else:
                    verdict = Verdict("accept", ratio, scale=(ratio + before) / 2, persistent=True,
                                      reason="persistent drift: scaled by the speed ratio")
        self.points.append({"t": t, "ms": float(ms), "ratio": ratio, "action": verdict.action})
        return verdict

    def observe(self, t: float, ms: float, action: str) -> float:
        """A reference timing outside a batch (during a cool-down): on the curve, and the next batch's start."""
        if self.baseline_ms is None:
            raise RuntimeError("observe() before the baseline is complete")
        ratio = float(ms) / self.baseline_ms
        self._last_ratio = ratio
        if self.in_band(ratio):
            self._off = 0
        self.points.append({"t": t, "ms": float(ms), "ratio": ratio, "action": action})
        return ratio

    def give_up_waiting(self) -> None:
        """A wait did not bring the speed back: scale from now on, until the speed returns to its band."""
        self._gave_up_waiting = True

    def line(self) -> str:
        """One progress line: the reference's last ratio, how many timings, how many off band."""
        judged = [p for p in self.points if p["ratio"] is not None and p["action"] != "baseline"]
        if not judged or self.baseline_ms is None:
            return "reference: measuring baseline"
        off = sum(1 for p in judged if not self.in_band(p["ratio"]))
        last = judged[-1]["ratio"]
        return (f"reference {self.baseline_ms:.3f} ms, now {last:.2f}x "
                f"({off}/{len(judged)} timings off the ±{self.policy.band:.0%} band)")
