"""A synthetic zoo for `bench_transfer`: device kinds whose latency is known exactly, for when measuring is too noisy.

The measured zoo was timed on a shared 2-core VM whose load (steal time counts as
CPU time there) made two passes over the same networks agree at ρ 0.06-0.55 only;
no model can rank such held-out timings well.  These devices follow the cost
structures the issue names, per block from its MACs, bytes and family:

- ``s-cpu``: compute- and memory-bound (k5 depthwise 15% slower per MAC), small fixed cost;
- ``s-gpu``: a fixed launch cost per non-skip block dominates (GPUs, PyTorch eager);
- ``s-accel``: a sum of per-block table entries (HW-NAS-Bench's accelerators), loosely tied to MACs;
- ``s-phone``: memory- and depthwise-bound, timed in whole milliseconds (networks take tens of ms);
- ``s-phone-outliers``: ``s-phone`` with 5% of the training timings 1.5-3x too slow.

Every timing carries 2% multiplicative noise; held-out networks are scored against
their noisy timings too (the phone's against the unrounded, outlier-free ones).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from hwnas.latency_models.fastfields import fast_networks_fields
from hwnas.latency_models.features import family_names, features
from hwnas.profiler.enumerate import arch_text, random_archs
from hwnas.search.space import SearchSpace

PRIORS = ("s-cpu", "s-gpu", "s-accel")
DERIVED = {"s-phone-outliers": "s-phone"}


def _sum(index: np.ndarray, v: np.ndarray, n: int) -> np.ndarray:
    return np.bincount(index, weights=v, minlength=n)


def synthetic_zoo(space: SearchSpace, n: int = 1200, seed: int = 16) -> dict[str, pd.DataFrame]:
    """Device name -> frame (arch, latency_ms[, train_ms]) over the same `n` random architectures."""
    archs = [arch_text(space, a) for a in random_archs(space, n, seed)]
    fields, index = fast_networks_fields(space, archs)
    f = features(fields)
    macs, moved, dw, k = f[:, 12], f[:, 14], f[:, 15], f[:, 1]
    launched = (family_names(fields) != "skip").astype(float)
    rng = np.random.default_rng(seed)
    keys, inverse = np.unique(fields, axis=0, return_inverse=True)
    table = features(keys)[:, 12] / 1e8 * rng.uniform(0.5, 2.0, len(keys)) + rng.uniform(0.005, 0.05, len(keys))
    per_block = {
        "s-cpu": np.where(k == 5, 1.15, 1.0) * macs / 2e8 + moved / 4e8 + 0.01 * launched,
        "s-gpu": 0.05 * launched + macs / 5e9 + moved / 2e9,
        "s-accel": table[inverse.reshape(-1)],
        "s-phone": 20 * (macs / 1e8 + dw / 2e7 + moved / 1e8) + 0.1 * launched,
    }
    zoo = {}
    for name, v in per_block.items():
        y = (_sum(index, v, n) + 0.05) * rng.lognormal(0.0, 0.02, n)
        zoo[name] = pd.DataFrame({"arch": archs, "latency_ms": y})
    phone = zoo["s-phone"]["latency_ms"].to_numpy()
    zoo["s-phone"]["train_ms"] = np.maximum(np.round(phone), 1.0)
    noisy = np.maximum(np.round(phone), 1.0)
    hit = rng.choice(n, n // 20, replace=False)
    noisy[hit] = np.round(noisy[hit] * rng.uniform(1.5, 3.0, len(hit)))
    zoo["s-phone-outliers"] = pd.DataFrame({"arch": archs, "latency_ms": phone, "train_ms": noisy})
    return zoo
