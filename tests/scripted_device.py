"""A device whose timings a test scripts: which keys never settle and how long each measurement takes.

Fault tests (a crash mid-run, two processes on one store) need a device that is fast, deterministic
and able to refuse to settle; each test module registers its own scheme with its own script.
"""

from __future__ import annotations

import time

from hwnas.devices.base import Device
from hwnas.devices.protocol import summarize


def scripted_device(name: str, script: dict) -> type[Device]:
    """A Device class reading `script["unsettled"]` (keys) and `script["delay"]` (seconds) at each call."""

    class Scripted(Device):
        def info(self):
            return {"cpu": f"{name} fake", "hardware_id": name, "cores": 1, "runtime": self.uri.runtime,
                    "runtime_version": "1"}

        def prepare(self, artifact):
            return artifact

        def thermal(self):
            return None

        def measure(self, module_or_file, input_shape=None, key=None):
            if script["delay"]:
                time.sleep(script["delay"])
            unsettled = key in script["unsettled"]
            base = 0.01 * (sum(input_shape) % 13 + 1)
            samples = [base * (1 + (i % 5) * (0.3 if unsettled else 0.001)) for i in range(10)]
            return summarize(samples, warmup=1, settled=not unsettled)

    Scripted.__name__ = Scripted.__qualname__ = f"{name.capitalize()}Fake"
    return Scripted
