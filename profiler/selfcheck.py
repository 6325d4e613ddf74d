"""Self-checks after a profile: timings that disagree with the rest of their table.

Why: a block or network timed during a disturbance the reference did not catch
is precise (its passes agree) and wrong.  The rest of the table knows better:

- a network's time is, to first order, a constant factor (plus overhead) of the
  sum of its blocks; one whose ratio to its block sum is far from the other
  networks' (a network at 2.7x its prediction) is suspect;
- a block's time grows smoothly with its size inside its op family; a block far
  from the trend of its family (log time against log multiply-adds) is suspect.

Suspects are re-measured before they are believed (`SteadyRun.self_check` does that); a
network still suspect after that is flagged, so the latency models leave it out of their
fits, and so is a block whose new timing moved (one that reproduced its first is kept).
Pure functions on the store's frames: no latency model, no device.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from hwnas.profiler.passes import cost_proxy
from hwnas.search.space import BlockSpec, get_space

__all__ = ["network_outliers", "block_outliers", "SUSPECT_Z", "SUSPECT_REL"]

#: Robust z-score (deviations in MADs of log ratio) above which an item is suspect...
SUSPECT_Z = 4.0
#: ...and it must also be this far (relative) from what its table predicts.
SUSPECT_REL = 0.25


def _robust_z(resid: np.ndarray) -> np.ndarray:
    med = np.median(resid)
    mad = np.median(np.abs(resid - med)) * 1.4826
    return (resid - med) / max(mad, 1e-3)


def network_outliers(blocks: pd.DataFrame, networks: pd.DataFrame) -> list[dict[str, Any]]:
    """Networks whose time / Σ(their blocks' times) is far from the other networks' ratio.

    Needs at least 5 networks with every block measured; returns one dict per suspect
    (space, arch, median_ms, expected_ms, ratio).
    """
    if len(networks) < 5 or blocks.empty:
        return []
    table = dict(zip(blocks["block_key"], blocks["median_ms"].astype(float)))
    rows = []
    for row in networks.itertuples(index=False):
        try:
            sp = get_space(row.space)
            arch = sp.parse(row.arch)
            specs = sp.blocks(arch)
        except Exception:  # noqa: BLE001 - an arch of a space this hwnas no longer has: not checkable
            continue
        ms = [table.get(s.key) for s in specs]
        if any(m is None or not np.isfinite(m) for m in ms):
            continue
        rows.append((row.space, row.arch, float(row.median_ms), float(sum(ms))))
    if len(rows) < 5:
        return []
    measured = np.array([r[2] for r in rows])
    sums = np.array([r[3] for r in rows])
    log_ratio = np.log(measured / sums)
    z = _robust_z(log_ratio)
    typical = float(np.exp(np.median(log_ratio)))
    out = []
    for (space, arch, ms, total), zi, lr in zip(rows, z, log_ratio):
        expected = typical * total
        if abs(zi) > SUSPECT_Z and abs(ms / expected - 1) > SUSPECT_REL:
            out.append({"space": space, "arch": arch, "median_ms": ms, "expected_ms": expected,
                        "ratio": ms / expected})
    return out


def block_outliers(blocks: pd.DataFrame) -> list[dict[str, Any]]:
    """Blocks far from their op family's trend of log time against log size (at least 6 per family)."""
    if blocks.empty:
        return []
    specs = [BlockSpec.from_json(j) for j in blocks["block_json"]]
    frame = pd.DataFrame({"key": blocks["block_key"].to_numpy(), "ms": blocks["median_ms"].astype(float).to_numpy(),
                          "family": [(s.op, s.kernel, s.groups > 1) for s in specs],
                          "size": [max(cost_proxy(s), 1.0) for s in specs]})
    out = []
    for _, fam in frame.groupby("family"):
        if len(fam) < 6:
            continue
        x, y = np.log(fam["size"].to_numpy()), np.log(fam["ms"].to_numpy())
        if np.ptp(x) == 0:
            continue
        slope, icept = _theil_sen(x, y)
        resid = y - (slope * x + icept)
        z = _robust_z(resid)
        for key, ms, zi, r in zip(fam["key"], fam["ms"], z, resid):
            if abs(zi) > SUSPECT_Z and abs(np.exp(r) - 1) > SUSPECT_REL:
                out.append({"block_key": key, "median_ms": float(ms), "expected_ms": float(ms / np.exp(r)),
                            "ratio": float(np.exp(r))})
    return out


def _theil_sen(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Median of pairwise slopes: a line one bad point cannot drag."""
    i, j = np.triu_indices(len(x), 1)
    dx = x[j] - x[i]
    keep = dx != 0
    slope = float(np.median((y[j] - y[i])[keep] / dx[keep]))
    return slope, float(np.median(y - slope * x))
