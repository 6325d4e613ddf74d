"""Start-up time of the CLI: `hwnas --help` and `hwnas arch info fbnet-b`, this tree against another.

    .venv/bin/python -m benchmarks.suites.bench_startup [--before DIR] [--repeats 7]

`--before DIR` is a checkout of an older version with the old top-level layout
(`git worktree add /tmp/before 824a1c3`): it runs with DIR first on
`sys.path`, so its `hwnas`, `search`, ... load instead of the installed ones.
Runs alternate between the two trees so that drift of the machine's speed
hits both alike; the figure is the ratio of medians, and which heavy modules
(torch, ONNX Runtime, LiteRT) each command loaded.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

COMMANDS = {"--help": ["--help"], "arch info fbnet-b": ["arch", "info", "fbnet-b"]}
PROBE = ("import sys, runpy; sys.argv = ['hwnas'] + {args!r}\n"
         "try:\n    runpy.run_module('hwnas', run_name='__main__')\nexcept SystemExit:\n    pass\n"
         "print('HEAVY=' + ','.join(m for m in ('torch', 'onnxruntime', 'ai_edge_litert') if m in sys.modules),"
         " file=sys.stderr)")


def run_once(args: list[str], tree: Path | None) -> tuple[float, str]:
    env = {**os.environ, "COLUMNS": "120"}
    cmd = [sys.executable, "-c", PROBE.format(args=args)]
    if tree is not None:
        env["PYTHONPATH"] = str(tree)
    t0 = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True, cwd=tree or Path.cwd(), env=env, timeout=300)
    wall = time.perf_counter() - t0
    heavy = next((line[6:] for line in p.stderr.splitlines() if line.startswith("HEAVY=")), "?")
    if p.returncode not in (0, 2) or "Traceback" in p.stderr:
        raise SystemExit(f"{' '.join(args)} failed in {tree or 'this tree'}:\n{p.stderr[-2000:]}")
    return wall, heavy or "none"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--before", type=Path, help="checkout of the older version to compare with")
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    trees = {"after": None, **({"before": args.before.resolve()} if args.before else {})}
    results: dict[str, dict[str, dict]] = {}
    for label, argv in COMMANDS.items():
        walls: dict[str, list[float]] = {t: [] for t in trees}
        heavy: dict[str, str] = {}
        run_once(argv, None)  # warm the page cache once
        for _ in range(args.repeats):
            for tree, path in trees.items():
                wall, heavy[tree] = run_once(argv, path)
                walls[tree].append(wall)
        results[label] = {t: {"median_s": statistics.median(w), "heavy": heavy[t]} for t, w in walls.items()}
        if "before" in trees:
            results[label]["ratio_after_over_before"] = results[label]["after"]["median_s"] / \
                results[label]["before"]["median_s"]
    load = os.getloadavg()[0]
    if args.json:
        print(json.dumps({"load_1min": load, "results": results}, indent=2))
        return
    print(f"load average (1 min) at the end: {load:.2f}")
    for label, r in results.items():
        parts = [f"{t}: {v['median_s']:.2f} s (loads {v['heavy']})" for t, v in r.items() if isinstance(v, dict)]
        ratio = f"; after/before {r['ratio_after_over_before']:.2f}" if "ratio_after_over_before" in r else ""
        print(f"hwnas {label}: " + "; ".join(parts) + ratio)


if __name__ == "__main__":
    main()
