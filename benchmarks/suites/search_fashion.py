"""Does the search beat random architectures of the same measured latency on Fashion-MNIST?

Part of bench_search_quality (`--part fashion`).  On `cpu:onnxruntime?threads=1`:

1. Two latency targets: the 30th and 70th percentile of 200 random
   architectures' predicted latency.
2. At each target, `hwnas search --data fashion-mnist --target-ms T` (the
   path mode, width proxy and `--finalists` given), then the result's latency *measured*.
3. `--random` random architectures whose measured latency lies within ±5% of
   the searched one's (bench_search_quality.matched_random).
4. Every architecture trained from scratch with the same recipe (`--width-mult`,
   `--train-limit` images, `--train-epochs`) and `--seeds` seeds; mean ± std of
   test accuracy on `--test-limit` test images, and the searched one's rank.
5. A figure of accuracy against measured latency (random cloud, searched points).

Each step's result is cached under WORK, so a stopped run resumes.  `--jobs N` runs the two
searches side by side and trains N networks at a time (one process each, `--threads` threads);
the latency measurements between them always run alone.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.suites import race_common

from hwnas.report.render import write_atomic

SPACE = "fbnet-cifar"
DEVICE = "cpu:onnxruntime?threads=1"


def _bench():  # the helpers shared with bench_search_quality
    return race_common


def percentile_targets(model: str, qs: tuple[float, ...] = (30, 70), n: int = 200) -> dict[str, float]:
    from hwnas.latency_models.io import load_model
    from hwnas.profiler.enumerate import random_archs
    from hwnas.search.space import get_space

    space = get_space(SPACE)
    pred = load_model(model).predict_networks(space, random_archs(space, n, seed=123))
    return {f"p{q:g}": float(np.percentile(pred, q)) for q in qs}


def search_fashion(work: Path, name: str, model: str, target: float, args: argparse.Namespace) -> dict[str, Any]:
    out = work / name
    if (out / "arch.json").is_file():
        return json.loads((out / "arch.json").read_text())
    b = _bench()
    b._log(f"searching Fashion-MNIST ({args.paths} paths, width {args.width_mult:g}) towards {target:.3f} ms")
    resume = ["--resume"] if (out / "checkpoint.pt").is_file() else []
    b._hwnas("search", "--space", SPACE, "--latency", model, "--data", args.data, "--limit", str(args.limit),
             "--epochs", str(args.search_epochs), "--warmup-epochs", "1", "--batch-size", str(args.search_batch),
             "--micro-batch", str(args.search_batch),
             "--arch-lr", str(args.arch_lr), "--weight-lr", str(args.weight_lr), "--target-ms", f"{target:.6g}",
             "--paths", args.paths, "--width-mult", f"{args.width_mult:g}", "--threads", str(args.threads),
             "--candidates", "16", "--seed", str(args.seed), "--finalists", str(args.finalists),
             "--finalist-epochs", str(args.finalist_epochs), "--out", str(out), "--json", *resume)
    return json.loads((out / "arch.json").read_text())


def _data(args: argparse.Namespace):
    from hwnas.search.data import Data, load_data
    from hwnas.search.space import get_space

    d = load_data(args.data, get_space(SPACE).input_resolution)
    return Data(d.name, d.train_x[:args.train_limit], d.train_y[:args.train_limit], d.test_x[:args.test_limit],
                d.test_y[:args.test_limit], d.num_classes)


def train_seeds(arch: str, data: Any, args: argparse.Namespace) -> list[float]:
    import torch

    from hwnas.search.space import get_space
    from hwnas.search.train import train_network

    torch.set_num_threads(args.threads)
    space = get_space(SPACE).scaled(args.width_mult)
    accs = []
    for seed in range(args.seeds):
        _, result = train_network(space, space.parse(arch), data, epochs=args.train_epochs,
                                  batch_size=args.train_batch, lr=args.train_lr, seed=seed)
        accs.append(result["test_acc"])
    return accs


_WORKER_DATA: Any = None


def _train_in_worker(arch: str, args: argparse.Namespace) -> tuple[str, list[float]]:
    """One architecture's seeds in a pool process, which loads the data once."""
    global _WORKER_DATA
    if _WORKER_DATA is None:
        _WORKER_DATA = _data(args)
    return arch, train_seeds(arch, _WORKER_DATA, args)


def train_all(todo: dict[str, list[str]], acc_paths: dict[str, Path], args: argparse.Namespace) -> None:
    """Train every (target, architecture) not yet cached, `args.jobs` architectures at a time.

    Each result is written to its target's accuracy file as soon as it is back, so a stopped
    run loses at most the trainings in flight.  Parallel processes of `args.threads` threads
    each: on a machine with `jobs × threads` idle cores the figures are those of one process.
    """
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    b = _bench()
    accs = {name: (json.loads(p.read_text()) if p.is_file() else {}) for name, p in acc_paths.items()}
    wanted: dict[str, list[str]] = {}  # arch -> targets that need it (an arch may match both)
    for name, archs in todo.items():
        for arch in archs:
            if arch not in accs[name]:
                cached = next((a[arch] for a in accs.values() if arch in a), None)
                if cached is not None:
                    accs[name][arch] = cached
                else:
                    wanted.setdefault(arch, []).append(name)
    for name in todo:
        write_atomic(json.dumps(accs[name], indent=2), acc_paths[name])
    total, done = len(wanted), 0
    if not total:
        return
    b._log(f"training {total} architectures x {args.seeds} seeds, {args.jobs} at a time")
    ctx = multiprocessing.get_context("spawn")  # no fork after torch and onnxruntime started threads
    with ProcessPoolExecutor(max_workers=args.jobs, mp_context=ctx) as pool:
        futures = [pool.submit(_train_in_worker, arch, args) for arch in wanted]
        for fut in as_completed(futures):
            arch, result = fut.result()
            done += 1
            for name in wanted[arch]:
                accs[name][arch] = result
                write_atomic(json.dumps(accs[name], indent=2), acc_paths[name])
            b._log(f"trained {done}/{total}: {arch} -> {', '.join(f'{a:.3f}' for a in result)}")


def resolution(seed_accs: list[list[float]]) -> dict[str, float | None]:
    """How much of the spread between architectures' mean accuracies is architecture, how much seeds.

    With k seeds each, a mean carries seed noise of variance E[s²]/k (s² the seeds' sample
    variance); what the means' variance holds beyond that is the architectures' own spread
    (a one-way random-effects split, clipped at 0).  When that spread is below the noise, which
    architecture's mean is best is mostly chance, and so is any rank against it.
    """
    rows = [r for r in seed_accs if len(r) > 1]
    if len(rows) < 2:
        return {"arch_sd": None, "noise_sd": None, "noise_share": None}
    k = statistics.fmean(len(r) for r in rows)
    noise_var = statistics.fmean(statistics.variance(r) for r in rows) / k
    means_var = statistics.variance([statistics.fmean(r) for r in rows])
    return {"arch_sd": max(0.0, means_var - noise_var) ** 0.5, "noise_sd": noise_var ** 0.5,
            "noise_share": min(1.0, noise_var / means_var) if means_var > 0 else 1.0}


def race_power(arch_sd: float, noise_sd: float, n_random: int, z: float = 3.0, draws: int = 100_000) -> float:
    """Chance that a network truly `z` architecture-sds above the random average beats the best random mean.

    Monte Carlo under `resolution`'s split (every mean = architecture + seed noise, both normal):
    the odds the race gives even a search that finds a top-0.1% network (z = 3).  Low odds say the
    race, not the search, is what cannot tell them apart.
    """
    rng = np.random.default_rng(0)
    best = (rng.normal(0.0, arch_sd, (draws, n_random)) + rng.normal(0.0, noise_sd, (draws, n_random))).max(1)
    return float(np.mean(z * arch_sd + rng.normal(0.0, noise_sd, draws) > best))


def race_resolution(seed_accs: list[list[float]]) -> dict[str, float | None]:
    """`resolution` of the random networks' seed accuracies, with the race's `race_power` at z = 3."""
    res = resolution(seed_accs)
    power = race_power(res["arch_sd"], res["noise_sd"], len(seed_accs)) if res["arch_sd"] is not None else None
    return {**res, "power_top_0.1pct": power}


def _summary(accs: dict[str, list[float]], searched: str, randoms: list[dict[str, Any]]) -> dict[str, Any]:
    mean = {a: statistics.fmean(v) for a, v in accs.items()}
    std = {a: statistics.pstdev(v) if len(v) > 1 else 0.0 for a, v in accs.items()}
    rand = [mean[r["arch"]] for r in randoms]
    mine = mean[searched]
    median = statistics.median(rand) if rand else None
    return {
        "searched_mean": mine, "searched_std": std[searched], "searched_accs": accs[searched],
        "random_n": len(rand), "random_best_mean": max(rand, default=None), "random_median_mean": median,
        "random_mean_std": statistics.fmean(std[r["arch"]] for r in randoms) if randoms else None,
        "rank": 1 + sum(x > mine for x in rand),
        "beats_best_random": bool(rand) and mine > max(rand),
        "beats_median_by_more_than_std": median is not None and mine - median > std[searched],
        "resolution": race_resolution([accs[r["arch"]] for r in randoms]),
        "random": [{**r, "mean": mean[r["arch"]], "std": std[r["arch"]], "accs": accs[r["arch"]]} for r in randoms],
    }


def figure(result: dict[str, Any], path: Path, device: str = DEVICE) -> None:
    """Accuracy against measured latency: the random cloud and the searched points, per target."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    colours = ["tab:blue", "tab:orange", "tab:green"]
    for c, (name, t) in zip(colours, result["targets"].items()):
        s = t["summary"]
        ax.errorbar([r["measured_ms"] for r in s["random"]], [r["mean"] for r in s["random"]],
                    yerr=[r["std"] for r in s["random"]], fmt="o", ms=4, alpha=0.5, color=c,
                    label=f"random ({name})")
        ax.errorbar([t["measured_ms"]], [s["searched_mean"]], yerr=[s["searched_std"]], fmt="*", ms=14, color=c,
                    markeredgecolor="black", label=f"searched ({name}, rank {s['rank']}/{s['random_n'] + 1})")
    ax.set_xlabel(f"measured latency on {device} (ms)")
    ax.set_ylabel("test accuracy (mean ± std over seeds)")
    ax.set_title("Fashion-MNIST: searched vs random architectures of matched latency")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def run(work: Path, args: argparse.Namespace) -> dict[str, Any]:
    b = _bench()
    device = (args.device or [DEVICE])[0]  # the GPU configuration passes cuda:0
    work.mkdir(parents=True, exist_ok=True)
    store = args.store or work / "hwnas.db"
    model = b.ensure_models(work, store, [device], args.max_seconds, args.networks)[device]
    targets = b._cached(work / "fashion_targets.json", lambda: percentile_targets(model))
    out: dict[str, Any] = {"settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
                           "device": device, "targets": {}}
    # 1. The searches, one per target, `args.jobs` at a time (they only need CPU, not quiet).
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        found = dict(zip(targets, pool.map(
            lambda item: search_fashion(work, f"fashion-{args.paths}-{item[0]}", model, item[1], args),
            targets.items())))
    # 2. Latency measurements, one at a time on a machine left quiet for them.
    measured: dict[str, float] = {}
    randoms: dict[str, list[dict[str, Any]]] = {}
    for name in targets:
        def measure(name: str = name) -> dict[str, Any]:
            b._log(f"measuring the architecture searched at {name}")
            arch = tuple(found[name]["arch"].split("-"))
            return {"measured_ms": b.measure_archs(device, [arch], repeats=5)[0]}

        measured[name] = b._cached(work / f"fashion-{args.paths}-{name}-measured.json", measure)["measured_ms"]
        randoms[name] = b._cached(work / f"fashion-random-{name}.json",
                                  lambda name=name: b.matched_random(device, model, measured[name], args.random,
                                                                     max_measured=args.max_measured))
    # 3. Every network trained from scratch with the same recipe, in parallel.
    acc_paths = {name: work / f"fashion-accuracy-{name}.json" for name in targets}
    train_all({name: [found[name]["arch"], *(r["arch"] for r in randoms[name])] for name in targets},
              acc_paths, args)
    for name, target in targets.items():
        accs = json.loads(acc_paths[name].read_text())
        out["targets"][name] = {"target_ms": target, "arch": found[name]["arch"],
                                "predicted_ms": found[name]["predicted_ms"], "measured_ms": measured[name],
                                "search_val_acc": found[name].get("val_acc"),
                                "summary": _summary(accs, found[name]["arch"], randoms[name])}
    write_atomic(json.dumps(out, indent=2), work / "fashion_result.json")
    figure(out, work / "fashion_accuracy_vs_latency.png", device)
    return out


def print_table(r: dict[str, Any]) -> None:
    print("| target | T (ms) | searched measured ms | searched acc | random n | random best | random median "
          "| rank | beats best | beats median by > std | random: architecture sd / seed-noise sd of a mean "
          "| odds a top-0.1% network beats the best |")
    print("|---|---:|---:|---|---:|---:|---:|---:|---|---|---|---:|")
    for name, t in r["targets"].items():
        s = t["summary"]
        best = f"{s['random_best_mean']:.4f}" if s["random_best_mean"] is not None else "-"
        median = f"{s['random_median_mean']:.4f}" if s["random_median_mean"] is not None else "-"
        print(f"| {name} | {t['target_ms']:.3f} | {t['measured_ms']:.3f} | {s['searched_mean']:.4f} ± "
              f"{s['searched_std']:.4f} | {s['random_n']} | {best} | {median} | {s['rank']}/{s['random_n'] + 1} "
              f"| {s['beats_best_random']} | {s['beats_median_by_more_than_std']} | {_sd_pair(s.get('resolution'))} "
              f"| {_odds((s.get('resolution') or {}).get('power_top_0.1pct'))} |")


def _odds(p: float | None) -> str:
    return "-" if p is None else f"{p:.2f}"


def _sd_pair(res: dict[str, Any] | None) -> str:
    if not res or res.get("arch_sd") is None:
        return "-"
    return f"{res['arch_sd']:.4f} / {res['noise_sd']:.4f}"
