"""The measurement protocol every device shares: warm-up, timed runs until the median is precise, statistics.

Why a stopping rule rather than a fixed run count: a block of 20 µs needs
hundreds of runs for a stable median, a whole network of 50 ms needs a few,
and a fixed count either wastes time on the second or under-samples the
first. Runs continue until the 95% confidence half-width of the median is
within `target_rel_ci` of the median, or a run/time cap is hit (then the
measurement is marked `settled=False`, so the store can flag it).

The confidence interval of the median is distribution-free: the order
statistics x_(j), x_(k) with j, k = n/2 ∓ 1.96·√n/2 (the normal approximation
to the binomial rank interval; latency samples are skewed, so no normality
of the samples themselves is assumed). Outliers beyond 1.5×IQR are removed
before any statistic (a preempted run on a shared core says nothing about
the block), and the raw samples are kept so any statistic can be recomputed.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, fields
from typing import Any, Callable, Sequence, Union

import numpy as np

from hwnas.devices.base import Measurement
from hwnas.devices.uri import DeviceURI, parse_uri
from hwnas.search.space import InputError

__all__ = ["Policy", "measure_loop", "summarize", "median_ci_halfwidth", "iqr_filter"]

#: z of a two-sided 95% interval.
_Z95 = 1.959963984540054
#: A time cap never cuts a measurement below this many runs (a median of one
#: run has no interval at all).
_MIN_RUNS_UNDER_TIME_CAP = 3


@dataclass(frozen=True)
class Policy:
    """How long to measure: warm-up runs, run bounds, a time cap and the precision target."""

    warmup: int = 10
    min_runs: int = 10
    max_runs: int = 2000
    max_seconds: float = 3.0
    target_rel_ci: float = 0.01
    #: Keep timing until the timed runs add up to this long, even when the median is
    #: already precise: on a 30 µs block, 10 runs span 0.3 ms, and one burst of foreign
    #: work shifts them all (TFLite's benchmark_model has `--min_secs` for the same reason).
    min_seconds: float = 0.1
    #: Warm-up stops after this long once 2 runs are done: a 1 s network needs no 10 s of warm-up,
    #: and a profile in passes warms every item once per pass.
    warmup_max_seconds: float = 0.5

    def __post_init__(self) -> None:
        if self.warmup < 0:
            raise InputError(f"warmup must be >= 0, got {self.warmup}")
        if self.min_runs < 1 or self.max_runs < 1:
            raise InputError(f"min_runs and max_runs must be >= 1, got {self.min_runs}, {self.max_runs}")
        if self.max_runs < self.min_runs:
            raise InputError(f"max_runs ({self.max_runs}) is below min_runs ({self.min_runs})")
        if not self.max_seconds > 0:
            raise InputError(f"max_seconds must be > 0, got {self.max_seconds}")
        if not self.min_seconds >= 0:
            raise InputError(f"min_seconds must be >= 0, got {self.min_seconds}")
        if not self.target_rel_ci > 0:
            raise InputError(f"target_rel_ci must be > 0, got {self.target_rel_ci}")

    @classmethod
    def from_uri(cls, uri: Union[str, DeviceURI], **defaults: Any) -> "Policy":
        """Policy from a URI's query (`warmup`, `runs`, `min_runs`, `max_runs`, `min_seconds`, `max_seconds`,
        `target_ci`: the relative CI half-width a timing must reach to count as settled).

        `runs=N` asks for exactly N timed runs (as `benchmark_model --num_runs`
        does), so it sets both bounds and lifts the time cap unless
        `max_seconds` is also given; `defaults` override the dataclass
        defaults before the URI does.
        """
        parsed = parse_uri(uri) if isinstance(uri, str) else uri
        known = {f.name for f in fields(cls)}
        unknown = set(defaults) - known
        if unknown:
            raise TypeError(f"unknown policy fields: {sorted(unknown)}")
        values: dict[str, Any] = {**defaults}
        for name in ("warmup", "min_runs", "max_runs", "min_seconds", "max_seconds"):
            v = parsed.option(name)
            if v is not None:
                values[name] = v
        if parsed.option("target_ci") is not None:
            values["target_rel_ci"] = parsed.option("target_ci")
        runs = parsed.option("runs")
        if runs is not None:
            values["min_runs"] = values["max_runs"] = runs
            values.setdefault("min_seconds", 0.0)
            if parsed.option("max_seconds") is None:
                values["max_seconds"] = math.inf  # N runs asked for are N runs done
        # An explicit min_runs above the default cap lifts the cap rather than failing.
        if "min_runs" in values and "max_runs" not in values:
            values["max_runs"] = max(values["min_runs"], cls.max_runs)
        if "max_runs" in values and "min_runs" not in values:
            values["min_runs"] = min(values["max_runs"], cls.min_runs)
        return cls(**values)


def iqr_filter(samples: Sequence[float]) -> np.ndarray:
    """Samples within [Q1 − 1.5·IQR, Q3 + 1.5·IQR] (Tukey's fences)."""
    x = np.asarray(samples, dtype=float)
    if x.size < 4:
        return x
    q1, q3 = np.percentile(x, [25, 75])
    iqr = q3 - q1
    return x[(x >= q1 - 1.5 * iqr) & (x <= q3 + 1.5 * iqr)]


def median_ci_halfwidth(samples: Sequence[float]) -> float:
    """Half-width of a distribution-free 95% CI of the median (order statistics); inf when too few samples."""
    x = np.sort(np.asarray(samples, dtype=float))
    n = x.size
    if n < 6:  # below 6 samples the rank interval covers the whole sample
        return float("inf")
    half = _Z95 * math.sqrt(n) / 2
    j = max(int(math.floor(n / 2 - half)), 1)  # 1-based ranks
    k = min(int(math.ceil(n / 2 + half)), n)
    return float(x[k - 1] - x[j - 1]) / 2


def summarize(samples_ms: Sequence[float], warmup: int = 0, settled: bool = True) -> Measurement:
    """All statistics of raw timings (ms), after IQR outlier rejection; the raw samples are kept."""
    raw = [float(s) for s in samples_ms]
    if not raw:
        raise ValueError("summarize needs at least one sample")
    kept = iqr_filter(raw)
    return Measurement(
        n=int(kept.size),
        median_ms=float(np.median(kept)),
        mean_ms=float(kept.mean()),
        std_ms=float(kept.std(ddof=1)) if kept.size > 1 else 0.0,
        p10_ms=float(np.percentile(kept, 10)),
        p90_ms=float(np.percentile(kept, 90)),
        min_ms=float(kept.min()),
        max_ms=float(kept.max()),
        ci_halfwidth_ms=median_ci_halfwidth(kept),
        rejected=len(raw) - int(kept.size),
        settled=settled,
        warmup=warmup,
        samples_ms=raw,
    )


def _precise(samples: Sequence[float], target_rel_ci: float) -> bool:
    kept = iqr_filter(samples)
    med = float(np.median(kept))
    return med > 0 and median_ci_halfwidth(kept) <= target_rel_ci * med


def measure_loop(run_once: Callable[[], float | None], policy: Policy,
                 clock: Callable[[], int] = time.perf_counter_ns) -> Measurement:
    """Warm up, then time `run_once` until the median is precise or a cap is hit.

    `run_once` returns its own elapsed milliseconds (e.g. from CUDA events)
    or None, in which case the call is timed with `clock` (perf_counter_ns).
    """

    def timed() -> float:
        t0 = clock()
        own = run_once()
        t1 = clock()
        return float(own) if own is not None else (t1 - t0) / 1e6

    warm_until = time.monotonic() + policy.warmup_max_seconds
    for i in range(policy.warmup):
        timed()
        if i >= 1 and time.monotonic() >= warm_until:
            break
    samples: list[float] = []
    deadline = time.monotonic() + policy.max_seconds
    min_ms = policy.min_seconds * 1000.0
    timed_ms = 0.0
    next_check = policy.min_runs
    while True:
        samples.append(timed())
        timed_ms += samples[-1]
        n = len(samples)
        if n >= next_check and timed_ms >= min_ms:
            if _precise(samples, policy.target_rel_ci):
                break
            # Re-check every ~5% more samples: sorting on every run would cost
            # more than a 20 µs block itself.
            next_check = n + max(1, n // 20)
        if n >= policy.max_runs:
            break
        if time.monotonic() >= deadline and n >= min(policy.min_runs, _MIN_RUNS_UNDER_TIME_CAP):
            break
    # Settled means precise, whichever bound ended the loop (a cap may land after precision).
    settled = _precise(samples, policy.target_rel_ci)
    return summarize(samples, warmup=policy.warmup, settled=settled)
