"""`hwnas report`: compare devices in one self-contained HTML (or Markdown) page.

The glue between the parts: it reads the store (profiler), the latency-model
files (latency_models) and the search run directories, turns them into plain
DataFrames and `RunSummary` records, and hands them to `hwnas.report.render`,
which draws and renders.  The page is written atomically: a failure leaves
no half-written file.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

import pandas as pd
import typer

from hwnas.output import console, print_json
from hwnas.search.space import InputError, SearchSpace, get_space, list_spaces, parse_arch

if TYPE_CHECKING:  # imported lazily at run time: matplotlib is slow to load
    from hwnas.report.data import ReportData, RunSummary


def _read_json(path: Path) -> Any:
    """A run file as JSON; a broken one is the user's to fix, so it is an InputError."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"cannot read {path}: {exc}") from None


def _entries(data: Any, *keys: str) -> list:
    """A list stored either bare or under one of `keys` of an object."""
    if isinstance(data, list):
        return data
    if isinstance(data, dict):
        for k in keys:
            if isinstance(data.get(k), list):
                return data[k]
    return []


def arch_ops(arch: Any) -> list[str]:
    """The per-layer op names of an architecture as run files store it (text, list, or JSON object)."""
    if isinstance(arch, str):
        return [t for t in arch.replace(",", "-").split("-") if t]
    if isinstance(arch, (list, tuple)):
        return [str(a if not isinstance(a, dict) else a.get("op", a.get("block", "?"))) for a in arch]
    if isinstance(arch, dict):
        for key in ("ops", "blocks", "layers"):
            if isinstance(arch.get(key), list):
                return arch_ops(arch[key])
    return []


def _train_accuracy(run_dir: Path) -> float | None:
    """The accuracy `hwnas train` recorded for a run, if it was trained."""
    from hwnas.report.render import ACC_KEYS, first_number

    for name in ("train.json", "trained.json", "train_result.json", "result.json", "metrics.json"):
        path = run_dir / name
        if path.is_file():
            data = _read_json(path)
            if isinstance(data, dict):
                acc = first_number(data, ACC_KEYS)  # the final test accuracy `hwnas train` writes
                if acc is not None:
                    return acc
                hist = _entries(data, "history", "epochs")
                if hist and isinstance(hist[-1], dict):
                    acc = first_number(hist[-1], ACC_KEYS)
                    if acc is not None:
                        return acc
    return None


def read_run(run_dir: Path) -> "RunSummary":
    """One run directory (`hwnas search --out`) as a report's RunSummary."""
    from hwnas.report.render import ACC_KEYS, RunSummary, first_number, history_curves

    arch_file = run_dir / "arch.json"
    data = _read_json(arch_file)
    if not isinstance(data, dict) or "arch" not in data:
        raise InputError(f"{arch_file} has no 'arch' field; is {run_dir} a search run directory?")
    history = _entries(_read_json(run_dir / "history.json"), "epochs", "history") if (run_dir / "history.json").is_file() else []
    candidates = (_entries(_read_json(run_dir / "candidates.json"), "candidates")
                  if (run_dir / "candidates.json").is_file() else [])
    acc, source = _train_accuracy(run_dir), "train"
    if acc is None:
        curve = history_curves(history)["accuracy"]
        acc, source = (curve[-1], "search") if curve else (first_number(data, ACC_KEYS), "search")
    num = lambda k: float(data[k]) if isinstance(data.get(k), (int, float)) and math.isfinite(data[k]) else None  # noqa: E731
    return RunSummary(name=run_dir.name, space=str(data.get("space", "")), device=str(data.get("device", "")),
                      arch=data["arch"], predicted_ms=num("predicted_ms"), target_ms=num("target_ms"),
                      accuracy=acc, accuracy_source=source if acc is not None else "",
                      ops=arch_ops(data["arch"]), history=[h for h in history if isinstance(h, dict)],
                      candidates=[c for c in candidates if isinstance(c, dict)])


def find_runs(paths: list[Path]) -> list[Path]:
    """Run directories: each path is one (holds arch.json) or a folder of them."""
    found: list[Path] = []
    for p in paths:
        if not p.is_dir():
            raise InputError(f"runs path not found or not a directory: {p}")
        if (p / "arch.json").is_file():
            found.append(p)
            continue
        subs = sorted(d for d in p.iterdir() if (d / "arch.json").is_file())
        if not subs:
            raise InputError(f"no search runs in {p} (a run directory holds arch.json)")
        found.extend(subs)
    return list(dict.fromkeys(found))


def _arch_for(space: SearchSpace, text: str) -> Any:
    """A stored arch text as the model takes it: op tuple for FBNet spaces, JSON object otherwise."""
    text = str(text)
    if text.lstrip().startswith(("{", "[")):
        return json.loads(text)
    return parse_arch(text, space)


def model_predictions(model: Any, name: str, networks: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """Predicted beside measured for every stored network of the model's device and space."""
    nets = networks[(networks["device"] == model.device) & (networks["space"] == model.space)]
    rows, skipped = [], 0
    space_cache: dict[str, SearchSpace] = {}
    for _, r in nets.iterrows():
        try:
            space = space_cache.setdefault(r["space"], get_space(r["space"]))
            total, _ = model.predict_network(space, _arch_for(space, r["arch"]))
        except (InputError, ValueError, KeyError):
            skipped += 1
            continue
        rows.append({"model": name, "device": model.device, "level": "network", "key": r["arch"],
                     "measured_ms": float(r["median_ms"]), "predicted_ms": float(total)})
    return pd.DataFrame(rows), skipped


def _pick_space(name: Optional[str], blocks: pd.DataFrame) -> SearchSpace | None:
    from hwnas.report.data import infer_space

    if name:
        return get_space(name)
    spaces = []
    for n in list_spaces():
        try:
            spaces.append(get_space(n))
        except InputError:
            continue
    return infer_space(set(blocks["block_key"]), [s for s in spaces if not s.channel_options])


def collect(store_path: Path, devices: list[str], models: list[Path], runs: list[Path],
            space: Optional[str]) -> tuple["ReportData", list[str]]:
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
        empty = [f"{r.device_uri} ({r.device})" for r in chosen.itertuples() if int(r.n_blocks) == 0]
        if empty:
            raise InputError(f"no block measurements for device(s) {', '.join(empty)} in {store_path}; "
                             f"profile them with `hwnas profile --device URI`")
        blocks = pd.concat([store.blocks(i) for i in ids], ignore_index=True)
        networks = store.networks()
        summaries = [read_run(p) for p in find_runs(runs)]
        for s in summaries:  # run files may name the device by URI; the store knows its identity
            try:
                s.device = store.resolve_device(s.device) if s.device else s.device
            except InputError:
                warnings.append(f"run {s.name}: device {s.device!r} is not in the store")
    preds = []
    for path in models:
        from hwnas.latency_models.io import load_model

        if not path.is_file():
            raise InputError(f"model file not found: {path}")
        model = load_model(path)
        frame, skipped = model_predictions(model, path.name, networks)
        if skipped:
            warnings.append(f"{path.name}: {skipped} stored network(s) could not be predicted and were left out")
        if frame.empty:
            warnings.append(f"{path.name}: no whole networks of space {model.space} measured on its device "
                            f"{model.device}; profile some with `hwnas profile --archs random:20`")
        preds.append(frame)
    for s in summaries:  # a run's measured latency, where its architecture was profiled on its device
        hit = networks[(networks["device"] == s.device) & (networks["arch"] == _arch_text(s.arch))]
        if not hit.empty:
            s.measured_ms = float(hit["median_ms"].iloc[0])
    data = ReportData(
        devices=chosen, blocks=blocks, networks=networks[networks["device"].isin(ids)],
        predictions=pd.concat(preds, ignore_index=True) if preds else pd.DataFrame(),
        runs=summaries, space=_pick_space(space, blocks), tool_version=tool_version(),
        sources={"store": str(store_path), **{f"model {i + 1}": str(m) for i, m in enumerate(models)},
                 **({"runs": ", ".join(str(r) for r in runs)} if runs else {})})
    return data, warnings


def _arch_text(arch: Any) -> str:
    if isinstance(arch, str):
        return arch
    if isinstance(arch, (list, tuple)):
        return "-".join(str(a) for a in arch)
    return json.dumps(arch, sort_keys=True, separators=(",", ":"))


def report(
    store: Path = typer.Option(Path("hwnas.db"), "--store", help="Measurement store written by `hwnas profile`."),
    device: list[str] = typer.Option([], "--device", "-d",
                                     help="Device URI or stored identity; repeat to compare. Default: every device in the store. The first is the reference for ratios."),
    model: list[Path] = typer.Option([], "--model", "-m", help="Latency model file (`hwnas fit`); repeat. Adds predictor accuracy."),
    runs: list[Path] = typer.Option([], "--runs", help="A search run directory or a folder of them; repeat. Adds search results."),
    out: Path = typer.Option(Path("report.html"), "--out", "-o", help="Where to write the report."),
    fmt: Optional[str] = typer.Option(None, "--format", "-f", help="html or md (default: from --out's suffix, else html)."),
    space: Optional[str] = typer.Option(None, "--space", help="Space whose layers the heatmaps follow (default: the one the store covers)."),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON summary of what was written."),
) -> None:
    """Write a self-contained report comparing devices: block latency per layer (heatmaps), which blocks
    are relatively cheap where, measurement noise, predictor accuracy and search results."""
    from hwnas.report.render import FORMATS, render_report, write_atomic

    fmt = (fmt or ("md" if out.suffix.lower() in (".md", ".markdown") else "html")).lower()
    if fmt not in FORMATS:
        raise InputError(f"unknown --format {fmt!r}; expected one of {', '.join(FORMATS)}")
    if out.is_dir():
        raise InputError(f"--out {out} is a directory; give a file name such as {out / ('report.' + fmt)}")
    if not out.parent.is_dir():
        raise InputError(f"--out directory {out.parent} does not exist")
    with console.status("reading store, models and runs…", spinner="dots"):
        data, warnings = collect(store, device, model, runs, space)
    for w in warnings:
        console.print(f"[yellow]warning:[/] {w}", highlight=False)
    with console.status(f"drawing figures and rendering {fmt}…", spinner="dots"):
        text = render_report(data, fmt)
        path = write_atomic(text, out)
    summary = {"out": str(path), "format": fmt, "devices": data.device_order(),
               "space": data.space.name if data.space else None, "models": [str(m) for m in model],
               "runs": [r.name for r in data.runs], "bytes": path.stat().st_size, "warnings": warnings}
    if as_json:
        print_json(summary)
    else:
        console.print(f"report written: [bold]{path}[/]", highlight=False)


def register(app: typer.Typer) -> None:
    app.command("report")(report)
