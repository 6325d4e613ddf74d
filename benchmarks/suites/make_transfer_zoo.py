"""Measure the transfer benchmark's zoo: random fbnet-cifar networks timed end to end on this host's runtimes.

    python -m benchmarks.suites.make_transfer_zoo [--many 1200] [--few 120]

Writes benchmarks/data/transfer_zoo.csv (columns device, arch, latency_ms, min_ms), appending and
resuming: rows already there are not measured again.  The networks are the same seeded random
architectures on every device, the first `--few` of the `--many`.

Timed in the calling thread's CPU time (`time.thread_time_ns`), not wall time: the zoo was made
on a 2-core machine shared with other work at a load average of 5-8, where wall-clock medians
read 5-10x the quiet figure and ranked networks at ρ ≈ 0.  Every runtime here runs a 1-thread
model in the calling thread, so its CPU time is the latency a quiet core would show (minus what
foreign work does to the caches).  For the same reason there are no 2-thread devices (CPU time of
two threads is not a latency, and wall time was unusable), and LiteRT is left out (~50 s of
conversion a network here).

Devices: torch eager (the module called from Python: its per-layer launch cost is what a GPU's
looks like) on `--many` networks (2 warm-up, 5 timed runs); ONNX Runtime and TorchScript (traced,
frozen) on `--few` (3 warm-up, 10 timed runs; ONNX export is cached by the network's text).
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
POLICY = "warmup=3&runs=10"
EAGER_POLICY = "warmup=2&runs=5"  # eager runs take tens of ms on a busy machine: 5 runs, min and median


def _cpu_time(run: Callable[[], Any], policy: str) -> tuple[float, float]:
    m = measure_loop(run, Policy.from_uri(f"cpu:torch?{policy}"), clock=time.thread_time_ns)
    return m.median_ms, m.min_ms


def _eager(module: torch.nn.Module, shape: tuple[int, ...]) -> tuple[float, float]:
    x = torch.randn(*shape)
    module.eval()

    def run() -> None:
        module(x)

    with torch.inference_mode():
        return _cpu_time(run, EAGER_POLICY)


def _device(uri: str, module: torch.nn.Module, shape: tuple[int, ...], key: str) -> tuple[float, float]:
    """The device adapter's own prepared artifact (export, session), timed in this thread's CPU time."""
    dev = open_device(uri)
    with dev._threads():
        prepared = dev.prepare(Artifact.of(module, shape, key))
        with prepared.context():
            return _cpu_time(prepared.run, POLICY)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--many", type=int, default=1200)
    ap.add_argument("--few", type=int, default=120)
    ap.add_argument("--out", type=Path, default=ZOO)
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
    plan = [("torch-eager?threads=1", args.many), ("cpu:onnxruntime?threads=1", args.few),
            ("cpu:torch?threads=1", args.few)]
    with args.out.open("a", newline="") as f:
        w = csv.writer(f)
        if new:
            w.writerow(["device", "arch", "latency_ms", "min_ms"])
        for i, arch in enumerate(archs):
            text = arch_text(space, arch)
            net = None
            for dev, count in plan:
                if i >= count or (dev, text) in done:
                    continue
                net = net or build_network(space, arch)
                if dev.startswith("torch-eager"):
                    med, low = _eager(net, net.input_shape)
                else:
                    med, low = _device(dev, net, net.input_shape, f"zoo:{text}")
                w.writerow([dev, text, f"{med:.5f}", f"{low:.5f}"])
            f.flush()
            if i % 50 == 0:
                print(f"{time.strftime('%H:%M:%S')} {i}/{args.many}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
