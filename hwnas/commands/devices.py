"""`hwnas devices` (what can measure here) and `hwnas bench MODEL` (time one model file, like benchmark_model)."""

from __future__ import annotations

import contextlib
import dataclasses
import re
from pathlib import Path
from typing import Any, Iterator, Optional

import typer
from hwnas.output import LineConsole
from hwnas.output import safe as escape  # markup-escaped and control characters stripped

from hwnas.output import console, print_json, table
from hwnas.search.space import InputError

_err = LineConsole(stderr=True)

#: Which runtime `hwnas bench` uses for a file when no --device is given.
_RUNTIME_FOR_SUFFIX = {".onnx": "cpu:onnxruntime", ".tflite": "cpu:litert", ".pt": "cpu:torch",
                       ".pth": "cpu:torch", ".ts": "cpu:torch"}


def parse_shape(text: str) -> tuple[int, ...]:
    """`1,3,224,224` or `1x3x224x224` → (1, 3, 224, 224); anything else is a user error."""
    parts = [p for p in re.split(r"[,x×\s]+", text.strip()) if p]
    if not parts or not all(p.isdigit() and int(p) > 0 for p in parts):
        raise InputError(f"bad --input-shape {text!r}: expected positive integers like 1,3,224,224")
    return tuple(int(p) for p in parts)


def local_uris() -> list[str]:
    """The device URIs this host can offer: the three CPU runtimes, then each GPU's."""
    from hwnas.devices.cuda import gpu_count
    from hwnas.devices.local import LOCAL_RUNTIMES

    uris = [f"cpu:{rt}" for rt in LOCAL_RUNTIMES]
    for i in range(gpu_count()):
        uris += [f"cuda:{i}", f"cuda:{i}:onnxruntime"]
    return uris


def describe(uri: str, tolerate: bool) -> dict[str, Any]:
    """One device's entry: its identity and info(), or (when `tolerate`) why it is unavailable."""
    from hwnas.devices import open_device, parse_uri

    try:
        with open_device(uri) as dev:
            info = dev.info()
            return {"uri": str(dev.uri), "available": True, "identity": dev.identity,
                    "runtime": info.get("runtime", dev.uri.runtime), "runtime_version": info.get("runtime_version"),
                    "info": info}
    except InputError as exc:
        if not tolerate:
            raise
        return {"uri": uri, "available": False, "runtime": parse_uri(uri).runtime, "error": str(exc)}


def _freq(info: dict[str, Any]) -> str:
    mhz, gov = info.get("max_mhz"), info.get("governors")
    text = f"{mhz:.0f} MHz" if mhz else "n/a"
    return f"{text} ({', '.join(gov)})" if gov else text


def devices_cmd(
    uris: Optional[list[str]] = typer.Argument(None, help="Device URIs to describe (cpu:torch, cuda:0, "
                                               "adb://SERIAL, ...); none lists what this host offers."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON (a list of devices) instead of a table."),
) -> None:
    """List the devices reachable from this machine, or describe the given device URIs.

    With no URI: the CPU runtimes (ONNX Runtime, PyTorch, LiteRT) and each CUDA GPU,
    with CPU model, cores, frequencies and runtime versions; a runtime that is not
    installed is listed as unavailable with the reason. With URIs: each device's
    full info(); a URI that cannot be opened is an error (exit 2).
    """
    listing = not uris
    entries = [describe(u, tolerate=listing) for u in (local_uris() if listing else uris)]
    if as_json:
        print_json(entries)
        return
    if listing:
        rows = []
        for e in entries:
            info = e.get("info", {})
            rows.append((e["uri"], e.get("runtime_version") or "-",
                         info.get("model") if str(e["uri"]).startswith("cuda") else info.get("cpu", "-"),
                         info.get("cores", "-"), _freq(info) if info else "-",
                         "ok" if e["available"] else f"unavailable: {e['error']}"))
        console.print(table("devices on this host", ["device", "version", "cpu / gpu", "cores",
                                                     "max freq", "status"], [[escape(str(v)) for v in r] for r in rows]))
        return
    for e in entries:
        console.print(f"[bold]{escape(e['uri'])}[/]  identity: {escape(e['identity'])}", highlight=False)
        for k, v in e["info"].items():
            if k != "frequencies":  # per-core detail is in --json
                console.print(f"  {escape(str(k))}: {escape(str(v))}", highlight=False)


@contextlib.contextmanager
def _spinner(text: str) -> Iterator[None]:
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                  console=_err, transient=True) as progress:
        progress.add_task(text, total=None)
        yield


def bench_cmd(
    model: Path = typer.Argument(..., help="Model file: .onnx, .tflite, or TorchScript .pt/.pth/.ts."),
    device: Optional[str] = typer.Option(None, "--device", "-d", help="Device URI, e.g. cpu:litert?threads=1, "
                                         "cuda:0, adb://SERIAL; default: the CPU runtime for the file's format."),
    input_shape: Optional[str] = typer.Option(None, "--input-shape", help="Input shape such as 1,3,224,224; "
                                              "needed for TorchScript and models with dynamic dims."),
    benchmark_binary: Optional[str] = typer.Option(None, "--benchmark-binary",
                                                   help="benchmark_model binary a device should use (URI option binary)."),
    samples: bool = typer.Option(False, "--samples", help="With --json, include every raw sample (ms)."),
    as_json: bool = typer.Option(False, "--json", help="Print the measurement as JSON."),
) -> None:
    """Benchmark one model file on one device, like TFLite's benchmark_model.

    Warms up, then times runs until the 95% confidence interval of the median is
    within 1% (or a run/time cap: URI options warmup, runs, min_runs, max_runs,
    max_seconds), rejects 1.5×IQR outliers, and prints median, mean, std,
    p10/p90, min, and the run count.
    """
    from hwnas.devices import open_device, parse_uri
    from hwnas.devices.base import Artifact

    shape = parse_shape(input_shape) if input_shape else None
    artifact = Artifact.of(model, shape)  # missing file: one line
    if device is None:
        device = _RUNTIME_FOR_SUFFIX.get(model.suffix.lower())
        if device is None:
            raise InputError(f"cannot tell the runtime of {model.name}; give --device "
                             "(cpu:onnxruntime, cpu:litert, cpu:torch, cuda:0, adb://SERIAL)")
    uri = parse_uri(device)
    if benchmark_binary:
        uri = dataclasses.replace(uri, options=tuple(sorted({**dict(uri.options), "binary": benchmark_binary}.items())))
    with open_device(uri) as dev:
        with _spinner(f"measuring {escape(model.name)} on {escape(str(uri))}"):
            m = dev.measure(artifact.path, shape)
        identity = dev.identity
    result = {"model": str(model), "device": str(uri), "identity": identity, **m.to_dict(samples=samples)}
    if as_json:
        print_json(result)
        return
    rows = [("median", m.median_ms), ("mean", m.mean_ms), ("std", m.std_ms), ("p10", m.p10_ms),
            ("p90", m.p90_ms), ("min", m.min_ms), ("max", m.max_ms), ("95% CI of median ±", m.ci_halfwidth_ms)]
    console.print(table(f"{escape(model.name)} on {escape(str(uri))}", ["statistic", "ms"],
                        [(k, f"{v:.4f}") for k, v in rows], right=("ms",)))
    note = "" if m.settled else " [yellow](not settled: hit the run/time cap before the median was within 1%)[/]"
    console.print(f"runs: {m.n} (warm-up {m.warmup}, {m.rejected} outliers rejected){note}", highlight=False)
    console.print(f"device: {escape(identity)}", highlight=False)


def register(app: typer.Typer) -> None:
    app.command("devices")(devices_cmd)
    app.command("bench")(bench_cmd)
