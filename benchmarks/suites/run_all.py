"""`make bench`: run every perf suite in benchmarks/, one after another.

Each suite prints its own figures (ratios measured side by side in one
run); this runner only sequences them in fresh processes, so one suite's
caches and threads never colour the next one's timings.
"""

from __future__ import annotations

import subprocess
import sys
import time

SUITES = (
    "bench_devices",
    "bench_adb",
    "bench_profiler",
    "bench_latency_models",
    "bench_search",
    "bench_search_quality",
    "bench_dmasking",
    "bench_report",
    "bench_startup",
)


def main(argv: list[str]) -> int:
    chosen = argv or list(SUITES)
    unknown = [s for s in chosen if s not in SUITES]
    if unknown:
        print(f"unknown suite(s): {', '.join(unknown)}; known: {', '.join(SUITES)}", file=sys.stderr)
        return 2
    failed = []
    for suite in chosen:
        print(f"\n=== benchmarks.suites.{suite} ===", flush=True)
        t0 = time.perf_counter()
        rc = subprocess.call([sys.executable, "-m", f"benchmarks.suites.{suite}"])
        print(f"=== {suite}: exit {rc} after {time.perf_counter() - t0:.0f} s ===", flush=True)
        if rc:
            failed.append(suite)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
