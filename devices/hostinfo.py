"""What the host is: CPU model, cores, frequencies and governors from /sys, thermal zones.

Hand-written rather than psutil: psutil reports neither cpufreq governors nor
thermal trip points, and these are a handful of text files; every reader
takes a `root` so tests can point it at a fake /proc and /sys tree. A value
the host does not expose (a VM has no cpufreq, often no thermal zones) is
None, never a guess.
"""

from __future__ import annotations

import os
import platform
import re
from pathlib import Path
from typing import Any

__all__ = ["cpu_model", "core_count", "frequencies", "thermal", "host_info", "hardware_id"]


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except (OSError, UnicodeDecodeError):
        return None


def _read_int(path: Path) -> int | None:
    text = _read(path)
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None


def cpu_model(root: str | os.PathLike = "/") -> str:
    """CPU model name (`model name` on x86, `Hardware`/`Model` on ARM), else the platform's processor."""
    text = _read(Path(root) / "proc/cpuinfo") or ""
    for field in ("model name", "Hardware", "Model", "cpu model", "Processor"):
        m = re.search(rf"^{field}\s*:\s*(.+)$", text, re.MULTILINE)
        if m and m[1].strip():
            return m[1].strip()
    return platform.processor() or platform.machine() or "unknown cpu"


def core_count(root: str | os.PathLike = "/") -> int:
    """Logical CPUs the host has (not just those this process may use)."""
    if str(root) == "/":
        return os.cpu_count() or 1
    cpus = [p for p in (Path(root) / "sys/devices/system/cpu").glob("cpu[0-9]*")]
    return len(cpus) or 1


def frequencies(root: str | os.PathLike = "/") -> dict[str, Any] | None:
    """Per-core min/max/current frequency (MHz) and governor from cpufreq; None where cpufreq is absent."""
    base = Path(root) / "sys/devices/system/cpu"
    cores: dict[str, dict[str, Any]] = {}
    for cpu in sorted(base.glob("cpu[0-9]*"), key=lambda p: int(p.name[3:])):
        freq = cpu / "cpufreq"
        if not freq.is_dir():
            continue
        khz = {name: _read_int(freq / f) for name, f in
               (("min", "cpuinfo_min_freq"), ("max", "cpuinfo_max_freq"), ("cur", "scaling_cur_freq"))}
        cores[cpu.name] = {**{f"{k}_mhz": (v / 1000 if v is not None else None) for k, v in khz.items()},
                           "governor": _read(freq / "scaling_governor")}
    if not cores:
        return None
    governors = sorted({c["governor"] for c in cores.values() if c["governor"]})
    maxes = [c["max_mhz"] for c in cores.values() if c["max_mhz"]]
    return {"cores": cores, "governors": governors, "max_mhz": max(maxes) if maxes else None}


def thermal(root: str | os.PathLike = "/") -> dict[str, Any] | None:
    """Thermal zones now: `{"temps_c": {zone: °C}, "throttled": bool}`; None where the host has none.

    `throttled` is True when a zone is at or above its lowest passive/hot trip
    point (the kernel starts cutting frequency there).
    """
    temps: dict[str, float] = {}
    throttled = False
    for zone in sorted((Path(root) / "sys/class/thermal").glob("thermal_zone*")):
        milli = _read_int(zone / "temp")
        if milli is None:
            continue
        name = _read(zone / "type") or zone.name
        if name in temps:
            name = f"{name}-{zone.name}"
        temps[name] = milli / 1000
        trips = []
        for t in zone.glob("trip_point_*_type"):
            if _read(t) in ("passive", "hot"):
                v = _read_int(t.with_name(t.name.replace("_type", "_temp")))
                if v is not None and v > 0:
                    trips.append(v)
        if trips and milli >= min(trips):
            throttled = True
    if not temps:
        return None
    return {"temps_c": temps, "throttled": throttled}


def hardware_id(root: str | os.PathLike = "/") -> str:
    """Stable name of the host's hardware for device identities: CPU model and core count."""
    return f"{cpu_model(root)} x{core_count(root)}"


def host_info(root: str | os.PathLike = "/") -> dict[str, Any]:
    """Everything above in one dict, plus OS, machine and the cores this process may use."""
    usable = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") and str(root) == "/" else None
    freq = frequencies(root)
    return {
        "cpu": cpu_model(root),
        "cores": core_count(root),
        "usable_cores": usable,
        "machine": platform.machine(),
        "os": f"{platform.system()} {platform.release()}",
        "frequencies": freq,
        "max_mhz": freq["max_mhz"] if freq else None,
        "governors": freq["governors"] if freq else None,
        "thermal": thermal(root),
        "hardware_id": hardware_id(root),
    }
