"""Reading a report's inputs: the store, latency models and search runs, as a `ReportData`.

The glue between the parts (composition root): the store (profiler), model
files or fitted models (latency_models) and run directories (`search.rundir.Run`)
become plain DataFrames and `RunSummary` records for `hwnas.report`.
`hwnas.report(...)` and `hwnas report` both call `collect`.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional, Sequence, Union

import pandas as pd

from hwnas.search.space import InputError, SearchSpace, get_space, infer_space

if TYPE_CHECKING:  # imported lazily at run time: matplotlib is slow to load
    from hwnas.latency_models.network import LatencyModel
    from hwnas.report.data import ReportData, RunSummary

__all__ = ["collect", "read_run", "find_runs", "model_predictions", "check_output", "write"]


def read_run(run_dir: Path) -> "RunSummary":
    """One run directory (`hwnas search --out`) as a report's RunSummary, read through `Run`."""
    from hwnas.report.render import RunSummary
    from hwnas.search.rundir import Run

    run = Run(run_dir)
    data = run.result()
    try:
        space, arch = run.architecture()
        ops, arch_json, text = space.layer_labels(arch), space.to_json(arch), space.format(arch)
    except InputError:  # a run of a space this version no longer knows: show what the file says
        ops, arch_json, text = [], data["arch"], str(data["arch"])
    acc, source = run.accuracy()
    num = lambda k: float(data[k]) if isinstance(data.get(k), (int, float)) and math.isfinite(data[k]) else None  # noqa: E731
    return RunSummary(name=run.name, space=str(data.get("space", "")), device=str(data.get("device", "")),
                      arch=arch_json, predicted_ms=num("predicted_ms"), target_ms=num("target_ms"),
                      accuracy=acc, accuracy_source=source, ops=ops, history=run.history(),
                      candidates=run.candidates(), arch_text=text)


def find_runs(paths: list[Path]) -> list[Path]:
    """Run directories: each path is one (holds arch.json) or a folder of them."""
    from hwnas.search.rundir import Run

    found: list[Path] = []
    for p in paths:
        if not p.is_dir():
            raise InputError(f"runs path not found or not a directory: {p}")
        if Run(p).is_search:
            found.append(p)
            continue
        subs = sorted(d for d in p.iterdir() if Run(d).is_search)
        if not subs:
            raise InputError(f"no search runs in {p} (a run directory holds arch.json)")
        found.extend(subs)
    return list(dict.fromkeys(found))


def model_predictions(model: Any, name: str, networks: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """Predicted beside measured for every stored network of the model's device and space."""
    nets = networks[(networks["device"] == model.device) & (networks["space"] == model.space)]
    rows, skipped = [], 0
    space_cache: dict[str, SearchSpace] = {}
    for _, r in nets.iterrows():
        try:
            space = space_cache.setdefault(r["space"], get_space(r["space"]))
            total, _ = model.predict_network(space, space.parse(r["arch"]))
        except (InputError, ValueError, KeyError):
            skipped += 1
            continue
        rows.append({"model": name, "device": model.device, "level": "network", "key": r["arch"],
                     "measured_ms": float(r["median_ms"]), "predicted_ms": float(total)})
    return pd.DataFrame(rows), skipped


def _pick_space(name: Optional[str], blocks: pd.DataFrame, networks: pd.DataFrame) -> SearchSpace | None:
    if name:
        return get_space(name)
    if blocks.empty:  # devices profiled by whole networks only: their networks' space, when they share one
        spaces = set(networks["space"])
        return get_space(spaces.pop()) if len(spaces) == 1 else None
    return infer_space(set(blocks["block_key"]))


def collect(store_path: Path, devices: Sequence[str], models: Sequence[Union[Path, "LatencyModel"]],
            runs: Sequence[Path], space: Optional[str]) -> tuple["ReportData", list[str]]:
    """Read every input and return the report's data plus warnings for the user."""
    from hwnas.report.render import ReportData
    from hwnas.profiler.store import Store, tool_version

    warnings: list[str] = []
    if not store_path.is_file():
        raise InputError(f"store not found: {store_path} (run `hwnas profile` first)")
    with Store(store_path, create=False, readonly=True) as store:
        all_devices = store.devices()
        if all_devices.empty:
            raise InputError(f"store {store_path} holds no measurements yet (run `hwnas profile` first)")
        ids = list(dict.fromkeys(store.resolve_device(d) for d in devices)) if devices else list(all_devices["device"])
        chosen = all_devices.set_index("device").loc[ids].reset_index()
        # A device profiled by whole networks only (`profile --no-blocks --archs suggest:N`) still has
        # its networks, drift and predictor accuracy to show; the block sections leave it out.
        empty = [f"{r.device_uri} ({r.device})" for r in chosen.itertuples()
                 if int(r.n_blocks) == 0 and int(r.n_networks) == 0]
        if empty:
            raise InputError(f"no measurements for device(s) {', '.join(empty)} in {store_path}; "
                             f"profile them with `hwnas profile --device URI`")
        warnings.extend(f"{r.device_uri}: whole networks only, so it is left out of the block sections"
                        for r in chosen.itertuples() if int(r.n_blocks) == 0)
        blocks = pd.concat([store.blocks(i) for i in ids], ignore_index=True)
        networks = store.networks()
        from hwnas.profiler import history  # the drift section: speed curves and repeated passes

        references, passes = history.references(store), history.passes(store)
        summaries = [read_run(p) for p in find_runs(runs)]
        for s in summaries:  # run files may name the device by URI; the store knows its identity
            try:
                s.device = store.resolve_device(s.device) if s.device else s.device
            except InputError:
                warnings.append(f"run {s.name}: device {s.device!r} is not in the store")
    preds = []
    for item in models:
        from hwnas.latency_models.io import load_model

        if isinstance(item, (str, Path)):
            path = Path(item)
            if not path.is_file():
                raise InputError(f"model file not found: {path}")
            model, name = load_model(path), path.name
        else:
            model, name = item, f"{item.device} model"
        frame, skipped = model_predictions(model, name, networks)
        if skipped:
            warnings.append(f"{name}: {skipped} stored network(s) could not be predicted and were left out")
        if frame.empty:
            warnings.append(f"{name}: no whole networks of space {model.space} measured on its device "
                            f"{model.device}; profile some with `hwnas profile --archs random:20`")
        preds.append(frame)
    for s in summaries:  # a run's measured latency, where its architecture was profiled on its device
        hit = networks[(networks["device"] == s.device) & (networks["arch"] == s.arch_text)]
        if not hit.empty:
            s.measured_ms = float(hit["median_ms"].iloc[0])
    data = ReportData(
        devices=chosen, blocks=blocks, networks=networks[networks["device"].isin(ids)],
        predictions=pd.concat(preds, ignore_index=True) if preds else pd.DataFrame(),
        runs=summaries, space=_pick_space(space, blocks, networks[networks["device"].isin(ids)]),
        tool_version=tool_version(),
        references=references, passes=passes,
        sources={"store": str(store_path), **{f"model {i + 1}": str(m) if isinstance(m, (str, Path)) else f"{m.device} (in memory)"
                    for i, m in enumerate(models)},
                 **({"runs": ", ".join(str(r) for r in runs)} if runs else {})})
    return data, warnings


def check_output(out: Path, fmt: Optional[str] = None) -> str:
    """The report format (`html` or `md`, default from `out`'s suffix), checked before any work."""
    from hwnas.report.render import FORMATS

    out = Path(out)
    fmt = (fmt or ("md" if out.suffix.lower() in (".md", ".markdown") else "html")).lower()
    if fmt not in FORMATS:
        raise InputError(f"unknown `fmt` {fmt!r}; expected one of {', '.join(FORMATS)}")
    if out.is_dir():
        raise InputError(f"`out` {out} is a directory; give a file name such as {out / ('report.' + fmt)}")
    if not out.parent.is_dir():
        raise InputError(f"`out` directory {out.parent} does not exist")
    return fmt


def write(data: "ReportData", out: Path, fmt: str) -> Path:
    """Render and write the report atomically; returns its path."""
    from hwnas.report.render import render_report, write_atomic

    return write_atomic(render_report(data, fmt), Path(out))
