"""The race benchmark's parallel training stage: every network trained once, results cached as they come."""

from __future__ import annotations

import argparse
import json
import statistics

import pytest
from hypothesis import given
from hypothesis import strategies as st

from benchmarks.suites import search_fashion

ARCHS = ["-".join(["skip"] * 22), "-".join(["k3_e1"] + ["skip"] * 21)]


def _args(**kw) -> argparse.Namespace:
    base = dict(data="digits", train_limit=64, test_limit=32, train_epochs=1, train_batch=32, train_lr=0.05,
                seeds=2, width_mult=0.25, threads=1, jobs=2)
    return argparse.Namespace(**{**base, **kw})


@pytest.mark.slow
def test_parallel_training_caches_each_result_and_resumes(tmp_path, monkeypatch):
    paths = {"p30": tmp_path / "p30.json", "p70": tmp_path / "p70.json"}
    # p70 already holds one result (a stopped run): it is reused, not retrained, and shared with p30
    paths["p70"].write_text(json.dumps({ARCHS[1]: [0.5, 0.5]}))
    search_fashion.train_all({"p30": ARCHS, "p70": ARCHS[1:]}, paths, _args())
    p30, p70 = (json.loads(p.read_text()) for p in paths.values())
    assert set(p30) == set(ARCHS) and p70 == {ARCHS[1]: [0.5, 0.5]} and p30[ARCHS[1]] == [0.5, 0.5]
    assert len(p30[ARCHS[0]]) == 2 and all(0 <= a <= 1 for a in p30[ARCHS[0]])

    def boom(*a, **k):  # nothing left to train: no pool is started at all
        raise AssertionError("retrained a cached network")

    monkeypatch.setattr(search_fashion, "_train_in_worker", boom)
    search_fashion.train_all({"p30": ARCHS, "p70": ARCHS}, paths, _args())
    assert json.loads(paths["p70"].read_text())[ARCHS[0]] == p30[ARCHS[0]]


def test_resolution_splits_the_spread_of_means_into_architecture_and_seed_noise():
    # seeds a-d, a, a+d: seed variance d², so a 3-seed mean carries noise variance d²/3
    d, centres = 0.03, [0.70, 0.75, 0.80, 0.85]
    r = search_fashion.resolution([[c - d, c, c + d] for c in centres])
    spread = statistics.variance(centres)
    assert r["noise_sd"] == pytest.approx((d * d / 3) ** 0.5)
    assert r["arch_sd"] == pytest.approx((spread - d * d / 3) ** 0.5)
    # the same seeds for every architecture: all of the (zero) spread is noise, none architecture
    same = search_fashion.resolution([[0.7, 0.8, 0.75]] * 5)
    assert same["arch_sd"] == 0.0 and same["noise_share"] == 1.0
    assert search_fashion.resolution([[0.7, 0.8]])["arch_sd"] is None  # one architecture: nothing to split


@given(st.lists(st.lists(st.floats(0, 1), min_size=2, max_size=4), min_size=2, max_size=12),
       st.floats(-0.5, 0.5))
def test_resolution_is_bounded_and_ignores_a_common_shift(accs, shift):
    r = search_fashion.resolution(accs)
    assert r["arch_sd"] >= 0 and r["noise_sd"] >= 0 and 0 <= r["noise_share"] <= 1
    moved = search_fashion.resolution([[a + shift for a in row] for row in accs])
    assert moved["arch_sd"] == pytest.approx(r["arch_sd"], abs=1e-6)
    assert moved["noise_sd"] == pytest.approx(r["noise_sd"], abs=1e-6)


def test_race_power_is_chance_when_architectures_do_not_differ_and_high_when_they_do():
    # no architecture spread: a "top" network is as good as any, so it wins about 1 in n+1
    assert search_fashion.race_power(0.0, 0.01, 20, draws=20_000) == pytest.approx(1 / 21, abs=0.01)
    assert search_fashion.race_power(0.05, 0.001, 20, draws=20_000) > 0.9  # seeds agree: the best network wins


def test_race_resolution_adds_the_power_and_says_nothing_for_a_single_network():
    rows = [[0.70, 0.72, 0.71], [0.80, 0.79, 0.81], [0.75, 0.74, 0.76]]
    r = search_fashion.race_resolution(rows)
    assert r["arch_sd"] > r["noise_sd"] and 0 <= r["power_top_0.1pct"] <= 1
    assert search_fashion.race_resolution([[0.7, 0.8]])["power_top_0.1pct"] is None
