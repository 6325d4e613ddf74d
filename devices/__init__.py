"""Devices: the Device protocol, URIs, local CPU/GPU runtimes, ADB phones, model export.

    >>> from hwnas import devices
    >>> with devices.open("cpu:onnxruntime?threads=1") as dev:
    ...     m = dev.measure(module, (1, 16, 32, 32))

The registry (`registry`) is a leaf; this package imports every adapter
module below, each of which registers its schemes, so `open` knows them all.
Adapters import their runtimes lazily: loading this package stays cheap.
"""

from hwnas.devices.base import Artifact, Device, DeviceError, Measurement
from hwnas.devices.registry import open_device, register_device, registered_schemes
from hwnas.devices.uri import DeviceURI, canonical_uri, parse_uri

# The adapters: importing them registers `cpu:*`, `cuda:*` and `adb`.
from hwnas.devices.adb import client as _adb_client  # noqa: E402,F401  (isort: skip)
from hwnas.devices import cuda as _cuda  # noqa: E402,F401
from hwnas.devices import local as _local  # noqa: E402,F401

open = open_device  # noqa: A001  (devices.open(uri), as the design card writes it)

__all__ = ["Artifact", "Device", "DeviceError", "Measurement", "DeviceURI", "canonical_uri", "parse_uri",
           "open_device", "open", "register_device", "registered_schemes"]
