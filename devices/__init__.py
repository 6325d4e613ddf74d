"""Devices: the Device protocol, local CPU/GPU runtimes, ADB phones, model export.

    >>> import devices
    >>> with devices.open("cpu:onnxruntime?threads=1") as dev:
    ...     m = dev.measure(module, (1, 16, 32, 32))
"""

from devices.base import (  # noqa: F401
    Artifact,
    Device,
    DeviceError,
    DeviceURI,
    Measurement,
    open_device,
    parse_uri,
    register_device,
    registered_schemes,
)

open = open_device  # noqa: A001  (devices.open(uri), as the design card writes it)
