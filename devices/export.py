"""Export torch modules to ONNX and TFLite files, cached on disk by content key and exporter version.

The profiler exports 100+ blocks per space, so export cost matters:
ONNX goes through torch's TorchScript-based exporter (`dynamo=False`, tens
of ms per block) rather than the dynamo path (seconds per block; see
benchmarks/bench_devices.py). TFLite goes through `litert-torch` with
channels-last I/O, so the model takes NHWC input as phone runtimes do.

With a `key` (a BlockSpec key, or "<space>:<arch>"), the file lands in
`$HWNAS_CACHE_DIR/export/<format>/<exporter versions>/<hash>.<ext>` and a
second export of the same key and shape returns it without exporting; a
new torch or litert-torch version is a new cache directory, never a stale hit.
"""

from __future__ import annotations

import collections
import contextlib
import hashlib
import importlib.metadata
import os
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from hwnas.devices.base import DeviceError

__all__ = ["export_onnx", "export_tflite", "cache_dir", "cached_path", "exporter_version", "export_stats",
           "ChannelsLast", "ONNX_OPSET"]

#: Opset of exported ONNX files: supported by every ONNX Runtime >= 1.14.
ONNX_OPSET = 17

#: Counts of real exports and cache hits per format in this process ("onnx", "onnx_hit", ...),
#: for the benchmark and for tests that check a cached export exports nothing.
export_stats: collections.Counter[str] = collections.Counter()


def cache_dir() -> Path:
    """Root of the on-disk cache: `$HWNAS_CACHE_DIR`, default `~/.cache/hwnas`."""
    return Path(os.environ.get("HWNAS_CACHE_DIR") or Path.home() / ".cache" / "hwnas")


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "none"


def exporter_version(fmt: str) -> str:
    """Version tag of the exporter chain of a format; part of the cache path."""
    if fmt == "onnx":
        return f"torch{torch.__version__}-opset{ONNX_OPSET}"
    if fmt == "tflite":
        return f"torch{torch.__version__}-litert_torch{_version('litert-torch')}"
    raise ValueError(f"unknown export format {fmt!r}")


def cached_path(fmt: str, key: str, input_shape: tuple[int, ...]) -> Path:
    """Where the export of `key` at `input_shape` is cached (whether or not it exists yet)."""
    digest = hashlib.sha256(f"{key}|{tuple(int(s) for s in input_shape)}".encode()).hexdigest()[:32]
    return cache_dir() / "export" / fmt / exporter_version(fmt) / f"{digest}.{fmt}"


class ChannelsLast(nn.Module):
    """Wraps an NCHW module so it takes and returns NHWC tensors (4-D only; other ranks pass through)."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 4:
            x = x.permute(0, 3, 1, 2)
        y = self.module(x)
        if y.dim() == 4:
            y = y.permute(0, 2, 3, 1)
        return y


def _nhwc(shape: tuple[int, ...]) -> tuple[int, ...]:
    return (shape[0], shape[2], shape[3], shape[1]) if len(shape) == 4 else tuple(shape)


def _onnx_file(module: nn.Module, input_shape: tuple[int, ...], dest: Path) -> None:
    x = torch.randn(*input_shape)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, (x,), str(dest), dynamo=False, opset_version=ONNX_OPSET,
                          input_names=["input"], output_names=["output"], do_constant_folding=True)


def _quiet_litert() -> None:
    # litert-torch prints a rich progress tree for every conversion unless told not to.
    os.environ.setdefault("LITERT_TORCH_SHOW_PROGRESS", "n")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _tflite_file(module: nn.Module, input_shape: tuple[int, ...], dest: Path) -> None:
    _quiet_litert()
    try:
        import litert_torch
    except ImportError:
        raise DeviceError("TFLite export needs litert-torch, which is not installed; "
                          "install it with: pip install 'hwnas[tflite]'") from None
    x = torch.randn(*_nhwc(input_shape))
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        converted = litert_torch.convert(ChannelsLast(module).eval(), (x,))
        converted.export(str(dest))


def _export(fmt: str, writer: Callable[[nn.Module, tuple[int, ...], Path], None], module: nn.Module,
            input_shape: tuple[int, ...], path: str | os.PathLike | None, key: str | None) -> Path:
    shape = tuple(int(s) for s in input_shape)
    if not shape or any(s <= 0 for s in shape):
        raise DeviceError(f"bad input shape {input_shape!r}: expected positive sizes like 1,3,224,224")
    module = module.eval()
    if key is not None:
        target = cached_path(fmt, key, shape)
        if target.is_file():
            export_stats[f"{fmt}_hit"] += 1
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            _atomic_write(fmt, writer, module, shape, target)
        if path is None:
            return target
        out = Path(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(target, out)
        return out
    if path is None:
        scratch = cache_dir() / "scratch"
        scratch.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(suffix=f".{fmt}", dir=scratch)
        os.close(fd)
        path = name
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    _atomic_write(fmt, writer, module, shape, out)
    return out


def _atomic_write(fmt: str, writer: Callable[[nn.Module, tuple[int, ...], Path], None], module: nn.Module,
                  shape: tuple[int, ...], target: Path) -> None:
    # Write beside the target and rename: parallel profilers exporting the same
    # key never see a half-written file.
    fd, tmp = tempfile.mkstemp(suffix=f".{fmt}", prefix=".part-", dir=target.parent)
    os.close(fd)
    try:
        writer(module, shape, Path(tmp))
        os.replace(tmp, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    export_stats[fmt] += 1


def export_onnx(module: nn.Module, input_shape: tuple[int, ...], path: str | os.PathLike | None = None,
                key: str | None = None) -> Path:
    """Export `module` (NCHW input of `input_shape`) to an ONNX file; cached by `key` when given."""
    return _export("onnx", _onnx_file, module, input_shape, path, key)


def export_tflite(module: nn.Module, input_shape: tuple[int, ...], path: str | os.PathLike | None = None,
                  key: str | None = None) -> Path:
    """Export `module` to a TFLite file whose I/O is channels-last (NHWC); `input_shape` is the NCHW shape."""
    return _export("tflite", _tflite_file, module, input_shape, path, key)
