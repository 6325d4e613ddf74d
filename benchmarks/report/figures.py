"""The report's figures: matplotlib (Agg) drawings returned as PNG data URIs.

Data URIs keep the report one self-contained file that opens offline; PNG
(not inline SVG) means no markup from the data ever reaches the page, and
base64 text needs no escaping.  Text from the data goes through `_t`, which
escapes `$` so a device name is drawn as written, never parsed as mathtext.
"""

from __future__ import annotations

import base64
import textwrap
import io
import math
from typing import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.colors import LogNorm, TwoSlopeNorm  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

__all__ = ["to_data_uri", "latency_heatmaps", "ratio_heatmap", "noise_figure", "prediction_scatter",
           "accuracy_latency", "training_curves"]

_STYLE = {"font.size": 9, "axes.titlesize": 10, "figure.dpi": 100}


def _t(text: object) -> str:
    """Data text for matplotlib: a `$` is literal, not the start of mathtext."""
    return str(text).replace("$", r"\$")


def to_data_uri(fig: "plt.Figure", dpi: int = 100) -> str:
    """Encode and close a figure (closing matters: a report draws dozens)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _annotate(ax, values: np.ndarray, fmt, dark: np.ndarray) -> None:
    rows, cols = values.shape
    size = 7 if cols > 7 else 8
    for i in range(rows):
        for j in range(cols):
            v = values[i, j]
            if np.isfinite(v):
                ax.text(j, i, fmt(v), ha="center", va="center", fontsize=size,
                        color="white" if dark[i, j] else "black")


def latency_heatmaps(grids: Mapping[str, pd.DataFrame], labels: Mapping[str, str]) -> str:
    """One heatmap per device, rows layers, columns candidate blocks, colour = median ms (log)."""
    with plt.rc_context(_STYLE):
        n = len(grids)
        first = next(iter(grids.values()))
        height = max(3.0, 0.3 * len(first.index) + 1.5)
        fig, axes = plt.subplots(1, n, figsize=(max(6.0, 0.55 * len(first.columns) + 2.5) * n, height),
                                 squeeze=False)
        for ax, (dev, grid) in zip(axes[0], grids.items()):
            values = grid.to_numpy(dtype=float)
            finite = values[np.isfinite(values) & (values > 0)]
            if finite.size == 0:
                ax.set_axis_off()
                ax.set_title(_t(f"{labels.get(dev, dev)}: nothing measured"))
                continue
            lo, hi = float(finite.min()), float(finite.max())
            norm = LogNorm(vmin=lo, vmax=hi if hi > lo else lo * 1.01)
            im = ax.imshow(np.ma.masked_invalid(values), aspect="auto", cmap="viridis", norm=norm)
            _annotate(ax, values, lambda v: f"{v:.2g}" if v < 10 else f"{v:.0f}",
                      np.isfinite(values) & (values < math.sqrt(lo * max(hi, lo))))
            ax.set_xticks(range(len(grid.columns)), [_t(c) for c in grid.columns], rotation=45, ha="right")
            ax.set_yticks(range(len(grid.index)), [_t(r) for r in grid.index], fontfamily="monospace")
            ax.set_title(_t(f"{labels.get(dev, dev)}: median latency (ms)"))
            fig.colorbar(im, ax=ax, fraction=0.04, pad=0.02, label="ms (log scale)")
        fig.tight_layout()
        return to_data_uri(fig)


def ratio_heatmap(rel: pd.DataFrame, geo: float, label: str, ref_label: str) -> str:
    """Relative cost of each block on one device against the reference, centred on the typical ratio."""
    with plt.rc_context(_STYLE):
        values = rel.to_numpy(dtype=float)
        logs = np.log2(values)
        finite = logs[np.isfinite(logs)]
        span = max(0.2, float(np.abs(finite).max())) if finite.size else 1.0
        fig, ax = plt.subplots(figsize=(max(6.0, 0.55 * len(rel.columns) + 2.5), max(3.0, 0.3 * len(rel.index) + 1.5)))
        im = ax.imshow(np.ma.masked_invalid(logs), aspect="auto", cmap="RdBu_r",
                       norm=TwoSlopeNorm(vcenter=0.0, vmin=-span, vmax=span))
        _annotate(ax, values, lambda v: f"{v:.2f}", np.isfinite(logs) & (np.abs(logs) > 0.6 * span))
        ax.set_xticks(range(len(rel.columns)), [_t(c) for c in rel.columns], rotation=45, ha="right")
        ax.set_yticks(range(len(rel.index)), [_t(r) for r in rel.index], fontfamily="monospace")
        ax.set_title(_t(f"{label} vs {ref_label}: latency ratio / typical ratio ({geo:.3g}x)\n"
                        f"blue = relatively cheaper on {label}, red = relatively dearer"))
        fig.colorbar(im, ax=ax, fraction=0.04, pad=0.02, label="log2 relative ratio")
        fig.tight_layout()
        return to_data_uri(fig)


def noise_figure(rel_ci: Mapping[str, np.ndarray], labels: Mapping[str, str]) -> str:
    """Box plot per device of each block's relative 95% CI half-width (%)."""
    with plt.rc_context(_STYLE):
        fig, ax = plt.subplots(figsize=(max(5.0, 1.6 * len(rel_ci) + 2), 3.2))
        arrays = {d: np.asarray(rel_ci[d], dtype=float) for d in rel_ci}
        arrays = {d: a[np.isfinite(a)] for d, a in arrays.items()}
        names = [d for d, a in arrays.items() if a.size]  # never-settled or imported blocks carry no CI
        if not names:
            ax.set_axis_off()
            ax.set_title("Measurement noise per block: no confidence intervals stored")
            return to_data_uri(fig)
        data = [np.clip(arrays[d] * 100, 1e-3, None) for d in names]
        ax.boxplot(data, showfliers=True)
        ax.set_xticks(range(1, len(names) + 1), [_t(textwrap.fill(labels.get(d, d), 26)) for d in names])
        ax.set_yscale("log")
        ax.set_ylabel("95% CI half-width of the median (% of median)")
        ax.set_title("Measurement noise per block")
        ax.grid(True, axis="y", alpha=0.3)
        fig.tight_layout()
        return to_data_uri(fig)


def prediction_scatter(pred: pd.DataFrame, title: str) -> str:
    """Predicted vs measured with the y = x line and the ±10% band (log-log when the data span decades)."""
    with plt.rc_context(_STYLE):
        fig, ax = plt.subplots(figsize=(4.6, 4.2))
        m = pred["measured_ms"].astype(float).to_numpy()
        p = pred["predicted_ms"].astype(float).to_numpy()
        ok = np.isfinite(m) & np.isfinite(p) & (m > 0) & (p > 0)
        m, p = m[ok], p[ok]
        lo = float(min(m.min(), p.min())) * 0.8 if m.size else 0.01
        hi = float(max(m.max(), p.max())) * 1.25 if m.size else 1.0
        log = hi / lo > 20  # log axes only where the data span decades; within one they only add clutter
        line = np.geomspace(lo, hi, 50) if log else np.linspace(lo, hi, 50)
        ax.fill_between(line, line * 0.9, line * 1.1, color="tab:green", alpha=0.18, label="±10%")
        ax.plot(line, line, color="tab:green", lw=1)
        inside = np.abs(p - m) <= 0.1 * m
        ax.scatter(m[inside], p[inside], s=12, color="tab:blue", label="within ±10%")
        ax.scatter(m[~inside], p[~inside], s=14, color="tab:red", marker="x", label="outside")
        if log:
            ax.set_xscale("log")
            ax.set_yscale("log")
        ax.set_xlim(lo, hi)
        ax.set_ylim(lo, hi)
        ax.set_xlabel("measured (ms)")
        ax.set_ylabel("predicted (ms)")
        ax.set_title(_t(title))
        ax.legend(loc="upper left", fontsize=7)
        ax.grid(True, alpha=0.3, which="both")
        fig.tight_layout()
        return to_data_uri(fig)


def accuracy_latency(points: Sequence[Mapping], labels: Mapping[str, str]) -> str:
    """Accuracy against latency, one colour per device: searched runs as stars, sampled candidates as dots."""
    with plt.rc_context(_STYLE):
        fig, ax = plt.subplots(figsize=(6.2, 4.0))
        devices = list(dict.fromkeys(str(p["device"]) for p in points))
        colors = {d: plt.cm.tab10(i % 10) for i, d in enumerate(devices)}
        for dev in devices:
            mine = [p for p in points if str(p["device"]) == dev]
            for kind, marker, size in (("candidate", "o", 18), ("run", "*", 140)):
                sel = [p for p in mine if p["kind"] == kind]
                if sel:
                    ax.scatter([p["latency_ms"] for p in sel], [100 * p["accuracy"] for p in sel], s=size,
                               marker=marker, color=colors[dev], edgecolors="black" if kind == "run" else "none",
                               alpha=0.9 if kind == "run" else 0.5,
                               label=_t(f"{labels.get(dev, dev)} ({'searched' if kind == 'run' else 'sampled'})"))
            for p in mine:
                if p["kind"] == "run":
                    ax.annotate(_t(p["name"]), (p["latency_ms"], 100 * p["accuracy"]), fontsize=7,
                                xytext=(5, 4), textcoords="offset points")
        ax.ticklabel_format(axis="both", useOffset=False)  # near-equal latencies: plain numbers, no "+2.4598"
        ax.set_xlabel("latency (ms; measured where known, else predicted)")
        ax.set_ylabel("accuracy (%)")
        ax.set_title("Search results: accuracy vs latency")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7, loc="lower right")
        fig.tight_layout()
        return to_data_uri(fig)


def training_curves(curves: Mapping[str, Mapping[str, Sequence[float]]]) -> str:
    """Per run: accuracy and expected latency per search epoch."""
    with plt.rc_context(_STYLE):
        fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9.0, 3.2))
        for name, c in curves.items():
            if c.get("accuracy"):
                ax1.plot(range(1, len(c["accuracy"]) + 1), [100 * a for a in c["accuracy"]], marker=".", label=_t(name))
            if c.get("latency"):
                ax2.plot(range(1, len(c["latency"]) + 1), c["latency"], marker=".", label=_t(name))
        ax1.set_xlabel("epoch")
        ax1.set_ylabel("accuracy (%)")
        ax1.set_title("Search: accuracy per epoch")
        ax2.set_xlabel("epoch")
        ax2.set_ylabel("expected latency (ms)")
        ax2.set_title("Search: expected latency per epoch")
        for ax in (ax1, ax2):
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.ticklabel_format(axis="y", useOffset=False)
            ax.grid(True, alpha=0.3)
            if ax.get_legend_handles_labels()[0]:
                ax.legend(fontsize=7)
        fig.tight_layout()
        return to_data_uri(fig)
