"""One module per command group; each exposes `register(app)`.

Listed here, as timm's `models/__init__` lists its model files: the CLI
registers exactly these, in this order, and a new group is one line.
"""

from hwnas.commands import adb, arch, demo, devices, fit, lut, profile, report, search

#: command modules, each with register(app), in the order `hwnas --help` lists their commands.
COMMAND_MODULES = (arch, devices, adb, profile, lut, fit, search, report, demo)

__all__ = ["COMMAND_MODULES"]
