"""A whole profile over ADB against the same profile on the host's LiteRT, side by side (issue 17).

    .venv/bin/python -m benchmarks.suites.bench_adb_profile [--archs 20] [--modes steady,plain] [--cold]

Profiles fbnet-cifar (its unique blocks plus `--archs` random networks) on
`adb://127.0.0.1:PORT` (devices/adbd on loopback, our benchmark_model runner) and on
`cpu:litert?threads=1`, in each `--mode` (steady: passes + reference, the default; plain:
`Steadiness.off()`).  `--cold`: each profile gets a cold TFLite export cache of its own
(both pay the export).  Default: the export is timed once (cold) and both profiles share
the warm cache, so the ratio compares the timing paths; since both sides pay the same
export, the cold-cache ratio (E + adb) / (E + litert) is never further from 1 than the
warm one.
Prints, per run: wall seconds, the ADB/litert ratio, blocks settled on the first pass, and
flagged items.  The machine's `uptime` load is printed with every figure: on a shared host a
ratio is only as good as the load it was taken under.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import tempfile
import time
from pathlib import Path

from hwnas.devices.adb.client import load_signer
from hwnas.devices.adbd import AdbDaemon, load_authorized_keys
from hwnas.devices.adbd.runner import install
from hwnas.profiler import history
from hwnas.profiler.enumerate import arch_items, block_items, random_archs
from hwnas.profiler.steady import Steadiness
from hwnas.profiler.store import Store
from hwnas.profiler.worker import run_device
from hwnas.search.space import get_space


def load() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip().split("load average:")[-1].strip()


def first_pass_settled(store: Store, device: str, block_keys: set[str], plain_summary) -> tuple[int, int]:
    """(settled on the first pass, blocks): from the pass history, or (plain loop) not re-queued."""
    df = history.passes(store, device)
    if not df.empty:
        first = df[(df["pass_no"] == 1) & df["item_key"].isin(block_keys)].drop_duplicates("item_key")
        return int(first["settled"].sum()), len(block_keys)
    blocks = store.blocks(device)
    retried = plain_summary.retried
    return len(blocks) - retried, len(block_keys)


def profile(uri: str, items, cache: Path, db: Path, steadiness: Steadiness):
    os.environ["HWNAS_CACHE_DIR"] = str(cache)  # cold: a fresh export cache per run
    with Store(db) as st:
        t0 = time.perf_counter()
        s = run_device(uri, st, items, steadiness=steadiness)
        wall = time.perf_counter() - t0
        keys = {i.key for i in items if i.kind == "block"}
        settled, n = first_pass_settled(st, s.identity, keys, s)
        flagged = len(st.blocks(s.identity).query("flagged")) + len(st.networks(s.identity).query("flagged"))
    return {"wall_s": wall, "settled_first": settled, "blocks": n, "flagged": flagged, "failed": s.failed,
            "summary": s}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--archs", type=int, default=20)
    ap.add_argument("--modes", default="steady,plain")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cold", action="store_true", help="a cold export cache per profile")
    ap.add_argument("--cache-dir", help="the shared export cache (default: a fresh one, exported once)")
    args = ap.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="bench_adb_profile-"))
    home = os.environ.get("HOME")
    os.environ["HOME"] = str(tmp)  # a throwaway ~/.android/adbkey
    load_signer()
    runner = install(tmp / "bin")
    space = get_space("fbnet-cifar")
    items = block_items(space.unique_blocks()) + arch_items(space, random_archs(space, args.archs, seed=args.seed))
    print(f"fbnet-cifar: {sum(i.kind == 'block' for i in items)} blocks + {args.archs} networks; "
          f"load before: {load()}", flush=True)
    shared = Path(args.cache_dir) if args.cache_dir else tmp / "cache-shared"
    if not args.cold:
        os.environ["HWNAS_CACHE_DIR"] = str(shared)
        from hwnas.devices.export import export_tflite
        from hwnas.profiler.worker import build_module

        t0 = time.perf_counter()
        for item in items:
            module, shape = build_module(item)
            export_tflite(module, shape, key=item.key)
        print(f"TFLite export of every item (cache {'partly ' if args.cache_dir else ''}cold): "
              f"{time.perf_counter() - t0:.1f} s; load {load()}", flush=True)
    with AdbDaemon(keys=load_authorized_keys(tmp / ".android" / "adbkey.pub")) as daemon:
        adb = f"adb://127.0.0.1:{daemon.port}?threads=1&binary={runner}"
        for mode in args.modes.split(","):
            steadiness = Steadiness() if mode == "steady" else Steadiness.off()
            rows = {}
            for name, uri in (("litert", "cpu:litert?threads=1"), ("adb", adb)):
                cache = tmp / f"cache-{mode}-{name}" if args.cold else shared
                r = rows[name] = profile(uri, items, cache, tmp / f"{mode}-{name}.db", steadiness)
                print(f"  [{mode}] {name}: {r['wall_s']:.1f} s, first-pass settled {r['settled_first']}/{r['blocks']} "
                      f"blocks, {r['flagged']} flagged, failed={r['failed']}; load {load()}", flush=True)
            print(f"[{mode}] adb / litert wall = {rows['adb']['wall_s'] / rows['litert']['wall_s']:.2f}x "
                  f"(adb settled first pass {rows['adb']['settled_first'] / rows['adb']['blocks']:.1%})", flush=True)
    if home is not None:
        os.environ["HOME"] = home


if __name__ == "__main__":
    main()
