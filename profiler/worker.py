"""The loop that hands blocks to a Device and writes what comes back into the store.

One `DevicePlan` per device decides what is left to measure (the store is the
memory of a resumed run) and what to do with each result (the schedule's
retry/flag rule); `run_device` drives it with a local `Device`, and the Ray
driver in `hwnas.profiler.farm` drives the same plan with a remote actor.  A device
that fails mid-run (a dropped phone) ends its own loop with everything
measured so far already committed, so the next run resumes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

from hwnas.devices.base import Device, DeviceError, Measurement
from hwnas.devices.registry import open_device
from hwnas.devices.uri import DeviceURI, parse_uri
from hwnas.profiler.enumerate import Item
from hwnas.profiler.schedule import Decision, Schedule
from hwnas.devices.uri import canonical_uri
from hwnas.profiler.sharing import (claim, clear_pending, hardware_key, hardware_lock, mark_pending, pending_attempts,
                                   release)
from hwnas.profiler.steady import ItemTaken, Steadiness, SteadyRun, measure_options
from hwnas.profiler.store import Store, stats_of
from hwnas.search.space import InputError

__all__ = ["DEFAULT_MAX_SECONDS", "Steadiness", "Progress", "DeviceSummary", "ThermalGuard", "DevicePlan", "profile_uri",
           "build_module", "measure_item", "run_device", "run_local"]

#: Per-block time cap when the URI names none: a full fbnet-cifar profile then takes minutes.
DEFAULT_MAX_SECONDS = 1.0


def profile_uri(uri: str | DeviceURI, max_seconds: float = DEFAULT_MAX_SECONDS,
                pass_share: dict[str, float] | None = None) -> DeviceURI:
    """Parse a URI, giving it the profiler's per-block time cap and, with passes, each pass's
    share of the timing budget (`measure_options`), for every option the URI does not set itself."""
    parsed = parse_uri(uri) if isinstance(uri, str) else uri
    extra: dict[str, Any] = {}
    if parsed.option("max_seconds") is None:
        extra["max_seconds"] = max_seconds
    fixed_runs = parsed.option("runs") is not None  # N runs asked for are N runs done, in every pass
    for key, value in (pass_share or {}).items():
        if parsed.option(key) is None and not (fixed_runs and key != "target_ci"):
            extra[key] = value
    if "min_runs" in extra and parsed.option("max_runs") is not None:  # the URI's own cap holds
        extra["min_runs"] = min(extra["min_runs"], parsed.option("max_runs"))
    if extra:
        parsed = dataclasses.replace(parsed, options=tuple(sorted({**dict(parsed.options), **extra}.items())))
    return parsed


@dataclass
class Progress:
    """One update for a progress display: where a device's run stands."""

    device: str
    done: int
    total: int
    current: str = ""
    state: str = "measuring"  # measuring | cooling | done | stopped | failed
    temp_c: float | None = None
    round: int = 1
    note: str = ""  # the drift line (reference speed, re-queues), when the steady loop runs


@dataclass
class DeviceSummary:
    """What one device's run did: for the CLI's summary and the overhead benchmark."""

    device: str
    identity: str = ""
    total: int = 0
    skipped: int = 0
    measured: int = 0
    retried: int = 0
    flagged: list[str] = field(default_factory=list)
    failed: str | None = None
    wall_s: float = 0.0
    loop_s: float = 0.0  # time inside the timed loops (warm-up + timed runs)
    device_s: float = 0.0  # time inside Device.measure (export/load, loop, statistics)
    steady: dict[str, Any] = field(default_factory=dict)  # passes, re-queues, scaling, the speed curve

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def max_temp(thermal: dict[str, Any] | None) -> float | None:
    temps = [float(v) for v in ((thermal or {}).get("temps_c") or {}).values() if isinstance(v, (int, float))]
    return max(temps) if temps else None


@dataclass
class ThermalGuard:
    """Pause while a device reports throttling (checked before every block).

    After `max_wait_s` it goes on regardless, and the block is flagged, so a
    device stuck hot cannot hang a run for ever.
    """

    pause_s: float = 5.0
    max_wait_s: float = 300.0
    sleep: Callable[[float], None] = time.sleep

    def wait(self, device: Device, notify: Callable[[str, float | None], None] | None = None,
             last: dict[str, Any] | None = None) -> tuple[dict[str, Any] | None, bool]:
        """Block until the device is not throttled; `last` (the previous block's after-reading,
        taken moments ago) saves a read when it says the device is cool: on a phone a read is a shell round trip."""
        waited = 0.0
        while True:
            reading, last = (last, None) if last is not None else (device.thermal(), None)
            if not (reading and reading.get("throttled")):
                return reading, False
            if waited >= self.max_wait_s:
                return reading, True
            if notify:
                notify("cooling", max_temp(reading))
            self.sleep(self.pause_s)
            waited += self.pause_s


def build_module(item: Item) -> tuple[Any, tuple[int, ...]]:
    """The torch module an item names, in eval mode, with its input shape.

    The profiler builds modules with `hwnas.search.blocks` (the one builder the
    search trains and the counter counts), so measured = trained.
    """
    from hwnas.search.blocks import build_block, build_network
    from hwnas.search.space import get_space

    if item.spec is not None:
        return build_block(item.spec).eval(), item.spec.input_shape
    net = build_network(get_space(item.space), item.arch)
    return net.eval(), net.input_shape


def measure_item(device: Device, item: Item, guard: ThermalGuard | None = None,
                 notify: Callable[[str, float | None], None] | None = None,
                 last_thermal: dict[str, Any] | None = None,
                 built: tuple[Any, tuple[int, ...]] | None = None) -> Measurement:
    """Time one item on a device (after the thermal guard lets it); connection faults → DeviceError.

    `built` is the item's (module, input shape) when the caller kept it from an earlier pass.
    """
    hot = False
    if guard is not None:
        _, hot = guard.wait(device, notify, last_thermal)
    module, shape = built if built is not None else build_module(item)
    t0 = time.perf_counter()
    try:
        m = device.measure(module, shape, key=item.key)
    except (ConnectionError, OSError, TimeoutError) as exc:
        raise DeviceError(f"device {device.uri} failed on {item.label}: {exc}") from None
    m.extra["measure_s"] = time.perf_counter() - t0  # export/load + loop + statistics, for the overhead figures
    if hot:
        m.extra["throttled"] = True
    return m


def loop_seconds(m: Measurement) -> float:
    """Seconds spent in a measurement's timed loop (warm-up runs estimated at the median)."""
    return (sum(m.samples_ms) + m.warmup * (m.median_ms or 0.0)) / 1000.0


class DevicePlan:
    """What is left to measure on one device, and where each result goes."""

    def __init__(self, store: Store, uri: DeviceURI, identity: str, info: dict[str, Any], items: list[Item],
                 remeasure: bool = False, max_attempts: int = 2, label: str | None = None) -> None:
        self.store, self.identity, self.remeasure = store, identity, remeasure
        self._tried: set[str] = set()
        store.add_device(identity, canonical_uri(uri), info, runtime=uri.runtime, threads=uri.threads,
                         cores=uri.option("cores"))
        done: set[str] = set()
        pending: dict[str, int] = {}
        if not remeasure:
            done = store.measured_blocks(identity)
            for space in {i.space for i in items if i.kind == "network"}:
                done |= {f"{space}:{a}" for a in store.measured_networks(identity, space)}
            pending = pending_attempts(store, identity)  # stored but unsettled: tried again, after fresh work
        todo = [i for i in items if i.key not in done]
        retries = [i for i in items if i.key in pending and i.key in done]  # a stored try awaits another
        self.summary = DeviceSummary(label or canonical_uri(uri), identity, total=len(items),
                                     skipped=len(items) - len(todo) - len(retries))
        self.schedule: Schedule[Item] = Schedule(todo, max_attempts=max_attempts)
        if retries:
            self.schedule.resume_retries(retries, pending)

    def record(self, item: Item, m: Measurement) -> Decision:
        self._tried.add(item.key)
        settled = bool(m.settled) and not m.extra.get("throttled")
        decision = self.schedule.report(item, settled, m, spread=m.relative_ci)
        self.summary.loop_s += loop_seconds(m)
        self.summary.device_s += float(m.extra.get("measure_s", 0.0))
        if decision.action == "retry":
            self._put_unsettled(item, m)
        if decision.action == "store":
            stats = stats_of(decision.payload)
            if item.spec is not None:
                self.store.put_block(self.identity, item.spec, stats, flagged=decision.flagged)
            else:
                self.store.put_network(self.identity, item.space, item.arch_text, stats, flagged=decision.flagged)
            clear_pending(self.store, self.identity, item.key)
            release(self.store, self.identity, item.key)
            self.summary.measured += 1
        self.summary.retried = self.schedule.retried
        self.summary.flagged = list(self.schedule.flagged)
        return decision

    def _put_unsettled(self, item: Item, m: Measurement) -> None:
        """A try that did not settle goes to the store at once, marked for retry (a crash keeps it)."""
        mark_pending(self.store, self.identity, item.key)
        stats = {**stats_of(m), "settled": False}
        if item.spec is not None:
            self.store.put_block(self.identity, item.spec, stats)
        else:
            self.store.put_network(self.identity, item.space, item.arch_text, stats)

    def claim(self, item: Item) -> bool:
        """Lease the item for this process; False when another process holds or already stored it."""
        again = self.remeasure or item.key in self._tried  # our own retry: our pending row is no reason to skip
        if claim(self.store, self.identity, item.key, ignore_stored=again):
            return True
        self.summary.skipped += 1
        return False

    def progress(self, current: str = "", state: str = "measuring", temp: float | None = None,
                 note: str = "") -> Progress:
        return Progress(self.summary.device, self.summary.skipped + self.schedule.done, self.summary.total,
                        current, state, temp, self.schedule.round, note)

    def put(self, item: Item, stats: dict[str, Any], flagged: bool) -> None:
        """Store an item's believed value (the steady loop's combined passes), and give its lease back."""
        self._tried.add(item.key)  # its self-check may measure it again: our own row is no reason to skip
        if item.spec is not None:
            self.store.put_block(self.identity, item.spec, stats, flagged=flagged)
        else:
            self.store.put_network(self.identity, item.space, item.arch_text, stats, flagged=flagged)
        clear_pending(self.store, self.identity, item.key)
        release(self.store, self.identity, item.key)
        self.summary.measured += 1
        if flagged:
            self.summary.flagged.append(item.key)


def run_device(uri: str | DeviceURI, store: Store, items: list[Item], *, remeasure: bool = False,
               max_attempts: int = 2, guard: ThermalGuard | None = None,
               on_progress: Callable[[Progress], None] | None = None,
               stop: threading.Event | None = None, steadiness: Steadiness | None = None) -> DeviceSummary:
    """Measure every item not yet in the store on one device; a failing device ends only its own run.

    `steadiness` (default: every mechanism on) runs the steady loop of
    `hwnas.profiler.steady`; `Steadiness.off()` runs the plain one-pass loop.
    """
    steadiness = Steadiness() if steadiness is None else steadiness
    parsed = profile_uri(uri, pass_share=_pass_share(steadiness))
    label = uri if isinstance(uri, str) else canonical_uri(uri)
    guard = guard or ThermalGuard()
    emit = on_progress or (lambda p: None)
    t0 = time.perf_counter()
    try:
        device = open_device(parsed)
    except InputError as exc:
        return DeviceSummary(label, total=len(items), failed=str(exc))
    with device:
        try:
            info = dict(device.info())
            plan = DevicePlan(store, parsed, device.identity, info, items, remeasure, max_attempts, label)
        except InputError as exc:
            return DeviceSummary(label, total=len(items), failed=str(exc))
        if steadiness.active:
            try:
                _run_steady(device, plan, guard, emit, stop, steadiness)
            except DeviceError as exc:
                plan.summary.failed = str(exc)
                emit(plan.progress("", "failed", None))
            plan.summary.wall_s = time.perf_counter() - t0
            return plan.summary
        last = device.thermal()
        temp = max_temp(last)
        emit(plan.progress(temp=temp))
        while not (stop and stop.is_set()):
            item = plan.schedule.next()
            if item is None:
                break
            if not plan.claim(item):  # another process has it, or stored it meanwhile
                continue
            emit(plan.progress(item.label, temp=temp))
            try:
                with hardware_lock(store, hardware_key(str(parsed))):
                    m = measure_item(device, item, guard,
                                     lambda state, t: emit(plan.progress(item.label, state, t)), last)
            except DeviceError as exc:
                release(store, plan.identity, item.key)
                plan.summary.failed = str(exc)
                emit(plan.progress(item.label, "failed", temp))
                break
            last = m.thermal_after
            temp = max_temp(last) if last else temp
            plan.record(item, m)
            emit(plan.progress(item.label, temp=temp))
        if plan.summary.failed is None:
            emit(plan.progress("", "stopped" if stop and stop.is_set() else "done", temp))
    plan.summary.wall_s = time.perf_counter() - t0
    return plan.summary


def _pass_share(steadiness: Steadiness) -> dict[str, float]:
    """Each pass's share of the protocol's timing budget, so that passes cost no more device time."""
    from hwnas.devices.protocol import Policy

    return measure_options(steadiness, Policy.min_seconds, DEFAULT_MAX_SECONDS, Policy.target_rel_ci, Policy.min_runs)


#: The reference block is timed for this share of an item's minimum time: only its median
#: matters (against a ±12% band), and it is timed some 30 times a profile.
REFERENCE_SHARE = 0.2


@contextlib.contextmanager
def _brief(device: Device, share: float) -> Iterator[None]:
    """Time with `share` of the device policy's minimum time (devices without a policy: unchanged)."""
    policy = getattr(device, "policy", None)
    if share == 1.0 or policy is None:
        yield
        return
    device.policy = dataclasses.replace(policy, min_seconds=policy.min_seconds * share)
    try:
        yield
    finally:
        device.policy = policy


def _run_steady(device: Device, plan: DevicePlan, guard: ThermalGuard, emit: Callable[[Progress], None],
                stop: threading.Event | None, steadiness: Steadiness) -> None:
    """The steady loop (passes, reference, re-queues) on one open device, reporting progress."""
    todo = list(plan.schedule.items)
    state = {"current": "", "note": "", "done": 0, "last": None}
    summary = plan.summary

    def progress(st: str = "measuring") -> Progress:
        return Progress(summary.device, summary.skipped + summary.measured, summary.total, state["current"], st,
                        max_temp(state["last"]), run.stats["passes"] + 1 if st == "measuring" else 1,
                        state["note"])

    # blocks are small: their modules are kept across passes for devices that keep nothing loaded
    blocks_built: dict[str, tuple[Any, tuple[int, ...]]] = {}
    shapes: dict[str, tuple[int, ...]] = {}  # input shape of each item measured, for kept artifacts

    claimed: set[str] = set()
    hardware = hardware_key(str(device.uri))

    def measure(item: Item) -> Measurement:
        # Leases let two processes split one plan; the reference block is everyone's, never claimed.
        is_ref = item is run.ref
        if not is_ref and item.key not in claimed:
            if not plan.claim(item):
                raise ItemTaken(item.key)
            claimed.add(item.key)
        if device.has_prepared(item.key):  # loaded in an earlier pass: no module needed
            built = (None, shapes[item.key])
        else:
            built = blocks_built.get(item.key) or build_module(item)
            if item.spec is not None:
                blocks_built[item.key] = built
            shapes[item.key] = built[1]
        with hardware_lock(plan.store, hardware), _brief(device, REFERENCE_SHARE if is_ref else 1.0):
            m = measure_item(device, item, guard, lambda st, t: emit(progress("cooling")), state["last"], built)
        state["last"] = m.thermal_after
        summary.loop_s += loop_seconds(m)
        summary.device_s += float(m.extra.get("measure_s", 0.0))
        return m

    def notify(kind: str, text: str) -> None:
        if kind in ("drift", "cooling"):
            state["note"] = text
        emit(progress("cooling" if kind == "cooling" else "measuring"))

    def on_item(item: Item) -> None:
        state["current"] = item.label
        emit(progress())

    run = SteadyRun(device, plan.store, plan.identity, todo, measure, plan.put, steadiness, notify, stop)
    emit(progress())
    try:
        with device.keep_prepared():  # every pass, re-queue and self-check times the same loaded artifacts
            finished = run.run(on_item)
            if finished and steadiness.selfcheck:
                finished = run.self_check(on_item)
    finally:
        for key in claimed:  # unfinished items (stopped, failed) are free for the next run at once
            release(plan.store, plan.identity, key)
    summary.steady = run.summary()
    # The run's own list: the self-check sets and clears flags on rows it re-measured without
    # `plan.put`, and a count from `put` alone contradicted the self-check line (seen in the demo).
    summary.flagged = list(run.flagged)
    summary.retried = run.stats["requeued"] + run.stats["extra_pass_items"]
    state["current"] = ""
    emit(progress("done" if finished else "stopped"))


def run_local(uris: list[str], store: Store, items: list[Item], *, remeasure: bool = False,
              max_attempts: int = 2, guard: ThermalGuard | None = None,
              on_progress: Callable[[Progress], None] | None = None,
              steadiness: Steadiness | None = None) -> list[DeviceSummary]:
    """One worker thread per device, all writing into the one store (its lock serializes writes).

    Ctrl-C stops every worker after its block in flight; what was measured stays.
    """
    stop = threading.Event()
    if len(uris) == 1:
        try:
            return [run_device(uris[0], store, items, remeasure=remeasure, max_attempts=max_attempts, guard=guard,
                               on_progress=on_progress, stop=stop, steadiness=steadiness)]
        except KeyboardInterrupt:
            stop.set()
            raise
    with ThreadPoolExecutor(max_workers=len(uris), thread_name_prefix="hwnas-profile") as pool:
        futures = [pool.submit(run_device, u, store, items, remeasure=remeasure, max_attempts=max_attempts,
                               guard=guard, on_progress=on_progress, stop=stop, steadiness=steadiness)
                   for u in uris]
        try:
            return [f.result() for f in futures]
        except KeyboardInterrupt:
            stop.set()
            raise
