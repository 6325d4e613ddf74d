"""The Python API: the whole loop from a notebook, the same functions the CLI calls.

    import hwnas
    store = hwnas.profile("fbnet-cifar", "cpu:onnxruntime?threads=1", store="hw.db", archs="random:20")
    model = hwnas.fit(store, device="cpu:onnxruntime?threads=1")        # a LatencyModel
    model.predict(["fbnet-b", "k3_e1-...-skip"])                         # a pandas DataFrame
    run = hwnas.search("fbnet-cifar", latency=model, data="digits", out="runs/a")   # a Run
    hwnas.report(store, models=[model], runs=[run], out="report.html")

Errors a caller causes are `hwnas.InputError`, naming the parameter at fault.
Heavy libraries (torch, ONNX Runtime, LiteRT) load only when a function needs them.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence, Union

from hwnas.fitting import fit, fit_networks, fit_store_networks, parse_archs  # the latency-model entry points
from hwnas.search.space import InputError, get_space

if TYPE_CHECKING:
    from hwnas.latency_models.network import LatencyModel
    from hwnas.profiler.enumerate import Item
    from hwnas.profiler.steady import Steadiness
    from hwnas.profiler.worker import DeviceSummary
    from hwnas.search.rundir import Run

__all__ = ["plan", "stored_archs", "parse_archs", "steadiness", "profile", "profile_devices", "fit", "fit_networks", "fit_store_networks", "search", "search_run", "train", "export",
           "report"]

PathLike = Union[str, Path]


# --------------------------------------------------------------------------- profile


def plan(space: str, *, archs: str | None = None, blocks: bool = True, samples: int = 0, seed: int = 0,
         limit: int | None = None, priors: Sequence[PathLike] = (), measured: Sequence[str] = ()) -> list["Item"]:
    """What a profile measures: the space's blocks, `samples` random blocks and the `archs` networks.

    `archs` is `random:N`, `suggest:N` (the N networks whose timings teach a transfer from the
    `priors` models most, beside the `measured` ones the device already has: `stored_archs`),
    or presets / architecture strings separated by `;`.
    """
    import re

    from hwnas.profiler.enumerate import arch_items, block_items, parse_archs, sample_blocks

    if limit is not None and limit < 1:
        raise InputError(f"`limit` must be >= 1, got {limit}")
    sp = get_space(space)
    specs = list(sp.unique_blocks()) if blocks else []
    if samples:  # `limit` applies before sampling: never build samples that would be cut off
        wanted = samples if limit is None else min(samples, max(0, limit - len(specs)))
        specs += sample_blocks(sp, wanted, seed) if wanted else []
    items = block_items(specs)
    spec = (archs or "").strip()
    m = re.fullmatch(r"random:(\d{1,12})", spec)
    if m and int(m[1]) > 1_000_000:
        raise InputError(f"`archs` {spec}: at most random:1000000")
    if m and limit is not None and int(m[1]) > limit - len(items):
        spec = f"random:{max(0, limit - len(items))}" if limit > len(items) else ""
    if spec.startswith("suggest"):
        from hwnas.networks_io import suggest_archs

        m = re.fullmatch(r"suggest:(\d+)", spec)
        if not m:
            raise InputError(f"`archs` {spec!r}: expected suggest:N with N a whole number")
        done = [sp.parse(a) for a in measured]
        items += arch_items(sp, suggest_archs(sp, int(m[1]), list(priors), seed, measured=done))
    elif spec:
        if priors:
            raise InputError("`priors` are used only with `archs` suggest:N")
        items += arch_items(sp, parse_archs(spec, sp, seed))
    if limit is not None:
        items = items[:limit]
    if not items:
        raise InputError("nothing to measure: without `blocks` give `archs`")
    return items


def steadiness(passes: int = 2, reference: bool = True, drift: str = "auto", retries: int = 1,
               selfcheck: bool = True, interval: int = 10, agree: float = 0.05, band: float = 0.12) -> "Steadiness":
    """The steady measurement loop's settings: shuffled `passes` (another pass where two disagree by
    more than `agree`), a `reference` block timed every `interval` items against drift beyond
    `band` (`drift`: wait, scale or auto), and the `selfcheck` after the passes; all off is the plain loop."""
    from hwnas.profiler.drift import DriftPolicy
    from hwnas.profiler.steady import Steadiness

    if passes < 1:
        raise InputError(f"`passes` must be >= 1, got {passes}")
    if drift not in ("auto", "wait", "scale"):
        raise InputError(f"`drift` must be auto, wait or scale, got {drift!r}")
    if interval < 1:
        raise InputError(f"`interval` must be >= 1, got {interval}")
    for name, value in (("agree", agree), ("band", band)):
        if not 0 < value < 1:
            raise InputError(f"`{name}` must be a fraction in (0, 1), got {value}")
    if passes == 1 and not reference and not selfcheck:
        return Steadiness.off()
    return Steadiness(passes=passes, max_passes=passes + max(retries, 1) + (1 if passes > 1 else 0),
                      reference=reference, drift=DriftPolicy(band=band, action=drift), selfcheck=selfcheck,
                      interval=interval, agree=agree)


def stored_archs(store: PathLike, space: str, devices: Sequence[str]) -> list[str]:
    """Architectures of `space` the store already has timings of on any of `devices` (none: a new store)."""
    from hwnas.profiler.store import Store

    if not Path(store).is_file():
        return []
    with Store(Path(store), create=False, readonly=True) as st:
        archs: dict[str, None] = {}
        for uri in devices:
            try:
                identity = st.resolve_device(uri)
            except InputError:  # a device this store has not seen yet
                continue
            nets = st.networks(identity)
            archs.update(dict.fromkeys(nets.loc[nets["space"] == space, "arch"]))
    return list(archs)


def profile_devices(space: str, devices: Sequence[str], store: PathLike = "hwnas.db", *, archs: str | None = None,
                    blocks: bool = True, samples: int = 0, seed: int = 0, limit: int | None = None,
                    priors: Sequence[PathLike] = (), remeasure: bool = False, retries: int = 1, ray: str | None = None,
                    passes: int = 2, reference: bool = True, drift: str = "auto", selfcheck: bool = True,
                    interval: int = 10, agree: float = 0.05, band: float = 0.12,
                    items: Sequence["Item"] | None = None,
                    on_progress: Callable[[Any], None] | None = None) -> list["DeviceSummary"]:
    """Measure on every device into the store; one summary per device (a failed device says why).

    Each item is timed in `passes` shuffled passes against a reference block (see `steadiness`).
    `items` is a `plan` already made (else it is made from `archs`, `blocks`, `samples`, ...).
    """
    from hwnas.devices.uri import parse_uri
    from hwnas.profiler.store import Store
    from hwnas.profiler.worker import ThermalGuard, run_local

    if retries < 0:
        raise InputError(f"`retries` must be >= 0, got {retries}")
    devices = [devices] if isinstance(devices, str) else list(devices)
    if not devices:
        raise InputError("`device` names no device")
    if len(set(devices)) != len(devices):
        raise InputError("the same `device` is given twice")
    for uri in devices:
        parse_uri(uri)  # a malformed URI fails before any work starts
    steady = steadiness(passes, reference, drift, retries, selfcheck, interval, agree, band)
    if items is None:
        done = stored_archs(store, space, devices) if (archs or "").strip().startswith("suggest") else []
        items = plan(space, archs=archs, blocks=blocks, samples=samples, seed=seed, limit=limit, priors=priors,
                     measured=done)
    items = list(items)
    with Store(Path(store)) as st:
        if ray:
            from hwnas.profiler.farm import run_farm

            return run_farm(devices, st, items, address=ray, remeasure=remeasure, max_attempts=retries + 1,
                            on_progress=on_progress)
        return run_local(devices, st, items, remeasure=remeasure, max_attempts=retries + 1, guard=ThermalGuard(),
                         on_progress=on_progress, steadiness=steady)


def profile(space: str, device: str | Sequence[str], store: PathLike = "hwnas.db", **options: Any) -> Path:
    """Profile a space's blocks (and `archs` networks) on one or more devices; returns the store's path.

    Resumable: run it again and it measures only what the store lacks.
    Options are those of `profile_devices`.
    """
    from hwnas.devices.base import DeviceError

    summaries = profile_devices(space, device, store, **options)
    failed = [s for s in summaries if s.failed]
    if failed:
        raise DeviceError("; ".join(f"{s.device}: {s.failed}" for s in failed)
                          + f" — measured blocks are kept in {store}; run the same profile again to resume")
    return Path(store)


# --------------------------------------------------------------------------- latency models

# fit, fit_networks, fit_store_networks and parse_archs live in hwnas.fitting (imported above).


# --------------------------------------------------------------------------- search, train, export


def search_run(space: str, latency: "LatencyModel | PathLike", data: str = "digits", out: PathLike = "run", *,
               epochs: int = 10, target_ms: float | None = None, alpha: float = 0.2, beta: float = 0.6,
               weight_lr: float | None = None, arch_lr: float = 0.01, warmup_epochs: int = 2, seed: int = 0,
               batch_size: int = 32, micro_batch: int = 16, limit: int | None = None, candidates: int = 8,
               resume: bool = False, stop_after: int | None = None, paths: str | None = None, width_mult: float = 1.0,
               threads: int | None = None, finalists: int = 0, finalist_epochs: int = 2,
               on_progress: Callable[[dict[str, Any]], None] | None = None) -> tuple["Run", dict[str, Any]]:
    """Run (or resume) a search; returns its `Run` and the result (complete or stopped, on every process).

    `paths`: "sampled" runs one candidate per layer and step (single-path, GDAS-style
    straight-through θ gradient); "all" is FBNet's soft mixture of every candidate;
    None: the family's default (all: it trained better per CPU-second in the benchmark).
    `width_mult` < 1 searches a narrower copy of the space (a CPU-budget proxy) while
    the loss keeps the full-size networks' latency; the result is a full-size architecture.
    `threads`: torch's intra-op threads (None: this process's share of the cores the load
    average leaves free, or on `resume` the stopped run's count).
    `finalists` K > 0: the K best candidates (meeting the target) are trained from scratch
    for `finalist_epochs` on the search's own split and the best is shipped (FBNet's last
    step); a complete search can be resumed with a new K to re-rank it.
    """
    from hwnas.search.build import build_supernet, default_paths
    from hwnas.search.data import load_data
    from hwnas.search.distributed import set_threads, setup
    from hwnas.search.dnas import SearchConfig, run_search, seed_everything
    from hwnas.search.rundir import Run
    from hwnas.wiring import load_cost

    if limit is not None and limit < 1:
        raise InputError(f"`limit` must be positive, got {limit}")
    sp = get_space(space)
    paths = paths or default_paths(sp)
    cfg = SearchConfig(epochs=epochs, warmup_epochs=warmup_epochs, batch_size=batch_size, micro_batch=micro_batch,
                       alpha=alpha, beta=beta, target_ms=target_ms, seed=seed, candidates=candidates,
                       a_lr=arch_lr, w_lr=weight_lr, paths=paths, width_mult=width_mult, finalists=finalists,
                       finalist_epochs=finalist_epochs)
    cfg.check(1)
    proxy = sp.scaled(width_mult)  # checked before anything loads: no channels left is a user error
    cost = load_cost(latency, sp)  # the full-size space's latency, whatever width the search trains
    dataset = load_data(data, sp.input_resolution).limited(limit)
    options: dict[str, Any] = {}
    if dataset.num_classes != sp.num_classes:
        options["num_classes"] = dataset.num_classes
        proxy = proxy.with_options(num_classes=dataset.num_classes)
    dist = setup()
    cfg.check(dist.world)
    if resume and threads is None:  # the stopped run's thread count: resuming stays bit-for-bit under any load
        threads = Run(out).recorded("threads")
    used_threads = set_threads(threads, dist.world) if threads is not None or dist.world == 1 else None
    seed_everything(seed)
    net = build_supernet(proxy, cost, tau=cfg.tau0, paths=paths)
    source = str(latency) if isinstance(latency, (str, Path)) else f"{latency.device} (in memory)"
    meta = {"device": getattr(cost, "device", None), "latency_model": source, "data": data,
            "space_options": options, "processes": dist.world, "paths": paths, "width_mult": width_mult,
            "threads": used_threads}
    run = Run(out)
    result = run_search(net, dataset, cfg, run, dist=dist, resume=resume, stop_after=stop_after,
                        progress=on_progress, meta=meta)
    result["main_process"] = dist.main
    return run, result


def search(space: str, latency: "LatencyModel | PathLike", data: str = "digits", out: PathLike = "run",
           **options: Any) -> "Run":
    """Search an architecture with `latency`'s predicted latency in the loss; returns the run directory.

    Options are those of `search_run` (epochs, target_ms, alpha, beta, ...).
    """
    run, _ = search_run(space, latency, data, out, **options)
    return run


def train(run: "Run | PathLike", data: str = "digits", *, epochs: int = 30, batch_size: int = 64, lr: float = 0.05,
          seed: int = 0, limit: int | None = None, out: PathLike | None = None, width_mult: float = 1.0,
          threads: int | None = None,
          on_progress: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Train a searched architecture from scratch; writes model.pt and train.json through `Run`.

    `width_mult` trains the architecture with every width scaled (the search's CPU proxy);
    `threads` sets torch's intra-op threads (None: all cores this process may use).
    """
    from hwnas.search.data import load_data
    from hwnas.search.distributed import set_threads
    from hwnas.search.rundir import Run
    from hwnas.search.train import train_network

    source = Path(run.path if isinstance(run, Run) else run)
    space, arch = Run.load_architecture(source)
    if limit is not None and limit < 1:
        raise InputError(f"`limit` must be positive, got {limit}")
    proxy = space.scaled(width_mult)
    set_threads(threads)
    dataset = load_data(data, space.input_resolution).limited(limit)
    dest = Run(out if out is not None else (source if source.is_dir() else source.parent))
    net, result = train_network(proxy, arch, dataset, epochs=epochs, batch_size=batch_size, lr=lr, seed=seed,
                                progress=on_progress)
    dest.prepare()
    dest.save_weights(net.state_dict())
    result = {"space": space.name, "arch": space.to_json(arch), "data": data, "seed": seed,
              "width_mult": width_mult, "model": str(dest.weights_path), **result}
    dest.write_training(result)
    return result


def export(run: "Run | PathLike", fmt: str = "onnx", out: PathLike | None = None) -> dict[str, Any]:
    """Export a run's network (trained weights when present) to ONNX or TFLite."""
    from hwnas.output import default_mode
    from hwnas.search.export_model import export_run

    out = Path(out).expanduser() if out is not None else None
    if out is not None and not out.parent.is_dir():  # as every command: no directory is made for you
        raise InputError(f"output directory does not exist: {out.parent}")
    result = export_run(run, fmt, out)
    default_mode(result["path"])  # shareable like reports (the exporters write through temporary files)
    return result


# --------------------------------------------------------------------------- report


def report(store: PathLike, *, devices: Sequence[str] = (), models: Sequence["LatencyModel | PathLike"] = (),
           runs: Sequence["Run | PathLike"] = (), out: PathLike = "report.html", fmt: str | None = None,
           space: str | None = None) -> Path:
    """Write the device comparison report (HTML or Markdown); returns its path."""
    from hwnas.reporting import check_output, collect, write

    out = Path(out)
    fmt = check_output(out, fmt)
    run_paths = [Path(getattr(r, "path", r)) for r in runs]
    data, _warnings = collect(Path(store), list(devices), list(models), run_paths, space)
    return write(data, out, fmt)
