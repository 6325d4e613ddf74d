"""Which networks to time on a new device: the few whose timings teach the transfer model most.

A greedy D-optimal design over the features the transfer's per-family regime
uses (priors' per-family predictions, MACs, bytes and layer counts per family,
an offset; for fewer than MIN_RICH picks, only the priors' totals, total MACs and
the count of launched blocks, which is all the fit then uses), taken relative to
the priors' predicted latency as the fit's rows are.  Each pick maximises the gain in log det of the (ridge-regularised)
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
from hwnas.latency_models.transfer import MIN_RICH, TransferBlocks, _as_priors, _zeros
from hwnas.search.space import InputError, SearchSpace

__all__ = ["suggest", "design_matrix"]


def design_matrix(space: SearchSpace, priors: Sequence[LatencyModel] | LatencyModel | None,
                  archs: Sequence[Any], rich: bool = True) -> np.ndarray:
    """(archs, p) standardised per-network features of the transfer's `corrected` regime, plus an offset.

    `rich=False`: only the columns of the regimes a few timings fit (the priors' totals, total
    MACs, the count of launched blocks).
    """
    priors = _as_priors(priors)
    fields, index = fast_networks_fields(space, archs)
    fam = sorted(set(family_names(fields)))
    blocks = TransferBlocks(priors, fam, _zeros(priors, fam))
    D = blocks.design(fields)
    if not rich:
        D = D[:, : len(priors) + 2]
    X = np.zeros((len(archs), D.shape[1]))
    np.add.at(X, index, D)
    scale = X[:, : max(len(priors), 1)].sum(axis=1)  # priors' totals, or total MMACs (column 0 without priors)  # the priors' (or MACs') idea of each network's size
    Z = X / np.where(scale > 0, scale, 1.0)[:, None]
    Z = Z[:, np.ptp(Z, axis=0) > 1e-12]
    Z = (Z - Z.mean(axis=0)) / Z.std(axis=0)
    return np.column_stack([np.ones(len(archs)), Z, np.log(np.maximum(scale, 1e-12)) - np.log(scale.mean())])


def suggest(space: SearchSpace, priors: Sequence[LatencyModel] | LatencyModel | None, candidates: Sequence[Any],
            n: int, ridge: float = 1.0, measured: Sequence[Any] = ()) -> list[int]:
    """Indices into `candidates` of the `n` networks to time first (greedy D-optimal, in pick order).

    `measured`: networks the device already has timings of (a second `suggest:N` into the same
    store).  The design starts from them, so the new picks add what they lack, and none of them is
    picked again.
    """
    if not isinstance(n, (int, np.integer)) or n < 1:
        raise InputError(f"n must be a positive whole number, got {n!r}")
    def key(arch: Any) -> str:  # text or the space's own form: its canonical text
        return arch if isinstance(arch, str) else space.format(arch)

    done = {key(a) for a in measured}
    fresh = [i for i, a in enumerate(candidates) if key(a) not in done]
    if n > len(fresh):
        raise InputError(f"n={n} exceeds the {len(fresh)} candidate networks not yet measured")
    if not ridge > 0:
        raise InputError(f"ridge must be > 0, got {ridge}")
    # Fewer than MIN_RICH timings fit only the regimes without per-family terms (transfer): a design
    # over all the per-family columns spends the picks on directions the fit will not use
    # (bench_transfer at n=5, suggest minus random rho: -0.001 -> +0.005 measured, -0.026 -> +0.023
    # synthetic).  The fit will have the measured timings too.
    Z_all = design_matrix(space, priors, list(candidates) + list(measured), rich=n + len(done) >= MIN_RICH)
    Z, Z_done = Z_all[: len(candidates)], Z_all[len(candidates):]
    Minv = np.eye(Z.shape[1]) / ridge
    for z in Z_done:  # the information the stored timings already give
        v = Minv @ z
        Minv -= np.outer(v, v) / (1.0 + z @ v)
    gain = np.einsum("ij,jk,ik->i", Z, Minv, Z)
    picked: list[int] = []
    free = np.zeros(len(Z), dtype=bool)
    free[fresh] = True
    for _ in range(n):
        i = int(np.argmax(np.where(free, gain, -np.inf)))
        picked.append(i)
        free[i] = False
        v = Minv @ Z[i]
        Minv -= np.outer(v, v) / (1.0 + Z[i] @ v)
        Zv = Z @ v
        gain -= Zv * Zv / (1.0 + Z[i] @ v)
    return picked
