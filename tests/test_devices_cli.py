"""`hwnas devices` and `hwnas bench` as a user runs them, including every kind of bad input."""

from __future__ import annotations

import json

import pytest
import torch

from hwnas.search.blocks import build_block
from hwnas.search.space import get_space


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """One block as .onnx, .tflite and TorchScript .pt files."""
    from hwnas.devices.export import export_onnx, export_tflite

    d = tmp_path_factory.mktemp("models")
    spec = get_space("fbnet-cifar").unique_blocks()[5]
    module = build_block(spec).eval()
    export_onnx(module, spec.input_shape, path=d / "blk.onnx")
    export_tflite(module, spec.input_shape, path=d / "blk.tflite")
    torch.jit.trace(module, torch.randn(*spec.input_shape)).save(str(d / "blk.pt"))
    return d, spec


def _one_line_error(proc, *needles):
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    err = proc.stderr.strip().splitlines()[-1]
    assert err.startswith("error:"), proc.stderr
    for n in needles:
        assert n in proc.stderr, proc.stderr
    return err


def test_devices_json_lists_three_cpu_runtimes_with_versions(cli):
    import ai_edge_litert  # noqa: F401
    import onnxruntime

    proc = cli("devices", "--json", check=True)
    entries = {e["uri"]: e for e in json.loads(proc.stdout)}
    for uri in ("cpu:onnxruntime", "cpu:torch", "cpu:litert"):
        assert entries[uri]["available"], entries[uri]
        assert entries[uri]["runtime_version"]
        assert entries[uri]["info"]["cores"] >= 1 and entries[uri]["info"]["cpu"]
    assert entries["cpu:onnxruntime"]["runtime_version"] == onnxruntime.__version__
    assert entries["cpu:torch"]["runtime_version"].startswith(torch.__version__.split("+")[0])
    if not torch.cuda.is_available():
        assert not any(u.startswith("cuda") for u in entries)


def test_devices_table_and_named_uri(cli):
    proc = cli("devices", check=True)
    assert "cpu:litert" in proc.stdout and "cpu:torch" in proc.stdout
    proc = cli("devices", "cpu:torch?threads=1", "--json", check=True)
    (entry,) = json.loads(proc.stdout)
    assert entry["info"]["threads"] == 1 and "threads=1" in entry["identity"]


def test_missing_runtime_is_listed_and_refused(cli, tmp_path):
    stub = tmp_path / "stub" / "ai_edge_litert"
    stub.mkdir(parents=True)
    (stub / "__init__.py").write_text("raise ImportError('No module named ai_edge_litert (simulated)')\n")
    env = {"PYTHONPATH": str(tmp_path / "stub")}
    entries = {e["uri"]: e for e in json.loads(cli("devices", "--json", env=env, check=True).stdout)}
    assert not entries["cpu:litert"]["available"]
    assert "not installed" in entries["cpu:litert"]["error"]
    assert entries["cpu:onnxruntime"]["available"]
    _one_line_error(cli("devices", "cpu:litert", env=env), "not installed", "pip install ai-edge-litert")


@pytest.mark.slow
@pytest.mark.parametrize("fmt,device", [("onnx", "cpu:onnxruntime"), ("tflite", "cpu:litert"), ("pt", "cpu:torch")])
def test_bench_each_format(cli, models, fmt, device):
    d, spec = models
    args = ["bench", str(d / f"blk.{fmt}"), "--device", f"{device}?threads=1&warmup=2&runs=20", "--json"]
    if fmt == "pt":
        args += ["--input-shape", ",".join(map(str, spec.input_shape))]
    out = json.loads(cli(*args, check=True).stdout)
    for k in ("median_ms", "mean_ms", "std_ms", "p10_ms", "p90_ms", "min_ms", "n", "settled", "identity"):
        assert k in out
    assert out["n"] + out["rejected"] == 20 and out["warmup"] == 2
    assert out["min_ms"] <= out["median_ms"]
    assert device.split(":")[1] in out["identity"]


def test_bench_table_picks_runtime_from_suffix(cli, models):
    d, _ = models
    proc = cli("bench", str(d / "blk.tflite"), "--device", "cpu:litert?runs=10&warmup=1", check=True)
    for word in ("median", "mean", "std", "p10", "p90", "min", "runs: "):
        assert word in proc.stdout
    proc = cli("bench", str(d / "blk.onnx"), "--json", "--samples", check=True)
    out = json.loads(proc.stdout)
    assert out["device"] == "cpu:onnxruntime" and len(out["samples_ms"]) >= out["n"]


def test_bench_bad_input(cli, models, tmp_path):
    d, _ = models
    _one_line_error(cli("bench", str(tmp_path / "nope.onnx")), "not found")
    corrupt = tmp_path / "corrupt.onnx"
    corrupt.write_bytes(b"\x08\x07garbage" * 10)
    _one_line_error(cli("bench", str(corrupt)), "not a valid model file")
    corrupt_tfl = tmp_path / "corrupt.tflite"
    corrupt_tfl.write_bytes(b"TFL3" + b"\xff" * 100)
    _one_line_error(cli("bench", str(corrupt_tfl)), "not a valid model file")
    _one_line_error(cli("bench", str(d / "blk.onnx"), "--device", "tpu:0"), "unknown device scheme")
    _one_line_error(cli("bench", str(d / "blk.onnx"), "--device", "cpu:tensorrt"), "no adapter for runtime")
    _one_line_error(cli("bench", str(d / "blk.pt")), "--input-shape")
    _one_line_error(cli("bench", str(d / "blk.pt"), "--input-shape", "1,a,3"), "bad --input-shape")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on a host without a GPU")
def test_cuda_without_gpu_is_one_line(cli, models):
    d, _ = models
    _one_line_error(cli("devices", "cuda:0"), "no CUDA GPU")
    _one_line_error(cli("bench", str(d / "blk.onnx"), "--device", "cuda:0:onnxruntime"), "CUDA")
