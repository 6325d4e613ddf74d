"""The registry of device adapters: a leaf that imports none of them.

Adapters register a factory per scheme (timm-style) with `register_device`;
`hwnas.devices`' `__init__` imports the adapter modules, so by the time a
caller can reach `open_device` every installed adapter is registered.
"""

from __future__ import annotations

from typing import Callable, Union

from hwnas.devices.base import Device
from hwnas.devices.uri import DeviceURI, add_scheme, parse_uri
from hwnas.search.space import InputError

__all__ = ["register_device", "open_device", "registered_schemes"]

_SCHEMES: dict[str, Callable[[DeviceURI], Device]] = {}


def register_device(scheme: str, runtime: str | None = None) -> Callable[[Callable[[DeviceURI], Device]], Callable[[DeviceURI], Device]]:
    """Register a factory for `scheme` (and optionally one runtime of it): `cpu`, `cpu:torch`, `adb`."""

    def deco(factory: Callable[[DeviceURI], Device]) -> Callable[[DeviceURI], Device]:
        _SCHEMES[f"{scheme}:{runtime}" if runtime else scheme] = factory
        add_scheme(scheme)
        return factory

    return deco


def registered_schemes() -> list[str]:
    return sorted(_SCHEMES)


def open_device(uri: Union[str, DeviceURI]) -> Device:
    """Open the device a URI names; a runtime not installed or unknown gets one clear line."""
    parsed = parse_uri(uri) if isinstance(uri, str) else uri
    factory = _SCHEMES.get(f"{parsed.scheme}:{parsed.runtime}") or _SCHEMES.get(parsed.scheme)
    if factory is None:
        known = sorted(k for k in _SCHEMES if k.startswith(parsed.scheme))
        raise InputError(
            f"device {parsed}: no adapter for runtime {parsed.runtime!r}; known: {', '.join(known) or 'none'}"
        )
    return factory(parsed)
