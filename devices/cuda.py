"""CUDA GPU devices: `cuda:N` (PyTorch, timed with CUDA events) and `cuda:N:onnxruntime` (CUDA provider).

Where no GPU is present, opening one says so in one line (DeviceError), and
`gpu_count()` is 0 so `hwnas devices` lists none; nothing here fails at
import on a CPU-only machine.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np

from hwnas.devices.base import DeviceError
from hwnas.devices.registry import register_device
from hwnas.devices.uri import DeviceURI
from hwnas.devices.local import OnnxRuntimeCPU, Prepared, TorchCPU, model_inputs

__all__ = ["gpu_count", "TorchCUDA", "OnnxRuntimeCUDA"]


def gpu_count() -> int:
    """CUDA GPUs torch can see (0 without a GPU, a driver or a CUDA build of torch)."""
    try:
        import torch

        return torch.cuda.device_count() if torch.cuda.is_available() else 0
    except Exception:  # a broken driver install must not break `hwnas devices`
        return 0


def _check_gpu(uri: DeviceURI) -> int:
    index = int(uri.target or 0)
    n = gpu_count()
    if n == 0:
        import torch

        raise DeviceError(f"device {uri}: no CUDA GPU here (torch {torch.__version__} sees none)")
    if index >= n:
        raise DeviceError(f"device {uri}: no GPU {index}; this host has {n} (cuda:0..cuda:{n - 1})")
    return index


def _gpu_info(index: int) -> dict[str, Any]:
    import torch

    if not gpu_count():
        name = f"CUDA GPU {index}"
        return {"model": name, "gpu": name, "gpu_index": index, "compute_capability": "unknown"}
    props = torch.cuda.get_device_properties(index)
    return {"model": props.name, "gpu": props.name, "gpu_index": index,
            "compute_capability": f"{props.major}.{props.minor}",
            "gpu_memory_gib": round(props.total_memory / 2**30, 1), "cuda_version": torch.version.cuda,
            "sm_count": props.multi_processor_count}


def _gpu_thermal(index: int) -> dict[str, Any] | None:
    import torch

    try:  # needs NVML (pynvml); without it the temperature is unknown, not an error
        temp = torch.cuda.temperature(index)
    except Exception:
        return None
    return {"temps_c": {f"gpu{index}": float(temp)}, "throttled": False}


@register_device("cuda", "torch")
class TorchCUDA(TorchCPU):
    """PyTorch on one GPU: traced and frozen modules, each run timed by a pair of CUDA events."""

    takes_target = True
    timer = "cuda_events"

    def __init__(self, uri: DeviceURI) -> None:
        super().__init__(uri)
        self.index = _check_gpu(uri)
        self.device = self.rt.device("cuda", self.index)

    def info(self) -> dict[str, Any]:
        info = super().info()
        gpu = _gpu_info(self.index)
        return {**info, **gpu, "hardware_id": f"{gpu['gpu']} (cc {gpu['compute_capability']})"}

    def thermal(self) -> dict[str, Any] | None:
        return _gpu_thermal(self.index)

    def _prepared(self, module: Any, x: Any, path: Path | None) -> Prepared:
        torch = self.rt
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        with torch.inference_mode():
            module(x)
        torch.cuda.synchronize(self.device)

        def run() -> float:
            # Events bracket the launch on the stream and synchronize on the end:
            # the time is the GPU's, not the Python launch overhead's.
            start.record()
            module(x)
            end.record()
            end.synchronize()
            return float(start.elapsed_time(end))

        def outputs() -> list[np.ndarray]:
            with torch.inference_mode():
                y = module(x)
            return [t.detach().cpu().numpy() for t in (y if isinstance(y, (tuple, list)) else [y])]

        return Prepared(run, outputs, [tuple(x.shape)], path, context=torch.inference_mode, keep=[module])

    def _load_file(self, path: Path, input_shape: tuple[int, ...] | None, what: str) -> Prepared:
        if input_shape is None:
            raise DeviceError(f"{what}: a TorchScript file does not record its input shape; give `input_shape`")
        module = self.rt.jit.load(str(path), map_location=self.device).eval()
        x = self.rt.from_numpy(model_inputs([("input", input_shape, np.float32)], None, what)[0]).to(self.device)
        return self._prepared(module, x, path)

    def _load_module(self, module: Any, input_shape: tuple[int, ...], key: str | None) -> Prepared:
        torch = self.rt
        x = torch.from_numpy(model_inputs([("input", input_shape, np.float32)], None, key or "module")[0])
        x = x.to(self.device)
        module = module.eval().to(self.device)
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                scripted = torch.jit.freeze(torch.jit.trace(module, (x,), check_trace=False))
            except Exception:  # untraceable modules run eagerly
                scripted = module
        return self._prepared(scripted, x, None)


@register_device("cuda", "onnxruntime")
class OnnxRuntimeCUDA(OnnxRuntimeCPU):
    """ONNX Runtime's CUDA execution provider (onnxruntime-gpu); timed end to end with perf_counter_ns.

    `sess.run` with host arrays copies inputs to and outputs from the GPU and
    returns only when done, so each sample includes those copies.
    """

    takes_target = True

    def __init__(self, uri: DeviceURI) -> None:
        super().__init__(uri)
        if "CUDAExecutionProvider" not in self.rt.get_available_providers():
            raise DeviceError(f"device {uri}: no CUDA GPU runtime here: this onnxruntime has no "
                              "CUDAExecutionProvider (install onnxruntime-gpu on a GPU host)")
        # onnxruntime-gpu may sit beside a CPU build of torch: ask torch about the
        # GPU only when it can see one.
        self.index = _check_gpu(uri) if gpu_count() else int(uri.target or 0)

    def info(self) -> dict[str, Any]:
        info = super().info()
        gpu = _gpu_info(self.index)
        return {**info, **gpu, "hardware_id": f"{gpu['gpu']} (cc {gpu['compute_capability']})"}

    def thermal(self) -> dict[str, Any] | None:
        return _gpu_thermal(self.index)

    def _session(self, path: Path) -> Any:
        opts = self.rt.SessionOptions()
        opts.log_severity_level = 3
        opts.graph_optimization_level = self.rt.GraphOptimizationLevel.ORT_ENABLE_ALL
        providers = [("CUDAExecutionProvider", {"device_id": self.index}), "CPUExecutionProvider"]
        return self.rt.InferenceSession(str(path), sess_options=opts, providers=providers)
