"""Models from whole-network timings: transfer a prior device's model, or fit from scratch.

Transfer (few target timings, 10–20): the prior's per-block predictions,
summed per op family, are the features of a small regularised linear model
of the target's network latency — one scale per family, pulled towards a
shared scale by a ridge penalty, plus an offset.  From scratch (no prior):
per-family coefficients on MACs, bytes moved and block count, pulled towards
shared coefficients the same way.  Both minimise relative error (rows
weighted by 1/latency), keep scales non-negative (scipy's bounded least
squares), and choose the ridge strength by leave-one-out on the timings.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np
from scipy.optimize import lsq_linear

from hwnas.latency_models.features import family_names
from hwnas.latency_models.metrics import evaluate
from hwnas.latency_models.network import LatencyModel, LinearBlocks, ScaledBlocks, networks_fields
from hwnas.search.space import InputError, SearchSpace

__all__ = ["fit_transfer", "fit_from_networks", "LAMBDAS"]

#: Ridge strengths tried by leave-one-out.
LAMBDAS = (1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0)


def _check_targets(archs: Sequence[Any], measured: Any, need: int) -> np.ndarray:
    y = np.asarray(measured, dtype=np.float64).ravel()
    if len(y) != len(archs):
        raise InputError(f"{len(archs)} architectures but {len(y)} latencies")
    if len(y) < need:
        raise InputError(f"need at least {need} network timings, got {len(y)}")
    if not (np.isfinite(y).all() and (y > 0).all()):
        raise InputError("network latencies must be positive finite milliseconds")
    return y


def _group_sums(values: np.ndarray, groups: np.ndarray, index: np.ndarray, names: Sequence[str],
                n: int) -> np.ndarray:
    """(networks, len(names) x values' columns) sums of per-block values per group."""
    values = values.reshape(len(values), -1)
    out = np.zeros((n, len(names), values.shape[1]))
    for j, g in enumerate(names):
        m = groups == g
        for c in range(values.shape[1]):
            out[:, j, c] = np.bincount(index[m], weights=values[m, c], minlength=n)
    return out.reshape(n, -1)


def _solve(A: np.ndarray, y: np.ndarray, P: np.ndarray, lam: float, lower: np.ndarray) -> np.ndarray:
    """min Σ((A x − y)/y)² + lam·‖P x‖², x ≥ lower."""
    w = 1.0 / y
    M = np.vstack([A * w[:, None], np.sqrt(lam) * P])
    b = np.concatenate([y * w, np.zeros(len(P))])
    return lsq_linear(M, b, bounds=(lower, np.full(len(lower), np.inf))).x


def _loo_lambda(A: np.ndarray, y: np.ndarray, P: np.ndarray, lower: np.ndarray) -> tuple[float, float]:
    """The ridge strength with the least leave-one-out RMSPE, and that RMSPE."""
    best = (LAMBDAS[-1], np.inf)
    if len(y) < 3:
        return best[0], float("nan")
    for lam in LAMBDAS:
        errs = []
        for i in range(len(y)):
            keep = np.arange(len(y)) != i
            x = _solve(A[keep], y[keep], P, lam, lower)
            errs.append((A[i] @ x - y[i]) / y[i])
        score = float(100 * np.sqrt(np.mean(np.square(errs))))
        if score < best[1]:
            best = (lam, score)
    return best


def _shrink_matrix(n_groups: int, width: int) -> np.ndarray:
    """Rows (group coef − shared coef) for every group and column; shared coefs sit after the groups."""
    P = np.zeros((n_groups * width, (n_groups + 1) * width + 1))
    for g in range(n_groups):
        for c in range(width):
            P[g * width + c, g * width + c] = 1.0
            P[g * width + c, n_groups * width + c] = -1.0
    return P


def _fit(build: Callable[[np.ndarray, np.ndarray], np.ndarray], fields: np.ndarray, index: np.ndarray,
         y: np.ndarray, groups: list[str], width: int,
         extra: np.ndarray | None = None) -> tuple[np.ndarray, float, dict[str, Any]]:
    """Shared fit: design columns = group sums + shared sums + [extra columns] + offset column.

    `extra` columns (normalised so a coefficient of 1 explains the mean latency) are pulled
    towards 0 by the same ridge penalty and may go negative: corrections to a prior.
    """
    A_g = build(fields, index)
    shared = A_g.reshape(len(y), len(groups), width).sum(axis=1)
    E = np.zeros((len(y), 0)) if extra is None else extra
    A = np.column_stack([A_g, shared * 0.0, E, np.ones(len(y))])  # shared coefs act only via the penalty
    # The shared coefficients enter the prediction through no column: they are the pull target.
    P = _shrink_matrix(len(groups), width)
    P = np.hstack([P[:, :-1], np.zeros((len(P), E.shape[1])), P[:, -1:]])
    if E.shape[1]:
        ridge = np.zeros((E.shape[1], A.shape[1]))
        ridge[:, len(groups) * width + width + np.arange(E.shape[1])] = 1.0
        P = np.vstack([P, ridge])
    lower = np.concatenate([np.zeros(len(groups) * width + width), np.full(E.shape[1], -np.inf), [-np.inf]])
    lam, loo = _loo_lambda(A, y, P, lower)
    x = _solve(A, y, P, lam, lower)
    fitted = A @ x
    info = {"lambda": lam, "loo_rmspe": loo, "train": evaluate(fitted, y), "n_networks": int(len(y))}
    return x, lam, info


def fit_transfer(prior: LatencyModel, space: SearchSpace, archs: Sequence[Any], measured: Any,
                 device: str, device_uri: str | None = None) -> LatencyModel:
    """Adapt `prior` to a new device from a handful of its network timings."""
    y = _check_targets(archs, measured, 2)
    fields, index = networks_fields(space, archs)
    fam = family_names(fields)
    groups = sorted(set(fam))
    base = prior.predict_fields(fields)

    def build(f: np.ndarray, idx: np.ndarray) -> np.ndarray:
        return _group_sums(base, fam, idx, groups, len(y))

    # MACs / bytes / block-count sums let the target correct what the prior ranks wrongly
    # (another runtime's per-op costs); ridge keeps them near 0 unless the timings ask.
    D = LinearBlocks.design(fields)
    E = np.column_stack([np.bincount(index, weights=D[:, c], minlength=len(y)) for c in range(3)])
    norm = np.mean(y) / np.maximum(E.mean(axis=0), 1e-12)
    x, _, info = _fit(build, fields, index, y, groups, 1, E * norm)
    scales, default, offset = x[: len(groups)], float(x[len(groups)]), float(x[-1])
    linear = x[len(groups) + 1: len(groups) + 4] * norm
    # Block predictions carry the prior's network scale; ScaledBlocks rescales the prior's raw blocks.
    block = ScaledBlocks(prior, groups, scales * prior.scale, default * prior.scale, linear)
    info.update(kind="transfer", prior_device=prior.device)
    return LatencyModel(block, space.name, device, 1.0, offset, {"networks_fit": info}, device_uri)


def fit_from_networks(space: SearchSpace, archs: Sequence[Any], measured: Any, device: str,
                      device_uri: str | None = None) -> LatencyModel:
    """A model from whole-network timings alone: per-family MACs/bytes/count coefficients."""
    y = _check_targets(archs, measured, 3)
    fields, index = networks_fields(space, archs)
    fam = LinearBlocks.group_of(fields)
    groups = sorted(set(fam))
    D = LinearBlocks.design(fields)

    def build(f: np.ndarray, idx: np.ndarray) -> np.ndarray:
        return _group_sums(D, fam, idx, groups, len(y))

    x, _, info = _fit(build, fields, index, y, groups, 3)
    k = len(groups) * 3
    block = LinearBlocks(groups, x[:k], x[k: k + 3])
    info.update(kind="networks")
    return LatencyModel(block, space.name, device, 1.0, float(x[-1]), {"networks_fit": info}, device_uri)
