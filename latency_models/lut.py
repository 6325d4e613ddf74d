"""The exact lookup table: a block measured on the device predicts its own median.

Keyed by the block's spec fields (all of them, so equal keys mean equal
`BlockSpec`s); duplicates measured more than once keep the median of their
medians.  Unmeasured blocks predict NaN, for `LutFallback` to fill.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils.validation import check_is_fitted

from hwnas.latency_models.regressors import _check_fields
from hwnas.search.space import InputError

__all__ = ["LookupTable"]


_SEED = np.array([(0x9E3779B97F4A7C15 * (i + 1)) % 2**64 for i in range(16)], dtype=np.uint64)


def _row_hash(X: np.ndarray) -> np.ndarray:
    """64-bit hash of each row's exact float bits (only a hint: a hit is always confirmed).

    Each field's bits, offset by a per-column seed, go through splitmix64's finaliser before the
    row sum.  A plain multiply-add (the first version) is linear in the bits, and fbnet-cifar's
    small whole numbers (bits only in the top ~20) made rows collide: two blocks differing in
    kernel 3/5 and widths 16/24 summed alike; every lookup then fell back to a per-row
    dictionary (a Python loop, ~0.4 s per million blocks).
    """
    z = np.ascontiguousarray(X, dtype=np.float64).view(np.uint64) + _SEED[: X.shape[1]]
    with np.errstate(over="ignore"):
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z ^= z >> np.uint64(31)
        return z.sum(axis=1, dtype=np.uint64)


class LookupTable(RegressorMixin, BaseEstimator):
    """Exact per-block medians (ms); `predict` gives NaN for blocks it never saw."""

    def fit(self, X: Any, y: Any) -> "LookupTable":
        X = _check_fields(X)
        y = np.asarray(y, dtype=np.float64).ravel()
        if len(y) != len(X):
            raise InputError(f"{len(X)} blocks but {len(y)} latencies")
        if not (np.isfinite(y).all() and (y > 0).all()):
            raise InputError("latencies must be positive finite milliseconds")
        groups: dict[bytes, list[float]] = {}
        rows: dict[bytes, np.ndarray] = {}
        for row, v in zip(X, y):
            k = row.tobytes()
            groups.setdefault(k, []).append(float(v))
            rows.setdefault(k, row)
        self.fields_ = np.array([rows[k] for k in groups]).reshape(len(groups), X.shape[1])
        self.ms_ = np.array([float(np.median(v)) for v in groups.values()])
        self._index = {k: i for i, k in enumerate(groups)}
        h = _row_hash(self.fields_)
        self._order = np.argsort(h, kind="stable")
        self._sorted = h[self._order]
        self._unique_hash = len(np.unique(h)) == len(h)
        return self

    def lookup(self, X: Any) -> np.ndarray:
        """Row index into the table for every block, -1 where not measured."""
        check_is_fitted(self, "ms_")
        X = _check_fields(X)
        if not len(self.ms_) or not len(X):
            return np.full(len(X), -1, dtype=np.int64)
        if not self._unique_hash:  # two table rows share a hash: exact per-row dictionary lookup
            get = self._index.get
            return np.fromiter((get(row.tobytes(), -1) for row in X), dtype=np.int64, count=len(X))
        # Vectorised: hash rows, binary-search the sorted table hashes, then confirm the fields match.
        pos = np.minimum(np.searchsorted(self._sorted, _row_hash(X)), len(self._sorted) - 1)
        idx = self._order[pos]
        hit = (self.fields_[idx] == X).all(axis=1)
        return np.where(hit, idx, -1)

    def predict(self, X: Any) -> np.ndarray:
        idx = self.lookup(X)
        return np.where(idx >= 0, self.ms_[np.maximum(idx, 0)] if len(self.ms_) else np.nan, np.nan)

    def __len__(self) -> int:
        return len(getattr(self, "ms_", ()))

    def to_dict(self) -> dict[str, Any]:
        check_is_fitted(self, "ms_")
        return {"fields": self.fields_.tolist(), "ms": self.ms_.tolist()}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "LookupTable":
        fields = np.asarray(d["fields"], dtype=np.float64)
        return cls().fit(fields.reshape(len(d["ms"]), -1) if len(d["ms"]) else np.zeros((0, 11)), d["ms"])
