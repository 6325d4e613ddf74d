"""Measure the transfer benchmark's zoo: random fbnet-cifar networks timed end to end on this host's runtimes.

    python -m benchmarks.suites.make_transfer_zoo [--many 1200] [--few 300] [--litert 0]

Writes benchmarks/data/transfer_zoo.csv (columns device, arch, latency_ms, min_ms), appending and
resuming: rows already there are not measured again.  Short protocol (3 warm-up runs, 10 timed
runs, median) so the whole zoo takes minutes on a shared 2-core machine; the networks are the
same seeded random architectures on every device, the first `--few` of the `--many`.

Devices: torch eager (the module called from Python, no TorchScript: its per-layer launch cost
is what a GPU's looks like) at 1 thread on `--many` networks (5 runs); ONNX Runtime at 1 thread on
`--few` and at 2 threads on `--two` (each network is exported to ONNX once, 1-8 s on a busy
machine); torch eager at 2 threads (`--eager-two`) and LiteRT (`--litert`, ~50 s of conversion a
network here) are off by default: on the shared 2-core machine the zoo was made on, 2-thread
eager runs took 0.1-1.6 s with a 2x median/min spread, and LiteRT did not fit the time budget.
`min_ms` is kept beside the median: under foreign load it is the steadier statistic.  Derived devices (coarse whole-ms timings, outliers)
are made from these by `benchmarks.suites.bench_transfer`, not measured.
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path

import torch

from hwnas.devices.protocol import Policy, measure_loop
from hwnas.devices import open_device
from hwnas.profiler.enumerate import arch_text, random_archs
from hwnas.search.blocks import build_network
from hwnas.search.space import get_space

ZOO = Path(__file__).resolve().parents[1] / "data" / "transfer_zoo.csv"
POLICY = "warmup=3&runs=10"
EAGER_POLICY = "warmup=2&runs=5"  # eager runs take tens of ms on a busy machine: 5 runs, min and median


def _eager(module: torch.nn.Module, shape: tuple[int, ...], threads: int) -> tuple[float, float]:
    torch.set_num_threads(threads)
    x = torch.randn(*shape)
    module.eval()

    def run() -> None:
        module(x)

    with torch.inference_mode():
        m = measure_loop(run, Policy.from_uri(f"cpu:torch?{EAGER_POLICY}"))
    return m.median_ms, m.min_ms


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--many", type=int, default=1200)
    ap.add_argument("--few", type=int, default=120)
    ap.add_argument("--two", type=int, default=120, help="networks timed by ONNX Runtime at 2 threads")
    ap.add_argument("--eager-two", type=int, default=0, help="networks timed by torch eager at 2 threads")
    ap.add_argument("--litert", type=int, default=0)
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
    plan = [("torch-eager?threads=1", args.many), ("torch-eager?threads=2", args.eager_two),
            ("cpu:onnxruntime?threads=1", args.few), ("cpu:onnxruntime?threads=2", args.two),
            ("cpu:litert?threads=1", args.litert)]
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
                    med, low = _eager(net, net.input_shape, int(dev[-1]))
                else:
                    m = open_device(f"{dev}&{POLICY}").measure(net, net.input_shape, key=f"zoo:{text}")
                    med, low = m.median_ms, m.min_ms
                w.writerow([dev, text, f"{med:.5f}", f"{low:.5f}"])
            f.flush()
            if i % 50 == 0:
                print(f"{time.strftime('%H:%M:%S')} {i}/{args.many}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
