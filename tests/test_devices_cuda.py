"""CUDA devices: measured with CUDA events on a GPU host; on a host without one, refused in one line."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hwnas import devices
from hwnas.devices.base import Artifact, DeviceError
from hwnas.devices.cuda import gpu_count
from hwnas.search.blocks import build_block
from hwnas.search.space import get_space

needs_gpu = pytest.mark.skipif(gpu_count() == 0, reason="no CUDA GPU on this host (torch.cuda.is_available() is False)")


@pytest.fixture(scope="module")
def block():
    spec = get_space("fbnet-cifar").unique_blocks()[5]
    torch.manual_seed(0)
    return spec, build_block(spec).eval()


@pytest.mark.skipif(gpu_count() > 0, reason="checks the refusal on a host without a GPU")
def test_no_gpu_is_a_clear_device_error():
    with pytest.raises(DeviceError, match="no CUDA GPU"):
        devices.open("cuda:0")


@pytest.mark.cuda
@needs_gpu
def test_torch_cuda_measures_with_events(block):
    spec, module = block
    with devices.open("cuda:0?warmup=5&runs=30") as dev:
        info = dev.info()
        m = dev.measure(module, spec.input_shape, key=spec.key)
    assert info["gpu"] and info["runtime"] == "torch" and info["gpu"] in dev.identity
    assert m.extra["timer"] == "cuda_events" and len(m.samples_ms) == 30 and m.median_ms > 0


@pytest.mark.cuda
@needs_gpu
def test_torch_cuda_matches_cpu_output(block):
    spec, module = block
    with devices.open("cuda:0") as gpu, devices.open("cpu:torch") as cpu:
        a = gpu.prepare(Artifact.of(module, spec.input_shape)).outputs()[0]
        b = cpu.prepare(Artifact.of(module, spec.input_shape)).outputs()[0]
    np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-3)


@pytest.mark.cuda
@needs_gpu
def test_gpu_index_out_of_range():
    with pytest.raises(DeviceError, match="no GPU"):
        devices.open(f"cuda:{gpu_count()}")


@pytest.mark.cuda
@needs_gpu
def test_onnxruntime_cuda_provider(block):
    import onnxruntime as ort

    if "CUDAExecutionProvider" not in ort.get_available_providers():
        with pytest.raises(DeviceError, match="CUDAExecutionProvider"):
            devices.open("cuda:0:onnxruntime")
        return
    spec, module = block
    with devices.open("cuda:0:onnxruntime?warmup=5&runs=30") as dev:
        m = dev.measure(module, spec.input_shape, key=spec.key)
    assert m.median_ms > 0 and len(m.samples_ms) == 30
