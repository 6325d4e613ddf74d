"""Search step cost: one DNAS weight step of the FBNet supernet vs the largest single candidate network.

Both see the same batch (digits upsampled to the space's input size); the
figure is the ratio of medians measured side by side in one run, alternating
supernet and network steps so a shared machine's load hits both alike.

    .venv/bin/python -m benchmarks.suites.bench_search [--space fbnet-cifar] [--batch 16] [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch
from torch.nn import functional as F

from hwnas.search.blocks import build_network
from hwnas.search.fbnet.cost import mac_cost
from hwnas.search.data import load_data, normalize
from hwnas.search.space import get_space
from hwnas.search.build import build_supernet


def _step(model: torch.nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor) -> float:
    t0 = time.perf_counter()
    opt.zero_grad(set_to_none=True)
    F.cross_entropy(model(x), y).backward()
    opt.step()
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--space", default="fbnet-cifar")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    space = get_space(args.space)
    data = load_data("digits", space.input_resolution)
    x, y = normalize(data.train_x[:args.batch]), data.train_y[:args.batch]
    supernet = build_supernet(space, mac_cost(space)).train()
    largest = ["k5_e6"] * space.num_layers  # the dearest candidate at every layer
    net = build_network(space, largest).train()
    s_opt = torch.optim.SGD(supernet.weight_parameters(), lr=0.01, momentum=0.9)
    n_opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
    _step(supernet, s_opt, x, y), _step(net, n_opt, x, y)  # warm-up (allocator, oneDNN primitives)
    sup, big = [], []
    for _ in range(args.repeats):
        sup.append(_step(supernet, s_opt, x, y))
        big.append(_step(net, n_opt, x, y))
    out = {"space": args.space, "batch": args.batch, "threads": args.threads, "repeats": args.repeats,
           "supernet_step_s": statistics.median(sup), "largest_net_step_s": statistics.median(big)}
    out["ratio"] = out["supernet_step_s"] / out["largest_net_step_s"]
    print(json.dumps(out, indent=2))
    print(f"supernet step / largest candidate network step ({args.space}, batch {args.batch}): "
          f"{out['ratio']:.2f}x")
    return out


if __name__ == "__main__":
    main()
