"""Export a searched (and trained) network to a deployable ONNX or TFLite file.

Reads a run directory (`arch.json`, and `model.pt` when `hwnas train` has
written trained weights there) and hands the network to `hwnas.devices.export`,
which the profiler uses too, so the exported graph is the one that was
measured.  No export cache key: trained weights differ from the cached
architecture-only exports.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hwnas.search.blocks import build_network
from hwnas.search.space import InputError, SearchSpace, load_arch_file
from hwnas.search.train import load_weights

__all__ = ["read_arch_file", "export_run", "FORMATS"]

FORMATS = ("onnx", "tflite")


def read_arch_file(path: Path) -> tuple[SearchSpace, Any, dict[str, Any]]:
    """Space, architecture and the raw record of an `arch.json` (or a run directory holding one)."""
    return load_arch_file(path)


def export_run(run: Path, fmt: str, out: Path | None = None, weights: Path | None = None) -> dict[str, Any]:
    """Write `run`'s network as `fmt`; returns what was written and whether the weights were trained."""
    from hwnas.devices.export import export_onnx, export_tflite

    if fmt not in FORMATS:
        raise InputError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
    run = Path(run)
    space, arch, record = read_arch_file(run)
    run_dir = run if run.is_dir() else run.parent
    net = build_network(space, arch)
    weights = weights or (run_dir / "model.pt")
    trained = weights.is_file()
    if trained:
        load_weights(net, weights)
    net.eval()
    out = Path(out) if out else run_dir / f"model.{fmt}"
    out.parent.mkdir(parents=True, exist_ok=True)
    exporter = export_onnx if fmt == "onnx" else export_tflite
    path = exporter(net, net.input_shape, path=out)
    return {"path": str(path), "format": fmt, "space": space.name, "arch": record["arch"],
            "weights": str(weights) if trained else None, "trained": trained,
            "input_shape": list(net.input_shape), "bytes": Path(path).stat().st_size}
