"""Device-comparison reports: plain data in, one self-contained HTML (or Markdown) page out.

`hwnas report` reads the store, the model files and the run directories and
hands a `ReportData` here; this module computes what to show
(`hwnas.report.data`), draws it (`hwnas.report.figures`) and renders
it through a Jinja2 template with autoescaping on, so a device name or block
key can never inject markup.  `write_atomic` writes through a temporary file
and a rename, so a failed report never leaves a half-written file behind.
"""

from __future__ import annotations

import html
import json
import math
import os
import re
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from hwnas.report import figures as figs
from hwnas.report.drift import drift_section
from hwnas.report.data import (
    ReportData, RunSummary, device_labels, device_rows, latency_grid, noise_table, prediction_metrics,
    relative_ratio,
)
from hwnas.search.space import InputError

__all__ = ["ReportData", "RunSummary", "build_context", "render_report", "write_atomic", "FORMATS",
           "history_curves", "first_number", "as_fraction", "ACC_KEYS"]

FORMATS = ("html", "md")

ACC_KEYS = ("test_acc", "test_accuracy", "val_accuracy", "val_acc", "short_eval_acc", "accuracy", "acc", "top1")
_LAT_KEYS = ("expected_latency_ms", "expected_ms", "latency_ms", "expected_latency", "lat_ms")


def first_number(d: Mapping[str, Any], keys: Iterable[str]) -> float | None:
    """The first finite number among `keys`: run files from different versions name fields differently."""
    for k in keys:
        v = d.get(k)
        if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
            return float(v)
    return None


def as_fraction(acc: float | None) -> float | None:
    """Accuracy as a fraction: histories write 0..1 or percent; both are accepted."""
    if acc is None:
        return None
    return acc / 100.0 if acc > 1.0 else acc


def history_curves(history: Sequence[Mapping[str, Any]]) -> dict[str, list[float]]:
    """Per-epoch accuracy (fraction) and expected latency (ms) from a run's history entries."""
    acc, lat = [], []
    for entry in history:
        if not isinstance(entry, Mapping):
            continue
        a = as_fraction(first_number(entry, ACC_KEYS))
        if a is not None:
            acc.append(a)
        t = first_number(entry, _LAT_KEYS)
        if t is not None:
            lat.append(t)
    return {"accuracy": acc, "latency": lat}


def _fmt(value: Any, spec: str = ".3g") -> str:
    if value is None:
        return "–"
    if isinstance(value, (float, np.floating)):
        return "–" if not math.isfinite(float(value)) else format(float(value), spec)
    return str(value)


def _palette(ops: Iterable[str]) -> dict[str, str]:
    """A pastel background per distinct op, so the chosen-blocks table reads at a glance."""
    distinct = sorted(set(ops))
    return {op: f"hsl({int(360 * i / max(1, len(distinct)))}, 65%, 85%)" for i, op in enumerate(distinct)}


def _ratio_extremes(rel: pd.DataFrame, n: int = 5) -> tuple[list[tuple[str, str, str]], list[tuple[str, str, str]]]:
    stacked = rel.stack().dropna().sort_values()
    fmt = [(str(layer).strip(), str(op), f"{v:.2f}") for (layer, op), v in stacked.items()]
    return fmt[:n], fmt[::-1][:n]


def _block_section(data: ReportData, order: list[str], labels: dict[str, str]) -> dict[str, Any]:
    grids = {dev: latency_grid(data.blocks, dev, data.space) for dev in order}
    grids = {d: g for d, g in grids.items() if g.notna().to_numpy().any()}  # a device with no blocks: no panel
    out: dict[str, Any] = {"heatmap": None, "ratios": [], "grid_kind": "layer" if data.space else "shape"}
    if not grids:
        return out
    out["heatmap"] = figs.latency_heatmaps(grids, labels)
    ref = order[0]
    if ref in grids:
        for dev in order[1:]:
            if dev not in grids:
                continue
            rel, geo = relative_ratio(grids[dev], grids[ref])
            if not math.isfinite(geo):
                continue
            cheap, dear = _ratio_extremes(rel)
            out["ratios"].append({"device": labels[dev], "reference": labels[ref], "typical": f"{geo:.3g}",
                                  "figure": figs.ratio_heatmap(rel, geo, labels[dev], labels[ref]),
                                  "cheap": cheap, "dear": dear})
    return out


def _network_rows(data: ReportData, order: list[str], labels: dict[str, str]) -> list[list[str]]:
    nets = data.networks
    if nets is None or nets.empty:
        return []
    rows = []
    for dev in order:
        d = nets[nets["device"] == dev]
        if d.empty:
            continue
        ms = d["median_ms"].astype(float)
        rows.append([labels[dev], str(len(d)), _fmt(ms.min()), _fmt(ms.median()), _fmt(ms.max())])
    return rows


def _noise_section(data: ReportData, order: list[str], labels: dict[str, str]) -> dict[str, Any]:
    table = noise_table(data.blocks, order)
    rel_ci = {}
    for dev in order:
        d = data.blocks[data.blocks["device"] == dev]
        med = d["median_ms"].astype(float).where(lambda s: s > 0)
        vals = (d["ci_halfwidth_ms"].astype(float) / med).dropna().to_numpy()
        if vals.size:
            rel_ci[dev] = vals
    rows = [[labels[r["device"]], str(r["blocks"]), _fmt(r["median_rel_ci_pct"], ".2f"), _fmt(r["p90_rel_ci_pct"], ".2f"),
             _fmt(r["median_rel_spread_pct"], ".1f"), _fmt(r["median_runs"], ".0f"), _fmt(r["settled_pct"], ".0f"),
             str(r["flagged"]), str(r["throttled"])] for r in table.to_dict("records")]
    return {"rows": rows, "figure": figs.noise_figure(rel_ci, labels) if rel_ci else None}


def _prediction_section(data: ReportData, labels: dict[str, str]) -> dict[str, Any]:
    pred = data.predictions
    if pred is None or pred.empty:
        return {"rows": [], "figures": []}
    metrics = prediction_metrics(pred)
    rows = [[str(r["model"]), labels.get(r["device"], r["device"]), str(r["level"]), str(r["n"]),
             _fmt(r["within5_pct"], ".1f"), _fmt(r["within10_pct"], ".1f"), _fmt(r["mape_pct"], ".2f"),
             _fmt(r["rmspe_pct"], ".2f"), _fmt(r["spearman"], ".3f")] for r in metrics.to_dict("records")]
    figures = []
    for (model, device, level), g in pred.groupby(["model", "device", "level"], sort=False):
        title = f"{model} ({level}s) on {labels.get(device, device)}"
        figures.append({"title": title, "figure": figs.prediction_scatter(g, title)})
    return {"rows": rows, "figures": figures}


def _run_points(runs: Sequence[RunSummary]) -> list[dict[str, Any]]:
    points = []
    for run in runs:
        lat = run.measured_ms if run.measured_ms is not None else run.predicted_ms
        acc = as_fraction(run.accuracy)
        if lat is not None and acc is not None:
            points.append({"kind": "run", "device": run.device, "name": run.name, "latency_ms": lat, "accuracy": acc})
        for cand in run.candidates:
            if not isinstance(cand, Mapping):
                continue
            c_lat = first_number(cand, ("measured_ms", "predicted_ms", "latency_ms"))
            c_acc = as_fraction(first_number(cand, ACC_KEYS))
            if c_lat is not None and c_acc is not None:
                points.append({"kind": "candidate", "device": run.device, "name": run.name,
                               "latency_ms": c_lat, "accuracy": c_acc})
    return points


def _search_section(data: ReportData, labels: dict[str, str]) -> dict[str, Any]:
    runs = data.runs
    if not runs:
        return {"rows": [], "figure": None, "curves": None, "choices": None}
    rows = [[r.name, labels.get(r.device, r.device), r.space, _fmt(r.target_ms), _fmt(r.predicted_ms),
             _fmt(r.measured_ms), _fmt(None if r.accuracy is None else 100 * as_fraction(r.accuracy), ".1f")
             + (f" ({r.accuracy_source})" if r.accuracy is not None and r.accuracy_source else "")]
            for r in runs]
    points = _run_points(runs)
    curves = {r.name: history_curves(r.history) for r in runs}
    curves = {k: v for k, v in curves.items() if v["accuracy"] or v["latency"]}
    with_ops = [r for r in runs if r.ops]
    choices = None
    if with_ops:
        depth = max(len(r.ops) for r in with_ops)
        palette = _palette(op for r in with_ops for op in r.ops)
        layer_names = ([f"{layer.index + 1}: {layer.cin}→{layer.cout} s{layer.stride}" for layer in data.space.layers]
                       if data.space is not None and data.space.num_layers == depth else [str(i + 1) for i in range(depth)])
        grid = []
        for i in range(depth):
            cells = []
            for r in with_ops:
                op = str(r.ops[i]) if i < len(r.ops) else ""
                cells.append({"op": op, "style": f"background: {palette[op]}" if op in palette else ""})
            grid.append({"layer": layer_names[i], "cells": cells})
        choices = {"runs": [f"{r.name} ({labels.get(r.device, r.device)})" for r in with_ops], "grid": grid}
    return {"rows": rows, "figure": figs.accuracy_latency(points, labels) if points else None,
            "curves": figs.training_curves(curves) if curves else None, "choices": choices}


def build_context(data: ReportData) -> dict[str, Any]:
    """Everything the templates show, as plain strings, lists and figure data URIs."""
    if data.devices is None or data.devices.empty:
        raise InputError("nothing to report: no devices given")
    order = data.device_order()
    measured = set(data.blocks["device"]) if not data.blocks.empty else set()
    if data.networks is not None and not data.networks.empty:
        measured |= set(data.networks["device"])  # a device timed by whole networks only is reported too
    missing = [d for d in order if d not in measured]
    if missing:
        raise InputError(f"device(s) with no measurements: {', '.join(missing)}")
    labels = device_labels(data.devices)
    return {
        "title": data.title,
        "generated": data.generated or datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "tool_version": data.tool_version,
        "sources": list(data.sources.items()),
        "space": data.space.name if data.space is not None else None,
        "devices": device_rows(data.devices),
        "labels": labels,
        "reference": labels[order[0]],
        "blocks": _block_section(data, order, labels),
        "networks": _network_rows(data, order, labels),
        "noise": _noise_section(data, order, labels),
        "drift": drift_section(data.references, data.passes, order, labels),
        "predictions": _prediction_section(data, labels),
        "search": _search_section(data, labels),
    }


_MD_SPECIAL = re.compile(r"([\\`*_\[\]|~])")


def md_escape(value: Any) -> str:
    """Text safe in a Markdown table cell: HTML-escaped, Markdown punctuation backslashed, one line."""
    text = html.escape(str(value), quote=True)
    text = _MD_SPECIAL.sub(r"\\\1", text)
    return " ".join(text.split())


def _environment(fmt: str) -> Environment:
    env = Environment(loader=PackageLoader("hwnas.report", "templates"),
                      autoescape=select_autoescape(enabled_extensions=("html", "html.j2"), default=False),
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    env.filters["md"] = md_escape
    env.filters["tojson_text"] = lambda v: json.dumps(v, default=str)
    return env


def render_report(data: ReportData, fmt: str = "html") -> str:
    """The whole report as text in `fmt` (html or md)."""
    if fmt not in FORMATS:
        raise InputError(f"unknown report format {fmt!r}; expected one of {', '.join(FORMATS)}")
    context = build_context(data)
    template = _environment(fmt).get_template("report.html.j2" if fmt == "html" else "report.md.j2")
    return template.render(**context)


def _umask() -> int:
    """The process's umask (os.umask can only be read by setting it)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_atomic(text: str, path: str | os.PathLike) -> Path:
    """Write `text` to `path` via a temporary file in the same directory and an atomic rename."""
    target = Path(path)
    if target.is_dir():
        raise InputError(f"output path {target} is a directory")
    parent = target.parent if str(target.parent) else Path(".")
    if not parent.is_dir():
        raise InputError(f"output directory {parent} does not exist")
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        # mkstemp creates 0600; a report is meant to be shared, so give it the mode a plain
        # open() would (0666 less the umask), or keep the mode of the file it replaces.
        os.chmod(tmp, target.stat().st_mode & 0o777 if target.exists() else 0o666 & ~_umask())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target
