"""Per-block overhead of the ADB path (push + launch + parse + thermal reads) against the timed loop itself.

    .venv/bin/python -m benchmarks.suites.bench_adb [--repeats 5] [--runs 200]

Runs devices/adbd on loopback with the benchmark_model-compatible runner installed in a
temporary directory, so the figures are the transport's and the tool's, not a phone's:

- `loop`: what benchmark_model's timed phase spent running the block (n × mean, from its output);
- `block wall`: one block end to end as the profiler pays it: push a new .tflite, thermal read,
  launch `taskset ... benchmark_model`, parse, thermal read;
- its parts measured side by side: push, one shell round trip, one thermal read, and the
  runner's fixed launch cost (a run with --num_runs=1);
- the same shell round trip through stock adb-shell (no TCP_NODELAY) for comparison.

Every figure is the median of `--repeats` runs taken in the same process, and results are printed
as ratios to the loop. On a phone, the launch of the native binary costs far less than the
Python runner's interpreter start-up measured here; the push and round trips carry over.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch
from adb_shell.adb_device import AdbDeviceTcp
from adb_shell.auth.sign_cryptography import CryptographySigner

from hwnas.devices.adb.client import AdbPhone, load_signer
from hwnas.devices.adbd import AdbDaemon, load_authorized_keys
from hwnas.devices.base import Artifact
from hwnas.devices.uri import parse_uri
from hwnas.devices.adbd.runner import install
from hwnas.devices.export import export_tflite
from hwnas.search.blocks import build_block
from hwnas.search.space import BlockSpec


def _median_ms(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5, help="repetitions per figure (median reported)")
    ap.add_argument("--runs", type=int, default=200, help="benchmark_model --num_runs per block")
    args = ap.parse_args(argv)

    tmp = Path(tempfile.mkdtemp(prefix="bench_adb-"))
    os.environ["HOME"] = str(tmp)  # a throwaway ~/.android/adbkey, never the user's
    load_signer()
    runner = install(tmp / "bin")
    spec = BlockSpec(op="ir", cin=32, cout=32, resolution=28, kernel=3, expansion=6)
    model = Path(export_tflite(build_block(spec).eval(), spec.input_shape, path=tmp / "block.tflite"))
    print(f"block {spec.key} ({model.stat().st_size / 1024:.1f} KiB .tflite), runs={args.runs}, "
          f"repeats={args.repeats}; shared 2-core VM, loopback daemon")

    with AdbDaemon(keys=load_authorized_keys(tmp / ".android" / "adbkey.pub")) as daemon:
        uri = parse_uri(f"adb://127.0.0.1:{daemon.port}?cores=0&threads=1&warmup=10&runs={args.runs}"
                        f"&binary={runner}")
        with AdbPhone(uri) as dev:
            dev.info()
            counter = iter(range(10**6))

            def one_block() -> float:
                # A new file each time, so the push is paid as it is for every new block.
                path = tmp / f"b{next(counter)}.tflite"
                path.write_bytes(model.read_bytes() + b"\0" * 8)  # trailing bytes change the content hash only
                t0 = time.perf_counter()
                m = dev.measure(path)
                wall = (time.perf_counter() - t0) * 1000
                blocks.append((wall, m.n * m.mean_ms))
                return wall

            blocks: list[tuple[float, float]] = []
            for _ in range(args.repeats):
                one_block()
            wall = statistics.median(w for w, _ in blocks)
            loop = statistics.median(lp for _, lp in blocks)
            push = _median_ms(lambda: dev.push(model, f"push-{time.perf_counter_ns()}.tflite"), args.repeats)
            rtt = _median_ms(lambda: dev.shell("true"), max(args.repeats, 20))
            thermal = _median_ms(dev.thermal, args.repeats)
            graph = dev.prepare(Artifact.of(model))
            launch = _median_ms(lambda: dev.run(str(runner), f"--graph={graph}", "--num_runs=1", "--warmup_runs=1",
                                                "--min_secs=0", "--warmup_min_secs=0"), args.repeats)

        stock = AdbDeviceTcp("127.0.0.1", daemon.port, default_transport_timeout_s=10)
        stock.connect(rsa_keys=[CryptographySigner(str(tmp / ".android" / "adbkey"))], auth_timeout_s=10)
        rtt_stock = _median_ms(lambda: stock.shell("true"), max(args.repeats, 20))
        stock.close()

    overhead = wall - loop
    print(f"{'figure':<44}{'ms':>10}{'× loop':>10}")
    for name, value in [("timed loop (n × mean, from benchmark_model)", loop),
                        ("block wall (push+thermal+launch+parse)", wall),
                        ("overhead = wall − loop", overhead),
                        ("  push one .tflite", push),
                        ("  runner launch (--num_runs=1)", launch),
                        ("  thermal read", thermal),
                        ("  shell round trip (TCP_NODELAY)", rtt),
                        ("  shell round trip (stock adb-shell)", rtt_stock)]:
        print(f"{name:<44}{value:>10.2f}{value / loop:>10.2f}")
    print(f"stock adb-shell round trip / TCP_NODELAY round trip: {rtt_stock / rtt:.1f}×")


if __name__ == "__main__":
    torch.set_num_threads(1)
    main()
