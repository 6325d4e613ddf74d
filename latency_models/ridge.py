"""Ridge regression with closed-form leave-one-out over a whole grid of strengths, made robust.

One SVD of the (weighted, penalty-scaled) design gives every ridge strength's
fit and hat-matrix diagonal in O(n·p) each, so leave-one-out over a grid costs
about one fit: linear in the number of timings n, where refitting n times was
n².  Grids widen while the best strength sits at an edge.  Rows are
re-weighted with Huber's weights (iteratively), so a timing that is wrong by
2x moves the fit as little as a few ordinary ones; the selection score is the
leave-one-out error with every residual clipped at 3 robust standard deviations.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import lsq_linear
from threadpoolctl import threadpool_limits

from hwnas.search.space import InputError

__all__ = ["RidgeCV", "GRID", "huber_weights", "robust_scale", "clipped_rms", "stack_weights"]

#: Starting grid of ridge strengths (standardised columns); it widens past an edge that wins.
GRID = tuple(10.0 ** np.arange(-4.0, 4.01, 0.5))
#: How far the grid may widen, in decades past its starting edges.
WIDEN_LIMIT = 6.0
HUBER_C = 1.345


def robust_scale(r: np.ndarray) -> float:
    """1.4826 x median absolute deviation (σ of a normal), floored so exact fits stay finite."""
    r = np.asarray(r, dtype=np.float64)
    if len(r) == 0:
        return 1.0
    return float(max(1.4826 * np.median(np.abs(r - np.median(r))), 1e-4))


def huber_weights(r: np.ndarray, scale: float, c: float = HUBER_C) -> np.ndarray:
    """IRLS weights of Huber's loss: 1 inside c·scale, c·scale/|r| beyond."""
    a = np.abs(np.asarray(r, dtype=np.float64)) / scale
    return np.where(a <= c, 1.0, c / np.maximum(a, 1e-300))


def clipped_rms(r: np.ndarray, clip: float) -> float:
    """RMS of residuals each clipped at ±clip: an outlier counts, but only as a bad fit, not a disaster."""
    r = np.asarray(r, dtype=np.float64)
    return float(np.sqrt(np.mean(np.minimum(r * r, clip * clip))))


def stack_weights(loo: np.ndarray, clip: float = np.inf) -> np.ndarray:
    """Stacking weights (Breiman 1996): w ≥ 0, Σw = 1, minimising the clipped leave-one-out RMS of Σ wⱼ·fitⱼ.

    `loo` is (n, fits) of relative leave-one-out residuals; with weights summing to one the
    blend's residual is the weighted sum of the fits'.  The sum is held by a heavily weighted
    extra row (a penalty): scipy has no simplex-constrained least squares.
    """
    R = np.clip(np.asarray(loo, dtype=np.float64), -clip, clip)
    if R.ndim != 2 or R.shape[1] == 0:
        raise InputError(f"stacking needs an (n, fits) array of residuals, got shape {R.shape}")
    if R.shape[1] == 1:
        return np.ones(1)
    big = 1e3 * max(float(np.sqrt(np.mean(R * R))), 1e-6) * np.sqrt(len(R))
    A = np.vstack([R, np.full((1, R.shape[1]), big)])
    b = np.concatenate([np.zeros(len(R)), [big]])
    w = lsq_linear(A, b, bounds=(0.0, np.inf)).x
    w[w < 1e-6] = 0.0
    return w / w.sum()


@dataclass
class RidgeCV:
    """min Σ ωᵢ (zᵢ·θ − tᵢ)² + λ Σ penⱼ θⱼ², λ chosen by closed-form leave-one-out.

    `pen` multiplies λ per column (a tiny value leaves a column all but free).
    `robust` runs Huber IRLS (3 rounds); `clip` (relative residual units) caps each
    leave-one-out residual in the score.  After `fit`: `coef_`, `lambda_`, `score_`
    (clipped leave-one-out RMS), `loo_` (leave-one-out residuals), `weights_`, `edge_`
    (True when the widened grid still ended at an edge: the data asks for more or less
    regularisation than tried).
    """

    pen: np.ndarray | None = None
    robust: bool = True
    clip: float = np.inf
    grid: tuple[float, ...] = GRID

    def _svd(self, Z: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Thin SVD of the weighted, penalty-scaled design via the smaller Gram matrix, null directions dropped.

        An eigendecomposition of the p×p (or n×n) Gram matrix costs a few matrix products, several
        times less than LAPACK's SVD of the tall matrix; ridge never needs the precision it loses.
        """
        A = Z * np.sqrt(w)[:, None] / self._sq[None, :]
        if A.shape[0] >= A.shape[1]:
            e, V = np.linalg.eigh(A.T @ A)
            keep = e > max(e.max(initial=0.0), 1e-300) * 1e-12
            s = np.sqrt(e[keep])
            V = V[:, keep]
            return (A @ V) / s, s, V.T
        e, U = np.linalg.eigh(A @ A.T)
        keep = e > max(e.max(initial=0.0), 1e-300) * 1e-12
        s = np.sqrt(e[keep])
        U = U[:, keep]
        return U, s, ((A.T @ U) / s).T

    def _path(self, dec: tuple[np.ndarray, np.ndarray, np.ndarray], t: np.ndarray, w: np.ndarray,
              lams: np.ndarray) -> np.ndarray:
        """Leave-one-out residuals (len(lams), n) for every λ, from one decomposition.

        1 − h and t − f are summed from their small terms (λ/(s²+λ)), not as differences of
        numbers near 1, so they stay exact where the fit interpolates (more columns than rows).
        """
        U, s, _ = dec
        sw = np.sqrt(w)
        tw = t * sw
        ut = U.T @ tw
        s2 = s * s
        U2 = U * U
        if U.shape[1] >= len(t):  # full row rank: every row is reachable, exactly (no rounding residue)
            out_res, out_lev = np.zeros(len(t)), np.zeros(len(t))
        else:  # the part of the targets (and of each row's leverage) no column reaches
            out_res, out_lev = tw - U @ ut, np.maximum(1.0 - U2.sum(axis=1), 0.0)
        out = np.empty((len(lams), len(t)))
        for i, lam in enumerate(lams):
            keep = lam / (s2 + lam)
            res = out_res + U @ (keep * ut)
            lev = np.maximum(out_lev + U2 @ keep, 1e-15)
            out[i] = res / lev / sw
        return out

    def _solve(self, dec: tuple[np.ndarray, np.ndarray, np.ndarray], t: np.ndarray, w: np.ndarray,
               lam: float) -> np.ndarray:
        U, s, Vt = dec
        theta = Vt.T @ ((s / (s * s + lam)) * (U.T @ (t * np.sqrt(w))))
        return theta / self._sq

    def _choose(self, dec: tuple[np.ndarray, np.ndarray, np.ndarray], t: np.ndarray,
                w: np.ndarray) -> tuple[float, np.ndarray, bool]:
        lams = np.asarray(self.grid, dtype=np.float64)
        lo, hi = np.log10(lams[0]), np.log10(lams[-1])
        tried: dict[float, np.ndarray] = {}
        edge = False
        while True:
            new = [lam for lam in lams if lam not in tried]
            if new:
                for lam, r in zip(new, self._path(dec, t, w, np.asarray(new))):
                    tried[lam] = r
            keys = sorted(tried)
            scores = [clipped_rms(tried[k], self.clip) for k in keys]
            best = int(np.nanargmin(scores))
            edge = best in (0, len(keys) - 1)
            step = np.log10(keys[1] / keys[0]) if len(keys) > 1 else 1.0
            if best == 0 and np.log10(keys[0]) > lo - WIDEN_LIMIT:
                lams = 10.0 ** (np.log10(keys[0]) - step * np.arange(1, 9))
            elif best == len(keys) - 1 and np.log10(keys[-1]) < hi + WIDEN_LIMIT:
                lams = 10.0 ** (np.log10(keys[-1]) + step * np.arange(1, 9))
            else:
                return keys[best], tried[keys[best]], edge

    def fit(self, Z: np.ndarray, t: np.ndarray) -> "RidgeCV":
        Z = np.asarray(Z, dtype=np.float64)
        t = np.asarray(t, dtype=np.float64).ravel()
        if Z.ndim != 2 or len(Z) != len(t):
            raise InputError(f"design has {len(Z)} rows but there are {len(t)} targets")
        if len(t) < 2:
            raise InputError(f"need at least 2 rows to cross-validate, got {len(t)}")
        pen = np.ones(Z.shape[1]) if self.pen is None else np.asarray(self.pen, dtype=np.float64)
        if pen.shape != (Z.shape[1],) or not (pen > 0).all():
            raise InputError(f"pen must hold {Z.shape[1]} positive values")
        self._sq = np.sqrt(pen)
        w = np.ones(len(t))
        for _ in range(3 if self.robust else 1):
            with threadpool_limits(1, "blas"):  # multithreaded BLAS on a busy machine is ~10x slower here
                dec = self._svd(Z, w)
                lam, loo, edge = self._choose(dec, t, w)
                coef = self._solve(dec, t, w, lam)
            if not self.robust:
                break
            r = Z @ coef - t
            w = huber_weights(r, robust_scale(r))
        self.coef_, self.lambda_, self.loo_, self.weights_, self.edge_ = coef, float(lam), loo, w, bool(edge)
        self.score_ = clipped_rms(loo, self.clip)
        return self
