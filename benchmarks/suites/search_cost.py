"""What a search step costs: sampled-path vs plain network vs all-path, memory parts, threads under load.

Part of bench_search_quality (`--part cost`).  Every figure comes from one run:

- Time: for each trial one seed draws one Gumbel sample; the sampled-path
  supernet step (forward, backward, SGD on the weights) is timed, then the
  plain network of the very architecture that sample chose, then the all-path
  (FBNet mixture) step.  Times are this process's CPU seconds at one intra-op
  thread, so the ratios are CPU work per step and not the shared machine's
  queueing; wall seconds are kept beside them.
- Memory, per step: parameters, gradients and SGD momentum (the
  weights/optimizer-state part), plus every tensor autograd saves for the
  backward pass (the activation part, counted once per storage through
  `saved_tensors_hooks`).  Their sum is the step's peak of live tensors.
- Threads: wall time of sampled-path steps at 1 and at all cores, first as
  the machine is, then with one busy-loop process per core started by this
  run; the slowdown is loaded ÷ as-is.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import statistics
import time
from typing import Any, Callable

import torch
from torch import nn
from torch.nn import functional as F

from hwnas.search.blocks import build_network
from hwnas.search.build import build_supernet
from hwnas.search.distributed import available_cores
from hwnas.search.fbnet.cost import mac_cost
from hwnas.search.space import SearchSpace, get_space

__all__ = ["cost_ratios", "thread_slowdown"]


def _sgd(params: list[nn.Parameter]) -> torch.optim.SGD:
    return torch.optim.SGD(params, lr=0.01, momentum=0.9, weight_decay=1e-4)


def _step(net: nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor) -> dict[str, int]:
    """One training step; returns the bytes autograd saved for backward (activations)."""
    seen: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        try:
            seen.setdefault(t.untyped_storage().data_ptr(), t.untyped_storage().nbytes())
        except RuntimeError:  # tensors without storage (e.g. sparse) are not saved by these blocks
            pass
        return t

    opt.zero_grad(set_to_none=True)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = F.cross_entropy(net(x), y)
    loss.backward()
    opt.step()
    return {"activations": sum(seen.values())}


def _state_bytes(params: list[nn.Parameter], opt: torch.optim.Optimizer) -> dict[str, int]:
    weights = sum(p.numel() * p.element_size() for p in params)
    grads = sum(p.grad.numel() * p.grad.element_size() for p in params if p.grad is not None)
    state = sum(v.numel() * v.element_size() for s in opt.state.values() for v in s.values()
                if isinstance(v, torch.Tensor))
    return {"weights": weights, "grads": grads, "optimizer": state}


def _timed(fn: Callable[[], Any]) -> tuple[float, float, Any]:
    c0, w0 = time.process_time(), time.perf_counter()
    out = fn()
    return time.process_time() - c0, time.perf_counter() - w0, out


def cost_ratios(space: str | SearchSpace = "fbnet-cifar", width_mult: float = 1.0, batch: int = 32,
                trials: int = 6) -> dict[str, Any]:
    """Per-step CPU time and memory of sampled-path, plain (same sampled network) and all-path steps."""
    full = (get_space(space) if isinstance(space, str) else space).with_options(num_classes=10)
    sp = full.scaled(width_mult)
    torch.set_num_threads(1)
    cost = mac_cost(full)  # the values do not matter here, only the shape
    torch.manual_seed(0)
    nets = {p: build_supernet(sp, cost, tau=5.0, paths=p).train() for p in ("sampled", "all")}
    opts = {p: _sgd(n.weight_parameters()) for p, n in nets.items()}
    x = torch.randn(batch, 3, sp.input_resolution, sp.input_resolution)
    y = torch.randint(0, 10, (batch,))
    for p in nets:  # one untimed step each: allocator and momentum buffers warm
        _step(nets[p], opts[p], x, y)
    rows = []
    for trial in range(trials):
        torch.manual_seed(1000 + trial)
        c_s, w_s, act_s = _timed(lambda: _step(nets["sampled"], opts["sampled"], x, y))
        arch = nets["sampled"].last_sample()
        plain = build_network(sp, arch).train()
        popt = _sgd(list(plain.parameters()))
        _step(plain, popt, x, y)  # warm
        c_p, w_p, act_p = _timed(lambda: _step(plain, popt, x, y))
        torch.manual_seed(1000 + trial)
        c_a, w_a, act_a = _timed(lambda: _step(nets["all"], opts["all"], x, y))
        rows.append({"arch": sp.format(arch), "cpu_s": {"sampled": c_s, "plain": c_p, "all": c_a},
                     "wall_s": {"sampled": w_s, "plain": w_p, "all": w_a},
                     "memory": {"sampled": {**_state_bytes(nets["sampled"].weight_parameters(), opts["sampled"]),
                                            **act_s},
                                "plain": {**_state_bytes(list(plain.parameters()), popt), **act_p},
                                "all": {**_state_bytes(nets["all"].weight_parameters(), opts["all"]), **act_a}}})
    med = lambda key, mode: statistics.median(r[key][mode] for r in rows)  # noqa: E731

    def peak(mode: str) -> dict[str, float]:
        mem = [r["memory"][mode] for r in rows]
        parts = {k: statistics.median(m[k] for m in mem) / 2**20 for k in ("weights", "grads", "optimizer",
                                                                           "activations")}
        state = parts["weights"] + parts["grads"] + parts["optimizer"]
        # Over a long search every candidate gets SGD momentum: the worst case holds it for all weights.
        worst = parts["weights"] * 2 + parts["grads"]
        return {"weights_and_optimizer_mib": state, "activations_mib": parts["activations"],
                "peak_mib": state + parts["activations"], "peak_worst_mib": worst + parts["activations"],
                **{f"{k}_mib": v for k, v in parts.items()}}

    memory = {m: peak(m) for m in ("sampled", "plain", "all")}
    ratios = [r["cpu_s"]["sampled"] / r["cpu_s"]["plain"] for r in rows]
    return {
        "space": sp.name, "width_mult": width_mult, "batch": batch, "trials": trials, "threads": 1,
        "cpu_s_per_step": {m: med("cpu_s", m) for m in ("sampled", "plain", "all")},
        "wall_s_per_step": {m: med("wall_s", m) for m in ("sampled", "plain", "all")},
        "sampled_over_plain": statistics.median(ratios),
        "sampled_over_plain_per_trial": ratios,
        "all_over_sampled": statistics.median(r["cpu_s"]["all"] / r["cpu_s"]["sampled"] for r in rows),
        "memory": memory,
        "peak_sampled_over_plain": memory["sampled"]["peak_mib"] / memory["plain"]["peak_mib"],
        "peak_worst_sampled_over_plain": memory["sampled"]["peak_worst_mib"] / memory["plain"]["peak_mib"],
        "peak_all_over_plain": memory["all"]["peak_mib"] / memory["plain"]["peak_mib"],
        "trials_detail": rows,
    }


def _spin() -> None:
    while True:
        pass


def thread_slowdown(space: str = "fbnet-cifar", width_mult: float = 0.5, batch: int = 32,
                    steps: int = 4) -> dict[str, Any]:
    """Wall seconds per sampled-path step at 1 and all cores, as the machine is and with a busy loop per core."""
    sp = get_space(space).with_options(num_classes=10)
    cost = mac_cost(sp)
    torch.manual_seed(0)
    net = build_supernet(sp.scaled(width_mult), cost, paths="sampled").train()
    opt = _sgd(net.weight_parameters())
    x = torch.randn(batch, 3, sp.input_resolution, sp.input_resolution)
    y = torch.randint(0, 10, (batch,))
    cores = available_cores()

    def per_step(threads: int) -> float:
        torch.set_num_threads(threads)
        _step(net, opt, x, y)
        walls = [_timed(lambda: _step(net, opt, x, y))[1] for _ in range(steps)]
        return statistics.median(walls)

    settings = sorted({1, cores})
    out: dict[str, Any] = {"cores": cores, "loadavg_before": os.getloadavg(), "as_is": {}, "loaded": {}}
    for t in settings:
        out["as_is"][t] = per_step(t)
    spinners = [mp.Process(target=_spin, daemon=True) for _ in range(cores)]
    for p in spinners:
        p.start()
    try:
        time.sleep(1.0)
        for t in settings:
            out["loaded"][t] = per_step(t)
        out["loadavg_loaded"] = os.getloadavg()
    finally:
        for p in spinners:
            p.terminate()
        for p in spinners:
            p.join()
    out["slowdown"] = {t: out["loaded"][t] / out["as_is"][t] for t in settings}
    return out


#: a 3-layer FBNet space on digits' own 8x8 images: small enough to train both supernets for real.
TINY = SearchSpace(name="tiny-bench", input_resolution=8, stem_channels=8, stem_stride=1,
                   stages=((8, 1, 1), (16, 2, 2)), head_channels=32, num_classes=10)


def supernet_per_cpu(steps_all: int = 120, lr: float = 0.1, batch: int = 32) -> dict[str, Any]:
    """Supernet training at equal CPU time: `steps_all` all-path steps, then sampled steps for as long.

    Scored by the last 40 steps' training accuracy and by 5 sampled forwards on 256 held-out
    images: how well the supernet's shared weights serve the architectures it samples.
    """
    from hwnas.search.data import load_data, normalize

    torch.set_num_threads(1)
    data = load_data("digits", 8)
    out: dict[str, Any] = {}
    budget = None
    for paths in ("all", "sampled"):
        torch.manual_seed(0)
        net = build_supernet(TINY, mac_cost(TINY), tau=5.0, paths=paths).train()
        opt = torch.optim.SGD(net.weight_parameters(), lr=lr, momentum=0.9)
        accs: list[float] = []
        t0 = time.process_time()
        while (len(accs) < steps_all) if budget is None else (time.process_time() - t0 < budget):
            idx = torch.randint(0, len(data.train_y), (batch,))
            logits = net(normalize(data.train_x[idx]))
            loss = F.cross_entropy(logits, data.train_y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            accs.append(float((logits.argmax(1) == data.train_y[idx]).float().mean()))
        cpu = time.process_time() - t0
        budget = budget or cpu
        with torch.no_grad():
            held = [float((net(normalize(data.test_x[:256])).argmax(1) == data.test_y[:256]).float().mean())
                    for _ in range(5)]
        out[paths] = {"steps": len(accs), "cpu_s": cpu, "train_acc_last40": statistics.fmean(accs[-40:]),
                      "held_out_acc_sampled_forwards": held}
    return out


#: candidate sets of `path_sharing`: one fixed network, then more and more candidates per layer.
SHARING_SETS = (("k3_e3",), ("k3_e3", "k5_e3"), ("k3_e3", "skip"),
                ("k3_e1", "k3_e3", "k3_e6", "k5_e1", "k5_e3", "k5_e6"))


def path_sharing(data_spec: str = "fashion-mnist", images: int = 1600, epochs: int = 2, lr: float = 0.03,
                 batch: int = 32, width_mult: float = 0.5) -> dict[str, list[float]]:
    """Why single-path supernets train slowly: uniform path sampling over ever larger candidate sets.

    fbnet-cifar at `width_mult`, each layer's candidate drawn uniformly from the set at every step
    (θ pinned so the Gumbel sample is uniform over the set); per set, the training accuracy of the
    last 25 steps of each epoch.  One candidate is a plain network.
    """
    from hwnas.search.data import load_data, normalize

    torch.set_num_threads(1)
    space = get_space("fbnet-cifar").scaled(width_mult)
    data = load_data(data_spec, space.input_resolution)
    x_all, y_all = data.train_x[:images], data.train_y[:images]
    if data.num_classes != space.num_classes:
        space = space.with_options(num_classes=data.num_classes)
    cost = mac_cost(space)  # weights only train here; the supernet just needs a cost to hold
    out: dict[str, list[float]] = {}
    for allowed in SHARING_SETS:
        torch.manual_seed(0)
        net = build_supernet(space, cost, tau=5.0, paths="sampled").train()
        with torch.no_grad():
            net.theta[:, [op not in allowed for op in space.candidates]] = -1e4
        opt = torch.optim.SGD(net.weight_parameters(), lr=lr, momentum=0.9, weight_decay=1e-4)
        accs: list[float] = []
        per_epoch = []
        for _ in range(epochs):
            order = torch.randperm(len(y_all))
            for i in range(0, len(y_all) - batch + 1, batch):
                idx = order[i:i + batch]
                logits = net(normalize(x_all[idx]))
                loss = F.cross_entropy(logits, y_all[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                accs.append(float((logits.argmax(1) == y_all[idx]).float().mean()))
            per_epoch.append(statistics.fmean(accs[-25:]))
        out[",".join(allowed)] = per_epoch
    return out


if __name__ == "__main__":  # python -m benchmarks.suites.search_cost  (the path-sharing table of RESULTS.md)
    for name, accs in path_sharing().items():
        print(f"| {name} | " + " | ".join(f"{a:.2f}" for a in accs) + " |")
