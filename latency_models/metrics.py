"""Accuracy metrics with the peers' definitions, so figures compare with the papers.

±p% accuracy is nn-Meter's: the fraction of predictions whose relative error
|pred − true| / true is at most p.  RMSE (ms) and RMSPE (%) as nn-Meter and
HELP report them; Spearman ρ and Kendall τ (ranking quality, as HELP and
HW-NAS-Bench use) come from scipy.stats.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import stats

from hwnas.search.space import InputError

__all__ = ["within", "rmse", "rmspe", "spearman", "kendall", "evaluate", "worst_cases"]


def _pair(pred: Any, true: Any) -> tuple[np.ndarray, np.ndarray]:
    p, t = np.asarray(pred, dtype=np.float64).ravel(), np.asarray(true, dtype=np.float64).ravel()
    if p.shape != t.shape:
        raise InputError(f"{len(p)} predictions but {len(t)} measurements")
    if len(t) == 0:
        raise InputError("no measurements to compare with")
    if not (np.isfinite(t).all() and (t > 0).all()):
        raise InputError("measured latencies must be positive and finite")
    return p, t


def within(pred: Any, true: Any, pct: float) -> float:
    """Fraction of predictions within ±pct% of the measurement (nn-Meter's ±p% accuracy)."""
    p, t = _pair(pred, true)
    return float(np.mean(np.abs(p - t) / t <= pct / 100.0 + 1e-12))


def rmse(pred: Any, true: Any) -> float:
    p, t = _pair(pred, true)
    return float(np.sqrt(np.mean((p - t) ** 2)))


def rmspe(pred: Any, true: Any) -> float:
    """Root mean squared percentage error, in percent."""
    p, t = _pair(pred, true)
    return float(100.0 * np.sqrt(np.mean(((p - t) / t) ** 2)))


def _rank(fn: Any, p: np.ndarray, t: np.ndarray) -> float | None:
    if len(t) < 3 or np.ptp(p) == 0 or np.ptp(t) == 0:
        return None  # undefined on fewer than 3 points or a constant series
    return float(fn(p, t).statistic)


def spearman(pred: Any, true: Any) -> float | None:
    return _rank(stats.spearmanr, *_pair(pred, true))


def kendall(pred: Any, true: Any) -> float | None:
    return _rank(stats.kendalltau, *_pair(pred, true))


def evaluate(pred: Any, true: Any) -> dict[str, Any]:
    """Every metric at once, as plain JSON-ready data."""
    p, t = _pair(pred, true)
    return {
        "n": int(len(t)),
        "acc5": within(p, t, 5), "acc10": within(p, t, 10), "acc15": within(p, t, 15),
        "rmse_ms": rmse(p, t), "rmspe": rmspe(p, t),
        "spearman": spearman(p, t), "kendall": kendall(p, t),
    }


def worst_cases(pred: Any, true: Any, names: Any, k: int = 5) -> list[dict[str, Any]]:
    """The k predictions with the largest relative error, worst first."""
    p, t = _pair(pred, true)
    names = list(names)
    err = (p - t) / t
    order = np.argsort(-np.abs(err))[:k]
    return [{"name": str(names[i]), "predicted_ms": float(p[i]), "measured_ms": float(t[i]),
             "error_pct": float(100 * err[i])} for i in order]
