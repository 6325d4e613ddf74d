"""Measure the transfer benchmark's zoo: random fbnet-cifar networks timed end to end on this host's runtimes.

    python -m benchmarks.suites.make_transfer_zoo [--space fbnet-cifar] [--many 1200] [--few 120] [--rounds 8] [--two-threads]
    python -m benchmarks.suites.make_transfer_zoo --space fbnet --many 300 --few 120 --rounds 4

Writes benchmarks/data/transfer_zoo.csv (fbnet-cifar; transfer_zoo_fbnet.csv for fbnet, whose
224x224 networks take tens of ms), one row per (device, network, round): columns
device, arch, round, median_ms (the median of the round's timed runs), min_ms.  It appends
and resumes: rows already there are not measured again.  The networks are the same seeded
random architectures on every device, the first `--few` of the `--many`.

The protocol is the profiler's (issue 17): every network is timed once per round, the
rounds are interleaved and each is shuffled, and a network's latency is the fastest of its
round medians (foreign work only slows a device; `bench_transfer._latency` combines the rounds).  Timed once in a row, as the first zoos
were, a network's figure carried whatever the machine did in that second: two passes over
the same eager networks ranked them alike at only ρ 0.73 on a quiet VM.  Interleaved
rounds put a noisy second into one round of four, and the fastest round discards it
(measured: eager, 40 networks, per-round ρ 0.79-0.92 between rounds; the fastest of two
rounds against the fastest of the other two, 0.95).  `bench_transfer.retest` reports that
split-half figure for every device: the zoo's noise ceiling.

Timed in the calling thread's CPU time (`time.thread_time_ns`), not wall time: every runtime
here runs a 1-thread model in the calling thread, so its CPU time is the latency a quiet core
would show, and a busy neighbour on the other core does not count.  2-thread devices (CPU
time of two threads is not a latency) are timed in wall time, and only with `--two-threads`
on a quiet machine.  LiteRT is left out (~50 s of conversion a network here).

Devices: torch eager (the module called from Python: its per-layer launch cost is what a
GPU's looks like) on `--many` networks; ONNX Runtime (also pinned to core 1) and TorchScript
(traced, frozen) on `--few` (their ONNX and TorchScript artifacts are cached by the network's text).  Derived
devices (coarse whole-ms timings, outliers) are made from these by
`benchmarks.suites.bench_transfer`, not measured.
"""

from __future__ import annotations

import argparse
import csv
import random
import sys
import time
from pathlib import Path
from typing import Any, Callable

import torch
from tqdm import tqdm

from hwnas.devices import open_device
from hwnas.devices.base import Artifact
from hwnas.devices.protocol import Policy, measure_loop
from hwnas.profiler.enumerate import arch_text, random_archs
from hwnas.search.blocks import build_network
from hwnas.search.space import get_space

ZOO = Path(__file__).resolve().parents[1] / "data" / "transfer_zoo.csv"
ZOOS = {"fbnet-cifar": ZOO, "fbnet": ZOO.with_name("transfer_zoo_fbnet.csv")}
COLUMNS = ["device", "arch", "round", "median_ms", "min_ms"]
EAGER = "torch-eager?threads=1"


def _time(run: Callable[[], Any], runs: int, clock: Callable[[], int]) -> tuple[float, float]:
    m = measure_loop(run, Policy.from_uri(f"cpu:torch?warmup=2&runs={runs}"), clock=clock)
    return m.median_ms, m.min_ms


def _eager(module: torch.nn.Module, shape: tuple[int, ...], runs: int) -> tuple[float, float]:
    x = torch.randn(*shape)
    module.eval()

    def run() -> None:  # None: measure_loop takes a returned value as the run's own timing
        module(x)

    with torch.inference_mode():
        return _time(run, runs, time.thread_time_ns)


def _device(uri: str, module: torch.nn.Module, shape: tuple[int, ...], key: str, runs: int) -> tuple[float, float]:
    """The device adapter's own prepared artifact (export, session), timed in this thread's CPU time
    (wall time where the runtime has 2 threads: their CPU time is not a latency)."""
    dev = open_device(uri)
    clock = time.perf_counter_ns if "threads=2" in uri else time.thread_time_ns
    with dev._threads():
        prepared = dev.prepare(Artifact.of(module, shape, key))
        with prepared.context():
            return _time(prepared.run, runs, clock)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--many", type=int, default=1200, help="networks timed on torch eager")
    ap.add_argument("--few", type=int, default=120, help="networks timed on ONNX Runtime and TorchScript")
    ap.add_argument("--space", choices=sorted(ZOOS), default="fbnet-cifar")
    ap.add_argument("--rounds", type=int, default=8, help="interleaved, shuffled rounds per device (even: split-half retest)")
    ap.add_argument("--eager-runs", type=int, default=16, help="timed runs of torch eager per round")
    ap.add_argument("--runs", type=int, default=20, help="timed runs of ONNX Runtime and TorchScript per round")
    ap.add_argument("--out", type=Path, default=None, help="default: the space's zoo under benchmarks/data")
    ap.add_argument("--two-threads", action="store_true",
                    help="also ONNX Runtime with 2 threads, in wall time (a quiet machine only: wall time is the latency)")
    args = ap.parse_args(argv)
    args.out = args.out or ZOOS[args.space]
    space = get_space(args.space)
    archs = [(arch_text(space, a), a) for a in random_archs(space, args.many, seed=16)]
    done: set[tuple[str, str, int]] = set()
    if args.out.is_file():
        with args.out.open() as f:
            rows = csv.DictReader(f)
            if rows.fieldnames != COLUMNS:
                sys.exit(f"{args.out} has columns {rows.fieldnames}, not {COLUMNS} (a zoo of the old format: move it away)")
            done = {(r["device"], r["arch"], int(r["round"])) for r in rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    new = not args.out.is_file()
    torch.set_num_threads(1)
    plan = [(EAGER, args.many, args.eager_runs), ("cpu:onnxruntime?threads=1", args.few, args.runs),
            ("cpu:torch?threads=1", args.few, args.runs), ("cpu:onnxruntime?threads=1&cores=1", args.few, args.runs)]
    if args.two_threads:
        plan.append(("cpu:onnxruntime?threads=2", args.few, args.runs))
    todo = [(r, dev, i) for r in range(args.rounds) for dev, count, _ in plan for i in range(count)
            if (dev, archs[i][0], r) not in done]
    runs = {dev: n for dev, _, n in plan}
    # each (round, device) block of the plan in its own shuffled order
    order = {dev: k for k, (dev, _, _) in enumerate(plan)}
    todo.sort(key=lambda t: (t[0], order[t[1]], random.Random(t[0] * 7919 + t[2]).random()))
    with args.out.open("a", newline="") as f:
        w = csv.writer(f)
        if new:
            w.writerow(COLUMNS)
        for r, dev, i in tqdm(todo, desc="zoo timings", unit="net", file=sys.stderr):
            text, arch = archs[i]
            net = build_network(space, arch)
            if dev == EAGER:
                med, low = _eager(net, net.input_shape, runs[dev])
            else:
                med, low = _device(dev, net, net.input_shape, f"zoo:{text}", runs[dev])
            w.writerow([dev, text, r, f"{med:.5f}", f"{low:.5f}"])
            f.flush()


if __name__ == "__main__":
    main()
