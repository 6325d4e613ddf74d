"""Block regressors predicting log-latency (so that error is relative).

The default (`base="kernel"`, `kind="et"`): a non-negative additive cost over the
runtime kernels each block runs (`features.kernel_design`: one fixed, per-MAC
and per-byte cost per kernel, shared by every family that runs it), times
extremely randomised trees on the log residual (the steps a runtime's kernels
take between widths).  Shared kernel costs extrapolate to widths and op mixes
off the measured grid; per-family fits learned only from their own grid points
did not (see `kernel_design`).  The earlier model stays available: `base="cost"`
(per family [1, dense MACs, depthwise MACs, bytes]), a ridge on log features and
gradient-boosted trees (`kind="gbm"`) or a random forest (`"rf"`), per family from
`min_family` blocks on.  The estimator follows scikit-learn's API
(fit/predict/get_params) on the `features.spec_fields` array; after `fit`
everything lives in plain arrays (`to_dict`) and predicts with numpy only, so a
saved model predicts exactly what the fitted one did.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.ensemble import ExtraTreesRegressor, GradientBoostingRegressor, RandomForestRegressor
from scipy.optimize import lsq_linear
from sklearn.linear_model import Ridge
from sklearn.utils.validation import check_is_fitted

from hwnas.latency_models.features import FIELD_NAMES, family_codes, family_name, family_names, features, kernel_design
from hwnas.latency_models.trees import TreeEnsemble
from hwnas.search.space import InputError

__all__ = ["BlockRegressor", "log_features", "MIN_FAMILY_SAMPLES", "KINDS", "BASES", "PRESETS"]

#: A family needs this many measured blocks for its own regressor (the `cost` base's default).
MIN_FAMILY_SAMPLES = 12

KINDS, BASES = ("et", "gbm", "rf"), ("kernel", "cost", "loglinear")
#: Per kind: tree depth and ridge strength on log features (None: no ridge stage) when not given.
_KIND_DEFAULTS = {"et": (8, None), "gbm": (3, 1.0), "rf": (6, 1.0)}
#: What `hwnas fit --kind` names: the default model, and the earlier per-family one with either trees.
PRESETS: dict[str, dict[str, Any]] = {
    "et": {},
    "gbm": {"kind": "gbm", "base": "cost", "min_family": MIN_FAMILY_SAMPLES, "n_estimators": 60},
    "rf": {"kind": "rf", "base": "cost", "min_family": MIN_FAMILY_SAMPLES, "n_estimators": 60},
}
#: What a saved model without these parameters was fitted with (files written before they existed).
_LEGACY = {"kind": "gbm", "base": "cost", "min_family": MIN_FAMILY_SAMPLES, "max_depth": 3, "alpha": 1.0,
           "n_estimators": 60}

#: Rows predicted per batch.
CHUNK = 16384

_LOG_COLS = (1, 2, 3, 4, 5, 6, 7, 8, 9, 12, 13, 14, 15)  # kernel … out_res, macs, params, bytes, dw_macs


def log_features(fields: np.ndarray, f: np.ndarray | None = None) -> np.ndarray:
    """Regressor inputs: log1p of the size features, plus op/act/se codes (`f`: precomputed features)."""
    f = features(fields) if f is None else f
    ft = f.T  # column-major storage (see features): rows are contiguous
    out = np.empty((len(_LOG_COLS) + 3, len(f)))
    np.log1p(ft[list(_LOG_COLS)], out=out[: len(_LOG_COLS)])
    out[len(_LOG_COLS):] = ft[[0, 10, 11]]
    return out.T


def _check_fields(X: Any) -> np.ndarray:
    try:
        arr = np.asarray(X, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError("block regressor input must be a numeric array of spec fields") from None
    if arr.ndim != 2 or arr.shape[1] != len(FIELD_NAMES):
        raise InputError(f"block regressor input must have shape (n, {len(FIELD_NAMES)}) "
                         f"({', '.join(FIELD_NAMES)}), got {arr.shape}")
    if not np.isfinite(arr).all():
        raise InputError("block regressor input holds NaN or infinite values")
    return arr


def _cost_design(fields: np.ndarray, f: np.ndarray | None = None) -> np.ndarray:
    """[1, dense MMACs, depthwise MMACs, MB moved]: a fixed cost plus compute plus memory traffic."""
    f = features(fields) if f is None else f
    ft = f.T
    return np.stack([np.ones(len(f)), (ft[12] - ft[15]) / 1e6, ft[15] / 1e6, ft[14] / 1e6], axis=1)


def _fit_cost(D: np.ndarray, y: np.ndarray, fixed_first: bool = False) -> np.ndarray:
    """Non-negative additive cost model, fitted for relative error (rows weighted 1/y).

    Column 0 is a per-block constant.  `fixed_first` leaves it out of the fit (the kernel design:
    fixed costs belong to kernel launches; a free per-block constant took them over and cost
    5-6 points of off-grid accuracy from few samples); it is then only the floor below.
    """
    w = 1.0 / y
    coef = np.zeros(D.shape[1])
    start = 1 if fixed_first else 0
    # Only columns some block uses: lsq_linear leaves a column without data at its starting
    # point (0.1 ms per launch, per MMAC and per MB), which priced a held-out FC head at 30x.
    seen = np.flatnonzero(np.any(D[:, start:] != 0, axis=0)) + start
    if len(seen):
        coef[seen] = lsq_linear(D[:, seen] * w[:, None], np.ones_like(y), bounds=(0.0, np.inf)).x
    if fixed_first:
        # A kernel no training block runs costs what the kernels that were measured cost, at their
        # median (per launch, per MMAC, per MB): an honest guess rather than nothing.
        for part in range(3):
            cols = np.arange(1 + part, D.shape[1], 3)
            known = cols[np.isin(cols, seen)]
            if len(known):
                coef[cols[~np.isin(cols, seen)]] = float(np.median(coef[known]))
    if coef[0] <= 0:  # keep every prediction positive so its log exists
        coef[0] = float(np.min(y)) * 1e-3
    return coef


class _Part:
    """One fitted family model.

    log ms = log(c0 + c1·MMACs + c2·MB)   (additive cost: extrapolates off the grid)
           + ridge on log features + trees (the runtime's steps between widths)
    """

    def __init__(self, cost: np.ndarray, coef: np.ndarray, intercept: float, trees: TreeEnsemble) -> None:
        self.cost = np.asarray(cost, np.float64)
        self.coef, self.intercept, self.trees = np.asarray(coef, np.float64), float(intercept), trees

    def predict_log(self, D: np.ndarray, Z: np.ndarray) -> np.ndarray:
        return np.log(D @ self.cost) + Z @ self.coef + self.intercept + self.trees.predict(Z)

    def to_dict(self) -> dict[str, Any]:
        return {"cost": self.cost.tolist(), "coef": self.coef.tolist(), "intercept": self.intercept,
                "trees": self.trees.to_dict()}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "_Part":
        return cls(d["cost"], d["coef"], d["intercept"], TreeEnsemble.from_dict(d["trees"]))


class BlockRegressor(RegressorMixin, BaseEstimator):
    """Latency (ms) of blocks from their spec fields, in log space.

    base: ``kernel`` (shared per-kernel costs), ``cost`` (per-family cost) or ``loglinear``.
    kind: ``et`` (extremely randomised trees), ``gbm`` (gradient boosting) or ``rf`` (random
    forest) for the residual trees.  `max_depth` and `alpha` (the ridge on log features;
    None: none) default per kind; `min_family` > 0 fits a family with that many blocks its
    own model (0: one model for all).
    """

    def __init__(self, kind: str = "et", n_estimators: int = 25, max_depth: int | None = None,
                 learning_rate: float = 0.15, alpha: float | None = None, random_state: int = 0,
                 base: str = "kernel", min_family: int = 0) -> None:
        self.kind = kind
        self.n_estimators = n_estimators
        self.max_depth = max_depth
        self.learning_rate = learning_rate
        self.alpha = alpha
        self.random_state = random_state
        self.base = base
        self.min_family = min_family

    def _design(self, fields: np.ndarray, f: np.ndarray | None = None) -> np.ndarray:
        return kernel_design(fields, f) if self.base == "kernel" else _cost_design(fields, f)

    def _fit_part(self, D: np.ndarray, Z: np.ndarray, y_log: np.ndarray) -> _Part:
        depth, alpha = _KIND_DEFAULTS[self.kind]
        depth = depth if self.max_depth is None else self.max_depth
        alpha = alpha if self.alpha is None else self.alpha
        if self.base == "loglinear":  # no additive cost model, the ridge on log features alone is the base
            cost = np.eye(D.shape[1])[0]
        else:
            cost = _fit_cost(D, np.exp(y_log), fixed_first=self.base == "kernel")
        y_log = y_log - np.log(D @ cost)
        coef, intercept = np.zeros(Z.shape[1]), 0.0
        if alpha is not None:
            ridge = Ridge(alpha=alpha).fit(Z, y_log)
            coef, intercept = ridge.coef_, float(ridge.intercept_)
        resid = y_log - (Z @ coef + intercept)
        if self.kind == "gbm":
            gbm = GradientBoostingRegressor(n_estimators=self.n_estimators, max_depth=depth,
                                            learning_rate=self.learning_rate, subsample=0.8,
                                            random_state=self.random_state).fit(Z, resid)
            init = float(np.ravel(gbm.init_.constant_)[0])  # the GBM's initial (mean) prediction, folded in
            trees = TreeEnsemble.from_sklearn([e[0] for e in gbm.estimators_], self.learning_rate)
            return _Part(cost, coef, intercept + init, trees)
        forest = ExtraTreesRegressor if self.kind == "et" else RandomForestRegressor
        est = forest(n_estimators=self.n_estimators, max_depth=depth, min_samples_leaf=2,
                     random_state=self.random_state).fit(Z, resid)
        trees = TreeEnsemble.from_sklearn(est.estimators_, 1.0 / len(est.estimators_))
        return _Part(cost, coef, intercept, trees)

    def fit(self, X: Any, y: Any) -> "BlockRegressor":
        """Fit on spec fields X (n, 11) and measured latencies y (ms, positive)."""
        if self.kind not in KINDS:
            raise InputError(f"unknown regressor kind {self.kind!r}; expected {', '.join(KINDS)}")
        if self.base not in BASES:
            raise InputError(f"unknown regressor base {self.base!r}; expected {', '.join(BASES)}")
        if not isinstance(self.min_family, (int, np.integer)) or self.min_family < 0:
            raise InputError(f"min_family must be a whole number >= 0, got {self.min_family!r}")
        X = _check_fields(X)
        y = np.asarray(y, dtype=np.float64).ravel()
        if len(y) != len(X):
            raise InputError(f"{len(X)} blocks but {len(y)} latencies")
        if len(y) < 2:
            raise InputError(f"need at least 2 measured blocks to fit a regressor, got {len(y)}")
        if not (np.isfinite(y).all() and (y > 0).all()):
            raise InputError("latencies must be positive finite milliseconds")
        D, Z, y_log, fam = self._design(X), log_features(X), np.log(y), family_names(X)
        self.global_ = self._fit_part(D, Z, y_log)
        self.parts_: dict[str, _Part] = {}
        for name in sorted(set(fam)) if self.min_family else ():
            mask = fam == name
            if mask.sum() >= self.min_family:
                self.parts_[name] = self._fit_part(D[mask], Z[mask], y_log[mask])
        self.n_features_in_ = X.shape[1]
        self._codes = self._family_codes(self.parts_)
        return self

    @staticmethod
    def _family_codes(parts: Mapping[str, Any]) -> dict[str, int]:
        known = {family_name(c): c for c in [1, 2, 3, 4, 5] + [1000 + k * 10 + r for k in range(1, 16, 2)
                                                                for r in range(4)]}
        unknown = set(parts) - set(known)
        if unknown:
            raise InputError(f"unknown block family {sorted(unknown)[0]!r} in regressor")
        return {name: known[name] for name in parts}

    def predict(self, X: Any) -> np.ndarray:
        """Predicted latency in ms for each row of spec fields."""
        check_is_fitted(self, "global_")
        X = _check_fields(X)
        # Chunks keep every intermediate array in cache: numpy here is memory-bound, ~5x faster so.
        # One model for all families (the kernel base) has ~40 full-length temporaries per chunk;
        # at 16384 rows each is 128 KiB, glibc's mmap threshold, and is page-faulted in afresh
        # every time: half the chunk doubles its throughput (0.48 -> 0.93 million blocks/s).
        # Per-family parts pay Python overhead per part and chunk, and prefer the larger chunk.
        chunk = CHUNK if self.parts_ else CHUNK // 2
        if len(X) <= chunk:
            return self._predict(X)
        return np.concatenate([self._predict(X[i:i + chunk]) for i in range(0, len(X), chunk)])

    def _predict(self, X: np.ndarray) -> np.ndarray:
        if len(X) == 0:
            return np.zeros(0)
        f = features(X)
        D, Z = self._design(X, f), log_features(X, f)
        if not self.parts_:  # one model for every family (the kernel base's default)
            return np.exp(self.global_.predict_log(D, Z))
        fam = family_codes(X)
        out = np.empty(len(X))
        rest = np.ones(len(X), dtype=bool)
        for name, part in self.parts_.items():
            mask = fam == self._codes[name]
            if mask.any():
                out[mask] = part.predict_log(D[mask], Z[mask])
                rest &= ~mask
        if rest.any():
            out[rest] = self.global_.predict_log(D[rest], Z[rest])
        return np.exp(out)

    def to_dict(self) -> dict[str, Any]:
        check_is_fitted(self, "global_")
        return {"params": self.get_params(), "global": self.global_.to_dict(),
                "families": {k: v.to_dict() for k, v in self.parts_.items()}}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "BlockRegressor":
        est = cls(**{**_LEGACY, **d["params"]})
        est.global_ = _Part.from_dict(d["global"])
        est.parts_ = {k: _Part.from_dict(v) for k, v in d["families"].items()}
        est.n_features_in_ = len(FIELD_NAMES)
        est._codes = cls._family_codes(est.parts_)
        return est
