"""Pure parsers for what an ADB device prints: benchmark_model's output, getprop, CPU and thermal state.

Kept apart from the transport (devices/adb.py) so each format is tested on text alone, and
every read is tolerant of absence: a Linux host behind devices/adbd has no getprop or
dumpsys, and a phone may hide /sys files from the shell user.
"""

from __future__ import annotations

import math
import re
from typing import Any

from hwnas.devices.identity import anonymize
from hwnas.devices.base import Measurement

__all__ = ["BenchmarkOutputError", "SECTION", "split_sections", "parse_benchmark_output",
           "summary_to_measurement", "parse_getprop", "parse_colon_kv", "parse_os_release",
           "parse_clusters", "parse_thermal", "info_from_sections", "core_mask"]

#: Section marker the info/thermal scripts print before each read.
SECTION = "@@hwnas:"
#: °C at which a thermal zone counts as throttling when the device reports no thermal status.
HOT_C = 85.0
#: z of a two-sided 95% interval, and the median's standard error relative to the mean's
#: (√(π/2), exact for normal samples) — used only when the binary gives no median.
_Z95, _MEDIAN_SE = 1.959963984540054, 1.2533141373155001


class BenchmarkOutputError(ValueError):
    """benchmark_model printed something this parser does not recognise."""


_STAT_RE = re.compile(r"count=(\d+)((?:\s+\w+=[-+0-9.eE]+)+)")
_KV_RE = re.compile(r"(\w+)=([-+0-9.eE]+)")
_INIT_RE = re.compile(r"Inference timings in us:\s*Init:\s*([0-9.eE+]+)")
_UNCONSUMED_RE = re.compile(r"Unconsumed cmdline flags:\s*(.*)")


def split_sections(text: str) -> dict[str, str]:
    """`@@hwnas:NAME` lines split a script's output into named sections."""
    sections: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in text.splitlines():
        if line.startswith(SECTION):
            current = sections.setdefault(line[len(SECTION):].strip(), [])
        elif current is not None:
            current.append(line)
    return {k: "\n".join(v).strip() for k, v in sections.items()}


def parse_benchmark_output(text: str) -> dict[str, Any]:
    """benchmark_model's output → phases (warm-up first, timed last, µs), init time, unconsumed flags.

    Raises BenchmarkOutputError when no `count=` summary line is present.
    """
    unconsumed = _UNCONSUMED_RE.search(text)
    phases = []
    for m in _STAT_RE.finditer(text):
        stats = {"count": float(m.group(1))}
        stats.update({k: float(v) for k, v in _KV_RE.findall(m.group(2))})
        if not {"min", "max", "avg", "std"} <= stats.keys():
            raise BenchmarkOutputError(f"summary line without min/max/avg/std: {m.group(0)[:120]!r}")
        phases.append(stats)
    if not phases:
        tail = " | ".join(line.strip() for line in text.strip().splitlines()[-3:])[:300]
        raise BenchmarkOutputError(f"no 'count= ... avg= std=' summary line in the output (last lines: {tail or 'none'})")
    init = _INIT_RE.search(text)
    return {
        "phases": phases,
        "init_us": float(init.group(1)) if init else None,
        "unconsumed": unconsumed.group(1).strip() if unconsumed else None,
        "failed": "Benchmarking failed" in text,
    }


#: The summary prints std in whole µs: the true std may be up to half a µs more.
STD_ROUNDING_MS = 0.0005


def summary_to_measurement(parsed: dict[str, Any], target_rel_ci: float = 0.01) -> Measurement:
    """The timed phase's summary (µs) → a Measurement in ms.

    The confidence half-width of the median uses the printed std plus its rounding
    (`STD_ROUNDING_MS`): a 14 µs block printed with `std=0` has not shown it is precise.

    The binary reports no median or percentiles unless its version prints `median=`/`p5=`/`p95=`;
    otherwise median ≈ mean and p10/p90 ≈ mean ∓ 1.28σ clamped to [min, max], and the fields
    that are estimates are named in `extra["estimated"]`.
    """
    timed = parsed["phases"][-1]
    warm = parsed["phases"][0] if len(parsed["phases"]) > 1 else None
    n = int(timed["count"])
    ms = {k: v / 1000.0 for k, v in timed.items() if k != "count"}
    lo, hi = ms["min"], ms["max"]
    estimated = []
    median = ms.get("median")
    if median is None:
        median = ms["avg"]
        estimated.append("median_ms")
    p10, p90 = ms.get("p10"), ms.get("p90")
    if p10 is None or p90 is None:
        p10 = min(max(ms["avg"] - 1.2815515655446004 * ms["std"], lo), hi)
        p90 = min(max(ms["avg"] + 1.2815515655446004 * ms["std"], lo), hi)
        estimated += ["p10_ms", "p90_ms"]
    # With printed percentiles the spread is taken from them (p10..p90 spans 2.563σ for normal samples):
    # one preempted run inflates std by orders of magnitude but moves neither the median nor p10/p90.
    # Only the integer std carries the rounding; printed percentiles are not whole µs.
    if "p10" in ms and "p90" in ms:
        sigma = (ms["p90"] - ms["p10"]) / 2.5631031310892007
    else:
        sigma = ms["std"] + STD_ROUNDING_MS
    ci = _Z95 * _MEDIAN_SE * sigma / math.sqrt(n) if n > 1 else float("inf")
    extra: dict[str, Any] = {"source": "benchmark_model summary", "first_ms": ms.get("first"),
                             "curr_ms": ms.get("curr"), "estimated": estimated}
    if parsed.get("init_us") is not None:
        extra["init_ms"] = parsed["init_us"] / 1000.0
    return Measurement(
        n=n, median_ms=median, mean_ms=ms["avg"], std_ms=ms["std"], p10_ms=p10, p90_ms=p90,
        min_ms=lo, max_ms=hi, ci_halfwidth_ms=ci, rejected=0,
        settled=bool(median > 0 and ci <= target_rel_ci * median),
        warmup=int(warm["count"]) if warm else 0, samples_ms=[], extra=extra,
    )


_GETPROP_RE = re.compile(r"^\[([^\]]+)\]:\s*\[(.*)\]\s*$")


def parse_getprop(text: str) -> dict[str, str]:
    """`[key]: [value]` lines (Android's getprop) → dict."""
    out = {}
    for line in text.splitlines():
        m = _GETPROP_RE.match(line.strip())
        if m:
            out[m.group(1)] = m.group(2)
    return out


def parse_colon_kv(text: str) -> dict[str, str]:
    """`key : value` lines (/proc/cpuinfo, dumpsys battery): first occurrence of each key wins."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() and key.strip().lower() not in out:
            out[key.strip().lower()] = value.strip()
    return out


def parse_os_release(text: str) -> dict[str, str]:
    """/etc/os-release `KEY="value"` lines → dict."""
    out = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            out[key.strip()] = value.strip().strip('"')
    return out


def parse_clusters(text: str) -> list[dict[str, Any]]:
    """`ID MINKHZ MAXKHZ GOVERNOR` lines → clusters of consecutive cores sharing frequency range and governor."""
    cores = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 4 and parts[0].isdigit():
            mn, mx = (int(p) if p.isdigit() else None for p in parts[1:3])
            cores.append((int(parts[0]), mn, mx, None if parts[3] == "-" else parts[3]))
    clusters: list[dict[str, Any]] = []
    for cid, mn, mx, gov in sorted(cores):
        key = (mn, mx, gov)
        if clusters and clusters[-1]["_key"] == key and clusters[-1]["_last"] == cid - 1:
            clusters[-1]["_ids"].append(cid)
            clusters[-1]["_last"] = cid
        else:
            clusters.append({"_key": key, "_ids": [cid], "_last": cid})
    out = []
    for c in clusters:
        mn, mx, gov = c["_key"]
        ids = c["_ids"]
        out.append({"cores": f"{ids[0]}-{ids[-1]}" if len(ids) > 1 else str(ids[0]), "n": len(ids),
                    "min_mhz": mn / 1000 if mn else None, "max_mhz": mx / 1000 if mx else None,
                    "governor": gov})
    return out


_HAL_TEMP_RE = re.compile(r"Temperature\{mValue=([-0-9.eE+]+),\s*mType=(-?\d+),\s*mName=([^,}]*),\s*mStatus=(\d+)")


def parse_thermal(sections: dict[str, str], hot_c: float = HOT_C) -> dict[str, Any] | None:
    """Thermal state from `dumpsys thermalservice`, `dumpsys battery` and /sys/class/thermal sections.

    `throttled` follows Android's Thermal Status (≥ 1, LIGHT) where the device reports one,
    else any zone at or above `hot_c`. None when the device exposes nothing at all.
    """
    temps: dict[str, float] = {}
    for line in sections.get("zones", "").splitlines():
        name, _, value = line.strip().rpartition(" ")
        try:
            milli = float(value)
        except ValueError:
            continue
        temps[f"zone:{name or 'unknown'}"] = milli / 1000.0 if abs(milli) > 200 else milli
    service = sections.get("thermalservice", "")
    status = None
    m = re.search(r"Thermal Status:\s*(\d+)", service)
    if m:
        status = int(m.group(1))
    for value, _type, name, _st in _HAL_TEMP_RE.findall(service):
        temps[f"hal:{name.strip()}"] = float(value)
    battery = None
    bat = parse_colon_kv(sections.get("battery", ""))
    if bat.get("temperature", "").lstrip("-").isdigit():
        battery = int(bat["temperature"]) / 10.0
        temps["battery"] = battery
    if status is None and not temps:
        return None
    throttled = status >= 1 if status is not None else any(t >= hot_c for t in temps.values())
    return {"temps_c": temps, "throttled": bool(throttled), "status": status, "battery_c": battery}


def info_from_sections(sections: dict[str, str]) -> dict[str, Any]:
    """The info script's sections → the Device.info() dict (Android props first, Linux files as fallback)."""
    props = parse_getprop(sections.get("getprop", ""))
    cpuinfo = parse_colon_kv(sections.get("cpuinfo", ""))
    osrel = parse_os_release(sections.get("os", ""))
    clusters = parse_clusters(sections.get("cpufreq", ""))
    nproc = sections.get("nproc", "").strip()
    cores = int(nproc) if nproc.isdigit() else sum(c["n"] for c in clusters) or None
    soc = (props.get("ro.soc.model") or props.get("ro.board.platform") or props.get("ro.hardware")
           or cpuinfo.get("hardware") or cpuinfo.get("model name") or cpuinfo.get("cpu model") or None)
    board = cpuinfo.get("model", "")  # a board name on ARM Linux, a bare number on x86
    model = (props.get("ro.product.model") or (board if board and not board.isdigit() else "")
             or osrel.get("PRETTY_NAME") or "linux host")
    android = props.get("ro.build.version.release")
    serial = props.get("ro.serialno") or props.get("ro.boot.serialno") or sections.get("machine_id", "").strip()
    binary = sections.get("binary", "").strip()
    info: dict[str, Any] = {
        "model": model,
        "manufacturer": props.get("ro.product.manufacturer"),
        "soc": soc,
        "cpu": cpuinfo.get("model name") or soc,
        "abi": props.get("ro.product.cpu.abi") or sections.get("uname", "").strip() or None,
        "cores": cores,
        "clusters": clusters,
        "android_version": android,
        "sdk": props.get("ro.build.version.sdk"),
        "os": f"Android {android}" if android else osrel.get("PRETTY_NAME"),
        "fingerprint": props.get("ro.build.fingerprint"),
        "hardware_id": f"{model}:{anonymize(serial)}" if serial else model,  # never the serial in clear
        "binary_found": bool(binary) and binary != "missing",
        "runtime_version": ("benchmark_model@" + binary.split()[0][:12]) if binary and binary != "missing" else "missing",
    }
    thermal = parse_thermal(sections)
    info["thermal"] = thermal
    info["battery_temp_c"] = thermal.get("battery_c") if thermal else None
    return info


def core_mask(cores: tuple[int, ...]) -> str:
    """taskset's hex mask for a set of cores: (4, 5, 6, 7) → 'f0'."""
    mask = 0
    for c in cores:
        mask |= 1 << c
    return format(mask, "x")
