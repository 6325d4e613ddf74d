"""Device URIs: the one grammar that names a device and its runtime settings.

``cpu``, ``cpu:onnxruntime``, ``cpu:torch``, ``cpu:litert``, ``cuda:0``,
``cuda:0:onnxruntime``, ``adb://SERIAL``, ``adb://HOST:PORT``, with query
options ``?threads=1&cores=4-7&runtime=litert&warmup=10&runs=50``.
`str(parse_uri(text))` is the canonical form: the store, models and reports
key devices by it, so ``cpu?threads=1`` and ``cpu:onnxruntime?threads=1`` are one device.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import Any, Callable
from urllib.parse import parse_qsl, urlencode

from hwnas.search.space import InputError

__all__ = ["DeviceURI", "parse_uri", "parse_cores", "canonical_uri", "KNOWN_SCHEMES", "POLICY_OPTIONS"]


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
    "target_ci": float,
    "gpu": int,
    "binary": str,
    "cooldown": float,
}


#: Core ids above this are refused before a range is expanded (Linux's own limit is 8192 CPUs).
MAX_CORE_ID = 4095

#: Bounds of numeric URI options, checked before the device opens: (lowest, highest).
OPTION_BOUNDS: dict[str, tuple[float, float]] = {
    "threads": (0, 1024), "warmup": (0, 100_000), "runs": (1, 1_000_000), "min_runs": (1, 1_000_000),
    "max_runs": (1, 1_000_000), "min_seconds": (0, 86_400), "max_seconds": (0, 86_400), "target_ci": (1e-4, 1), "gpu": (0, 1),
    "cooldown": (0, 3_600),
}


def parse_cores(text: str) -> tuple[int, ...]:
    """`4-7`, `0,2,4` or `0-1,6` → sorted unique core ids (each at most `MAX_CORE_ID`)."""
    cores: set[int] = set()
    for part in text.split(","):
        part = part.strip()
        m = re.fullmatch(r"(\d{1,9})(?:-(\d{1,9}))?", part)
        if not m:
            raise InputError(f"bad cores {text[:60]!r}: expected a list like 4-7 or 0,2,4")
        lo, hi = int(m[1]), int(m[2] or m[1])
        if hi < lo:
            raise InputError(f"bad cores {text[:60]!r}: range {part} runs backwards")
        if hi > MAX_CORE_ID:
            raise InputError(f"bad cores {text[:60]!r}: core {hi} is above {MAX_CORE_ID}")
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


_DEFAULT_RUNTIME: dict[str, str] = {"cpu": "onnxruntime", "cuda": "torch", "adb": "benchmark_model"}


def _option_value(text: str, key: str, value: str) -> Any:
    """One option's value, typed, finite and within `OPTION_BOUNDS` (NaN, inf, -5 and 10^9 threads refused)."""
    kind = _OPTION_TYPES[key]
    if kind is str:
        return value
    if len(value) > 32:
        raise InputError(f"device {text[:80]}: option {key} value is too long")
    try:
        number = kind(value)
    except ValueError:
        raise InputError(f"device {text}: option {key}={value!r} is not a valid {kind.__name__}") from None
    lo, hi = OPTION_BOUNDS.get(key, (0, 1e9))
    if number != number or number in (float("inf"), float("-inf")):
        raise InputError(f"device {text}: option {key} must be a finite number, got {value}")
    if not lo <= number <= hi:
        raise InputError(f"device {text}: option {key} must be between {lo:g} and {hi:g}, got {value}")
    return number


def _check_option_relations(text: str, options: dict[str, Any]) -> None:
    for small, large in (("min_runs", "max_runs"), ("min_seconds", "max_seconds")):
        if small in options and large in options and options[small] > options[large]:
            raise InputError(f"device {text}: option {small} ({options[small]}) exceeds {large} ({options[large]})")


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
        if key in options:
            raise InputError(f"device {text}: option {key} is given twice")
        options[key] = _option_value(text, key, value)
        if key in ("threads", "runs", "min_runs", "max_runs") and options[key] < 1:
            raise InputError(f"device {text}: option {key} must be positive, got {value}")
    _check_option_relations(text, options)
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
    if scheme not in _DEFAULT_RUNTIME and scheme not in _EXTRA_SCHEMES:
        raise InputError(
            f"unknown device scheme {scheme!r} in {text!r}; known: {', '.join(sorted({*_DEFAULT_RUNTIME, *_EXTRA_SCHEMES}))}"
        )
    runtime = runtime or _DEFAULT_RUNTIME.get(scheme, "")
    return DeviceURI(scheme, target, runtime, tuple(sorted(options.items())))




#: Schemes a URI may name (each has a default runtime).
KNOWN_SCHEMES: tuple[str, ...] = tuple(sorted(_DEFAULT_RUNTIME))

#: Further schemes that adapters registered (`hwnas.devices.registry` adds them).
_EXTRA_SCHEMES: set[str] = set()


def add_scheme(scheme: str) -> None:
    """Let URIs name a scheme an adapter registered beyond the built-in ones."""
    _EXTRA_SCHEMES.add(scheme)


#: URI options that tune the measurement protocol, not which device/runtime runs.
POLICY_OPTIONS = ("warmup", "runs", "min_runs", "max_runs", "min_seconds", "max_seconds", "target_ci", "cooldown")


def canonical_uri(uri: "str | DeviceURI") -> str:
    """What names a device in stores, models and reports: the one spelling of its URI (default
    runtime filled in, options sorted) without the options that only tune the measurement protocol.

    `cpu?threads=1&max_seconds=1` and `cpu:onnxruntime?threads=1` are one device.
    """
    parsed = parse_uri(uri) if isinstance(uri, str) else uri
    kept = tuple((k, v) for k, v in parsed.options if k not in POLICY_OPTIONS)
    return str(dataclasses.replace(parsed, options=kept))
