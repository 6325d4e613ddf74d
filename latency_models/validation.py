"""Cross-validated accuracy of a latency model: blocks held out from the regressor, networks from the overhead fit.

What `hwnas fit` prints and records in a model's metrics; the benchmarks call
the same functions, so the figures in RESULTS.md and the CLI agree.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import pandas as pd

from hwnas.latency_models.metrics import evaluate
from hwnas.latency_models.network import LatencyModel, fit_overhead, networks_fields
from hwnas.latency_models.regressors import PRESETS, BlockRegressor
from hwnas.search.space import InputError, SearchSpace

__all__ = ["cv_blocks", "cv_networks", "MIN_NETWORKS_FOR_CV"]

#: Fewer measured networks than this leave too few per fold for a held-out figure.
MIN_NETWORKS_FOR_CV = 4


def _folds(n: int, folds: int, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    from sklearn.model_selection import KFold

    if folds < 2:
        raise InputError(f"`folds` must be at least 2, got {folds}")
    return list(KFold(min(folds, n), shuffle=True, random_state=seed).split(np.arange(n)))


def cv_blocks(fields: np.ndarray, ms: np.ndarray, folds: int = 5, kind: str = "et",
              on_fold: Callable[[], None] | None = None, seed: int = 0) -> dict[str, Any]:
    """K-fold held-out accuracy of the block regressor (held-out blocks get no LUT help)."""
    pred = np.empty(len(ms))
    for train, test in _folds(len(ms), folds, seed):
        pred[test] = BlockRegressor(**PRESETS[kind]).fit(fields[train], ms[train]).predict(fields[test])
        if on_fold is not None:
            on_fold()
    return evaluate(pred, ms)


def cv_networks(model: LatencyModel, space: SearchSpace, networks: pd.DataFrame,
                folds: int = 5, seed: int = 0) -> dict[str, Any] | None:
    """K-fold accuracy of Σ blocks + overhead, the overhead fitted without the held-out networks.

    None when fewer than `MIN_NETWORKS_FOR_CV` networks were measured.
    """
    if len(networks) < MIN_NETWORKS_FOR_CV:
        return None
    fields, index = networks_fields(space, list(networks["arch"]))
    sums = np.bincount(index, weights=model.block_model.predict_fields(fields), minlength=len(networks))
    y = networks["median_ms"].to_numpy(dtype=float)
    pred = np.empty(len(y))
    for train, test in _folds(len(y), folds, seed):
        scale, off = fit_overhead(sums[train], y[train])
        pred[test] = scale * sums[test] + off
    return evaluate(pred, y)
