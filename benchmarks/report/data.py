"""The numbers a device-comparison report shows, computed from plain data.

Pure functions over pandas DataFrames shaped like the store's (`Store.blocks()`,
`Store.networks()`, `Store.devices()`), model predictions and search-run
summaries.  Nothing here reads a file or draws: `hwnas.report.figures`
draws, `hwnas.report.render` renders, `hwnas report` reads the inputs.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from hwnas.search.space import InputError, SearchSpace

__all__ = [
    "ReportData",
    "RunSummary",
    "device_labels",
    "device_rows",
    "infer_space",
    "latency_grid",
    "relative_ratio",
    "noise_table",
    "prediction_metrics",
    "throttled",
]


@dataclass
class RunSummary:
    """One search run as a report shows it (read from a run directory by `hwnas report`)."""

    name: str
    space: str
    device: str
    arch: Any
    predicted_ms: float | None = None
    target_ms: float | None = None
    accuracy: float | None = None        # best accuracy known for the run (trained if trained)
    accuracy_source: str = ""           # "search" or "train"
    measured_ms: float | None = None
    ops: Sequence[str] = ()             # the chosen block per searchable layer
    history: Sequence[Mapping[str, Any]] = ()   # per-epoch dicts
    candidates: Sequence[Mapping[str, Any]] = ()  # sampled architectures, ranked
    arch_text: str = ""                 # the space's canonical text, as the store keys networks


@dataclass
class ReportData:
    """Everything one report shows; `blocks` and `networks` hold all chosen devices."""

    devices: pd.DataFrame
    blocks: pd.DataFrame
    networks: pd.DataFrame = field(default_factory=pd.DataFrame)
    predictions: pd.DataFrame = field(default_factory=pd.DataFrame)  # model, device, level, key, measured_ms, predicted_ms
    runs: list[RunSummary] = field(default_factory=list)
    space: SearchSpace | None = None
    title: str = "hwnas device comparison"
    generated: str = ""
    tool_version: str = ""
    sources: Mapping[str, str] = field(default_factory=dict)
    references: pd.DataFrame = field(default_factory=pd.DataFrame)  # reference timings (the speed curve)
    passes: pd.DataFrame = field(default_factory=pd.DataFrame)  # every pass of every item (repeats, scaling)

    def device_order(self) -> list[str]:
        """Device identities in the order the user named them."""
        return [str(d) for d in self.devices["device"]]


def device_labels(devices: pd.DataFrame) -> dict[str, str]:
    """Short, unique, human names per identity: the URI the user profiled with."""
    labels: dict[str, str] = {}
    for _, row in devices.iterrows():
        label = str(row.get("device_uri") or row["device"])
        if label in labels.values():
            label = f"{label} [{row['device']}]"
        labels[str(row["device"])] = label
    return labels


_INFO_KEYS = ("model", "cpu", "soc", "cores", "runtime", "runtime_version", "hardware_id", "gpu", "os", "python")


def device_rows(devices: pd.DataFrame) -> list[dict[str, Any]]:
    """One row per device for the devices table: identity, URI, counts and its `info()` details."""
    rows = []
    for _, row in devices.iterrows():
        info = row.get("info")
        if isinstance(info, str):
            try:
                info = json.loads(info)
            except json.JSONDecodeError:
                info = {"info": info}
        info = info if isinstance(info, Mapping) else {}
        ordered = [k for k in _INFO_KEYS if k in info] + sorted(k for k in info if k not in _INFO_KEYS)
        details = [(k, _short(info[k])) for k in ordered if info[k] not in (None, "", [], {})]
        rows.append({"device": str(row["device"]), "uri": str(row.get("device_uri", "")),
                     "n_blocks": int(row.get("n_blocks", 0) or 0), "n_networks": int(row.get("n_networks", 0) or 0),
                     "details": details})
    return rows


def _short(value: Any, limit: int = 120) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str, sort_keys=True)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def latency_grid(blocks: pd.DataFrame, device: str, space: SearchSpace | None) -> pd.DataFrame:
    """Median ms of each (layer, candidate) on one device: rows layers, columns candidates.

    With a space the rows are its searchable layers; without one (blocks from
    anywhere) a row is a layer shape — resolution, channels in/out, stride —
    and the columns are the block labels seen.  Unmeasured cells are NaN.
    """
    mine = blocks[blocks["device"] == device]
    by_key = mine.groupby("block_key")["median_ms"].median()
    if space is not None:
        data = {}
        for layer in space.layers:
            label = f"{layer.index + 1:>2}  {layer.cin}→{layer.cout} s{layer.stride} @{layer.resolution}"
            data[label] = {op: by_key.get(layer.block(op).key, np.nan) for op in space.candidates}
        return pd.DataFrame.from_dict(data, orient="index", columns=list(space.candidates))
    rows: dict[str, dict[str, float]] = {}
    shaped = mine[mine["op"].isin(("ir", "skip"))] if "op" in mine else mine
    for _, r in shaped.sort_values(["resolution", "cin", "cout"], ascending=[False, True, True]).iterrows():
        label = f"{int(r['cin'])}→{int(r['cout'])} s{int(r['stride'])} @{int(r['resolution'])}"
        rows.setdefault(label, {})[_block_label(r)] = float(r["median_ms"])
    frame = pd.DataFrame.from_dict(rows, orient="index")
    return frame.reindex(columns=sorted(frame.columns)) if len(frame.columns) else frame


def _block_label(row: Mapping[str, Any]) -> str:
    try:
        from hwnas.search.space import BlockSpec

        return BlockSpec.from_json(row["block_json"]).label if row.get("block_json") else str(row["op"])
    except (InputError, TypeError, KeyError):
        return str(row.get("op", "?"))


def relative_ratio(grid: pd.DataFrame, reference: pd.DataFrame) -> tuple[pd.DataFrame, float]:
    """Each cell's latency ratio (this device / reference) divided by the typical ratio.

    Returns (relative ratio grid, geometric-mean ratio).  A relative ratio below 1
    marks a block that is relatively cheap on this device — FBNet's iPhone X vs
    Galaxy S8 comparison — whatever the devices' overall speed difference.
    """
    ratio = grid / reference.reindex(index=grid.index, columns=grid.columns)
    ratio = ratio.where(np.isfinite(ratio) & (ratio > 0))
    values = ratio.to_numpy(dtype=float)
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return ratio, math.nan
    geo = float(np.exp(np.log(finite).mean()))
    return ratio / geo, geo


def throttled(value: Any) -> bool:
    """Whether a stored thermal snapshot (dict or JSON text) says the device was throttled."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            return False
    return bool(isinstance(value, Mapping) and value.get("throttled"))


def noise_table(blocks: pd.DataFrame, order: Sequence[str]) -> pd.DataFrame:
    """Per device: how repeatable its block timings are.

    `rel_ci` is the 95% CI half-width of the median over the median; `rel_spread`
    is (p90 − p10) / median — the run-to-run jitter a single timing carries.
    """
    rows = []
    for dev in order:
        d = blocks[blocks["device"] == dev]
        if d.empty:
            continue
        med = d["median_ms"].astype(float).where(lambda s: s > 0)
        rel_ci = (d["ci_halfwidth_ms"].astype(float) / med).dropna()
        spread = ((d["p90_ms"].astype(float) - d["p10_ms"].astype(float)) / med).dropna()
        therm = d["thermal_after"] if "thermal_after" in d else pd.Series(dtype=object)
        rows.append({
            "device": dev,
            "blocks": int(len(d)),
            "median_rel_ci_pct": 100 * float(rel_ci.median()) if len(rel_ci) else math.nan,
            "p90_rel_ci_pct": 100 * float(rel_ci.quantile(0.9)) if len(rel_ci) else math.nan,
            "median_rel_spread_pct": 100 * float(spread.median()) if len(spread) else math.nan,
            "median_runs": _median_or_nan(d["n"]) if "n" in d else math.nan,  # imported LUTs may carry no count
            "settled_pct": 100 * float(d["settled"].astype(bool).mean()) if "settled" in d else math.nan,
            "flagged": int(d["flagged"].astype(bool).sum()) if "flagged" in d else 0,
            "throttled": int(sum(throttled(v) for v in therm)),
        })
    return pd.DataFrame(rows)


def _median_or_nan(values: pd.Series) -> float:
    """Median of the known values; NaN when none is known (pd.NA would break float())."""
    known = pd.to_numeric(values, errors="coerce").dropna()
    return float(known.median()) if len(known) else math.nan


def prediction_metrics(pred: pd.DataFrame) -> pd.DataFrame:
    """Per (model, level): n, ±5%/±10% accuracy, MAPE, RMSPE and Spearman ρ (nn-Meter/HELP metrics)."""
    rows = []
    if pred.empty:
        return pd.DataFrame(rows)
    for (model, device, level), g in pred.groupby(["model", "device", "level"], sort=False):
        m = g["measured_ms"].astype(float).to_numpy()
        p = g["predicted_ms"].astype(float).to_numpy()
        ok = np.isfinite(m) & np.isfinite(p) & (m > 0)
        m, p = m[ok], p[ok]
        if m.size == 0:
            continue
        rel = (p - m) / m
        varied = m.size > 1 and np.ptp(m) > 0 and np.ptp(p) > 0  # ρ is undefined for a constant column
        rho = pd.Series(m).corr(pd.Series(p), method="spearman") if varied else math.nan
        rows.append({
            "model": model, "device": device, "level": level, "n": int(m.size),
            "within5_pct": 100 * float((np.abs(rel) <= 0.05).mean()),
            "within10_pct": 100 * float((np.abs(rel) <= 0.10).mean()),
            "mape_pct": 100 * float(np.abs(rel).mean()),
            "rmspe_pct": 100 * float(np.sqrt((rel ** 2).mean())),
            "spearman": float(rho) if rho == rho else math.nan,
        })
    return pd.DataFrame(rows)
