"""Synthetic but structured latencies for the latency-model tests (no device needed).

A block costs a fixed dispatch time plus compute (MACs) plus memory traffic,
with 2% multiplicative noise — the shape real CPU timings have — and a
device `speed` factor, so transfer between two "devices" can be checked.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from hwnas.latency_models.features import block_features
from hwnas.search.space import BlockSpec, SearchSpace, format_arch


def block_ms(specs: list[BlockSpec], rng: np.random.Generator, speed: float = 1.0, noise: float = 0.02) -> np.ndarray:
    f = block_features(specs)
    dw_penalty = np.where(f[:, 1] == 5, 1.15, 1.0)  # k5 kernels run less efficiently than their MACs say
    return speed * (0.01 + dw_penalty * f[:, 12] / 2e8 + f[:, 14] / 4e8) * np.exp(rng.normal(0, noise, len(f)))


def random_blocks(n: int, rng: np.random.Generator) -> list[BlockSpec]:
    """Off-grid inverted-residual blocks: random channels and resolutions."""
    return [BlockSpec("ir", int(rng.integers(8, 200)), int(rng.integers(8, 200)), int(rng.choice([8, 14, 16, 28, 32])),
                      stride=int(rng.choice([1, 2])), kernel=int(rng.choice([3, 5])),
                      expansion=float(rng.choice([1, 3, 6]))) for _ in range(n)]


def random_archs(space: SearchSpace, n: int, rng: np.random.Generator) -> list[str]:
    return [format_arch(rng.choice(space.candidates, space.num_layers)) for _ in range(n)]


def network_ms(space: SearchSpace, archs: list[str], rng: np.random.Generator, speed: float = 1.0,
               overhead: float = 0.05) -> np.ndarray:
    return np.array([block_ms(space.blocks(tuple(a.split("-"))), rng, speed).sum() + overhead for a in archs])


def blocks_frame(specs: list[BlockSpec], ms: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame({"block_key": [s.key for s in specs], "block_json": [s.to_json() for s in specs],
                         "median_ms": ms})
