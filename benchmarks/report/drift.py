"""The report's drift section: each device's speed curve and which measurements were repeated.

Why: a table is only as good as the conditions it was taken under.  The
reference timings against wall time show whether the device held its speed
through the profile; the pass history shows what the profiler measured again
(re-queued on drift, extra passes for disagreeing items, self-check) and what
it scaled.  Frames from `hwnas.profiler.history` in, rows and a figure out.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from hwnas.report.figures import _STYLE, _t, plt, to_data_uri

__all__ = ["drift_section", "drift_figure"]


def drift_figure(refs: pd.DataFrame, labels: Mapping[str, str], band: float = 0.12) -> str:
    """Reference timing / baseline against minutes since the device's first reference timing."""
    with plt.rc_context(_STYLE):
        fig, ax = plt.subplots(figsize=(7.0, 3.2))
        for device, g in refs.groupby("device", sort=False):
            g = g.dropna(subset=["ratio"])
            if g.empty:
                continue
            t = (g["timestamp"].to_numpy(float) - float(g["timestamp"].min())) / 60.0
            ax.plot(t, g["ratio"].to_numpy(float), marker=".", lw=1, label=_t(labels.get(device, device)))
            off = g["action"].isin(("requeue", "wait", "hold")).to_numpy()
            if off.any():
                ax.scatter(t[off], g["ratio"].to_numpy(float)[off], marker="x", color="tab:red", zorder=3)
        ax.axhspan(1 - band, 1 + band, color="tab:green", alpha=0.12, label=_t(f"±{band:.0%} band"))
        ax.set_xlabel("minutes into the profile")
        ax.set_ylabel("reference / baseline")
        ax.set_title("Device speed during the profile (x: batch re-queued)")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
        fig.tight_layout()
        return to_data_uri(fig)


def _repeated(passes: pd.DataFrame, limit: int = 30) -> list[list[str]]:
    """Items measured more than the planned passes, or re-queued, or scaled: most repeated first."""
    if passes.empty:
        return []
    g = passes.groupby(["device", "item_key"])
    table = pd.DataFrame({"passes": g["pass_no"].nunique(), "tries": g.size(),
                          "requeued": g["verdict"].apply(lambda v: int((v == "requeued").sum())),
                          "scaled": g["verdict"].apply(lambda v: int((v == "scaled").sum()))}).reset_index()
    planned = table.groupby("device")["passes"].transform(lambda s: int(s.mode().iloc[0]) if len(s) else 1)
    hit = table[(table["passes"] > planned) | (table["requeued"] > 0) | (table["scaled"] > 0)]
    hit = hit.sort_values(["tries", "item_key"], ascending=[False, True]).head(limit)
    return [[r.device, r.item_key, str(r.passes), str(r.tries), str(r.requeued), str(r.scaled)]
            for r in hit.itertuples(index=False)]


def drift_section(refs: pd.DataFrame, passes: pd.DataFrame, order: Sequence[str],
                  labels: Mapping[str, str]) -> dict[str, Any]:
    """Per device: reference timings, speed range, off-band share, re-queued/scaled passes; the curve; repeats."""
    rows = []
    for dev in order:
        r = refs[refs["device"] == dev] if not refs.empty else refs
        p = passes[passes["device"] == dev] if not passes.empty else passes
        if r.empty and p.empty:
            rows.append([labels.get(dev, dev), "0", "-", "-", "-", "-", "-", "one pass, no reference"])
            continue
        ratios = r["ratio"].dropna().to_numpy(float) if not r.empty else np.array([])
        judged = r[~r["action"].isin(("baseline",))] if not r.empty else r
        off = int(judged["action"].isin(("requeue", "wait", "hold")).sum()) if not judged.empty else 0
        rows.append([labels.get(dev, dev), str(len(r)),
                     f"{ratios.min():.2f}–{ratios.max():.2f}" if ratios.size else "-",
                     str(off), str(int((p["verdict"] == "requeued").sum())) if not p.empty else "0",
                     str(int((p["verdict"] == "scaled").sum())) if not p.empty else "0",
                     str(int(p["pass_no"].max())) if not p.empty else "-",
                     "cooled down" if (not r.empty and (r["action"] == "cooling").any()) else ""])
    devices = [d for d in order if not refs.empty and (refs["device"] == d).any()]
    figure = drift_figure(refs[refs["device"].isin(devices)], labels) if devices else None
    repeated = _repeated(passes[passes["device"].isin(order)] if not passes.empty else passes)
    for row in repeated:
        row[0] = labels.get(row[0], row[0])
    return {"rows": rows, "figure": figure, "repeated": repeated}
