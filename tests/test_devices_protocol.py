"""The measurement protocol: stopping rule, outlier rejection, statistics, URI policy."""

from __future__ import annotations

import itertools
import random

import numpy as np
import pytest

from hwnas.devices.protocol import Policy, iqr_filter, measure_loop, median_ci_halfwidth, summarize
from hwnas.search.space import InputError


def test_summarize_rejects_outliers_and_keeps_raw_samples():
    samples = [1.0] * 20 + [1.1] * 20 + [50.0]
    m = summarize(samples, warmup=5, settled=True)
    assert m.rejected == 1
    assert m.n == 40
    assert m.max_ms == pytest.approx(1.1)
    assert m.median_ms == pytest.approx(1.05)
    assert m.min_ms == 1.0 and m.p10_ms == pytest.approx(1.0) and m.p90_ms == pytest.approx(1.1)
    assert m.samples_ms == samples  # raw, including the outlier
    assert m.warmup == 5 and m.settled


def test_median_ci_is_distribution_free_order_statistic_interval():
    x = np.arange(1, 101, dtype=float)  # n=100: ranks 40 and 60 (50 ∓ 9.8)
    assert median_ci_halfwidth(x) == pytest.approx((60 - 40) / 2)
    assert median_ci_halfwidth([1, 2, 3]) == float("inf")
    # More samples of the same distribution → a narrower interval.
    rng = np.random.default_rng(0)
    small, big = rng.lognormal(0, 0.3, 50), rng.lognormal(0, 0.3, 5000)
    assert median_ci_halfwidth(big) < median_ci_halfwidth(small)


def test_iqr_filter_keeps_everything_when_no_outlier():
    x = [1.0, 1.1, 1.2, 1.3, 1.4]
    assert list(iqr_filter(x)) == x


def _fake_clock(durations_ms):
    """A clock that advances by the given run durations, so no real time is measured."""
    state = {"t": 0, "phase": 0}
    it = itertools.cycle(durations_ms)

    def clock():
        if state["phase"] == 1:
            state["t"] += int(next(it) * 1e6)
        state["phase"] ^= 1
        return state["t"]

    return clock


def test_loop_stops_early_when_median_is_precise():
    calls = []
    m = measure_loop(lambda: calls.append(1), Policy(warmup=3, min_runs=10, max_runs=2000, min_seconds=0),
                     clock=_fake_clock([2.0]))
    assert m.settled
    assert m.n == 10 and len(calls) == 13  # 3 warm-up + 10 timed
    assert m.median_ms == pytest.approx(2.0)


def test_loop_times_at_least_min_seconds_even_when_precise_sooner():
    # 2 ms runs are precise after 10, but 10 runs span only 20 ms: a burst of foreign
    # load could shift them all, so the loop goes on until 100 ms of runs.
    m = measure_loop(lambda: None, Policy(warmup=0, min_runs=10, min_seconds=0.1), clock=_fake_clock([2.0]))
    assert m.settled and m.n == 50
    # a precise measurement cut by the time cap is still settled: precision is what settled means
    capped = measure_loop(lambda: None, Policy(warmup=0, min_runs=10, max_runs=20, min_seconds=10),
                          clock=_fake_clock([2.0]))
    assert capped.settled and capped.n == 20


def test_loop_hits_run_cap_on_noisy_timings_and_says_unsettled():
    rng = random.Random(1)
    noisy = [rng.uniform(1.0, 3.0) for _ in range(1000)]
    m = measure_loop(lambda: None, Policy(warmup=0, min_runs=10, max_runs=40, target_rel_ci=0.001),
                     clock=_fake_clock(noisy))
    assert not m.settled
    assert len(m.samples_ms) == 40


def test_loop_uses_times_the_runner_reports_itself():
    m = measure_loop(lambda: 5.0, Policy(warmup=1, min_runs=10))
    assert m.median_ms == 5.0 and m.settled


def test_policy_from_uri():
    p = Policy.from_uri("cpu:onnxruntime?warmup=2&runs=7&max_seconds=1.5")
    assert (p.warmup, p.min_runs, p.max_runs, p.max_seconds) == (2, 7, 7, 1.5)
    assert Policy.from_uri("cpu?runs=7").max_seconds == float("inf")
    assert Policy.from_uri("cpu").warmup == 10
    assert Policy.from_uri("cpu?min_runs=5000").max_runs == 5000
    assert Policy.from_uri("cpu?max_runs=3").min_runs == 3
    assert Policy.from_uri("cpu?min_seconds=0.5").min_seconds == 0.5
    assert Policy.from_uri("cpu?runs=7").min_seconds == 0  # N runs asked for are N runs done


def test_policy_rejects_bad_values_as_user_errors():
    with pytest.raises(InputError):
        Policy(min_runs=20, max_runs=10)
    with pytest.raises(InputError):
        Policy.from_uri("cpu?max_seconds=0")
    with pytest.raises(InputError):
        Policy.from_uri("cpu?runs=abc")
    with pytest.raises(InputError):
        Policy.from_uri("cpu?min_seconds=-1")


def test_loop_stops_at_the_time_cap_and_says_unsettled():
    import time

    m = measure_loop(lambda: time.sleep(0.01), Policy(warmup=0, min_runs=10, max_runs=2000, max_seconds=0.1,
                                                      target_rel_ci=1e-9))
    assert not m.settled
    assert 3 <= len(m.samples_ms) < 2000
