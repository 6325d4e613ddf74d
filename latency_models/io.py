"""Latency model files: JSON only, with provenance, refused when they do not fit.

A file carries its format version, space, device identity, units (ms), the
library versions that fitted it and its validation metrics.  Loading never
unpickles: a pickle/joblib/torch payload, a newer format version, another
space or another device is refused with one line (InputError).
"""

from __future__ import annotations

import json
import math
import platform
from pathlib import Path
from typing import Any

from hwnas.latency_models.network import LatencyModel
from hwnas.search.space import InputError

__all__ = ["FORMAT", "FORMAT_VERSION", "save_model", "load_model", "model_to_json", "model_from_json"]

FORMAT = "hwnas-latency-model"
#: 2 (2026-12-07): block regressors with the kernel base, extra-trees and new parameters, which an
#: hwnas reading version 1 would fail on obscurely; it now refuses them with one line.  Version 1
#: files still load (their regressors as the per-family GBM they were fitted as).
FORMAT_VERSION = 2

#: Leading bytes of payloads that execute code or hide a pickle when loaded.
_BINARY_MAGIC = {b"\x80": "a pickle payload", b"PK\x03\x04": "a zip archive (joblib/torch/skops)",
                 b"\x93NUMPY": "a numpy file"}


def library_versions() -> dict[str, str]:
    """Versions of the libraries whose numerics the model depends on."""
    import numpy
    import scipy
    import sklearn

    return {"python": platform.python_version(), "numpy": numpy.__version__, "scipy": scipy.__version__,
            "scikit-learn": sklearn.__version__}


def model_to_json(model: LatencyModel) -> dict[str, Any]:
    return {"format": FORMAT, "format_version": FORMAT_VERSION, "units": model.units, "space": model.space,
            "device": model.device, "device_uri": model.device_uri, "kind": model.kind,
            "versions": library_versions(), "metrics": model.metrics, "model": model.to_dict()}


def save_model(model: LatencyModel, path: str | Path) -> Path:
    """Write the model as JSON (no code, no pickle); returns the path."""
    path = Path(path)
    try:
        path.write_text(json.dumps(model_to_json(model), allow_nan=True) + "\n")
    except OSError as exc:
        raise InputError(f"cannot write latency model {path}: {exc.strerror}") from None
    return path


#: No number in a sane model comes near this (coefficients, thresholds on MACs ~1e10, ms); 1e308 would predict inf.
MAX_MAGNITUDE = 1e30


def _check_magnitudes(data: Any, source: str) -> None:
    """Every number finite and below `MAX_MAGNITUDE` (walked without recursion: files may be deep)."""
    stack = [data]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
        elif isinstance(node, (int, float)) and not isinstance(node, bool):
            if not math.isfinite(node) or abs(node) > MAX_MAGNITUDE:
                raise InputError(f"{source} holds the number {node:.3g}: not a usable latency model")


def model_from_json(data: Any, source: str = "latency model") -> LatencyModel:
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise InputError(f"{source} is not an hwnas latency model (no \"format\": \"{FORMAT}\")")
    version = data.get("format_version")
    if type(version) is not int or version < 1:  # `true` is an int to isinstance, not a version
        raise InputError(f"{source} has a bad format_version {version!r}")
    if version > FORMAT_VERSION:
        raise InputError(f"{source} has format version {version}, newer than this hwnas reads "
                         f"({FORMAT_VERSION}); upgrade hwnas")
    if data.get("units") != "ms":
        raise InputError(f"{source} has units {data.get('units')!r}; expected 'ms'")
    _check_magnitudes(data, source)
    try:
        return LatencyModel.from_dict(data["model"])
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        if isinstance(exc, InputError):
            raise
        raise InputError(f"{source} is damaged: {type(exc).__name__}: {exc}") from None


def load_model(path: str | Path, space: str | None = None, device: str | None = None) -> LatencyModel:
    """Read a model file; refuse payloads that are not our JSON, and a wrong space or device."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"latency model not found: {path}") from None
    except OSError as exc:
        raise InputError(f"cannot read latency model {path}: {exc.strerror}") from None
    for magic, what in _BINARY_MAGIC.items():
        if raw.startswith(magic):
            raise InputError(f"refusing to load {path}: it is {what}, not a JSON latency model (never unpickled)")
    from hwnas.search.space.jsonsafe import loads

    try:
        data = loads(raw, "the file")
    except InputError as exc:
        raise InputError(f"refusing to load {path}: not a JSON latency model ({exc})") from None
    model = model_from_json(data, str(path))
    if space is not None and model.space != space:
        raise InputError(f"latency model {path} is for space {model.space!r}, not {space!r}")
    if device is not None and device not in (model.device, model.device_uri):
        raise InputError(f"latency model {path} is for device {model.device!r}, not {device!r}")
    return model
