"""Latency-model accuracy, transfer and prediction throughput on this machine's real timings.

    .venv/bin/python -m benchmarks.suites.bench_latency_models [--store PATH] [--target URI] [--prior URI]
                                                        [--repeats 5] [--profile]

Reads block and network timings of two devices from a store filled by
`hwnas profile` (with --profile it runs the two profiles below first, which
takes ~30-40 min on a 2-core machine):

    hwnas profile --space fbnet-cifar --device 'cpu:onnxruntime?threads=1' --samples 300 --archs random:100
    hwnas profile --space fbnet-cifar --device 'cpu:torch?threads=1' --archs random:30

Figures, each measured side by side in one run (medians over --repeats seeds):
1. held-out accuracy on off-grid blocks (the `--samples` blocks, 5-fold, grid always in training):
   the default regressor (shared kernel costs + extra-trees), the per-family cost model with GBM
   or random-forest trees, and each additive base alone; and from the grid plus 0 or 20 samples;
2. whole-network accuracy on the measured random networks (overhead fitted on the other folds),
   against the bare block sum;
3. transfer prior (other runtime) → target with 10 and 20 target network timings, against fitting
   from scratch on the same timings (evaluated on the remaining networks);
4. batched prediction throughput (blocks/s) against one `predict_blocks` call per block.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.model_selection import KFold

from hwnas.latency_models.features import kernel_design, spec_fields
from hwnas.latency_models.metrics import evaluate
from hwnas.latency_models.network import block_frame_fields, fit_latency_model, networks_fields, reliable
from hwnas.latency_models.validation import cv_networks
from hwnas.latency_models.regressors import PRESETS, BlockRegressor, _fit_cost
from hwnas.latency_models.transfer import fit_from_networks, fit_transfer
from hwnas.profiler.store import Store
from hwnas.search.space import BlockSpec, get_space

SPACE = "fbnet-cifar"


def _profile(store: Path, target: str, prior: str) -> None:
    for uri, extra in ((target, ["--samples", "300", "--archs", "random:100"]), (prior, ["--archs", "random:30"])):
        subprocess.run([sys.executable, "-m", "hwnas", "profile", "--space", SPACE, "--device", uri,
                        "--store", str(store), "--seed", "1", *extra], check=True)


def _load(store: Path, uri: str) -> tuple[Any, Any, str]:
    with Store(store, create=False) as st:
        ident = st.resolve_device(uri)
        return st.blocks(ident), st.networks(ident), ident


#: Block regressors compared: the `hwnas fit --kind` presets and the two additive bases alone.
BLOCK_MODELS = {"et": PRESETS["et"], "gbm": PRESETS["gbm"], "rf": PRESETS["rf"],
                "cost_only": dict(kind="gbm", base="cost", min_family=12, n_estimators=1, learning_rate=0.0, alpha=1e12)}


def _split(blocks: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    fields, ms = block_frame_fields(blocks)
    grid = set(s.key for s in get_space(SPACE).unique_blocks())
    on_grid = blocks["block_key"].isin(grid).to_numpy()
    return fields, ms, np.flatnonzero(on_grid), np.flatnonzero(~on_grid)


def block_accuracy(blocks: Any, seed: int) -> dict[str, dict]:
    """5-fold over the off-grid samples; every fold trains on the grid plus the other samples."""
    fields, ms, on, off = _split(blocks)
    preds: dict[str, np.ndarray] = {k: np.empty(len(off)) for k in (*BLOCK_MODELS, "kernel_only")}
    for train, test in KFold(5, shuffle=True, random_state=seed).split(off):
        tr = np.concatenate([on, off[train]])
        for name, params in BLOCK_MODELS.items():
            preds[name][test] = BlockRegressor(**{**params, "random_state": seed}).fit(
                fields[tr], ms[tr]).predict(fields[off[test]])
        cost = _fit_cost(kernel_design(fields[tr]), ms[tr], fixed_first=True)  # the kernel base alone
        preds["kernel_only"][test] = kernel_design(fields[off[test]]) @ cost
    return {k: evaluate(v, ms[off]) for k, v in preds.items()}


def few_samples(blocks: Any, seed: int, n: int) -> dict[str, dict]:
    """Trained on the grid plus `n` random off-grid samples, scored on the other off-grid ones."""
    fields, ms, on, off = _split(blocks)
    perm = np.random.default_rng(seed).permutation(off)
    tr, te = np.concatenate([on, perm[:n]]), perm[n:]
    return {name: evaluate(BlockRegressor(**{**BLOCK_MODELS[name], "random_state": seed}).fit(fields[tr], ms[tr])
                           .predict(fields[te]), ms[te]) for name in ("et", "gbm")}


def network_accuracy(blocks: Any, nets: Any, ident: str, seed: int) -> dict[str, dict]:
    space = get_space(SPACE)
    model = fit_latency_model(blocks, None, SPACE, ident, random_state=seed)
    fields, index = networks_fields(space, list(nets["arch"]))
    sums = np.bincount(index, weights=model.predict_fields(fields), minlength=len(nets))
    y = nets["median_ms"].to_numpy(dtype=float)
    return {"sum_plus_overhead": cv_networks(model, space, nets, 5, seed), "block_sum_only": evaluate(sums, y)}


def transfer(prior_model: Any, nets: Any, n: int, seed: int) -> dict[str, dict]:
    space = get_space(SPACE)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(nets))
    archs, y = list(nets["arch"]), nets["median_ms"].to_numpy(dtype=float)
    tr, te = order[:n], order[n:]
    out = {}
    for name, fit in (("transfer", lambda a, t: fit_transfer(prior_model, space, a, t, "target")),
                      ("scratch", lambda a, t: fit_from_networks(space, a, t, "target"))):
        m = fit([archs[i] for i in tr], y[tr])
        out[name] = evaluate(m.predict_networks(space, [archs[i] for i in te]), y[te])
    out["prior_as_is"] = evaluate(prior_model.predict_networks(space, [archs[i] for i in te]), y[te])
    return out


def throughput(model: Any, n: int, seed: int) -> dict[str, float]:
    rng = np.random.default_rng(seed)
    specs = [BlockSpec("ir", int(rng.integers(8, 400)), int(rng.integers(8, 400)), int(rng.integers(4, 64)),
                       stride=int(rng.choice([1, 2])), kernel=int(rng.choice([3, 5])),
                       expansion=float(rng.choice([1, 3, 6]))) for _ in range(2000)]
    fields = np.tile(spec_fields(specs), (n // len(specs), 1))
    fields[:, 3] += np.repeat(np.arange(n // len(specs)), len(specs)) % 50  # every row distinct: no LUT hits
    t0 = time.perf_counter()
    model.predict_fields(fields)
    batched = len(fields) / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    for s in specs[:300]:
        model.predict_blocks([s])
    single = 300 / (time.perf_counter() - t0)
    return {"batched_per_s": batched, "one_call_per_block_per_s": single}


def _median(runs: list[dict], *path: str) -> float:
    vals = []
    for r in runs:
        v: Any = r
        for p in path:
            v = v[p]
        vals.append(v)
    return float(statistics.median(vals))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--store", type=Path, default=Path("hwnas.db"))
    ap.add_argument("--target", default="cpu:onnxruntime?threads=1")
    ap.add_argument("--prior", default="cpu:torch?threads=1")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--profile", action="store_true", help="Run the two profiles first (resumes if partly done).")
    args = ap.parse_args()
    if args.profile:
        _profile(args.store, args.target, args.prior)
    blocks, nets, ident = _load(args.store, args.target)
    pblocks, pnets, pident = _load(args.store, args.prior)
    nets, pnets = nets[nets["space"] == SPACE], pnets[pnets["space"] == SPACE]
    counts = [len(blocks), len(nets), len(pblocks), len(pnets)]
    # measurements the profiler flagged (never settled: foreign load on this shared VM) are left out
    blocks, nets, pblocks, pnets = (reliable(f) for f in (blocks, nets, pblocks, pnets))
    print(f"target {ident}: {len(blocks)}/{counts[0]} blocks, {len(nets)}/{counts[1]} networks not flagged; "
          f"prior {pident}: {len(pblocks)}/{counts[2]} blocks, {len(pnets)}/{counts[3]} networks not flagged")

    seeds = range(args.repeats)
    acc = [block_accuracy(blocks, s) for s in seeds]
    print("\n1. off-grid blocks, held out (median of seeds)")
    for k in (*BLOCK_MODELS, "kernel_only"):
        print(f"   {k:11s} ±5% {_median(acc, k, 'acc5'):.3f}  ±10% {_median(acc, k, 'acc10'):.3f}  "
              f"±15% {_median(acc, k, 'acc15'):.3f}  RMSPE {_median(acc, k, 'rmspe'):.2f}%  n={acc[0][k]['n']}")
    print(f"   RMSPE ratio et / gbm = {_median(acc, 'et', 'rmspe') / _median(acc, 'gbm', 'rmspe'):.2f}")
    for n in (0, 20):
        few = [few_samples(blocks, s, n) for s in seeds]
        print(f"   grid + {n} off-grid samples only: " + "; ".join(
            f"{k} ±10% {_median(few, k, 'acc10'):.3f} RMSPE {_median(few, k, 'rmspe'):.2f}%" for k in ("et", "gbm")))

    net = [network_accuracy(blocks, nets, ident, s) for s in seeds]
    print(f"\n2. whole networks ({len(nets)} measured, overhead fitted on other folds)")
    for k in ("sum_plus_overhead", "block_sum_only"):
        print(f"   {k:18s} ±5% {_median(net, k, 'acc5'):.3f}  ±10% {_median(net, k, 'acc10'):.3f}  "
              f"RMSPE {_median(net, k, 'rmspe'):.2f}%  Spearman {_median(net, k, 'spearman'):.3f}")

    prior_model = fit_latency_model(pblocks, pnets, SPACE, pident)
    print(f"\n3. transfer {args.prior} → {args.target} (median of {args.repeats} draws, rest held out)")
    for n in (10, 20):
        tr = [transfer(prior_model, nets, n, s) for s in seeds]
        for k in ("transfer", "scratch", "prior_as_is"):
            print(f"   n={n:2d} {k:12s} Spearman {_median(tr, k, 'spearman'):.3f}  ±10% {_median(tr, k, 'acc10'):.3f}  "
                  f"RMSPE {_median(tr, k, 'rmspe'):.2f}%")

    print("\n4. throughput (median of 3, the models side by side)")
    for kind in ("et", "gbm"):
        model = fit_latency_model(blocks, nets, SPACE, ident, **PRESETS[kind])
        thr = [throughput(model, args.rows, s) for s in range(3)]
        b, o = _median(thr, "batched_per_s"), _median(thr, "one_call_per_block_per_s")
        print(f"   {kind}: batched {b:,.0f} blocks/s; one call per block {o:,.0f} blocks/s; ratio {b / o:.0f}x")


if __name__ == "__main__":
    main()
