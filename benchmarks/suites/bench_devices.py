"""Desktop devices benchmark: export cost, measurement repeatability, agreement of the CPU runtimes.

    .venv/bin/python -m benchmarks.suites.bench_devices [--blocks 20] [--dynamo-blocks 3] [--tflite-blocks 5]

Prints three markdown tables, every figure measured side by side in this one run:

1. Export cost per block: our ONNX export (TorchScript-based, `dynamo=False`)
   cold and cached, against `torch.onnx.export`'s default (dynamo) path on the
   same blocks; TFLite (litert-torch) cold and cached. Medians over blocks.
2. Repeatability: the same blocks measured twice on `cpu:onnxruntime?threads=1`
   (all blocks once, then all again), median and p90 of |Δ|/latency; with
   `--repeatability-only`, also two whole steady profiles of the same blocks (the
   profiler's default protocol: passes, reference, self-check) into fresh stores.
3. Agreement of ONNX Runtime, PyTorch (TorchScript) and LiteRT on those blocks,
   one thread each: a table of medians and ratios to ONNX Runtime.

Blocks: `get_space("fbnet-cifar").unique_blocks()`, evenly spaced picks so every
resolution and op appears.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import torch

from hwnas import devices
from hwnas.devices import export
from hwnas.search.blocks import build_block
from hwnas.search.space import BlockSpec, get_space


def pick_blocks(n: int) -> list[BlockSpec]:
    """`n` evenly spaced blocks of fbnet-cifar's unique blocks (deterministic)."""
    blocks = get_space("fbnet-cifar").unique_blocks()
    step = max(1, len(blocks) // n)
    return blocks[::step][:n]


@contextmanager
def cache_at(path: Path) -> Iterator[None]:
    old = os.environ.get("HWNAS_CACHE_DIR")
    os.environ["HWNAS_CACHE_DIR"] = str(path)
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("HWNAS_CACHE_DIR", None)
        else:
            os.environ["HWNAS_CACHE_DIR"] = old


def _timed(fn: Any) -> float:
    t0 = time.perf_counter()
    fn()
    return (time.perf_counter() - t0) * 1000


def torch_onnx_default(module: torch.nn.Module, shape: tuple[int, ...], path: Path) -> None:
    """torch.onnx.export's default path (dynamo) as a user calling it plainly gets it."""
    import contextlib
    import io

    with torch.no_grad(), warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        torch.onnx.export(module, (torch.randn(*shape),), str(path))


def export_costs(blocks: list[BlockSpec], dynamo_blocks: int, tflite_blocks: int, reps: int = 3) -> dict[str, Any]:
    rows = []
    for i, spec in enumerate(blocks):
        module = build_block(spec).eval()
        shape = spec.input_shape
        row: dict[str, Any] = {"block": spec.key}
        cold, hot = [], []
        for _ in range(reps):
            with tempfile.TemporaryDirectory() as d, cache_at(Path(d)):
                cold.append(_timed(lambda: export.export_onnx(module, shape, key=spec.key)))
                hot.append(_timed(lambda: export.export_onnx(module, shape, key=spec.key)))
        row["onnx_cold_ms"], row["onnx_cached_ms"] = statistics.median(cold), statistics.median(hot)
        if i < dynamo_blocks:
            with tempfile.TemporaryDirectory() as d:
                row["onnx_default_ms"] = _timed(lambda: torch_onnx_default(module, shape, Path(d) / "m.onnx"))
        if i < tflite_blocks:
            with tempfile.TemporaryDirectory() as d, cache_at(Path(d)):
                row["tflite_cold_ms"] = _timed(lambda: export.export_tflite(module, shape, key=spec.key))
                row["tflite_cached_ms"] = statistics.median(
                    _timed(lambda: export.export_tflite(module, shape, key=spec.key)) for _ in range(reps))
        rows.append(row)
        print(f"  export {i + 1}/{len(blocks)} {spec.key}", flush=True)

    def med(col: str) -> float:
        vals = [r[col] for r in rows if col in r]
        return statistics.median(vals) if vals else float("nan")

    both = [r for r in rows if "onnx_default_ms" in r]
    speedup = statistics.median(r["onnx_default_ms"] / r["onnx_cold_ms"] for r in both) if both else float("nan")
    return {"rows": rows, "onnx_cold_ms": med("onnx_cold_ms"), "onnx_cached_ms": med("onnx_cached_ms"),
            "onnx_default_ms": med("onnx_default_ms"), "default_over_ours": speedup,
            "tflite_cold_ms": med("tflite_cold_ms"), "tflite_cached_ms": med("tflite_cached_ms"),
            "n_dynamo": len(both), "n_tflite": sum("tflite_cold_ms" in r for r in rows)}


def measure_all(uri: str, blocks: list[BlockSpec], modules: dict[str, torch.nn.Module]) -> dict[str, Any]:
    out = {}
    with devices.open(uri) as dev:
        for spec in blocks:
            out[spec.key] = dev.measure(modules[spec.key], spec.input_shape, key=spec.key)
    return out


def repeatability(blocks: list[BlockSpec], modules: dict[str, torch.nn.Module]) -> dict[str, Any]:
    uri = "cpu:onnxruntime?threads=1"
    first = measure_all(uri, blocks, modules)
    second = measure_all(uri, blocks, modules)
    rel = [abs(first[k].median_ms - second[k].median_ms) / first[k].median_ms for k in first]
    settled = sum(m.settled for m in [*first.values(), *second.values()])
    return {"uri": uri, "median_rel_delta": statistics.median(rel), "p90_rel_delta": sorted(rel)[int(0.9 * (len(rel) - 1))],
            "max_rel_delta": max(rel), "n_blocks": len(rel), "settled": settled, "measurements": 2 * len(rel),
            "first": first}


def steady_repeatability(blocks: list[BlockSpec]) -> dict[str, Any]:
    """Two steady profiles (`hwnas profile`'s default protocol) of the same blocks, fresh stores: |Δ| of their tables."""
    from hwnas.profiler.enumerate import block_items
    from hwnas.profiler.store import Store
    from hwnas.profiler.worker import run_device

    uri = "cpu:onnxruntime?threads=1"
    tables, unflagged = [], 0
    with tempfile.TemporaryDirectory() as d:
        for i in range(2):
            with Store(Path(d) / f"p{i}.db") as st:
                s = run_device(uri, st, block_items(blocks))
                tables.append(st.blocks(s.identity).set_index("block_key")["median_ms"])
                unflagged += len(blocks) - len(s.flagged)
    both = tables[0].index.intersection(tables[1].index)
    rel = sorted(abs(tables[0][k] - tables[1][k]) / tables[0][k] for k in both)
    return {"uri": uri + " (steady profile)", "median_rel_delta": statistics.median(rel),
            "p90_rel_delta": rel[int(0.9 * (len(rel) - 1))], "max_rel_delta": rel[-1], "n_blocks": len(rel),
            "settled": unflagged, "measurements": 2 * len(rel)}


def agreement(blocks: list[BlockSpec], modules: dict[str, torch.nn.Module], ort: dict[str, Any]) -> dict[str, Any]:
    res = {"onnxruntime": {k: m.median_ms for k, m in ort.items()}}
    for rt in ("torch", "litert"):
        res[rt] = {k: m.median_ms for k, m in measure_all(f"cpu:{rt}?threads=1", blocks, modules).items()}
    ratios = {rt: statistics.median(res[rt][k] / res["onnxruntime"][k] for k in res[rt]) for rt in ("torch", "litert")}
    return {"medians_ms": res, "median_ratio_to_ort": ratios}


def _print_repeatability(rep: dict[str, Any]) -> None:
    print(f"\n## Repeatability on {rep['uri']} ({rep['n_blocks']} blocks, each measured twice)\n")
    print(f"median |Δ|/latency **{100 * rep['median_rel_delta']:.2f}%**, p90 {100 * rep['p90_rel_delta']:.2f}%, "
          f"max {100 * rep['max_rel_delta']:.2f}%; settled (95% CI of median within 1%): "
          f"{rep['settled']}/{rep['measurements']}", flush=True)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--blocks", type=int, default=20)
    ap.add_argument("--dynamo-blocks", type=int, default=3, help="blocks also exported by torch.onnx's default path")
    ap.add_argument("--tflite-blocks", type=int, default=5, help="blocks whose cold TFLite export is timed")
    ap.add_argument("--repeatability-only", action="store_true", help="run only part 2 (a couple of minutes)")
    ap.add_argument("--json", type=Path, help="also write all figures here")
    args = ap.parse_args(argv)
    blocks = pick_blocks(args.blocks)
    modules = {b.key: build_block(b).eval() for b in blocks}
    torch.manual_seed(0)
    print(f"# bench_devices: {len(blocks)} fbnet-cifar blocks, torch {torch.__version__}, {os.cpu_count()} CPUs",
          flush=True)

    if args.repeatability_only:
        with tempfile.TemporaryDirectory() as d, cache_at(Path(d)):
            rep = repeatability(blocks, modules)
            steady = steady_repeatability(blocks)
        rep.pop("first")
        _print_repeatability(rep)
        _print_repeatability(steady)
        return {"repeatability": rep, "steady_repeatability": steady}
    ex = export_costs(blocks, args.dynamo_blocks, args.tflite_blocks)
    with tempfile.TemporaryDirectory() as d, cache_at(Path(d)):  # measurement exports into a fresh cache
        rep = repeatability(blocks, modules)
        agr = agreement(blocks, modules, rep.pop("first"))

    print("\n## Export cost per block (median over blocks, ms)\n")
    print("| path | cold | cached |\n|---|---|---|")
    print(f"| ONNX, ours (TorchScript exporter, {len(blocks)} blocks) | {ex['onnx_cold_ms']:.1f} | {ex['onnx_cached_ms']:.2f} |")
    print(f"| ONNX, torch.onnx default (dynamo, {ex['n_dynamo']} blocks) | {ex['onnx_default_ms']:.1f} | – |")
    print(f"| TFLite, litert-torch ({ex['n_tflite']} blocks) | {ex['tflite_cold_ms']:.1f} | {ex['tflite_cached_ms']:.2f} |")
    print(f"\ntorch.onnx default / ours (same blocks, cold): **{ex['default_over_ours']:.0f}×**; "
          f"ONNX cold / cached: **{ex['onnx_cold_ms'] / ex['onnx_cached_ms']:.0f}×**; "
          f"TFLite cold / cached: **{ex['tflite_cold_ms'] / ex['tflite_cached_ms']:.0f}×**")

    _print_repeatability(rep)

    print("\n## Agreement of the CPU runtimes (threads=1, median ms)\n")
    print("| block | onnxruntime | torch | litert | torch/ort | litert/ort |\n|---|---|---|---|---|---|")
    med = agr["medians_ms"]
    for k in med["onnxruntime"]:
        o, t, lt = med["onnxruntime"][k], med["torch"][k], med["litert"][k]
        print(f"| {k} | {o:.4f} | {t:.4f} | {lt:.4f} | {t / o:.2f} | {lt / o:.2f} |")
    r = agr["median_ratio_to_ort"]
    print(f"\nmedian ratio to ONNX Runtime: torch **{r['torch']:.2f}×**, litert **{r['litert']:.2f}×**")
    result = {"export": ex, "repeatability": rep, "agreement": agr}
    if args.json:
        args.json.write_text(json.dumps(result, indent=2, default=str))
    return result


if __name__ == "__main__":
    main()
