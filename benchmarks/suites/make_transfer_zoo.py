"""Measure the transfer benchmark's zoo: random fbnet-cifar networks timed end to end on this host's runtimes.

    python -m benchmarks.suites.make_transfer_zoo [--many 300] [--few 120] [--eager-runs 30] [--runs 40]

Writes benchmarks/data/transfer_zoo.csv (columns device, arch, latency_ms, min_ms), appending and
resuming: rows already there are not measured again.  The networks are the same seeded random
architectures on every device, the first `--few` of the `--many`.

Timed in the calling thread's CPU time (`time.thread_time_ns`), not wall time: the zoo was made
on a 2-core machine shared with other work at a load average of 5-8, where wall-clock medians
read 5-10x the quiet figure and ranked networks at ρ ≈ 0.  Every runtime here runs a 1-thread
model in the calling thread, so its CPU time is the latency a quiet core would show (minus what
foreign work does to the caches).  For the same reason 2-thread devices (CPU time of two threads is not a latency) are
timed in wall time, and only with `--two-threads` on a quiet machine; LiteRT is left out (~50 s of
conversion a network here).

Devices: torch eager (the module called from Python: its per-layer launch cost is what a GPU's
looks like) on `--many` networks (2 warm-up, 30 timed runs); ONNX Runtime and TorchScript (traced,
frozen) on `--few` (2 warm-up, 40 timed runs; ONNX export is cached by the network's text).  A
device tagged `&runs=N` is a pass with another number of runs: the shipped zoo has a 5-run eager
pass over 1200 networks (`--many 1200 --few 0 --eager-runs 5`, the only device with room for
n=1000) and 10-run ORT/TorchScript passes, which also measure how well a timing repeats
(test-retest ρ).
Derived devices (coarse whole-ms timings, outliers) are made from these by
`benchmarks.suites.bench_transfer`, not measured.
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path
from typing import Any, Callable

import torch

from hwnas.devices import open_device
from hwnas.devices.base import Artifact
from hwnas.devices.protocol import Policy, measure_loop
from hwnas.profiler.enumerate import arch_text, random_archs
from hwnas.search.blocks import build_network
from hwnas.search.space import get_space

ZOO = Path(__file__).resolve().parents[1] / "data" / "transfer_zoo.csv"
RUNS, EAGER_RUNS = 40, 30  # the minimum of 40 ORT runs repeats within ~5-10% under the shared load


def _cpu_time(run: Callable[[], Any], runs: int, clock: Callable[[], int] = time.thread_time_ns) -> tuple[float, float]:
    m = measure_loop(run, Policy.from_uri(f"cpu:torch?warmup=2&runs={runs}"), clock=clock)
    return m.median_ms, m.min_ms


def _eager(module: torch.nn.Module, shape: tuple[int, ...], runs: int) -> tuple[float, float]:
    x = torch.randn(*shape)
    module.eval()

    def run() -> None:
        module(x)

    with torch.inference_mode():
        return _cpu_time(run, runs)


def _device(uri: str, module: torch.nn.Module, shape: tuple[int, ...], key: str, runs: int) -> tuple[float, float]:
    """The device adapter's own prepared artifact (export, session), timed in this thread's CPU time
    (wall time where the runtime has 2 threads: their CPU time is not a latency)."""
    dev = open_device(uri)
    clock = time.perf_counter_ns if "threads=2" in uri else time.thread_time_ns
    with dev._threads():
        prepared = dev.prepare(Artifact.of(module, shape, key))
        with prepared.context():
            return _cpu_time(prepared.run, runs, clock)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--many", type=int, default=1200)
    ap.add_argument("--few", type=int, default=120)
    ap.add_argument("--eager-runs", type=int, default=EAGER_RUNS)
    ap.add_argument("--runs", type=int, default=RUNS, help="timed runs of ONNX Runtime and TorchScript")
    ap.add_argument("--out", type=Path, default=ZOO)
    ap.add_argument("--two-threads", action="store_true",
                    help="also ONNX Runtime with 2 threads, in wall time (a quiet machine only: wall time is the latency)")
    args = ap.parse_args(argv)
    space = get_space("fbnet-cifar")
    archs = random_archs(space, args.many, seed=16)
    done: set[tuple[str, str]] = set()
    if args.out.is_file():
        with args.out.open() as f:
            done = {(r["device"], r["arch"]) for r in csv.DictReader(f)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    new = not args.out.is_file()
    torch.set_num_threads(1)
    def label(base: str, runs: int, default: int) -> str:  # another protocol is another zoo device
        return base if runs == default else f"{base}&runs={runs}"

    plan = [(label("torch-eager?threads=1", args.eager_runs, EAGER_RUNS), args.many, args.eager_runs),
            (label("cpu:onnxruntime?threads=1", args.runs, RUNS), args.few, args.runs),
            (label("cpu:torch?threads=1", args.runs, RUNS), args.few, args.runs)]
    if args.two_threads:
        plan.append((label("cpu:onnxruntime?threads=2", args.runs, RUNS), args.few, args.runs))
    with args.out.open("a", newline="") as f:
        w = csv.writer(f)
        if new:
            w.writerow(["device", "arch", "latency_ms", "min_ms"])
        for i, arch in enumerate(archs):
            text = arch_text(space, arch)
            net = None
            for dev, count, runs in plan:
                if i >= count or (dev, text) in done:
                    continue
                net = net or build_network(space, arch)
                if dev.startswith("torch-eager"):
                    med, low = _eager(net, net.input_shape, runs)
                else:
                    med, low = _device(dev.split("&")[0], net, net.input_shape, f"zoo:{text}", runs)
                w.writerow([dev, text, f"{med:.5f}", f"{low:.5f}"])
            f.flush()
            if i % 50 == 0:
                print(f"{time.strftime('%H:%M:%S')} {i}/{args.many}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
