"""Steady loop vs the plain loop, side by side: fresh stores, alternating, N repetitions (issue 17 cost goal).

    .venv/bin/python -m benchmarks.suites.bench_steady_cost [NETWORKS] [REPS]    # defaults 30 3

Each repetition profiles fbnet-cifar's blocks plus NETWORKS random networks on
`cpu:onnxruntime?threads=1` into a fresh store, once with `Steadiness.off()` (the plain
loop) and once with the defaults; the ratio of the two is the mechanisms' cost.  The
first repetition also warms the export cache (its ratio reads low).
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time

from hwnas.api import profile_devices

PLAIN = {"passes": 1, "reference": False, "selfcheck": False}


def _profile(networks: int, steady: bool) -> tuple[float, object]:
    store = os.path.join(tempfile.mkdtemp(), "s.db")
    t0 = time.perf_counter()
    summary = profile_devices("fbnet-cifar", ["cpu:onnxruntime?threads=1"], store, archs=f"random:{networks}",
                              seed=3, **({} if steady else PLAIN))[0]
    return time.perf_counter() - t0, summary


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    networks = int(args[0]) if args else 30
    reps = int(args[1]) if len(args) > 1 else 3
    seconds: dict[str, list[float]] = {"plain": [], "steady": []}
    for rep in range(reps):
        for mode in ("plain", "steady"):
            wall, summary = _profile(networks, mode == "steady")
            seconds[mode].append(wall)
            st = summary.steady or {}
            print(f"rep {rep} {mode}: {wall:.1f} s, flagged {len(summary.flagged)}, requeued {st.get('requeued')}, "
                  f"extra {st.get('extra_pass_items')}, refs {st.get('reference_timings')}, "
                  f"load {os.getloadavg()[0]:.2f}", flush=True)
    ratios = [s / p for p, s in zip(seconds["plain"], seconds["steady"])]
    print("plain", [round(x, 1) for x in seconds["plain"]], "steady", [round(x, 1) for x in seconds["steady"]])
    print(f"steady/plain per rep {[round(x, 2) for x in ratios]}, median {statistics.median(ratios):.2f}, "
          f"ratio of medians {statistics.median(seconds['steady']) / statistics.median(seconds['plain']):.2f}")


if __name__ == "__main__":
    main()
