"""The Device contract every runtime adapter implements: Device, Measurement, Artifact.

The URI grammar lives in `hwnas.devices.uri`, the adapter registry in
`hwnas.devices.registry`.
"""

from __future__ import annotations

import abc
import contextlib
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ContextManager

from hwnas.devices.uri import DeviceURI, parse_cores, parse_uri  # noqa: F401  (re-exported)
from hwnas.search.space import InputError

__all__ = ["DeviceError", "Measurement", "Device", "Artifact"]


class DeviceError(InputError):
    """A device that cannot be reached or cannot run what it was given.

    Subclass of InputError: the CLI reports it in one line (naming the device
    and the command) and exits 2.
    """


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

    def keep_prepared(self) -> ContextManager[None]:
        """Within: artifacts measured by key stay loaded, so a profile's later passes skip export,
        load and most of the warm-up.  Devices that cannot keep them (or keep them anyway, as the
        ADB runner's interpreter cache does) do nothing."""
        return contextlib.nullcontext()

    def has_prepared(self, key: str | None) -> bool:
        """Whether `measure(None, shape, key)` would run an artifact kept by `keep_prepared`."""
        return False

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
