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
from hwnas.search.rundir import Run
from hwnas.search.space import InputError
from hwnas.search.train import load_weights

__all__ = ["export_run", "FORMATS"]

FORMATS = ("onnx", "tflite")


def export_run(run: Path | Run, fmt: str, out: Path | None = None, weights: Path | None = None) -> dict[str, Any]:
    """Write `run`'s network as `fmt`; returns what was written and whether the weights were trained."""
    from hwnas.devices.export import export_onnx, export_tflite

    if fmt not in FORMATS:
        raise InputError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
    run = run if isinstance(run, Run) else Run(run)
    space, arch = run.architecture()
    net = build_network(space, arch)
    weights = weights or run.weights_path
    trained = weights.is_file()
    if trained:
        load_weights(net, weights)
    net.eval()
    out = Path(out) if out else run.export_path(fmt)
    if not out.parent.is_dir():
        raise InputError(f"output directory not found: {out.parent}")
    exporter = export_onnx if fmt == "onnx" else export_tflite
    path = exporter(net, net.input_shape, path=out)
    return {"path": str(path), "format": fmt, "space": space.name, "arch": space.to_json(arch),
            "weights": str(weights) if trained else None, "trained": trained,
            "input_shape": list(net.input_shape), "bytes": Path(path).stat().st_size}
