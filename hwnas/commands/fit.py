"""`hwnas fit | predict | evaluate`: latency models from the store (or network timings), used and checked.

The glue only: it reads the store with `hwnas.profiler.store.Store` (or a CSV of
network timings), hands plain DataFrames/arrays to `latency_models`, and
prints what comes back.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, List, Optional

import typer
from hwnas.output import safe as escape  # markup-escaped and control characters stripped
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from hwnas.output import console, print_json, table

if TYPE_CHECKING:
    import pandas as pd
from hwnas.search.space import BlockSpec, InputError, SearchSpace, get_space, resolve_arch

# --------------------------------------------------------------------------- helpers


def _progress() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=console, transient=True)


def _fmt_metrics(m: dict[str, Any]) -> str:
    rho = "n/a" if m.get("spearman") is None else f"{m['spearman']:.3f}"
    return (f"n={m['n']}  ±5%: {100 * m['acc5']:.1f}%  ±10%: {100 * m['acc10']:.1f}%  ±15%: {100 * m['acc15']:.1f}%  "
            f"RMSPE: {m['rmspe']:.2f}%  Spearman ρ: {rho}")




def _read_timings(path: Path) -> "pd.DataFrame":
    import numpy as np
    import pandas as pd

    if not path.is_file():
        raise InputError(f"network timings file not found: {path}")
    try:
        df = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read {path} as CSV: {exc}") from None
    missing = {"arch", "latency_ms"} - set(df.columns)
    if missing:
        raise InputError(f"{path} lacks column(s) {', '.join(sorted(missing))} (needs arch, latency_ms)")
    lat = pd.to_numeric(df["latency_ms"], errors="coerce")
    if lat.isna().any() or (lat <= 0).any():
        bad = int(np.flatnonzero(lat.isna() | (lat <= 0))[0]) + 2
        raise InputError(f"{path} line {bad}: latency_ms must be a positive number")
    return pd.DataFrame({"arch": df["arch"].astype(str), "latency_ms": lat.astype(float)})



# --------------------------------------------------------------------------- fit






def fit_cmd(
    out: Path = typer.Option(..., "--out", help="Model file to write (JSON), e.g. cpu.latency.json."),
    store: Optional[Path] = typer.Option(None, "--store", help="Measurement store to fit from (with --device)."),
    device: Optional[str] = typer.Option(None, "--device", help="Device URI or stored identity; with --networks, the name the new model carries."),
    space: Optional[str] = typer.Option(None, "--space", help="Search space (default: inferred from the store; required with --networks)."),
    networks: Optional[Path] = typer.Option(None, "--networks", help="CSV of whole-network timings (columns arch, latency_ms) to fit from alone."),
    prior: Optional[List[Path]] = typer.Option(None, "--prior", help="A model of another device to adapt (transfer) to the new one's network timings (--networks, or the store's for --device); repeat to combine several."),
    kind: str = typer.Option("et", "--kind", help="Block regressor: et (shared per-kernel costs + extra-trees, the default), or the earlier per-family cost model with gbm or rf trees."),
    folds: int = typer.Option(5, "--folds", help="Cross-validation folds for the accuracy printed."),
    as_json: bool = typer.Option(False, "--json", help="Print the model's metrics as JSON."),
) -> None:
    """Fit a latency model and print its cross-validated accuracy.

    From the store: an exact LUT of the device's blocks, per-family regressors for unmeasured blocks and
    a per-network overhead fitted on its measured networks
    (hwnas fit --store hwnas.db --device 'cpu:onnxruntime?threads=1' --out cpu.latency.json).

    From whole-network timings alone, optionally adapting a prior model of another device
    (hwnas fit --networks timings.csv --prior other.latency.json --space fbnet-cifar --out new.latency.json),
    or from the network timings a profile stored (hwnas fit --store hwnas.db --device adb://SERIAL --prior
    other.latency.json --out phone.latency.json).

    The network fit cross-validates a hierarchy (scaled prior; total MACs without the priors; + offset;
    + per-launch cost; + per-family corrections; + per-block corrections) and blends the regimes with the
    weights that minimise the blend's leave-one-out error (few timings lean on the scaled prior, many on
    per-block corrections); it prints the weights.
    """
    from hwnas import api
    from hwnas.latency_models.io import save_model

    if networks is not None:
        if store is not None:
            raise InputError("pass either --store or --networks, not both")
        model = api.fit_networks(_read_timings(networks), space, prior, device, name=f"networks:{networks.stem}")
    elif prior:
        if store is None:
            raise InputError("--prior needs the new device's network timings: --networks timings.csv, "
                             "or --store hwnas.db --device URI")
        model = api.fit_store_networks(store, device, space, prior)
    else:
        if store is None:
            raise InputError("pass --store hwnas.db --device URI, or --networks timings.csv")
        with _progress() as progress:
            task = progress.add_task("fitting", total=None)
            model = api.fit(store, device, space, kind=kind, folds=folds,
                            on_step=lambda what: progress.update(task, description=what))
    save_model(model, out)
    info = {"out": str(out), "space": model.space, "device": model.device, "kind": model.kind,
            "scale": model.scale, "overhead_ms": model.overhead_ms, "metrics": model.metrics}
    if as_json:
        print_json(info)
        return
    # A fit from network timings without a prior is stored as a transfer with none: say what it is.
    kind_label = model.metrics.get("networks_fit", {}).get("kind", model.kind)
    console.print(f"wrote {escape(str(out))}: {kind_label} model of {escape(model.device)} for space {model.space}",
                  highlight=False)
    for warning in model.metrics.get("warnings", []):  # loud: a model on few or flagged timings
        console.print(f"[bold yellow]WARNING:[/] {escape(warning)}", highlight=False)
    if model.metrics.get("note_blocks"):
        console.print(f"  note: {escape(model.metrics['note_blocks'])}", highlight=False)
    labels = {"blocks_cv": "blocks, held out (regressor)", "networks_cv": "networks, held out",
              "networks_fit": "networks (fit)"}
    for key, label in labels.items():
        m = model.metrics.get(key)
        if key == "networks_fit" and m:
            weights = m.get("weights") or ({m["regime"]: 1.0} if "regime" in m else {})
            regime = ("regime " + " + ".join(f"{w:.2f}·{r}" if len(weights) > 1 else r for r, w in weights.items())
                      + ", " if weights else "")
            console.print(f"  {label}: {regime}leave-one-out RMSPE {m['loo_rmspe']:.2f}% "
                          f"(ridge λ={m['lambda']:g}); train {_fmt_metrics(m['train'])}", highlight=False)
            if m.get("note"):
                console.print(f"  note: {m['note']}", highlight=False)
            if m.get("rounding_note"):
                console.print(f"  note: {m['rounding_note']}", highlight=False)
        elif m:
            console.print(f"  {label}: {_fmt_metrics(m)}", highlight=False)






# --------------------------------------------------------------------------- predict


def _resolve(space: SearchSpace, text: str) -> Any:
    return resolve_arch(text, space.name)[1]


def predict_cmd(
    arch: Optional[str] = typer.Argument(None, help="Preset (fbnet-b), 'k3_e1-skip-...', integers, FBNetV2 JSON, or an arch .json file."),
    model_path: Path = typer.Option(..., "--model", help="Latency model file (from hwnas fit)."),
    block: Optional[str] = typer.Option(None, "--block", help="A block spec as JSON instead of an architecture."),
    archs_file: Optional[Path] = typer.Option(None, "--archs", help="File of architectures: one per line, or a CSV with an 'arch' column; prints (or --out writes) a CSV of predictions."),
    out: Optional[Path] = typer.Option(None, "--out", help="With --archs: write the predictions CSV here instead of printing it."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """Predict the latency of an architecture (with a per-layer breakdown), of one block, or of a file of architectures."""
    from hwnas.latency_models.io import load_model

    if sum(x is not None for x in (arch, block, archs_file)) != 1:
        raise InputError("give an architecture, --block JSON or --archs FILE (one of them)")
    if out is not None and archs_file is None:
        raise InputError("--out needs --archs FILE")
    model = load_model(model_path)
    if archs_file is not None:
        _predict_file(model, archs_file, out, as_json)
        return
    if block is not None:
        spec = BlockSpec.from_json(block)
        ms = float(model.predict_blocks([spec])[0])
        if as_json:
            print_json({"device": model.device, "block": spec.to_dict(), "key": spec.key, "predicted_ms": ms})
        else:
            console.print(f"{escape(spec.key)}: [bold]{ms:.4f} ms[/] on {escape(model.device)}", highlight=False)
        return
    space = get_space(model.space)
    a = _resolve(space, arch)
    total, per = model.predict_network(space, a)
    specs = space.blocks(a)
    rows = [{"index": i, "block": s.label, "key": s.key, "input": list(s.input_shape[1:]), "predicted_ms": float(p)}
            for i, (s, p) in enumerate(zip(specs, per))]
    if as_json:
        print_json({"space": space.name, "device": model.device, "arch": space.to_json(a),
                    "predicted_ms": total, "overhead_ms": model.overhead_ms, "layers": rows})
        return
    console.print(table(f"{space.name} on {escape(model.device)}", ["#", "block", "input", "ms", "share"],
                        [(r["index"], escape(r["block"]), "x".join(map(str, r["input"])), f"{r['predicted_ms']:.4f}",
                          f"{100 * r['predicted_ms'] / total:.1f}%") for r in rows], right=("#", "ms", "share")))
    console.print(f"per-network overhead: {model.overhead_ms:.4f} ms", highlight=False)
    console.print(f"predicted latency: [bold]{total:.3f} ms[/]", highlight=False)


def _predict_file(model: Any, path: Path, out: Optional[Path], as_json: bool) -> None:
    from hwnas.networks_io import predict_archs, read_archs

    frame = predict_archs(model, read_archs(path), str(path))
    if as_json:
        print_json({"space": model.space, "device": model.device, "predictions": frame.to_dict(orient="records")})
    if out is not None:
        frame.to_csv(out, index=False, float_format="%.6g")
        if not as_json:
            console.print(f"wrote {len(frame)} predictions to {escape(str(out))}", highlight=False)
    elif not as_json:
        print(frame.to_csv(index=False, float_format="%.6g"), end="")


# --------------------------------------------------------------------------- evaluate


def evaluate_cmd(
    model_path: Path = typer.Option(..., "--model", help="Latency model file (from hwnas fit)."),
    store: Path = typer.Option(Path("hwnas.db"), "--store", help="Measurement store holding measured networks."),
    device: Optional[str] = typer.Option(None, "--device", help="Device whose networks to compare with (default: the model's)."),
    networks: Optional[Path] = typer.Option(None, "--networks", help="Compare with timings taken elsewhere: a CSV with columns arch, latency_ms (instead of the store)."),
    worst: int = typer.Option(5, "--worst", help="How many worst predictions to list."),
    include_flagged: bool = typer.Option(False, "--include-flagged", help="Also compare with unreliable timings: flagged by the profiler (never settled) or with a median >1.5x their own minimum (foreign load)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Compare a model's predictions with the whole networks measured on the device.

    Prints ±5/±10/±15% accuracy (nn-Meter), RMSE, RMSPE, Spearman ρ, Kendall τ and the worst cases.
    """
    from hwnas import api
    from hwnas.fitting import in_fit
    from hwnas.latency_models.io import load_model
    from hwnas.latency_models.metrics import evaluate, worst_cases
    from hwnas.latency_models.network import unreliable_mask
    from hwnas.profiler.store import Store

    model = load_model(model_path)
    if networks is not None:
        from hwnas.networks_io import evaluate_timings

        result = {"model": str(model_path), **evaluate_timings(model, networks, worst)}
        if as_json:
            print_json(result)
        else:
            _print_evaluation(result, f"{escape(str(model_path))} vs {result['n']} networks in {escape(str(networks))}:")
        return
    if not store.is_file():
        raise InputError(f"store not found: {store}")
    with Store(store, create=False, readonly=True) as st:
        identity = st.resolve_device(device or model.device)
        nets = st.networks(identity)
    nets = nets[nets["space"] == model.space]
    flagged = unreliable_mask(nets)
    n_flagged = int(flagged.sum())
    if not include_flagged:
        nets = nets[~flagged]
    if nets.empty:
        raise InputError(f"no whole networks of space {model.space} measured on {identity} in {store}"
                         + (f" ({n_flagged} flagged left out; --include-flagged uses them)" if n_flagged else "")
                         + "; profile some with hwnas profile --archs random:100")
    space = get_space(model.space)
    archs = list(nets["arch"])
    parsed = api.parse_archs(space, archs)
    with _progress() as progress:
        progress.add_task(f"predicting {len(archs)} networks", total=None)
        pred = model.predict_networks(space, parsed)
    y = nets["median_ms"].to_numpy(dtype=float)
    result = {"model": str(model_path), "device": identity, "model_device": model.device, "space": model.space,
              "flagged_left_out": 0 if include_flagged else n_flagged, "in_fit": in_fit(model, space, parsed),
              **evaluate(pred, y), "worst": worst_cases(pred, y, archs, max(0, worst))}
    if as_json:
        print_json(result)
        return
    _print_evaluation(result, f"{escape(str(model_path))} vs {len(y)} networks measured on {escape(identity)}"
                      + (f" ({n_flagged} unreliable timings left out; --include-flagged uses them)"
                         if n_flagged and not include_flagged else "") + ":")


def _print_evaluation(result: dict[str, Any], header: str) -> None:
    console.print(header, highlight=False)
    console.print(f"  {_fmt_metrics(result)}  RMSE: {result['rmse_ms']:.4f} ms  "
                  f"Kendall τ: {result['kendall'] if result['kendall'] is None else round(result['kendall'], 3)}",
                  highlight=False)
    if result.get("in_fit"):
        console.print(f"  note: {result['in_fit']} of these {result['n']} networks are timings the model was "
                      f"fitted on, so their error is in-sample; `hwnas fit` printed the leave-one-out "
                      f"figures for held-out ones", highlight=False)
    if result["worst"]:
        console.print(table("worst cases", ["arch", "measured ms", "predicted ms", "error"],
                            [(escape(w["name"]), f"{w['measured_ms']:.4f}", f"{w['predicted_ms']:.4f}",
                              f"{w['error_pct']:+.1f}%") for w in result["worst"]],
                            right=("measured ms", "predicted ms", "error")))


def register(app: typer.Typer) -> None:
    app.command("fit")(fit_cmd)
    app.command("predict")(predict_cmd)
    app.command("evaluate")(evaluate_cmd)
