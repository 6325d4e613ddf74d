"""Profiling across a farm of hosts with Ray: one actor per device, one store at the driver.

Each actor opens its device where Ray places it (a host with that phone
attached, when the host advertises a custom resource named after the
device, e.g. ``ray start --resources '{"adb://R58M123": 1}'``) and measures
one item per call; the driver keeps every device's `DevicePlan` (what is left,
retry/flag rule) and is the only writer of the SQLite store, so results from
many hosts land in one file without any network file system.

Ray is the optional extra ``hwnas[farm]``: it is imported only here, lazily.
"""

from __future__ import annotations

import time
from typing import Any, Callable

from hwnas.devices.base import DeviceError
from hwnas.profiler.enumerate import Item
from hwnas.profiler.store import Store
from hwnas.profiler.worker import DevicePlan, DeviceSummary, Progress, ThermalGuard, max_temp, profile_uri
from hwnas.search.space import InputError

__all__ = ["require_ray", "run_farm"]


def require_ray() -> Any:
    """The `ray` module, or one clear line saying how to get it."""
    try:
        import ray
    except ImportError:
        raise InputError("`ray` needs Ray, an optional extra: pip install 'hwnas[farm]' (or pip install 'ray>=2.9')"
                         ) from None
    return ray


class _ProfilerActor:
    """Runs on a farm host: owns one Device, measures one item per call."""

    def __init__(self, uri: str, pause_s: float = 5.0, max_wait_s: float = 300.0) -> None:
        from hwnas.devices.registry import open_device

        self.device = open_device(profile_uri(uri))
        self.guard = ThermalGuard(pause_s, max_wait_s)
        self.last: dict[str, Any] | None = None  # the previous block's after-reading

    def describe(self) -> tuple[str, dict[str, Any], float | None]:
        import socket

        info = dict(self.device.info())
        info.setdefault("host", socket.gethostname())
        return self.device.identity, info, max_temp(self.device.thermal())

    def measure(self, item: Item) -> Any:
        from hwnas.profiler.worker import measure_item

        try:
            m = measure_item(self.device, item, self.guard, last_thermal=self.last)
            self.last = m.thermal_after
            return m
        except InputError as exc:  # travels back as data: the driver decides what a failure means
            return exc

    def close(self) -> None:
        self.device.close()


def _connect(ray: Any, address: str, num_cpus: int | None) -> bool:
    """Join (or, for `auto` with no cluster running, start) a Ray cluster; True if we started it."""
    if ray.is_initialized():
        return False
    kwargs: dict[str, Any] = {"include_dashboard": False, "logging_level": "ERROR", "log_to_driver": False}
    if address == "local":
        ray.init(num_cpus=num_cpus, **kwargs)
        return True
    try:
        ray.init(address=address, **kwargs)
    except ConnectionError:
        if address != "auto":
            raise InputError(f"`ray` {address}: no Ray cluster answers there") from None
        ray.init(num_cpus=num_cpus, **kwargs)  # no cluster yet: a local one on this host
    return True


def run_farm(uris: list[str], store: Store, items: list[Item], *, address: str = "auto", remeasure: bool = False,
             max_attempts: int = 2, on_progress: Callable[[Progress], None] | None = None,
             num_cpus: int | None = None, shutdown: bool | None = None) -> list[DeviceSummary]:
    """Profile every device as a Ray actor; the driver writes each result as it arrives."""
    ray = require_ray()
    started = _connect(ray, address, num_cpus)
    emit = on_progress or (lambda p: None)
    cluster = ray.cluster_resources()
    actor_cls = ray.remote(num_cpus=0)(_ProfilerActor)
    actors, plans, summaries, inflight = {}, {}, {}, {}
    t0 = time.perf_counter()
    try:
        for uri in uris:
            resources = {uri: 0.001} if uri in cluster else None  # pin to the host that has the phone
            actor = actor_cls.options(resources=resources).remote(uri) if resources else actor_cls.remote(uri)
            try:
                identity, info, temp = ray.get(actor.describe.remote())
            except Exception as exc:  # the actor's constructor raised (device unreachable, bad URI)
                summaries[uri] = DeviceSummary(uri, total=len(items), failed=_cause(exc))
                continue
            actors[uri] = actor
            plans[uri] = plan = DevicePlan(store, profile_uri(uri), identity, info, items, remeasure, max_attempts, uri)
            emit(plan.progress(temp=temp))
        def submit(uri: str) -> None:
            item = plans[uri].schedule.next()
            while item is not None and not plans[uri].claim(item):  # leased or stored by another process
                item = plans[uri].schedule.next()
            if item is None:
                emit(plans[uri].progress("", "done"))
                return
            inflight[actors[uri].measure.remote(item)] = (uri, item)
            emit(plans[uri].progress(item.label))

        for uri in plans:
            submit(uri)
        while inflight:
            ready, _ = ray.wait(list(inflight), num_returns=1)
            uri, item = inflight.pop(ready[0])
            plan = plans[uri]
            try:
                result = ray.get(ready[0])
            except Exception as exc:  # the actor process died (host lost)
                result = DeviceError(f"device {uri} lost on {item.label}: {_cause(exc)}")
            if isinstance(result, Exception):
                plan.summary.failed = str(result)
                emit(plan.progress(item.label, "failed"))
                continue
            plan.record(item, result)
            emit(plan.progress(item.label, temp=max_temp(result.thermal_after)))
            submit(uri)
    finally:
        for actor in actors.values():
            try:
                ray.get(actor.close.remote(), timeout=30)
            except Exception:  # already dead: nothing left to release
                pass
        if shutdown if shutdown is not None else started:
            ray.shutdown()
    wall = time.perf_counter() - t0
    for uri, plan in plans.items():
        plan.summary.wall_s = wall
        summaries[uri] = plan.summary
    return [summaries[u] for u in uris]


def _cause(exc: BaseException) -> str:
    """The original error's message out of Ray's wrapper exceptions."""
    cause = getattr(exc, "cause", None) or exc.__cause__
    return str(cause) if cause else str(exc).strip().splitlines()[-1]
