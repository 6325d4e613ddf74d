"""The profile loop that holds on a busy or throttling device: passes, a reference, re-queues.

    pass 1: every item once, in a shuffled order (blocks and networks mixed)
            every `interval` items the reference is timed; the batch it closes is
            believed, re-queued (the reference left its band) or scaled (the drift persisted)
    pass 2: the same, in another order
    more:   only the items whose passes disagree by more than `agree`, or never settled
    store:  each item's passes combined (the fastest, `passes.combine`), flagged if they still disagree

Every pass and every reference timing goes into the store's history tables
(`hwnas.profiler.history`), so the estimate can be redone later.  The plain
one-pass loop of `hwnas.profiler.worker` remains what `Steadiness.off()` runs.
"""

from __future__ import annotations

import dataclasses
import math
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from hwnas.devices.base import Device, DeviceError, Measurement
from hwnas.profiler.store import stats_of
from hwnas.profiler import history
from hwnas.profiler.drift import DriftPolicy, SpeedCurve, Verdict
from hwnas.profiler.enumerate import Item
from hwnas.profiler.passes import PassValue, combine, disagree, reference_item, shuffled

__all__ = ["Steadiness", "SteadyRun", "measure_options"]


@dataclass(frozen=True)
class Steadiness:
    """Which of the steadiness mechanisms run, and their knobs. Each is on by default.

    Off switches: `passes=1` (one pass, no agreement check), `reference=False`
    (no speed curve, nothing re-queued or scaled), `selfcheck=False` (no
    re-measurement of items that disagree with the table); `Steadiness.off()` is
    all three, i.e. the plain loop of earlier versions.
    """

    passes: int = 2
    max_passes: int = 4
    agree: float = 0.05  # passes further apart than this (relative) get another pass
    reference: bool = True
    interval: int = 10  # items between two reference timings
    drift: DriftPolicy = field(default_factory=DriftPolicy)
    max_requeues: int = 3  # an item re-queued more often is taken as is, flagged
    max_wait_s: float = 300.0
    wait_poll_s: float = 5.0
    seed: int = 0
    selfcheck: bool = True  # after the passes: re-measure items that disagree with the rest of the table

    def __post_init__(self) -> None:
        if self.passes < 1:
            raise ValueError(f"passes must be >= 1, got {self.passes}")
        if self.max_passes < self.passes:
            object.__setattr__(self, "max_passes", self.passes)
        if self.interval < 1:
            raise ValueError(f"interval must be >= 1, got {self.interval}")
        if not self.agree > 0:
            raise ValueError(f"agree must be > 0, got {self.agree}")

    @classmethod
    def off(cls) -> "Steadiness":
        """One pass and no reference: what the profiler did before these mechanisms."""
        return cls(passes=1, max_passes=1, reference=False, selfcheck=False)

    @property
    def active(self) -> bool:
        return self.passes > 1 or self.max_passes > 1 or self.reference or self.selfcheck


class ItemTaken(Exception):
    """Raised by `measure` when another process holds or stored the item: this run leaves it to them."""


def _raw_stats(m: Measurement) -> dict[str, Any]:
    return stats_of(m)


def _scaled(stats: dict[str, Any], scale: float) -> dict[str, Any]:
    stats = dict(stats)
    if scale != 1.0:
        for k in ("median_ms", "mean_ms", "std_ms", "p10_ms", "p90_ms", "min_ms", "ci_halfwidth_ms"):
            if stats.get(k) is not None:
                stats[k] = stats[k] / scale
    return stats


@dataclass
class SteadyRun:
    """One device's steady profile: drives `measure(item)`, judges by the speed curve, stores the result.

    `measure` times one item (the worker's `measure_item`, bound to its device);
    `put(item, stats, flagged)` stores the believed value.  The clock and sleep
    are parameters so that a test drives time.
    """

    device: Device
    store: Any
    identity: str
    items: list[Item]
    measure: Callable[[Item], Measurement]
    put: Callable[[Item, dict[str, Any], bool], None]
    options: Steadiness = field(default_factory=Steadiness)
    notify: Callable[[str, str], None] = lambda state, text: None
    stop: threading.Event | None = None
    clock: Callable[[], float] = time.time
    sleep: Callable[[float], None] = time.sleep
    run_id: str = field(default_factory=history.new_run_id)
    values: dict[str, list[PassValue]] = field(default_factory=dict)
    requeues: dict[str, int] = field(default_factory=dict)
    stats: dict[str, Any] = field(default_factory=lambda: {"requeued": 0, "scaled": 0, "waited_s": 0.0,
                                                           "passes": 0, "extra_pass_items": 0,
                                                           "reference_timings": 0, "drift_events": 0,
                                                           "resumed_dropped": 0})
    stored: int = 0
    flagged: list[str] = field(default_factory=list)
    resume: bool = True  # reuse accepted passes of an interrupted run (not when re-checking suspects)
    taken: set[str] = field(default_factory=set)  # items another process measures (see `ItemTaken`)

    def __post_init__(self) -> None:
        self.curve = SpeedCurve(self.options.drift)
        ref = reference_item(self.items) if self.options.reference else None
        # A copy: `measure` tells a reference timing (`item is run.ref`) from the same block's own passes.
        self.ref = dataclasses.replace(ref) if ref is not None else None
        # "auto" waits on phones (their cool-down is what brings the speed back) and on any
        # device that says it is throttled; elsewhere (load on a laptop) it scales.
        self._thermal_known = getattr(self.device.uri, "scheme", "") == "adb"
        history.ensure_tables(self.store)

    # -- the reference -----------------------------------------------------------
    def _time_reference(self) -> tuple[float, Measurement]:
        assert self.ref is not None
        m = self.measure(self.ref)
        self.stats["reference_timings"] += 1
        return self.clock(), m

    def _baseline(self) -> None:
        while not self.curve.ready:
            t, m = self._time_reference()
            self.curve.add_baseline(t, m.median_ms)
            history.put_reference(self.store, self.identity, self.run_id, self.ref.key, t, m, None, "baseline")

    def _check(self) -> Verdict:
        t, m = self._time_reference()
        if not self.curve.in_band(m.median_ms / self.curve.baseline_ms):
            # One off-band timing may be the reference's own bad luck (a burst during its 50 ms):
            # time it again at once, and keep the timing nearer the baseline. A real change of
            # speed shows in both.
            t2, m2 = self._time_reference()
            history.put_reference(self.store, self.identity, self.run_id, self.ref.key, t, m,
                                  m.median_ms / self.curve.baseline_ms, "retimed")
            if abs(m2.median_ms / self.curve.baseline_ms - 1) < abs(m.median_ms / self.curve.baseline_ms - 1):
                t, m = t2, m2
        hot = bool(m.thermal_after and m.thermal_after.get("throttled"))
        verdict = self.curve.judge(t, m.median_ms, self._thermal_known or hot)
        history.put_reference(self.store, self.identity, self.run_id, self.ref.key, t, m, verdict.ratio,
                              verdict.action)
        if verdict.action != "accept" or verdict.scale != 1.0:
            self.stats["drift_events"] += 1
            self.notify("drift", f"drift: {self.curve.line()} -> {verdict.action}"
                        + (f" ({verdict.reason})" if verdict.reason else ""))
        return verdict

    def _cool_down(self) -> None:
        """Wait (thermal status polled, reference re-timed) until the speed is back in band or the wait runs out."""
        waited = 0.0
        while waited < self.options.max_wait_s and not (self.stop and self.stop.is_set()):
            self.notify("cooling", f"drift: cooling down ({waited:.0f}/{self.options.max_wait_s:.0f} s)")
            self.sleep(self.options.wait_poll_s)
            waited += self.options.wait_poll_s
            reading = self.device.thermal()
            if reading and reading.get("throttled"):
                continue
            t, m = self._time_reference()
            ratio = self.curve.observe(t, m.median_ms, "cooling")
            history.put_reference(self.store, self.identity, self.run_id, self.ref.key, t, m, ratio, "cooling")
            if self.curve.in_band(ratio):
                break
        self.stats["waited_s"] += waited
        if waited >= self.options.max_wait_s:
            self.curve.give_up_waiting()

    # -- one pass ----------------------------------------------------------------
    def _settle_batch(self, batch: list[tuple[Item, float, Measurement, int]], pass_no: int,
                      verdict: Verdict | None, queue: list[Item]) -> None:
        for item, t, m, rowid in batch:
            action = verdict.action if verdict else "accept"
            if action != "accept" and self.requeues.get(item.key, 0) >= self.options.max_requeues:
                action = "accept-unchecked"
            raw = _raw_stats(m)
            if action in ("accept", "accept-unchecked"):
                scale = verdict.scale if verdict and action == "accept" else 1.0
                self.values.setdefault(item.key, []).append(
                    PassValue(pass_no, m.median_ms / scale, bool(m.settled) and action == "accept", scale, t,
                              _scaled(raw, scale)))
                if scale != 1.0:
                    self.stats["scaled"] += 1
                verdict_text = "scaled" if scale != 1.0 else ("accepted" if action == "accept" else "unchecked")
            else:
                self.requeues[item.key] = self.requeues.get(item.key, 0) + 1
                self.stats["requeued"] += 1
                queue.append(item)
                verdict_text, scale = "requeued", 1.0
            history.set_verdict(self.store, rowid, verdict_text, scale, verdict.reason if verdict else "")

    def _pass(self, pass_no: int, todo: list[Item], on_item: Callable[[Item], None]) -> bool:
        """One pass over `todo`; False when stopped."""
        queue = shuffled(todo, self.options.seed * 1000 + pass_no)
        batch: list[tuple[Item, float, Measurement, int]] = []
        held: list[tuple[Item, float, Measurement, int]] = []  # a batch whose verdict the next timing gives
        while queue or batch or held:
            if self.stop and self.stop.is_set():
                return False
            if queue:
                item = queue.pop(0)
                on_item(item)
                try:
                    m = self.measure(item)
                except ItemTaken:
                    self.taken.add(item.key)
                    continue
                t = self.clock()
                rowid = history.put_pass(self.store, self.identity, self.run_id, item.key, item.kind, pass_no, t,
                                         m, "taken", stats=_raw_stats(m))  # in the store before any decision
                batch.append((item, t, m, rowid))
            if self.ref is None:
                self._settle_batch(batch, pass_no, None, queue)
                batch = []
            elif len(batch) >= self.options.interval or not queue:
                verdict = self._check()
                if verdict.action == "hold":
                    held, batch = held + batch, []
                    continue
                self._settle_batch(held + batch, pass_no, verdict, queue)
                held, batch = [], []
                if verdict.action == "wait":
                    self._cool_down()
        return True

    # -- the whole run -----------------------------------------------------------
    def _set_aside_resumed(self, item: Item) -> None:
        """Drop an interrupted process's passes of `item` when they disagree with this run's.

        They are not another vote: a process's own state (where its sessions' buffers landed,
        the host's pace that minute) shifts every pass it takes alike.  Seen on this VM: a
        profile resumed after Ctrl-C found 31 of its items 4-9% slower than the first process
        had, ran them to a fourth pass and flagged 21.  This run's own passes decide instead
        (the interrupted ones stay in the history).
        """
        vals = self.values.get(item.key, [])
        resumed = [v.resumed for v in vals]
        if any(resumed) and not all(resumed) and disagree([v.median_ms for v in vals], self.options.agree):
            self.values[item.key] = [v for v in vals if not v.resumed]
            self.stats["resumed_dropped"] += 1

    def _needs_more(self, item: Item) -> bool:
        vals = self.values.get(item.key, [])
        if len(vals) < self.options.passes:
            return True
        medians = [v.median_ms for v in vals]
        return disagree(medians, self.options.agree) or not any(v.settled for v in vals)

    def _believed(self, vals: list[PassValue]) -> tuple[dict[str, Any], bool]:
        """The stored statistics of an item's passes (combined by `passes.combine`) and whether to flag them."""
        medians = [v.median_ms for v in vals]
        estimate = combine(medians, self.options.agree)
        rep = min(vals, key=lambda v: abs(v.median_ms - estimate))
        stats = dict(rep.stats)
        stats["median_ms"] = estimate
        stats["settled"] = any(v.settled for v in vals)
        return stats, (not stats["settled"]) or disagree(medians, self.options.agree)

    def _finish(self, item: Item) -> None:
        vals = self.values.get(item.key)
        if not vals:
            return
        stats, flagged = self._believed(vals)
        if flagged:
            self.flagged.append(item.key)
        self.put(item, stats, flagged)
        self.stored += 1

    def _resume(self) -> None:
        """Passes an interrupted run already accepted for these items count: nothing is measured twice."""
        for key, rows in history.resumable(self.store, self.identity, {i.key for i in self.items}).items():
            self.values[key] = [PassValue(n + 1, r["median_ms"] / r["scale"], r["settled"], r["scale"],
                                          r["timestamp"], _scaled(r["stats"], r["scale"]), resumed=True)
                                for n, r in enumerate(rows)]
        self.stats["resumed_passes"] = sum(len(v) for v in self.values.values())

    def run(self, on_item: Callable[[Item], None] = lambda item: None) -> bool:
        """Measure every item to a believed value; False when stopped (its accepted passes stay in history)."""
        if self.resume:
            self._resume()
        open_items = list(self.items)
        pass_no = 1
        while True:
            open_items = [i for i in open_items if i.key not in self.taken]
            for item in open_items:
                self._set_aside_resumed(item)
                if not self._needs_more(item):
                    self._finish(item)
            open_items = [i for i in open_items if self._needs_more(i)]
            if not open_items:
                return True
            if pass_no > self.options.max_passes:
                for item in open_items:  # still disagreeing: stored with its median, flagged
                    self._finish(item)
                return True
            if pass_no <= self.options.passes:
                todo = [i for i in open_items if len(self.values.get(i.key, [])) < pass_no]
            else:
                todo = open_items
                self.stats["extra_pass_items"] += len(todo)
            if todo:
                if self.ref is not None and not self.curve.ready:
                    self._baseline()
                self.notify("pass", f"pass {pass_no}: {len(todo)} items")
                if not self._pass(pass_no, todo, on_item):
                    return False
                self.stats["passes"] = pass_no
            pass_no += 1

    def self_check(self, on_item: Callable[[Item], None] = lambda item: None) -> bool:
        """Re-measure items that disagree with the rest of the table; flag those still suspect after that.

        Returns False when stopped.  Records the suspects in `stats` (`selfcheck_*`).
        """
        from hwnas.profiler.selfcheck import block_outliers, network_outliers

        by_key = {i.key: i for i in self.items}

        def suspects() -> dict[str, dict[str, Any]]:
            blocks, nets = self.store.blocks(self.identity), self.store.networks(self.identity)
            found = {o["block_key"]: o for o in block_outliers(blocks)}
            found.update({f"{o['space']}:{o['arch']}": o for o in network_outliers(blocks, nets)})
            return {k: v for k, v in found.items() if k in by_key}

        first = suspects()
        self.stats["selfcheck_suspects"] = sorted(first)
        if not first:
            return True
        self.notify("drift", f"self-check: {len(first)} items disagree with the table; measuring them again")
        stored: dict[str, tuple[dict[str, Any], bool]] = {}

        def put(item: Item, stats: dict[str, Any], flagged: bool) -> None:
            # Its passes before and after combine as any item's do (the fastest is believed: load
            # only slows a device), so a re-measurement that foreign work slowed replaces nothing.
            stats, _ = self._believed(self.values.get(item.key, []) + again.values.get(item.key, []))
            stored[item.key] = (stats, flagged)
            self._put_quiet(item, stats, flagged)

        again = SteadyRun(self.device, self.store, self.identity, [by_key[k] for k in first], self.measure, put,
                          dataclasses.replace(self.options, selfcheck=False, seed=self.options.seed + 7),
                          self.notify, self.stop, self.clock, self.sleep, run_id=self.run_id, resume=False)
        again.curve, again.ref = self.curve, self.ref  # one speed curve and reference for the whole profile
        if not again.run(on_item):
            return False
        still = suspects()
        reproduced = [key for key in still if by_key[key].spec is not None
                      and self._reproduced(self.values.get(key, []), again.values.get(key, []))]
        for key, (stats, flagged) in stored.items():
            if key in still and key not in reproduced:
                self._put_quiet(by_key[key], stats, True)
                flagged = True
            # `flagged` is what the store now says of the item: a re-measurement may also settle one
            # that its first passes left flagged.
            if flagged and key not in self.flagged:
                self.flagged.append(key)
            elif not flagged and key in self.flagged:
                self.flagged.remove(key)
        self.stats["selfcheck_confirmed"] = sorted(set(still) - set(reproduced))
        self.stats["selfcheck_reproduced"] = sorted(reproduced)
        return True

    def _reproduced(self, before: list[PassValue], after: list[PassValue]) -> bool:
        """True when a re-measurement, taken minutes later, gives the value the first passes gave.

        A block's yardstick in the self-check is a crude trend of its family (time against
        multiply-adds); blocks of unusual shape (3 input channels and 288 output ones, a
        projection of 8 channels to 584) sit far from it and are what they are.  Flagging them
        threw out reproducible timings, most of them the off-grid samples the regressor learns
        unusual shapes from (seen: 178 of 2,400 off-grid blocks of one profile, their four
        passes within 5%).  A timing that two separate measurements agree on is believed; one
        that moved and still sits far from the trend is flagged.  Networks stay flagged either
        way: their yardstick is their own blocks' sum, and a network far from it reproducibly
        would bend the overhead fit of all the others.
        """
        if not before or not after:
            return False
        return not disagree([combine([v.median_ms for v in before], self.options.agree),
                             combine([v.median_ms for v in after], self.options.agree)], self.options.agree)

    def _put_quiet(self, item: Item, stats: dict[str, Any], flagged: bool) -> None:
        """Replace an item's stored row (a re-check), without counting it as a new measurement."""
        if item.spec is not None:
            self.store.put_block(self.identity, item.spec, stats, flagged=flagged)
        else:
            self.store.put_network(self.identity, item.space, item.arch_text, stats, flagged=flagged)

    def summary(self) -> dict[str, Any]:
        """What the mechanisms did: for the CLI summary, the store's readers and the benchmark."""
        out = dict(self.stats)
        out["reference"] = self.ref.key if self.ref is not None else None
        out["baseline_ms"] = self.curve.baseline_ms
        out["curve"] = [dict(p) for p in self.curve.points]
        return out


def measure_options(options: Steadiness, base_min_seconds: float, base_max_seconds: float,
                    base_target_ci: float, base_min_runs: int) -> dict[str, float]:
    """URI options that give each of the `passes` its share of one item's timing budget.

    The combined estimate of p passes has about 1/sqrt(p) the spread of one, so each pass
    needs only sqrt(p) times the CI target and 1/p of the minimum time and of the cap:
    p passes then cost about what one timing cost before (without the wider CI target,
    a noisy block runs to the same CI in every pass, and p passes cost p times as much).
    The run cap is not shared: a 20 µs block stops at it before its minimum time, so p
    passes cost it p times one timing; sharing the cap too (tried: steady/plain 1.53x ->
    ~1.3x on a quiet VM) doubled the p90 pass-to-pass spread of small blocks and lowered
    the quiet~loaded block agreement (87/93% against 95/94% side by side).
    The minimum run count is shared like the minimum time (never below 3 runs a pass): an item
    slower than min_seconds / min_runs (10 ms by default) stops at it, and p passes cost it p
    timings where one timing's worth of runs is enough; passes that disagree get another one.
    """
    p = options.passes
    if p <= 1:
        return {}
    return {"min_seconds": base_min_seconds / p, "max_seconds": base_max_seconds / p,
            "target_ci": base_target_ci * p ** 0.5, "min_runs": max(3, math.ceil(base_min_runs / p))}
