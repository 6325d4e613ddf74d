"""`hwnas fit` says loudly, and --json records, when a model rests on few or flagged timings."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from latency_synth import block_ms, network_ms, random_archs
from hwnas.latency_models.trust import rests_on
from hwnas.profiler.store import Store
from hwnas.search.space import get_space

IDENT = "Synthetic CPU|onnxruntime|1.0|threads=1|cores=all"
URI = "cpu:onnxruntime?threads=1"


def _stats(ms: float) -> dict:
    return {"n": 20, "median_ms": ms, "mean_ms": ms, "std_ms": 0.01 * ms, "p10_ms": ms, "p90_ms": ms, "min_ms": ms,
            "ci_halfwidth_ms": 0.001, "settled": True}


def test_fit_on_few_networks_and_flagged_blocks_warns_in_words_and_json(tmp_path):
    from conftest import run_cli

    space = get_space("fbnet-cifar")
    rng = np.random.default_rng(0)
    specs = space.unique_blocks()
    archs = random_archs(space, 3, rng)
    path = tmp_path / "few.db"
    with Store(path) as st:
        st.add_device(IDENT, URI, {"cpu": "Synthetic CPU", "runtime_version": "1.0"}, runtime="onnxruntime", threads=1)
        for i, (spec, ms) in enumerate(zip(specs, block_ms(specs, rng))):
            st.put_block(IDENT, spec, _stats(float(ms)), flagged=i % 10 == 0)
        for arch, ms in zip(archs, network_ms(space, archs, rng)):
            st.put_network(IDENT, space.name, arch, _stats(float(ms)))
    out = tmp_path / "m.json"
    proc = run_cli("fit", "--store", str(path), "--device", URI, "--out", str(out), check=True)
    assert "WARNING: the network overhead rests on 3 reliable network timings" in proc.stdout
    assert "block timings are flagged" in proc.stdout and "one pass with no reference" in proc.stdout
    data = json.loads(run_cli("fit", "--store", str(path), "--device", URI, "--out", str(out), "--json",
                              check=True).stdout)
    trust = data["metrics"]["rests_on"]
    assert trust["networks"] == 3 and trust["blocks_flagged"] == 12 and trust["blocks_left_out"] == 12
    assert len(data["metrics"]["warnings"]) == 4  # grid not covered, flagged blocks, few networks, one pass


def test_rests_on_a_full_steady_table_says_nothing():
    blocks = pd.DataFrame({"flagged": [False] * 20, "settled": [True] * 20})
    nets = pd.DataFrame({"flagged": [False] * 12})
    passes = pd.DataFrame({"item_key": [f"k{i}" for i in range(32)] * 2, "pass_no": [1] * 32 + [2] * 32,
                           "verdict": ["accepted"] * 64})
    info = rests_on(blocks, nets, grid_blocks=20, passes=passes)
    assert info["warnings"] == [] and info["single_pass_items"] == 0
