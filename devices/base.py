"""The Device contract every runtime adapter implements, its URI grammar and registry.

A device URI names a device and its runtime settings in one string:
``cpu``, ``cpu:onnxruntime``, ``cpu:torch``, ``cpu:litert``, ``cuda:0``,
``cuda:0:onnxruntime``, ``adb://SERIAL``, ``adb://HOST:PORT``, with query
options ``?threads=1&cores=4-7&runtime=litert&warmup=10&runs=50``.

Adapters register a factory per scheme (timm-style), so `open_device(uri)`
is the one way in for the profiler, the CLI and the benchmarks.
"""

from __future__ import annotations

import abc
import dataclasses
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Union
from urllib.parse import parse_qsl, urlencode

from search.space import InputError

__all__ = [
    "DeviceError",
    "DeviceURI",
    "Measurement",
    "Device",
    "Artifact",
    "parse_uri",
    "register_device",
    "open_device",
    "registered_schemes",
    "parse_cores",
]


class DeviceError(InputError):
    """A device that cannot be reached or cannot run what it was given.

    Subclass of InputError: the CLI reports it in one line (naming the device
    and the command) and exits 2.
    """


#: Options a URI query may carry, with their parsers.
_OPTION_TYPES: dict[str, Callable[[str], Any]] = {
    "threads": int,
    "cores": str,
    "runtime": str,
    "warmup": int,
    "runs": int,
    "min_runs": int,
    "max_runs": int,
    "min_seconds": float,
    "max_seconds": float,
    "gpu": int,
    "binary": str,
    "cooldown": float,
}


def parse_cores(text: str) -> tuple[int, ...]:
    """`4-7`, `0,2,4` or `0-1,6` → sorted unique core ids."""
    cores: set[int] = set()
    for part in text.split(","):
        part = part.strip()
        m = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
        if not m:
            raise InputError(f"bad cores {text!r}: expected a list like 4-7 or 0,2,4")
        lo, hi = int(m[1]), int(m[2] or m[1])
        if hi < lo:
            raise InputError(f"bad cores {text!r}: range {part} runs backwards")
        cores.update(range(lo, hi + 1))
    return tuple(sorted(cores))


@dataclass(frozen=True)
class DeviceURI:
    """A parsed device URI: scheme, target (GPU index, serial or host:port), runtime, options."""

    scheme: str
    target: str = ""
    runtime: str = ""
    options: tuple[tuple[str, Any], ...] = ()

    def option(self, name: str, default: Any = None) -> Any:
        return dict(self.options).get(name, default)

    @property
    def threads(self) -> int | None:
        return self.option("threads")

    @property
    def cores(self) -> tuple[int, ...]:
        text = self.option("cores")
        return parse_cores(text) if text else ()

    def with_runtime(self, runtime: str) -> "DeviceURI":
        return dataclasses.replace(self, runtime=runtime)

    def __str__(self) -> str:
        if self.scheme == "adb":
            base = f"adb://{self.target}"
            opts = dict(self.options)
            if self.runtime and self.runtime != "benchmark_model":
                opts["runtime"] = self.runtime
        else:
            base = ":".join(p for p in (self.scheme, self.target, self.runtime) if p)
            opts = dict(self.options)
        query = urlencode(sorted(opts.items()))
        return f"{base}?{query}" if query else base


_SCHEMES: dict[str, Callable[[DeviceURI], "Device"]] = {}
_DEFAULT_RUNTIME: dict[str, str] = {"cpu": "onnxruntime", "cuda": "torch", "adb": "benchmark_model"}


def parse_uri(text: str) -> DeviceURI:
    """Parse a device URI; unknown options and malformed values get one clear line."""
    if not isinstance(text, str) or not text.strip():
        raise InputError("empty device URI; try cpu, cpu:torch, cuda:0 or adb://SERIAL")
    text = text.strip()
    base, _, query = text.partition("?")
    options: dict[str, Any] = {}
    for key, value in parse_qsl(query, keep_blank_values=True):
        if key not in _OPTION_TYPES:
            raise InputError(f"device {text}: unknown option {key!r}; known: {', '.join(sorted(_OPTION_TYPES))}")
        try:
            options[key] = _OPTION_TYPES[key](value)
        except ValueError:
            raise InputError(f"device {text}: option {key}={value!r} is not a valid {_OPTION_TYPES[key].__name__}") from None
        if key in ("threads", "warmup", "runs", "min_runs", "max_runs") and options[key] < (0 if key == "warmup" else 1):
            raise InputError(f"device {text}: option {key} must be positive, got {value}")
    if "cores" in options:
        parse_cores(options["cores"])
    runtime = options.pop("runtime", "")
    if base.startswith("adb://"):
        target = base[len("adb://"):]
        if not target:
            raise InputError(f"device {text}: adb:// needs a serial or HOST:PORT")
        scheme = "adb"
    else:
        parts = base.split(":")
        scheme = parts[0]
        target = ""
        rest = parts[1:]
        if scheme == "cuda":
            if rest and rest[0].isdigit():
                target = rest.pop(0)
            else:
                target = "0"
        if len(rest) > 1:
            raise InputError(f"device {text}: too many ':' parts")
        if rest:
            if runtime and runtime != rest[0]:
                raise InputError(f"device {text}: runtime given twice ({rest[0]} and {runtime})")
            runtime = rest[0]
    if scheme not in _DEFAULT_RUNTIME and scheme not in _SCHEMES:
        raise InputError(
            f"unknown device scheme {scheme!r} in {text!r}; known: {', '.join(sorted(set(_DEFAULT_RUNTIME) | set(_SCHEMES)))}"
        )
    runtime = runtime or _DEFAULT_RUNTIME.get(scheme, "")
    return DeviceURI(scheme, target, runtime, tuple(sorted(options.items())))


@dataclass
class Measurement:
    """Timing statistics of one artifact on one device, all in milliseconds.

    `samples_ms` keeps the raw (post-warm-up) timings so that any later
    statistic can be recomputed; `rejected` counts IQR outliers removed
    before the statistics; `settled` says whether the run met the protocol's
    precision bound before hitting its run or time cap.
    """

    n: int
    median_ms: float
    mean_ms: float
    std_ms: float
    p10_ms: float
    p90_ms: float
    min_ms: float
    max_ms: float
    ci_halfwidth_ms: float = float("nan")
    rejected: int = 0
    settled: bool = True
    warmup: int = 0
    samples_ms: list[float] = field(default_factory=list, repr=False)
    thermal_before: dict[str, Any] | None = None
    thermal_after: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def relative_ci(self) -> float:
        return self.ci_halfwidth_ms / self.median_ms if self.median_ms else float("inf")

    def to_dict(self, samples: bool = False) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        if not samples:
            d.pop("samples_ms")
        return d


@dataclass(frozen=True)
class Artifact:
    """What a device is asked to run: a torch module (exported as the runtime needs) or a model file.

    `key` names a module's content for the export cache (a BlockSpec key, or
    an architecture's text form); a file needs none.
    """

    module: Any = None
    input_shape: tuple[int, ...] | None = None
    path: Path | None = None
    key: str | None = None

    @classmethod
    def of(cls, module_or_file: Any, input_shape: tuple[int, ...] | None = None, key: str | None = None) -> "Artifact":
        if isinstance(module_or_file, Artifact):
            return module_or_file
        if isinstance(module_or_file, (str, Path)):
            path = Path(module_or_file)
            if not path.exists():
                raise InputError(f"model file not found: {path}")
            if not path.is_file():
                raise InputError(f"model path is not a file: {path}")
            return cls(path=path, input_shape=tuple(input_shape) if input_shape else None)
        if input_shape is None:
            raise InputError("measuring a torch module needs its input shape")
        return cls(module=module_or_file, input_shape=tuple(input_shape), key=key)


Prepared = Any


class Device(abc.ABC):
    """One device with one runtime configuration.

    `identity` is what a measurement is keyed by in the store: the device's
    hardware identity, its runtime and runtime version, threads and affinity.
    A different runtime version is a different device.
    """

    def __init__(self, uri: DeviceURI) -> None:
        self.uri = uri

    @abc.abstractmethod
    def info(self) -> dict[str, Any]:
        """What this device is: model, CPU/SoC, cores, frequencies, runtime and version."""

    @abc.abstractmethod
    def prepare(self, artifact: Artifact) -> Prepared:
        """Convert/load an artifact into something `run` executes (exported files are cached)."""

    @abc.abstractmethod
    def measure(self, module_or_file: Any, input_shape: tuple[int, ...] | None = None,
                key: str | None = None) -> Measurement:
        """Prepare and time an artifact under the measurement protocol."""

    def thermal(self) -> dict[str, Any] | None:
        """Thermal state now (temperatures in °C, `throttled` flag), or None where unknown."""
        return None

    @property
    def identity(self) -> str:
        """Store key of this device+runtime configuration."""
        info = self.info()
        parts = [info.get("hardware_id") or info.get("cpu") or self.uri.scheme, self.uri.runtime,
                 str(info.get("runtime_version", "")), f"threads={self.uri.threads or 0}",
                 f"cores={self.uri.option('cores') or 'all'}"]
        return "|".join(parts)

    def close(self) -> None:
        """Release runtime sessions, connections and remote work directories."""

    def __enter__(self) -> "Device":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def register_device(scheme: str, runtime: str | None = None) -> Callable[[Callable[[DeviceURI], Device]], Callable[[DeviceURI], Device]]:
    """Register a factory for `scheme` (and optionally one runtime of it): `cpu`, `cpu:torch`, `adb`."""

    def deco(factory: Callable[[DeviceURI], Device]) -> Callable[[DeviceURI], Device]:
        _SCHEMES[f"{scheme}:{runtime}" if runtime else scheme] = factory
        return factory

    return deco


def registered_schemes() -> list[str]:
    _load_adapters()
    return sorted(_SCHEMES)


def open_device(uri: Union[str, DeviceURI]) -> Device:
    """Open the device a URI names; a runtime not installed or unknown gets one clear line."""
    _load_adapters()
    parsed = parse_uri(uri) if isinstance(uri, str) else uri
    factory = _SCHEMES.get(f"{parsed.scheme}:{parsed.runtime}") or _SCHEMES.get(parsed.scheme)
    if factory is None:
        known = sorted(k for k in _SCHEMES if k.startswith(parsed.scheme))
        raise InputError(
            f"device {parsed}: no adapter for runtime {parsed.runtime!r}; known: {', '.join(known) or 'none'}"
        )
    return factory(parsed)


def _load_adapters() -> None:
    # Adapter modules register themselves on import; one that cannot import
    # (its runtime is not installed) simply stays unregistered, and
    # open_device says so.
    import importlib

    for name in _ADAPTER_MODULES:
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as exc:
            ours = (exc.name or "").split(".")[0] in ("devices", "search")
            if ours and exc.name != name:
                raise  # a bug in our own code, not a missing runtime
            continue


#: Adapter modules imported on first use.
_ADAPTER_MODULES: list[str] = ["devices.local", "devices.cuda", "devices.adb"]

