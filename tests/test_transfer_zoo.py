"""Transfer on real timings of this host's runtimes (benchmarks/data/transfer_zoo.csv, cached: no measuring).

Torch eager pays a fixed cost per launched layer that ONNX Runtime fuses away —
the GPU-like case where the old transfer made things worse than no prior.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from benchmarks.suites.bench_transfer import load_zoo
from hwnas.latency_models.fastfields import predict_many
from hwnas.latency_models.metrics import spearman
from hwnas.latency_models.transfer import NetworkTransfer
from hwnas.search.space import get_space

ZOO = Path(__file__).resolve().parents[1] / "benchmarks" / "data" / "transfer_zoo.csv"
SPACE = get_space("fbnet-cifar")


@pytest.fixture(scope="module")
def zoo():
    if not ZOO.is_file():
        pytest.skip("benchmarks/data/transfer_zoo.csv missing; python -m benchmarks.suites.make_transfer_zoo")
    frames = load_zoo(ZOO)  # the benchmark's own estimate of each network's latency from its rounds
    return frames["ort1"], frames["eager"]


def test_eager_target_from_onnxruntime_prior_at_n10_ranks_at_least_as_well_as_no_prior_and_scaled_prior(zoo):
    """Issue 16's must-show.  On the eight-round zoo (2026-12-07, quiet VM): hwnas 0.939, no prior
    0.934, the scaled prior 0.927 (means of 5 draws; 0.904 / 0.896 / 0.892 on the four-round zoo,
    whose eager timings repeated at split-half ρ 0.85 against 0.91 now).  It was a strict xfail while the
    transfer's `macs` regime (the prior left out) lacked the launched-block count that the no-prior
    fit has: eager's cost is mostly per launched layer."""
    ort, eager = zoo
    prior = NetworkTransfer(SPACE).fit(list(ort["arch"]), ort["latency_ms"].to_numpy()).model_
    archs, y = list(eager["arch"]), eager["latency_ms"].to_numpy()
    rho = {"hwnas": [], "no prior": [], "scaled prior": []}
    for draw in range(5):
        perm = np.random.default_rng(draw).permutation(len(archs))
        tr, te = perm[:10], perm[10:410]
        a_tr, a_te = [archs[i] for i in tr], [archs[i] for i in te]
        rho["hwnas"].append(spearman(NetworkTransfer(SPACE, prior).fit(a_tr, y[tr]).predict(a_te), y[te]))
        rho["no prior"].append(spearman(NetworkTransfer(SPACE).fit(a_tr, y[tr]).predict(a_te), y[te]))
        # the scaled prior ranks exactly as the prior does
        rho["scaled prior"].append(spearman(predict_many(prior, SPACE, a_te), y[te]))
    mean = {k: float(np.mean(v)) for k, v in rho.items()}
    assert mean["hwnas"] >= mean["no prior"] - 1e-9 and mean["hwnas"] >= mean["scaled prior"], mean


def test_zoo_rounds_are_combined_after_each_rounds_speed_and_a_disturbed_round_is_left_out():
    """Rounds added on another day ran at another speed as a whole; one round was disturbed throughout.

    The estimate must recover each network's latency up to one common factor: no round's speed
    may reorder networks, and the disturbed round's uneven slowdown must not leak in."""
    from benchmarks.suites.bench_transfer import DISTURBED_ROUND, _latency, round_speeds

    rng = np.random.default_rng(0)
    true = rng.uniform(0.5, 5.0, 60)
    speeds = [1.0, 1.0, 1.12, 1.12, 0.93, 1.9]  # two later days, then a round under heavy, uneven load
    rows = []
    for r, speed in enumerate(speeds):
        uneven = rng.uniform(0.4, 1.3, true.size) if r == 5 else np.zeros(true.size)
        for i, t in enumerate(true):
            rows.append({"device": "d", "arch": f"a{i}", "round": r,
                         "median_ms": t * speed * (1 + uneven[i]) * rng.uniform(1.0, 1.01)})
    raw = pd.DataFrame(rows)
    measured = round_speeds(raw, "d")
    assert measured[5] > DISTURBED_ROUND * measured.median()
    est = _latency(raw, "d")
    ratio = est.reindex([f"a{i}" for i in range(true.size)]).to_numpy() / true
    assert ratio.max() / ratio.min() < 1.02, (ratio.min(), ratio.max())
    assert spearman(est.to_numpy(), true[[int(a[1:]) for a in est.index]]) > 0.999
