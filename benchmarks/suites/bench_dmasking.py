"""Peak memory and step time of FBNetV2's masked supernet vs a naive one-conv-per-width supernet.

    .venv/bin/python -m benchmarks.suites.bench_dmasking [--options 1 4 8 16 32] [--repeats 3] [--json]

For K = 1, 4, 8, 16, 32 channel options per layer, both supernets train the
same network (stem, 3 searchable k3_e3 layers at up to 32 channels on 16x16
maps, pooled head; batch 32): the masked one (`hwnas.search.fbnetv2.supernet`) holds one
convolution stack per layer at the widest width and multiplies its output by
Gumbel-weighted channel masks; the naive one holds one block per width option
and sums their zero-padded outputs.  Each (implementation, K) runs in a fresh
subprocess: peak memory is that process's `ru_maxrss` high-water mark after the
training steps minus the mark just before the model is built (so it covers
weights, gradients, optimizer state and activations, not the interpreter or
torch); step time is the median of the timed steps.  Figures are medians over
`--repeats` subprocesses and are printed as ratios to K = 1 of the same
implementation, measured side by side in one run.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from typing import Any

LAYERS, WIDTH, RES, BATCH = 3, 32, 16, 32


def _options(k: int) -> tuple[int, ...]:
    step = WIDTH // k
    return tuple(range(step, WIDTH + 1, step))


def _space(k: int):
    from hwnas.search.fbnetv2.space import ChannelSearchSpace

    opts = _options(k)
    return ChannelSearchSpace(
        name=f"bench-k{k}", input_resolution=RES, stem_channels=WIDTH, stem_stride=1, stages=((WIDTH, LAYERS, 1),),
        head_channels=256, num_classes=10, candidates=("k3_e3",), head_act="hswish", pooled_head=True,
        channel_options=(opts,) * LAYERS, stem_channel_options=(WIDTH,), resolutions=(RES,), stage_acts=("relu",))


def _naive(k: int):
    """One block per width option, outputs zero-padded to the widest and summed with Gumbel weights."""
    import torch
    from torch import nn
    from torch.nn import functional as F

    from hwnas.search.blocks import build_block
    from hwnas.search.space import BlockSpec

    space = _space(k)

    class NaiveLayer(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.ops = nn.ModuleList(build_block(BlockSpec("ir", WIDTH, c, RES, kernel=3, expansion=3.0))
                                     for c in _options(k))
            self.theta = nn.Parameter(torch.zeros(k))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            w = F.gumbel_softmax(self.theta, tau=5.0)
            return sum(wi * F.pad(op(x), (0, 0, 0, 0, 0, WIDTH - op.pwl[0].out_channels))
                       for wi, op in zip(w, self.ops))

    head = space.head_blocks(WIDTH, RES)
    return nn.Sequential(build_block(space.stem_block()), *[NaiveLayer() for _ in range(LAYERS)],
                         *[build_block(s) for s in head])


def worker(impl: str, k: int, steps: int) -> dict[str, Any]:
    """Build one supernet, train `steps` (+1 warm-up) steps; report peak memory delta and step time."""
    import torch

    from hwnas.search.fbnetv2.supernet import DMaskingSupernet

    torch.manual_seed(0)
    x = torch.randn(BATCH, 3, RES, RES)
    y = torch.randint(0, 10, (BATCH,))
    warm = torch.nn.Conv2d(3, 8, 3)  # torch's lazy kernel/allocator set-up stays out of the delta
    warm(x).sum().backward()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    model = DMaskingSupernet(_space(k)) if impl == "masked" else _naive(k)
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    times = []
    for i in range(steps + 1):
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
        if i:
            times.append((time.perf_counter() - t0) * 1e3)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    return {"impl": impl, "k": k, "peak_mb": (peak - before) / 1024, "step_ms": statistics.median(times),
            "params": sum(p.numel() for p in model.parameters())}


def run(options: list[int], repeats: int, steps: int) -> list[dict[str, Any]]:
    rows = []
    for impl in ("masked", "naive"):
        for k in options:
            runs = []
            for _ in range(repeats):
                proc = subprocess.run([sys.executable, "-m", "benchmarks.suites.bench_dmasking", "--worker", impl, str(k),
                                       "--steps", str(steps)], capture_output=True, text=True, check=True)
                runs.append(json.loads(proc.stdout.strip().splitlines()[-1]))
            rows.append({"impl": impl, "k": k, "params": runs[0]["params"],
                         "peak_mb": statistics.median(r["peak_mb"] for r in runs),
                         "step_ms": statistics.median(r["step_ms"] for r in runs)})
    for impl in ("masked", "naive"):
        base = next(r for r in rows if r["impl"] == impl and r["k"] == options[0])
        for r in rows:
            if r["impl"] == impl:
                r["mem_ratio"] = r["peak_mb"] / base["peak_mb"]
                r["time_ratio"] = r["step_ms"] / base["step_ms"]
    return rows


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--options", type=int, nargs="+", default=[1, 4, 8, 16, 32])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--worker", nargs=2, metavar=("IMPL", "K"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args.worker[0], int(args.worker[1]), args.steps)))
        return
    if any(WIDTH % k for k in args.options):
        ap.error(f"options must divide {WIDTH}")
    rows = run(sorted(args.options), args.repeats, args.steps)
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    print(f"{LAYERS} layers, up to {WIDTH} channels, {RES}x{RES}, batch {BATCH}; medians of {args.repeats} "
          f"subprocesses x {args.steps} steps; ratios to K={min(args.options)} of the same implementation")
    print(f"{'impl':7} {'K':>3} {'params':>9} {'peak MB':>9} {'mem ratio':>9} {'step ms':>9} {'time ratio':>10}")
    for r in rows:
        print(f"{r['impl']:7} {r['k']:>3} {r['params']:>9} {r['peak_mb']:>9.1f} {r['mem_ratio']:>9.2f} "
              f"{r['step_ms']:>9.1f} {r['time_ratio']:>10.2f}")


if __name__ == "__main__":
    main()
