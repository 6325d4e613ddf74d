"""Profiling overhead: wall time of a full space profile divided by the time inside its timed loops.

    .venv/bin/python -m benchmarks.suites.bench_profiler [--space fbnet-cifar] [--device URI] [--repeats 3] [--limit N]

Each repeat profiles the space twice into fresh stores, side by side: once
with an empty export cache (cold: every block exported to ONNX) and once
with the cache the cold run filled (warm).  The figure is wall / loop, where
loop = the time the device spent in warm-up and timed runs (what a perfect
profiler would cost); goals: <= 2.0 cold, <= 1.1 warm.  Medians over repeats.
Also: the store's cost per measurement (one WAL transaction each).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from hwnas.profiler.enumerate import block_items
from hwnas.profiler.store import Store
from hwnas.profiler.worker import run_local
from hwnas.search.space import get_space


def profile_once(space: str, device: str, cache: Path, limit: int | None, workdir: Path, tag: str) -> dict:
    os.environ["HWNAS_CACHE_DIR"] = str(cache)
    items = block_items(get_space(space).unique_blocks())[:limit]
    with Store(workdir / f"{tag}.db") as st:
        t0 = time.perf_counter()
        (summary,) = run_local([device], st, items)
        wall = time.perf_counter() - t0
    if summary.failed:
        raise SystemExit(f"profile failed: {summary.failed}")
    return {"wall_s": wall, "loop_s": summary.loop_s, "ratio": wall / summary.loop_s, "blocks": summary.measured,
            "retried": summary.retried, "device_s": summary.device_s, "device_ratio": summary.device_s / summary.loop_s,
            "own_ratio": wall / summary.device_s}


def store_write_ms(workdir: Path, n: int = 300) -> float:
    """Median ms of one block write (its own transaction), like the profiler does after each block."""
    specs = get_space("fbnet").unique_blocks()
    stats = {"n": 100, "median_ms": 1.0, "mean_ms": 1.0, "std_ms": 0.1, "p10_ms": 0.9, "p90_ms": 1.1,
             "min_ms": 0.8, "ci_halfwidth_ms": 0.01, "settled": True}
    with Store(workdir / "writes.db") as st:
        st.add_device("bench", "bench", {})
        times = []
        for i in range(n):
            t0 = time.perf_counter()
            st.put_block("bench", specs[i % len(specs)], stats)
            times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--space", default="fbnet-cifar")
    ap.add_argument("--device", default="cpu:onnxruntime?threads=1")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--limit", type=int, default=None, help="profile only the first N blocks (quick check)")
    args = ap.parse_args()
    cold, warm = [], []
    with tempfile.TemporaryDirectory(prefix="hwnas-bench-profiler-") as tmp:
        work = Path(tmp)
        for r in range(args.repeats):
            cache = work / f"cache{r}"
            cold.append(profile_once(args.space, args.device, cache, args.limit, work, f"cold{r}"))
            warm.append(profile_once(args.space, args.device, cache, args.limit, work, f"warm{r}"))
            print(f"repeat {r + 1}: cold {cold[-1]['ratio']:.2f} ({cold[-1]['wall_s']:.1f} s wall / "
                  f"{cold[-1]['loop_s']:.1f} s loop), warm {warm[-1]['ratio']:.2f} ({warm[-1]['wall_s']:.1f} s / "
                  f"{warm[-1]['loop_s']:.1f} s)", flush=True)
        write = store_write_ms(work)

    def med(rows: list[dict], key: str) -> float:
        return statistics.median(r[key] for r in rows)

    n = cold[0]["blocks"]
    print(f"\nprofiling overhead, {args.space} ({n} blocks) on {args.device}, medians of {args.repeats}:")
    print(f"  cold export cache: wall / loop = {med(cold, 'ratio'):.2f}  (goal <= 2.0; "
          f"{med(cold, 'wall_s'):.1f} s wall, {med(cold, 'loop_s'):.1f} s in timed loops)")
    print(f"  warm export cache: wall / loop = {med(warm, 'ratio'):.2f}  (goal <= 1.1; "
          f"{med(warm, 'wall_s'):.1f} s wall, {med(warm, 'loop_s'):.1f} s in timed loops)")
    for name, rows in (("cold", cold), ("warm", warm)):
        print(f"  {name}: inside Device.measure / loop = {med(rows, 'device_ratio'):.2f} (export/load + the protocol's "
              f"statistics), wall / inside Device.measure = {med(rows, 'own_ratio'):.3f} (the profiler's own share)")
    print(f"  cold / warm wall = {med(cold, 'wall_s') / med(warm, 'wall_s'):.2f}")
    print(f"  re-queued (unsettled) blocks per run: cold {med(cold, 'retried'):.0f}, warm {med(warm, 'retried'):.0f}")
    per_block = med(warm, "wall_s") / n * 1000
    print(f"  store write (one WAL transaction) = {write:.2f} ms = {write / per_block:.4f} x a warm block's wall time")


if __name__ == "__main__":
    main()
