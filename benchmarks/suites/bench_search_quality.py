"""Search quality and cost, local CPU (FBNet DNAS on fbnet-cifar), in three parts (`--part`).

`--part cost` (benchmarks/suites/search_cost.py): one sampled-path step ÷ one
plain step of the same sampled network (goal ≤ 1.3), all-path ÷ sampled-path,
the peak memory of each split into weights/optimizer state and activations,
and the slowdown of a search step with one busy-loop process per core.

`--part fashion` (benchmarks/suites/search_fashion.py): searched vs random
architectures of matched measured latency on Fashion-MNIST at the 30th and
70th percentile targets, several seeds each, mean ± std, rank and a figure.

`--part digits` (below, the original benchmark): three figures from one run:

1. Target: `hwnas search --target-ms T` with device A's fitted latency model;
   the searched architecture is then *measured* on device A, and the figure is
   measured / T (goal: within ±5%).  T is the median predicted latency of 200
   random architectures of the space.
2. Accuracy: the searched architecture and 20 random architectures whose
   *measured* latency on A is within ±5% of the searched one's, all trained
   from scratch with the same recipe and seed on digits; the searched one's
   accuracy against the best (and the median) of the 20.
3. Two devices: the same search (same seed, data, schedule; each device's own
   median as target) with device B's latency model; the block chosen per
   layer on A and on B, beside each device's predicted ms for those blocks.
   With one seed, everything but the latency model is identical, so a layer
   where the choices differ differs because of the devices.

Every step goes through the user's commands (`hwnas profile`, `fit`,
`search`) or the library, and leaves its result in `--work`; a rerun skips
what is done (a crash loses only the step it was in).

    .venv/bin/python -m benchmarks.suites.bench_search_quality --part digits --work bench-search-out \\
        [--store demo-out/hwnas.db] [--limit 512] [--search-epochs 6] [--train-epochs 5]
    .venv/bin/python -m benchmarks.suites.bench_search_quality --part cost --work bench-search-out
    .venv/bin/python -m benchmarks.suites.bench_search_quality --part fashion --work bench-search-out \\
        --paths all --width-mult 0.5 --threads 1 --jobs 2 --limit 2000 --search-epochs 8 --search-batch 32 \\
        --finalists 8 --train-limit 2000 --train-epochs 2 --train-batch 32 --train-lr 0.05 --test-limit 2000 \\
        --seeds 3 --random 20 --max-measured 400      # the race in RESULTS.md (~70 min on 2 idle cores)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np

from hwnas.report.render import write_atomic

from benchmarks.suites.race_common import (DEVICES, SPACE, _cached, _hwnas, _log, _slug, ensure_models,  # noqa: F401
                                           matched_random, measure_archs, median_random_prediction)


def run_search(work: Path, name: str, model: str, target: float, args: argparse.Namespace) -> dict[str, Any]:
    out = work / name
    if (out / "arch.json").is_file():
        return json.loads((out / "arch.json").read_text())
    _log(f"searching with {model} towards {target:.3f} ms into {out}")
    resume = ["--resume"] if (out / "checkpoint.pt").is_file() else []
    _hwnas("search", "--space", SPACE, "--latency", model, "--data", "digits", "--limit", str(args.limit),
           "--epochs", str(args.search_epochs), "--warmup-epochs", "1", "--batch-size", "32",
           "--micro-batch", "32", "--arch-lr", str(args.arch_lr), "--weight-lr", str(args.weight_lr), "--target-ms", f"{target:.6g}",
           "--candidates", "16", "--seed", str(args.seed), "--out", str(out), "--json", *resume)
    return json.loads((out / "arch.json").read_text())


def train_acc(arch: str, args: argparse.Namespace) -> dict[str, Any]:
    from hwnas.search.data import load_data
    from hwnas.search.space import get_space, resolve_arch
    from hwnas.search.train import train_network

    space = get_space(SPACE)
    _, ops = resolve_arch(arch, SPACE)
    data = load_data("digits", space.input_resolution).limited(args.train_limit)
    _, result = train_network(space, ops, data, epochs=args.train_epochs, batch_size=64, seed=args.seed)
    return {"test_acc": result["test_acc"], "best_test_acc": result["best_test_acc"]}


def per_layer(archs: dict[str, str], models: dict[str, str]) -> list[dict[str, Any]]:
    """Per searchable layer: each device's choice and each device's predicted ms for both choices."""
    from hwnas.latency_models.export import layer_table
    from hwnas.latency_models.io import load_model
    from hwnas.search.space import get_space, resolve_arch

    space = get_space(SPACE)
    tables = {uri: layer_table(load_model(m), space).table_ms for uri, m in models.items()}
    ops = {uri: resolve_arch(a, SPACE)[1] for uri, a in archs.items()}
    cand = list(space.candidates)
    rows = []
    for i in range(space.num_layers):
        row: dict[str, Any] = {"layer": i + 1, "differ": len({o[i] for o in ops.values()}) > 1}
        for uri in models:
            row[f"choice@{uri}"] = ops[uri][i]
            row[f"cheapest@{uri}"] = cand[int(np.argmin(tables[uri][i]))]
            for other in models:
                row[f"ms@{uri}|{other}"] = float(tables[uri][i][cand.index(ops[other][i])])
        rows.append(row)
    return rows


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--part", choices=("digits", "cost", "threads", "fashion"), default="digits",
                    help="threads: only the idle-vs-loaded thread timing of --part cost (run it on an idle machine).")
    ap.add_argument("--work", type=Path, default=Path("bench-search-out"), help="Folder for every step's result.")
    ap.add_argument("--data", default="fashion-mnist", help="Data of --part fashion (fashion-mnist or fashion-mnist:DIR).")
    ap.add_argument("--paths", choices=("sampled", "all"), default="all",
                    help="Supernet forward (fashion); all, as `hwnas search`'s default.")
    ap.add_argument("--jobs", type=int, default=1,
                    help="Searches and trainings run side by side (fashion); measurements always run alone.")
    ap.add_argument("--width-mult", type=float, default=0.5, help="Width proxy for search and training (fashion).")
    ap.add_argument("--threads", type=int, default=2, help="torch threads for search and training (fashion).")
    ap.add_argument("--seeds", type=int, default=3, help="Seeds per architecture trained from scratch (fashion).")
    ap.add_argument("--test-limit", type=int, default=2000, help="Test images scored (fashion).")
    ap.add_argument("--trials", type=int, default=6, help="Timed steps per mode (cost).")
    ap.add_argument("--search-batch", type=int, default=32, help="Search batch (fashion).")
    ap.add_argument("--train-batch", type=int, default=64, help="Training batch (fashion).")
    ap.add_argument("--train-lr", type=float, default=0.05, help="Training SGD lr (fashion).")
    ap.add_argument("--store", type=Path, help="Store with both devices' fbnet-cifar blocks (default: WORK/hwnas.db).")
    ap.add_argument("--device", action="append", help=f"Two device URIs (default: {', '.join(DEVICES)}); "
                    "--part fashion uses the first (default cpu:onnxruntime?threads=1; cuda:0 on a GPU).")
    ap.add_argument("--limit", type=int, default=512, help="Digits training images the searches use.")
    ap.add_argument("--search-epochs", type=int, default=6)
    ap.add_argument("--arch-lr", type=float, default=0.1, help="θ's Adam lr: few θ steps need more than 0.01.")
    ap.add_argument("--weight-lr", type=float, default=0.03, help="Weights' SGD lr: a short search needs more than 0.0125.")
    ap.add_argument("--finalists", type=int, default=0,
                    help="hwnas search --finalists (fashion): candidates trained from scratch before one is shipped.")
    ap.add_argument("--finalist-epochs", type=int, default=2, help="hwnas search --finalist-epochs (fashion).")
    ap.add_argument("--train-limit", type=int, default=768, help="Training images for training from scratch.")
    ap.add_argument("--train-epochs", type=int, default=5)
    ap.add_argument("--random", type=int, default=20, help="Random architectures of matched measured latency.")
    ap.add_argument("--max-measured", type=int, default=400,
                    help="Random candidates measured at most while looking for matched-latency ones.")
    ap.add_argument("--networks", type=int, default=20, help="Random networks measured per device for the fit.")
    ap.add_argument("--max-seconds", type=float, default=0.3, help="Per-block time cap while profiling.")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    if args.part == "cost":
        return cost_part(args)
    if args.part == "threads":
        return threads_part(args)
    if args.part == "fashion":
        from benchmarks.suites.search_fashion import print_table, run

        result = run(args.work, args)
        print_table(result)
        return result
    uris = args.device or list(DEVICES)
    if len(uris) != 2:
        ap.error("pass --device exactly twice (or not at all)")
    work: Path = args.work
    work.mkdir(parents=True, exist_ok=True)
    store = args.store or work / "hwnas.db"
    os.environ.setdefault("OMP_NUM_THREADS", "2")
    a, b = uris
    models = ensure_models(work, store, uris, args.max_seconds, args.networks)
    targets = _cached(work / "targets.json", lambda: {u: median_random_prediction(m) for u, m in models.items()})
    found = {u: run_search(work, f"search-{_slug(u)}", models[u], targets[u], args) for u in uris}

    def measure_found() -> dict[str, Any]:
        _log(f"measuring the architecture searched for {a}")
        arch = tuple(found[a]["arch"].split("-"))
        return {"arch": found[a]["arch"], "measured_ms": measure_archs(a, [arch], repeats=5)[0],
                "predicted_ms": found[a]["predicted_ms"], "target_ms": targets[a]}

    searched = _cached(work / "searched_measured.json", measure_found)
    randoms = _cached(work / "random_matched.json",
                      lambda: matched_random(a, models[a], searched["measured_ms"], args.random,
                                               max_measured=args.max_measured))
    acc_path = work / "accuracy.json"
    accs: dict[str, Any] = json.loads(acc_path.read_text()) if acc_path.is_file() else {}
    for arch in [searched["arch"], *(r["arch"] for r in randoms)]:
        if arch not in accs:
            _log(f"training {len(accs) + 1}/{len(randoms) + 1} from scratch")
            accs[arch] = train_acc(arch, args)
            write_atomic(json.dumps(accs, indent=2), acc_path)
    # θ's own choice per layer (the argmax): the shipped architecture is a sample from Pθ, so
    # comparing samples would mix the devices' difference with sampling noise.
    choice = {u: found[u].get("argmax", found[u]["arch"]) for u in uris}
    layers = per_layer(choice, models)

    rand_acc = [accs[r["arch"]]["test_acc"] for r in randoms]
    mine = accs[searched["arch"]]["test_acc"]
    result = {
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "devices": uris,
        "target": searched,
        "target_ratio": searched["measured_ms"] / searched["target_ms"],
        "searched_acc": mine,
        "random": {"n": len(randoms), "best_acc": max(rand_acc, default=None),
                   "median_acc": statistics.median(rand_acc) if rand_acc else None,
                   "searched_rank": 1 + sum(x > mine for x in rand_acc),
                   "measured_ms": [r["measured_ms"] for r in randoms]},
        "two_devices": {"argmax": choice, "shipped": {u: found[u]["arch"] for u in uris},
                        "predicted_ms": {u: found[u]["predicted_ms"] for u in uris},
                        "targets_ms": targets, "layers_differing": sum(r["differ"] for r in layers),
                        "layers": layers},
    }
    write_atomic(json.dumps(result, indent=2), work / "result.json")
    _print(result, a, b)
    return result


def cost_part(args: argparse.Namespace) -> dict[str, Any]:
    """Step cost at full width and at the proxy width, and threads under load: one run, one JSON."""
    from benchmarks.suites.search_cost import cost_ratios, supernet_per_cpu, thread_slowdown

    args.work.mkdir(parents=True, exist_ok=True)
    result = {"loadavg_start": os.getloadavg()}
    for w in sorted({1.0, args.width_mult}, reverse=True):
        _log(f"timing sampled / plain / all-path steps at width {w:g}")
        result[f"width_{w:g}"] = cost_ratios(SPACE, width_mult=w, trials=args.trials)
    _log("training both supernets for the same CPU time (which searches better per CPU-minute)")
    result["per_cpu"] = supernet_per_cpu()
    _log("timing threads as the machine is and with one busy loop per core")
    result["threads"] = thread_slowdown(SPACE, width_mult=args.width_mult)
    result["loadavg_end"] = os.getloadavg()
    write_atomic(json.dumps(result, indent=2), args.work / "cost.json")
    for key, r in result.items():
        if not key.startswith("width_"):
            continue
        m = r["memory"]
        print(f"{key}: CPU s/step sampled {r['cpu_s_per_step']['sampled']:.3f}, plain {r['cpu_s_per_step']['plain']:.3f}, "
              f"all {r['cpu_s_per_step']['all']:.3f}; sampled/plain {r['sampled_over_plain']:.3f} (goal <= 1.3), "
              f"all/sampled {r['all_over_sampled']:.2f}")
        for mode in ("plain", "sampled", "all"):
            print(f"  peak {mode}: {m[mode]['peak_mib']:.0f} MiB = weights+grads+optimizer "
                  f"{m[mode]['weights_and_optimizer_mib']:.1f} + activations {m[mode]['activations_mib']:.0f}")
        print(f"  peak sampled/plain {r['peak_sampled_over_plain']:.2f} (worst case, momentum for every candidate: "
              f"{r['peak_worst_sampled_over_plain']:.2f}; goal <= 2); all/plain {r['peak_all_over_plain']:.2f}")
    for mode, r in result["per_cpu"].items():
        print(f"supernet {mode}: {r['steps']} steps in {r['cpu_s']:.1f} CPU s, training acc {r['train_acc_last40']:.2f}, "
              f"held-out acc of sampled forwards {r['held_out_acc_sampled_forwards']}")
    t = result["threads"]
    print(f"threads ({t['cores']} cores): s/step as is {t['as_is']}, loaded {t['loaded']}, slowdown {t['slowdown']}")
    return result


def threads_part(args: argparse.Namespace) -> dict[str, Any]:
    """Seconds per sampled-path step at 1 and all threads, idle and under one busy loop per core."""
    from benchmarks.suites.search_cost import thread_slowdown

    args.work.mkdir(parents=True, exist_ok=True)
    t = thread_slowdown(SPACE, width_mult=args.width_mult, steps=max(4, args.trials))
    write_atomic(json.dumps(t, indent=2), args.work / "threads.json")
    print(f"threads ({t['cores']} cores, load before {t['loadavg_before'][0]:.2f}): s/step as is {t['as_is']}, "
          f"loaded {t['loaded']}, slowdown {t['slowdown']}")
    return t


def _print(r: dict[str, Any], a: str, b: str) -> None:
    t = r["target"]
    print(f"target on {a}: {t['target_ms']:.3f} ms; searched architecture predicted {t['predicted_ms']:.3f} ms, "
          f"measured {t['measured_ms']:.3f} ms = {r['target_ratio']:.3f}x target")
    rnd = r["random"]
    print(f"accuracy on digits: searched {r['searched_acc']:.3f}; {rnd['n']} random of matched measured latency: "
          f"best {rnd['best_acc']}, median {rnd['median_acc']}; searched ranks {rnd['searched_rank']} of {rnd['n'] + 1}")
    two = r["two_devices"]
    print(f"\ntwo devices: θ's choice (argmax) differs in {two['layers_differing']}/{len(two['layers'])} layers")
    print("| layer | choice on A | choice on B | A ms (A's, B's choice) | B ms (A's, B's choice) | cheapest A | cheapest B |")
    print("|---:|---|---|---|---|---|---|")
    for row in two["layers"]:
        mark = " **≠**" if row["differ"] else ""
        print(f"| {row['layer']}{mark} | {row[f'choice@{a}']} | {row[f'choice@{b}']} "
              f"| {row[f'ms@{a}|{a}']:.3f}, {row[f'ms@{a}|{b}']:.3f} | {row[f'ms@{b}|{a}']:.3f}, {row[f'ms@{b}|{b}']:.3f} "
              f"| {row[f'cheapest@{a}']} | {row[f'cheapest@{b}']} |")


if __name__ == "__main__":
    main()
