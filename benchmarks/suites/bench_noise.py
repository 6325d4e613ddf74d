"""Profiles that hold under load: quiet vs loaded, with and without each steadiness mechanism (issue 17).

    .venv/bin/python -m benchmarks.suites.bench_noise [--archs 100] [--samples 40] [--modes off,all,no-ref,no-passes,no-selfcheck]

For each mode, in one run:

1. profile fbnet-cifar (its blocks, `--samples` random off-grid blocks, `--archs` random
   networks) on `cpu:onnxruntime?threads=1` with no other load of ours ("quiet");
2. the same again while `Burst` runs: busy loops on every core, on for `--on` s and off
   for `--off` s, stopped with the profile and never longer than `--max-load-s` ("loaded");
3. fit each store (LUT + regressors on the grid blocks and the first half of the off-grid
   samples, overhead on the networks);
4. evaluate both models on the quiet run's networks and on the other half of its off-grid
   blocks, never seen by the fit (±10%; from 80 samples on, also against how many off-grid
   samples the quiet fit had: `learning_curve`), compare the
   two block tables (share within 5%), and time both profiles (loaded / quiet, and the
   quiet time against the `off` mode's: what the mechanisms cost).

Modes: `all` (passes + reference + self-check, the default), `no-ref`, `no-passes`,
`no-selfcheck` (each one mechanism off), `off` (`Steadiness.off()`, the loop before issue 17).  The export
cache is warmed once before the first profile, so every profile times the same work.
`uptime` load is printed with every figure: this host is shared, "quiet" is not idle.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

from hwnas.latency_models.features import spec_fields
from hwnas.latency_models.metrics import within
from hwnas.latency_models.network import fit_latency_model, unreliable_mask
from hwnas.profiler.enumerate import arch_items, block_items, random_archs, sample_blocks
from hwnas.profiler.steady import Steadiness
from hwnas.profiler.store import Store
from hwnas.profiler.worker import run_device
from hwnas.search.space import BlockSpec, get_space

URI = "cpu:onnxruntime?threads=1"
MODES = {"all": Steadiness(), "no-ref": Steadiness(reference=False), "no-passes": Steadiness(passes=1, max_passes=1),
         "no-selfcheck": Steadiness(selfcheck=False), "off": Steadiness.off()}


def load() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.split("load average:")[-1].strip()


def _spin(on_s: float, off_s: float, deadline: float, stop) -> None:
    while time.time() < deadline and not stop.is_set():
        end = min(time.time() + on_s, deadline)
        x = 0
        while time.time() < end and not stop.is_set():
            x += 1
        stop.wait(off_s)


class Burst:
    """Bursty busy loops on every core: on `on_s`, off `off_s`, bounded by `max_s` (a context manager)."""

    def __init__(self, on_s: float = 3.0, off_s: float = 3.0, max_s: float = 900.0, procs: int | None = None) -> None:
        self.on_s, self.off_s, self.max_s = on_s, off_s, max_s
        self.procs = procs or os.cpu_count() or 1
        self._stop = mp.Event()
        self._workers: list[mp.Process] = []

    def __enter__(self) -> "Burst":
        deadline = time.time() + self.max_s
        for _ in range(self.procs):
            p = mp.Process(target=_spin, args=(self.on_s, self.off_s, deadline, self._stop), daemon=True)
            p.start()
            self._workers.append(p)
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        for p in self._workers:
            p.join(timeout=10)
            if p.is_alive():
                p.terminate()


def profile(db: Path, items, steadiness: Steadiness) -> tuple[float, str]:
    with Store(db) as st:
        t0 = time.perf_counter()
        s = run_device(URI, st, items, steadiness=steadiness)
        if s.failed:
            raise SystemExit(f"profile failed: {s.failed}")
        return time.perf_counter() - t0, s.identity


def fit_and_eval(db: Path, identity: str, truth_db: Path, truth_id: str, held: set[str], space: str,
                 unused: frozenset[str] = frozenset()):
    """(networks ±10%, held-out off-grid blocks ±10%, the same against the trusted ones only, how many
    held-out blocks are untrusted) of the model fitted on `db` (without the `held` blocks, nor the
    `unused` ones), against the quiet run in `truth_db`.

    Trusted: what the fit itself would use (`unreliable_mask`: neither flagged by the profiler nor
    contaminated).  A held-out block whose own passes disagreed is no yardstick for a model.
    """
    with Store(db) as st:
        blocks, nets = st.blocks(identity), st.networks(identity)
    with Store(truth_db) as st:
        tblocks, tnets = st.blocks(truth_id), st.networks(truth_id)
    model = fit_latency_model(blocks[~blocks["block_key"].isin(held | unused)], nets, space, identity)
    pred = model.predict_networks(get_space(space), list(tnets["arch"]))
    net10 = within(pred, tnets["median_ms"].to_numpy(float), 10)
    off = tblocks[tblocks["block_key"].isin(held)]
    # The block model alone: the network-level scale (fusion across block boundaries) says how
    # blocks add up inside a network, not what a block timed on its own takes.
    if not len(off):
        return net10, float("nan"), float("nan"), 0
    hit = np.abs(model.block_model.predict_fields(spec_fields([BlockSpec.from_json(j) for j in off["block_json"]]))
                 / off["median_ms"].to_numpy(float) - 1) <= 0.10
    trusted = ~unreliable_mask(off)
    return (net10, float(hit.mean()), float(hit[trusted].mean()) if trusted.any() else float("nan"),
            int((~trusted).sum()))


def learning_curve(db: Path, identity: str, train: list[str], held: set[str], space: str,
                   sizes: tuple[int, ...] = (0, 20, 40, 80, 150, 300, 600)) -> dict[int, float]:
    """Off-grid blocks ±10% (the trusted ones) against how many off-grid samples the fit had (the grid always).

    Says whether the regressor, not the timings, bounds the off-grid goal: a curve still
    rising at the sample count used wants more samples; a flat one, a better model.
    """
    out = {}
    for k in sorted({k for k in sizes if k < len(train)} | {len(train)}):
        _, _, out[k], _ = fit_and_eval(db, identity, db, identity, held, space, frozenset(train[k:]))
    return out


def agreement(db_a: Path, id_a: str, db_b: Path, id_b: str) -> float:
    with Store(db_a) as a, Store(db_b) as b:
        x = a.blocks(id_a).set_index("block_key")["median_ms"]
        y = b.blocks(id_b).set_index("block_key")["median_ms"]
    both = x.index.intersection(y.index)
    return float(np.mean(np.abs(x[both] / y[both] - 1) <= 0.05))


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--archs", type=int, default=100)
    ap.add_argument("--samples", type=int, default=40, help="off-grid blocks: half train the regressors, half test them")
    ap.add_argument("--modes", default="off,all,no-ref,no-passes,no-selfcheck")
    ap.add_argument("--on", type=float, default=3.0)
    ap.add_argument("--off", type=float, default=3.0)
    ap.add_argument("--max-load-s", type=float, default=900.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--skip-warm", action="store_true", help="the export cache is already warm (a rerun)")
    args = ap.parse_args(argv)
    space = "fbnet-cifar"
    sp = get_space(space)
    grid_specs = list(sp.unique_blocks())
    grid = {s.key for s in grid_specs}
    samples = [b for b in sample_blocks(sp, args.samples, args.seed) if b.key not in grid]
    held = {b.key for b in samples[len(samples) // 2:]}
    train = [b.key for b in samples[:len(samples) // 2]]
    items = (block_items(grid_specs + samples)
             + arch_items(sp, random_archs(sp, args.archs, seed=args.seed)))
    tmp = Path(tempfile.mkdtemp(prefix="bench_noise-"))
    print(f"{space}: {len(grid)} grid blocks + {args.samples} off-grid + {args.archs} networks on {URI}; "
          f"load {load()}", flush=True)
    if not args.skip_warm:  # warm the export cache: every profile then times the same work
        profile(tmp / "warm.db", items, Steadiness.off())
        print(f"export cache warm; load {load()}", flush=True)
    rows = []
    off_quiet = None
    for mode in args.modes.split(","):
        st = MODES[mode]
        q_db, l_db = tmp / f"{mode}-quiet.db", tmp / f"{mode}-loaded.db"
        q_s, q_id = profile(q_db, items, st)
        q_load = load()
        with Burst(args.on, args.off, args.max_load_s):
            l_s, l_id = profile(l_db, items, st)
        l_load = load()
        q_net, q_blk, q_tru, untrusted = fit_and_eval(q_db, q_id, q_db, q_id, held, space)
        l_net, l_blk, l_tru, _ = fit_and_eval(l_db, l_id, q_db, q_id, held, space)  # the same yardstick
        agree = agreement(q_db, q_id, l_db, l_id)
        if mode == "off":
            off_quiet = q_s
        rows.append((mode, q_s, l_s, q_net, l_net, q_blk, l_blk, q_tru, l_tru, untrusted, agree, q_load, l_load))
        if len(train) >= 40:
            curve = learning_curve(q_db, q_id, train, held, space)
            print(f"[{mode}] off-grid ±10% (quiet model, trusted held-out blocks) against off-grid training samples: "
                  + ", ".join(f"{k}: {v:.0%}" for k, v in curve.items()), flush=True)
        print(f"[{mode}] quiet {q_s:.0f} s (load {q_load}), loaded {l_s:.0f} s (load {l_load}) = {l_s / q_s:.2f}x; "
              f"networks ±10%: quiet model {q_net:.0%}, loaded model {l_net:.0%}; off-grid blocks ±10%: "
              f"{q_blk:.0%} / {l_blk:.0%}, the trusted ones {q_tru:.0%} / {l_tru:.0%} ({untrusted} of {len(held)} held-out "
              f"blocks untrusted); blocks quiet~loaded within 5%: {agree:.0%}", flush=True)
    print("\n| mode | quiet s | loaded s | loaded/quiet | quiet/off-quiet | nets ±10% quiet | nets ±10% loaded "
          "| off-grid ±10% quiet | off-grid ±10% loaded | trusted off-grid ±10% quiet / loaded (untrusted) "
          "| blocks agree ±5% | load (quiet; loaded) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for mode, q_s, l_s, q_net, l_net, q_blk, l_blk, q_tru, l_tru, untrusted, agree, q_load, l_load in rows:
        cost = f"{q_s / off_quiet:.2f}x" if off_quiet else "n/a"
        print(f"| {mode} | {q_s:.0f} | {l_s:.0f} | {l_s / q_s:.2f}x | {cost} | {q_net:.0%} | {l_net:.0%} | "
              f"{q_blk:.0%} | {l_blk:.0%} | {q_tru:.1%} / {l_tru:.1%} ({untrusted}) | {agree:.0%} | {q_load}; {l_load} |")


if __name__ == "__main__":
    main()
