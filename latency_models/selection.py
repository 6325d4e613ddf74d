"""Which networks to time on a new device: the few whose timings teach the transfer model most.

A greedy D-optimal design over the features the transfer's per-family regime
uses (priors' per-family predictions, MACs, bytes and layer counts per family,
an offset), taken relative to the priors' predicted latency as the fit's rows
are.  Each pick maximises the gain in log det of the (ridge-regularised)
information matrix — the candidate whose features the picks so far explain
least — via Sherman–Morrison updates, O(candidates·p²) per pick.  The
candidates (random architectures of the space) come from the caller, so this
module never samples a space itself.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from hwnas.latency_models.features import family_names
from hwnas.latency_models.fastfields import fast_networks_fields
from hwnas.latency_models.network import LatencyModel
from hwnas.latency_models.transfer import TransferBlocks, _as_priors, _zeros
from hwnas.search.space import InputError, SearchSpace

__all__ = ["suggest", "design_matrix"]


def design_matrix(space: SearchSpace, priors: Sequence[LatencyModel] | LatencyModel | None,
                  archs: Sequence[Any]) -> np.ndarray:
    """(archs, p) standardised per-network features of the transfer's `corrected` regime, plus an offset."""
    priors = _as_priors(priors)
    fields, index = fast_networks_fields(space, archs)
    fam = sorted(set(family_names(fields)))
    blocks = TransferBlocks(priors, fam, _zeros(priors, fam))
    D = blocks.design(fields)
    X = np.zeros((len(archs), D.shape[1]))
    np.add.at(X, index, D)
    scale = X[:, : max(len(priors), 1)].sum(axis=1)  # priors' totals, or total MMACs (column 0 without priors)  # the priors' (or MACs') idea of each network's size
    Z = X / np.where(scale > 0, scale, 1.0)[:, None]
    Z = Z[:, np.ptp(Z, axis=0) > 1e-12]
    Z = (Z - Z.mean(axis=0)) / Z.std(axis=0)
    return np.column_stack([np.ones(len(archs)), Z, np.log(np.maximum(scale, 1e-12)) - np.log(scale.mean())])


def suggest(space: SearchSpace, priors: Sequence[LatencyModel] | LatencyModel | None, candidates: Sequence[Any],
            n: int, ridge: float = 1.0) -> list[int]:
    """Indices into `candidates` of the `n` networks to time first (greedy D-optimal, in pick order)."""
    if not isinstance(n, (int, np.integer)) or n < 1:
        raise InputError(f"n must be a positive whole number, got {n!r}")
    if n > len(candidates):
        raise InputError(f"n={n} exceeds the {len(candidates)} candidate networks")
    if not ridge > 0:
        raise InputError(f"ridge must be > 0, got {ridge}")
    Z = design_matrix(space, priors, candidates)
    Minv = np.eye(Z.shape[1]) / ridge
    gain = np.einsum("ij,jk,ik->i", Z, Minv, Z)
    picked: list[int] = []
    free = np.ones(len(Z), dtype=bool)
    for _ in range(n):
        i = int(np.argmax(np.where(free, gain, -np.inf)))
        picked.append(i)
        free[i] = False
        v = Minv @ Z[i]
        Minv -= np.outer(v, v) / (1.0 + Z[i] @ v)
        Zv = Z @ v
        gain -= Zv * Zv / (1.0 + Z[i] @ v)
    return picked
