"""Helpers shared by the search-quality suites (`bench_search_quality`, `search_fashion`):
run hwnas as a user would, cache each stage's result, profile and fit the devices, time archs
and find random architectures of matched measured latency.  Dev only, not installed.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from hwnas.report.render import write_atomic

SPACE = "fbnet-cifar"
DEVICES = ("cpu:onnxruntime?threads=1", "cpu:torch?threads=1")


def _hwnas(*args: str) -> str:
    """Run one `hwnas` command as a user would; its failure stops the benchmark with its output."""
    proc = subprocess.run([sys.executable, "-m", "hwnas", *args], capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"hwnas {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc.stdout


def _cached(path: Path, make: Any) -> Any:
    """JSON result of a step, computed once (resumable benchmark)."""
    if path.is_file():
        return json.loads(path.read_text())
    value = make()
    write_atomic(json.dumps(value, indent=2), path)
    return value


def _slug(uri: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in uri).strip("-")


def _log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def ensure_models(work: Path, store: Path, devices: list[str], max_seconds: float, networks: int) -> dict[str, str]:
    """Profile both devices' blocks (and some networks) into `store`, fit one model each."""
    models = {}
    for uri in devices:
        model = work / f"{_slug(uri)}.latency.json"
        if not model.is_file():
            _log(f"profiling {SPACE} on {uri} (resumes what {store} holds)")
            timed = f"{uri}&max_seconds={max_seconds:g}"
            _hwnas("profile", "--space", SPACE, "--device", timed, "--store", str(store))
            _hwnas("profile", "--space", SPACE, "--device", timed, "--store", str(store), "--no-blocks",
                   "--archs", f"random:{networks}", "--seed", "0")
            _hwnas("fit", "--store", str(store), "--device", uri, "--space", SPACE, "--out", str(model))
        models[uri] = str(model)
    return models


def median_random_prediction(model_path: str, n: int = 200) -> float:
    from hwnas.latency_models.io import load_model
    from hwnas.profiler.enumerate import random_archs
    from hwnas.search.space import get_space

    space = get_space(SPACE)
    return float(np.median(load_model(model_path).predict_networks(space, random_archs(space, n, seed=123))))


def measure_archs(uri: str, archs: list[tuple[str, ...]], repeats: int = 3) -> list[float]:
    """Median over `repeats` interleaved passes of each network's median latency on `uri` (ms)."""
    from hwnas import devices
    from hwnas.search.blocks import build_network
    from hwnas.search.space import get_space

    space = get_space(SPACE)
    nets = [build_network(space, a).eval() for a in archs]
    runs: list[list[float]] = [[] for _ in archs]
    with devices.open(f"{uri}&max_seconds=1") as dev:
        for _ in range(repeats):
            for i, (arch, net) in enumerate(zip(archs, nets)):
                key = f"{SPACE}:{'-'.join(arch)}"
                runs[i].append(dev.measure(net, net.input_shape, key=key).median_ms)
    return [statistics.median(r) for r in runs]


def matched_random(uri: str, model: str, latency: float, n: int, tol: float = 0.05,
                   max_measured: int = 200) -> list[dict[str, Any]]:
    """`n` random architectures whose measured latency on `uri` is within ±tol of `latency`.

    Candidates are drawn uniformly, shortlisted by predicted latency (closest first) and kept
    only when their measurement agrees: matching is on measured, not predicted, latency.
    """
    from hwnas.latency_models.io import load_model
    from hwnas.profiler.enumerate import random_archs
    from hwnas.search.space import get_space

    space = get_space(SPACE)
    pool = random_archs(space, 3000, seed=7)
    pred = load_model(model).predict_networks(space, pool)
    order = np.argsort(np.abs(pred / latency - 1.0))
    kept: list[dict[str, Any]] = []
    tried = 0
    for start in range(0, max_measured, 10):
        batch = [tuple(pool[i]) for i in order[start:start + 10]]
        tried += len(batch)
        for arch, ms, i in zip(batch, measure_archs(uri, batch, repeats=1), order[start:start + 10]):
            if abs(ms / latency - 1.0) <= tol:
                # confirm with two more passes: one pass on a shared machine can be lucky
                ms = measure_archs(uri, [arch], repeats=2)[0]
                if abs(ms / latency - 1.0) <= tol:
                    kept.append({"arch": "-".join(arch), "measured_ms": ms, "predicted_ms": float(pred[i])})
        _log(f"random architectures matching {latency:.3f} ms ±{tol:.0%}: {len(kept)}/{n} after {tried} measured")
        if len(kept) >= n:
            break
    return kept[:n]
