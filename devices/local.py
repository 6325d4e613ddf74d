"""Host CPU devices: ONNX Runtime, PyTorch (TorchScript) and LiteRT behind the one Device contract.

`cpu:onnxruntime`, `cpu:torch`, `cpu:litert` (and plain `cpu`, which means
ONNX Runtime). Each adapter imports its runtime only when opened, so a
runtime that is not installed makes that one URI fail with one line while
the others keep working.

`threads` sets the runtime's intra-op threads; `cores` pins every thread of
this process (and so the runtime's pools created while pinned) with
sched_setaffinity for the duration of a measurement, then restores it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import importlib
import importlib.metadata
import os
import warnings
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ContextManager, Iterator, Sequence

import numpy as np

from hwnas.devices.hostinfo import host_info, thermal
from hwnas.devices.base import Artifact, Device, DeviceError, Measurement
from hwnas.devices.registry import register_device
from hwnas.devices.uri import DeviceURI
from hwnas.devices.protocol import Policy, measure_loop

__all__ = ["Prepared", "LocalDevice", "OnnxRuntimeCPU", "TorchCPU", "LiteRTCPU", "pinned", "LOCAL_RUNTIMES",
           "model_inputs"]


@functools.lru_cache(maxsize=None)
def _dist_version(dist: str) -> str:
    """An installed package's version, looked up once: every measurement records it, and the
    metadata lookup (~1 ms) was 1.6% of a steady profile's time."""
    return importlib.metadata.version(dist)


#: The CPU runtimes `hwnas devices` lists, in order.
LOCAL_RUNTIMES = ("onnxruntime", "torch", "litert")
#: Model-file bytes `keep_prepared` keeps loaded (every fbnet-cifar block and network is a few MB
#: at most; on ImageNet-size spaces only the most recent networks stay).
KEEP_BYTES = 256 * 2**20
#: Warm-up runs of an artifact kept loaded from an earlier pass: its session is warm already,
#: only the caches the other items used since need refilling.
REWARM = 2

_NP_DTYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(double)": np.float64,
              "tensor(int64)": np.int64, "tensor(int32)": np.int32, "tensor(int8)": np.int8,
              "tensor(uint8)": np.uint8, "tensor(bool)": np.bool_}


@dataclass
class Prepared:
    """An artifact loaded into a runtime: `run()` executes it once on fixed inputs."""

    run: Callable[[], float | None]
    outputs: Callable[[], list[np.ndarray]]
    input_shapes: list[tuple[int, ...]]
    path: Path | None = None
    context: Callable[[], ContextManager[Any]] = contextlib.nullcontext
    keep: list[Any] = field(default_factory=list, repr=False)  # session/interpreter kept alive


def _task_ids() -> list[int]:
    try:
        return [int(t) for t in os.listdir("/proc/self/task")]
    except OSError:
        return [0]


@contextlib.contextmanager
def pinned(cores: Sequence[int]) -> Iterator[None]:
    """Pin every thread of this process to `cores` (no-op when empty), restoring each thread's mask after."""
    if not cores or not hasattr(os, "sched_setaffinity"):
        yield
        return
    saved: dict[int, set[int]] = {}
    for tid in _task_ids():
        with contextlib.suppress(OSError):
            saved[tid] = os.sched_getaffinity(tid)
            os.sched_setaffinity(tid, set(cores))
    try:
        yield
    finally:
        for tid, mask in saved.items():
            with contextlib.suppress(OSError):
                os.sched_setaffinity(tid, mask)


def model_inputs(declared: Sequence[tuple[str, Sequence[Any], Any]], input_shape: tuple[int, ...] | None,
                 what: str) -> list[np.ndarray]:
    """Random inputs for a model's declared (name, shape, dtype) inputs; `input_shape` fills the first one.

    A dimension that is not a positive int is dynamic: without `--input-shape` the
    user gets one line saying which input needs it.
    """
    rng = np.random.default_rng(0)
    arrays = []
    for i, (name, shape, dtype) in enumerate(declared):
        if i == 0 and input_shape is not None:
            if len(input_shape) != len(shape):
                raise DeviceError(f"{what}: input {name!r} has rank {len(shape)} ({_fmt(shape)}), "
                                  f"but `input_shape` gives {len(input_shape)} dims ({_fmt(input_shape)})")
            shape = input_shape
        if any(not isinstance(d, (int, np.integer)) or d <= 0 for d in shape):
            raise DeviceError(f"{what}: input {name!r} has dynamic shape {_fmt(shape)}; "
                              "give a fixed `input_shape`, e.g. 1,3,224,224")
        shape = tuple(int(d) for d in shape)
        if np.issubdtype(dtype, np.floating):
            arrays.append(rng.standard_normal(shape).astype(dtype))
        else:
            arrays.append(np.zeros(shape, dtype=dtype))
    return arrays


def _footprint(prepared: Prepared, artifact: Artifact) -> int:
    """Bytes a kept artifact holds, roughly: its model file, else its module's parameters and buffers."""
    if prepared.path is not None and prepared.path.is_file():
        return prepared.path.stat().st_size
    module = artifact.module
    tensors = [*module.parameters(), *module.buffers()] if hasattr(module, "parameters") else []
    return sum(t.numel() * t.element_size() for t in tensors)


def _fmt(shape: Sequence[Any]) -> str:
    return ",".join(str(d) for d in shape)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__


class LocalDevice(Device):
    """Common part of the host CPU adapters: info, affinity, threads, the measurement loop."""

    runtime: str = ""
    module_name: str = ""  # Python module imported to check the runtime is installed
    dist: str = ""  # distribution whose version is the runtime version
    suffixes: tuple[str, ...] = ()
    pip_hint: str = ""
    takes_target: bool = False  # cuda:N adapters built on these take a GPU index
    timer: str = "perf_counter_ns"  # what times a run, recorded with each measurement

    def __init__(self, uri: DeviceURI) -> None:
        super().__init__(uri)
        if uri.target and not self.takes_target:
            raise DeviceError(f"device {uri}: cpu takes no target")
        try:
            self.rt = importlib.import_module(self.module_name)
        except ImportError as exc:
            raise DeviceError(f"device {uri}: runtime {self.runtime} is not installed or fails to import "
                              f"({_first_line(exc)}); install it with: pip install {self.pip_hint or self.dist}"
                              ) from None
        self.cores = uri.cores
        if self.cores and hasattr(os, "sched_getaffinity"):
            usable = os.sched_getaffinity(0)
            missing = sorted(set(self.cores) - usable)
            if missing:
                raise DeviceError(f"device {uri}: cores {_fmt(missing)} are not usable here "
                                  f"(this process may use {_fmt(sorted(usable))})")
        self.policy = Policy.from_uri(uri)
        self._info: dict[str, Any] | None = None
        self._kept: OrderedDict[str, tuple[Prepared, int]] | None = None  # see keep_prepared
        self._kept_budget = KEEP_BYTES

    # --- what the device is -------------------------------------------------------
    def runtime_version(self) -> str:
        try:
            return _dist_version(self.dist)
        except importlib.metadata.PackageNotFoundError:
            return str(getattr(self.rt, "__version__", "unknown"))

    def info(self) -> dict[str, Any]:
        if self._info is None:
            host = host_info()
            self._info = {"uri": str(self.uri), **host, "runtime": self.runtime,
                          "runtime_version": self.runtime_version(), "threads": self.uri.threads,
                          "affinity": list(self.cores) or None, "formats": list(self.suffixes)}
        return dict(self._info)

    def thermal(self) -> dict[str, Any] | None:
        return thermal()

    # --- running ------------------------------------------------------------------
    def prepare(self, artifact: Artifact) -> Prepared:
        if artifact.path is not None:
            path = Path(artifact.path)
            if path.suffix.lower() not in self.suffixes:
                raise DeviceError(f"device {self.uri}: runs {'/'.join(self.suffixes)} files, not {path.name}"
                                  f"{_suggest(path)}")
            what = f"{path} on {self.uri}"
            try:
                return self._load_file(path, artifact.input_shape, what)
            except DeviceError:
                raise
            except Exception as exc:  # the runtime's own parse errors differ per runtime
                raise DeviceError(f"cannot load {path} with {self.runtime}: not a valid model file "
                                  f"({_first_line(exc)})") from None
        return self._load_module(artifact.module, tuple(artifact.input_shape), artifact.key)

    @contextlib.contextmanager
    def keep_prepared(self, budget_bytes: int = KEEP_BYTES) -> Iterator[None]:
        """Within: prepared artifacts stay loaded by key, least recently used first out beyond
        `budget_bytes` of model files, and a kept one is re-warmed with `REWARM` runs.

        Why: a steady profile times every item two or more times; loading a session, exporting
        (a cache lookup) and building the module again for each pass cost as much as timing a
        small block.  Kept sessions hold memory, hence the budget.
        """
        self._kept, self._kept_budget = OrderedDict(), budget_bytes
        try:
            yield
        finally:
            self._kept = None

    def has_prepared(self, key: str | None) -> bool:
        return self._kept is not None and key is not None and key in self._kept

    def _load_or_kept(self, artifact: Artifact) -> tuple[Prepared, bool]:
        """(prepared artifact, whether it was kept from an earlier measurement)."""
        kept = self._kept
        if kept is not None and artifact.key in kept:
            kept.move_to_end(artifact.key)
            return kept[artifact.key][0], True
        if artifact.module is None and artifact.path is None:
            raise DeviceError(f"device {self.uri}: {artifact.key} is no longer kept; pass its module")
        prepared = self.prepare(artifact)
        if kept is not None and artifact.key is not None:
            kept[artifact.key] = (prepared, _footprint(prepared, artifact))
            while sum(b for _, b in kept.values()) > self._kept_budget and len(kept) > 1:
                kept.popitem(last=False)
        return prepared, False

    def measure(self, module_or_file: Any, input_shape: tuple[int, ...] | None = None,
                key: str | None = None) -> Measurement:
        artifact = Artifact.of(module_or_file, input_shape, key)
        with pinned(self.cores), self._threads():
            prepared, reused = self._load_or_kept(artifact)
            policy = dataclasses.replace(self.policy, warmup=min(self.policy.warmup, REWARM)) if reused else self.policy
            before = self.thermal()
            with prepared.context():
                m = measure_loop(prepared.run, policy)
            after = self.thermal()
        m.thermal_before, m.thermal_after = before, after
        m.extra.update({"device": str(self.uri), "runtime": self.runtime, "runtime_version": self.runtime_version(),
                        "artifact": str(prepared.path) if prepared.path else None,
                        "input_shapes": [list(s) for s in prepared.input_shapes], "timer": self.timer})
        return m

    def _threads(self) -> ContextManager[Any]:
        return contextlib.nullcontext()

    def _load_file(self, path: Path, input_shape: tuple[int, ...] | None, what: str) -> Prepared:
        raise NotImplementedError

    def _load_module(self, module: Any, input_shape: tuple[int, ...], key: str | None) -> Prepared:
        raise NotImplementedError


def _suggest(path: Path) -> str:
    runtime = {".onnx": "onnxruntime", ".tflite": "litert", ".pt": "torch", ".pth": "torch",
               ".ts": "torch"}.get(path.suffix.lower())
    return f"; try device `cpu:{runtime}`" if runtime else ""


@register_device("cpu", "onnxruntime")
class OnnxRuntimeCPU(LocalDevice):
    """ONNX Runtime's CPU execution provider; torch modules go through the cached ONNX export."""

    runtime, module_name, dist, suffixes = "onnxruntime", "onnxruntime", "onnxruntime", (".onnx",)
    providers: tuple[str, ...] = ("CPUExecutionProvider",)

    def _session(self, path: Path) -> Any:
        opts = self.rt.SessionOptions()
        opts.intra_op_num_threads = self.uri.threads or 0
        opts.inter_op_num_threads = 1
        opts.execution_mode = self.rt.ExecutionMode.ORT_SEQUENTIAL
        opts.graph_optimization_level = self.rt.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.log_severity_level = 3
        return self.rt.InferenceSession(str(path), sess_options=opts, providers=list(self.providers))

    def _load_file(self, path: Path, input_shape: tuple[int, ...] | None, what: str) -> Prepared:
        sess = self._session(path)
        declared = [(i.name, i.shape, _NP_DTYPES.get(i.type, np.float32)) for i in sess.get_inputs()]
        arrays = model_inputs(declared, input_shape, what)
        feeds = {d[0]: a for d, a in zip(declared, arrays)}
        sess.run(None, feeds)  # fail here, with the runtime's message, not inside the timing loop

        def run() -> None:
            sess.run(None, feeds)

        return Prepared(run, lambda: list(sess.run(None, feeds)), [a.shape for a in arrays], path, keep=[sess])

    def _load_module(self, module: Any, input_shape: tuple[int, ...], key: str | None) -> Prepared:
        from hwnas.devices.export import export_onnx

        path = export_onnx(module, input_shape, key=key)
        return self._load_file(path, input_shape, f"{key or 'module'} on {self.uri}")


@register_device("cpu", "torch")
class TorchCPU(LocalDevice):
    """PyTorch on CPU: modules are traced and frozen to TorchScript; TorchScript files are jit-loaded."""

    runtime, module_name, dist, suffixes = "torch", "torch", "torch", (".pt", ".pth", ".ts")

    @contextlib.contextmanager
    def _threads(self) -> Iterator[None]:
        torch = self.rt
        old = torch.get_num_threads()
        if self.uri.threads:
            torch.set_num_threads(self.uri.threads)
        try:
            yield
        finally:
            torch.set_num_threads(old)

    def _prepared(self, module: Any, x: Any, path: Path | None) -> Prepared:
        torch = self.rt
        with torch.inference_mode():
            module(x)

        def run() -> None:
            module(x)

        def outputs() -> list[np.ndarray]:
            with torch.inference_mode():
                y = module(x)
            return [t.numpy() for t in (y if isinstance(y, (tuple, list)) else [y])]

        return Prepared(run, outputs, [tuple(x.shape)], path, context=torch.inference_mode, keep=[module])

    def _load_file(self, path: Path, input_shape: tuple[int, ...] | None, what: str) -> Prepared:
        if input_shape is None:
            raise DeviceError(f"{what}: a TorchScript file does not record its input shape; give `input_shape`")
        # TorchScript archives hold TorchScript code and tensors, read by torch's
        # restricted unpickler: no arbitrary Python runs on load.
        module = self.rt.jit.load(str(path), map_location="cpu").eval()
        x = self.rt.from_numpy(model_inputs([("input", input_shape, np.float32)], None, what)[0])
        return self._prepared(module, x, path)

    def _load_module(self, module: Any, input_shape: tuple[int, ...], key: str | None) -> Prepared:
        torch = self.rt
        x = torch.from_numpy(model_inputs([("input", input_shape, np.float32)], None, f"{key or 'module'}")[0])
        module = module.eval()
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # TorchScript's deprecation notices; still the format phones load
            try:
                scripted = torch.jit.freeze(torch.jit.trace(module, (x,), check_trace=False))
            except Exception:  # a module trace cannot follow (data-dependent control flow) runs eagerly
                scripted = module
        return self._prepared(scripted, x, None)


@register_device("cpu", "litert")
class LiteRTCPU(LocalDevice):
    """LiteRT (TFLite) interpreter with its default XNNPACK delegate; modules go through the cached TFLite export."""

    runtime, module_name, dist, suffixes = "litert", "ai_edge_litert.interpreter", "ai-edge-litert", (".tflite",)
    pip_hint = "ai-edge-litert"

    def _load_file(self, path: Path, input_shape: tuple[int, ...] | None, what: str,
                   nchw: bool = False) -> Prepared:
        kwargs = {"num_threads": self.uri.threads} if self.uri.threads else {}
        interp = self.rt.Interpreter(model_path=str(path), **kwargs)
        details = interp.get_input_details()
        declared = [(d["name"], [int(v) for v in d.get("shape_signature", d["shape"])], d["dtype"])
                    for d in details]
        if nchw and input_shape is not None and len(input_shape) == 4:
            # An exported module takes NHWC: draw the same NCHW input the other
            # runtimes get, then transpose, so all three compute on equal data.
            nchw_input = model_inputs([(declared[0][0], input_shape, declared[0][2])], None, what)[0]
            arrays = [nchw_input.transpose(0, 2, 3, 1)]
        else:
            arrays = model_inputs(declared, input_shape, what)
        for d, a in zip(details, arrays):
            if tuple(d["shape"]) != a.shape:
                interp.resize_tensor_input(d["index"], list(a.shape))
        interp.allocate_tensors()
        for d, a in zip(details, arrays):
            interp.set_tensor(d["index"], a)
        interp.invoke()
        outs = interp.get_output_details()

        def run() -> None:
            interp.invoke()

        def outputs() -> list[np.ndarray]:
            interp.invoke()
            return [interp.get_tensor(o["index"]).copy() for o in outs]

        return Prepared(run, outputs, [a.shape for a in arrays], path, keep=[interp])

    def _load_module(self, module: Any, input_shape: tuple[int, ...], key: str | None) -> Prepared:
        from hwnas.devices.export import export_tflite

        path = export_tflite(module, input_shape, key=key)
        return self._load_file(path, input_shape, f"{key or 'module'} on {self.uri}", nchw=True)
