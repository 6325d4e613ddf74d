"""The race benchmark's parallel training stage: every network trained once, results cached as they come."""

from __future__ import annotations

import argparse
import json

import pytest

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
