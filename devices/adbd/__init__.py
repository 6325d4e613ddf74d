"""A small ADB daemon for Linux hosts: shell and sync services, RSA auth, and a
`benchmark_model`-compatible LiteRT runner, so the phone path runs without a phone.

Start it with `hwnas adb serve` or `python -m hwnas.devices.adbd`.
"""

from hwnas.devices.adbd.auth import load_authorized_keys
from hwnas.devices.adbd.cli import main, serve
from hwnas.devices.adbd.server import AUTH, CLSE, CNXN, HEADER, OKAY, OPEN, WRTE, AdbDaemon, pack

__all__ = ["AdbDaemon", "serve", "main", "load_authorized_keys", "pack", "AUTH", "CLSE", "CNXN", "HEADER", "OKAY",
           "OPEN", "WRTE"]
