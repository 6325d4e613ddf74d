"""Export to ONNX and TFLite: files that load, channels-last TFLite I/O, and an on-disk cache."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch

from hwnas.devices import export
from hwnas.search.blocks import build_block
from hwnas.search.space import get_space


@pytest.fixture(scope="module")
def block():
    spec = get_space("fbnet-cifar").unique_blocks()[5]
    torch.manual_seed(0)
    return spec, build_block(spec).eval()


def test_onnx_export_is_cached_by_key(block, tmp_path, monkeypatch):
    monkeypatch.setenv("HWNAS_CACHE_DIR", str(tmp_path))
    spec, module = block
    before = export.export_stats["onnx"]
    p1 = export.export_onnx(module, spec.input_shape, key=spec.key)
    p2 = export.export_onnx(module, spec.input_shape, key=spec.key)
    assert p1 == p2 and p1.is_file() and str(p1).startswith(str(tmp_path))
    assert export.export_stats["onnx"] == before + 1  # the second call exported nothing
    onnx.checker.check_model(onnx.load(str(p1)))
    # A different shape of the same key is a different file.
    p3 = export.export_onnx(module, (2, *spec.input_shape[1:]), key=spec.key)
    assert p3 != p1


def test_cache_path_changes_with_exporter_version(monkeypatch, tmp_path):
    monkeypatch.setenv("HWNAS_CACHE_DIR", str(tmp_path))
    a = export.cached_path("onnx", "k", (1, 3, 8, 8))
    monkeypatch.setattr(torch, "__version__", "9.9.9")
    assert export.cached_path("onnx", "k", (1, 3, 8, 8)) != a


def test_onnx_export_to_a_given_path_matches_torch(block, tmp_path):
    import onnxruntime as ort

    spec, module = block
    out = export.export_onnx(module, spec.input_shape, path=tmp_path / "b.onnx")
    assert out == tmp_path / "b.onnx"
    x = np.random.default_rng(0).standard_normal(spec.input_shape).astype(np.float32)
    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    got = sess.run(None, {"input": x})[0]
    with torch.no_grad():
        want = module(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def test_bad_shape_is_a_user_error(block):
    from hwnas.devices.base import DeviceError

    _, module = block
    with pytest.raises(DeviceError):
        export.export_onnx(module, (1, 0, 32, 32))


@pytest.mark.slow
def test_tflite_export_is_channels_last_and_cached(block, tmp_path, monkeypatch):
    from ai_edge_litert.interpreter import Interpreter

    monkeypatch.setenv("HWNAS_CACHE_DIR", str(tmp_path))
    spec, module = block
    before = export.export_stats["tflite"]
    p = export.export_tflite(module, spec.input_shape, key=spec.key)
    assert export.export_tflite(module, spec.input_shape, key=spec.key) == p
    assert export.export_stats["tflite"] == before + 1
    it = Interpreter(str(p), num_threads=1)
    it.allocate_tensors()
    inp, out = it.get_input_details()[0], it.get_output_details()[0]
    n, c, h, w = spec.input_shape
    assert tuple(inp["shape"]) == (n, h, w, c)
    x = np.random.default_rng(0).standard_normal((n, h, w, c)).astype(np.float32)
    it.set_tensor(inp["index"], x)
    it.invoke()
    with torch.no_grad():
        want = module(torch.from_numpy(x).permute(0, 3, 1, 2)).permute(0, 2, 3, 1).numpy()
    np.testing.assert_allclose(it.get_tensor(out["index"]), want, rtol=1e-3, atol=1e-3)
