"""Parsers of what phones print: benchmark_model output, getprop, cpufreq, thermal state."""

from __future__ import annotations

import math

import pytest

from hwnas.devices.identity import anonymize
from hwnas.devices.adb.parse import (BenchmarkOutputError, core_mask, info_from_sections, parse_benchmark_output,
                               parse_clusters, parse_getprop, parse_thermal, split_sections,
                               summary_to_measurement)

# Output of TFLite 2.x benchmark_model on a phone (shape of the real tool's lines).
REAL_OUTPUT = """\
STARTING!
Log parameter values verbosely: [0]
Num threads: [1]
Graph: [/data/local/tmp/hwnas/run-1/abc.tflite]
#threads used for CPU inference: [1]
Loaded model /data/local/tmp/hwnas/run-1/abc.tflite
INFO: Initialized TensorFlow Lite runtime.
The input model file size (MB): 0.0213
Initialized session in 3.2ms.
Running benchmark for at least 10 iterations and at least 0 seconds but terminate if exceeding 150 seconds.
count=10 first=812 curr=402 min=398 max=812 avg=447.3 std=122

Running benchmark for at least 50 iterations and at least 0 seconds but terminate if exceeding 150 seconds.
count=50 first=405 curr=401 min=396 max=470 avg=404.12 std=11

Inference timings in us: Init: 3200, First inference: 812, Warmup (avg): 447.3, Inference (avg): 404.12
Memory footprint delta from the start of the tool (MB): init=1.2 overall=1.9
"""


def test_parse_real_summary_into_ms():
    parsed = parse_benchmark_output(REAL_OUTPUT)
    assert [p["count"] for p in parsed["phases"]] == [10, 50]
    assert parsed["unconsumed"] is None and not parsed["failed"]
    m = summary_to_measurement(parsed)
    assert m.n == 50 and m.warmup == 10
    assert m.mean_ms == pytest.approx(0.40412)
    assert m.min_ms == pytest.approx(0.396) and m.max_ms == pytest.approx(0.470)
    assert m.std_ms == pytest.approx(0.011)
    assert m.min_ms <= m.p10_ms <= m.median_ms <= m.p90_ms <= m.max_ms
    assert set(m.extra["estimated"]) == {"median_ms", "p10_ms", "p90_ms"}
    assert m.extra["init_ms"] == pytest.approx(3.2)
    # the printed std (whole µs) plus its rounding, half a µs
    assert m.ci_halfwidth_ms == pytest.approx(1.96 * 1.2533 * 0.0115 / math.sqrt(50), rel=1e-3)


def test_std_printed_as_zero_is_not_taken_for_precision():
    text = "count=20 first=14 curr=14 min=14 max=14 avg=14 std=0\n"
    m = summary_to_measurement(parse_benchmark_output(text))
    assert m.ci_halfwidth_ms > 0 and not m.settled  # 1.96*1.25*0.5/sqrt(20) = 0.27 µs: 2% of 14 µs
    many = summary_to_measurement(parse_benchmark_output("count=5000 first=14 curr=14 min=14 max=15 avg=14.1 std=0\n"))
    assert many.settled


def test_median_and_percentiles_used_when_printed():
    text = "count=100 first=9 curr=9 min=8 max=20 avg=10 std=2 p10=8.5 median=9.5 p90=12\n"
    m = summary_to_measurement(parse_benchmark_output(text))
    assert (m.median_ms, m.p10_ms, m.p90_ms) == (0.0095, 0.0085, 0.012)
    assert m.extra["estimated"] == []


def test_info_prefixed_lines_and_unconsumed_flags_are_seen():
    text = "INFO: STARTING!\nWARNING: Unconsumed cmdline flags: --num_thread=1\n" + \
        "INFO: count=5 first=1 curr=1 min=1 max=2 avg=1.2 std=0\n"
    parsed = parse_benchmark_output(text)
    assert parsed["unconsumed"] == "--num_thread=1"
    assert parsed["phases"][0]["avg"] == 1.2


@pytest.mark.parametrize("text", ["", "Segmentation fault\n", "count=abc\n", "ERROR: Failed to mmap model\n"])
def test_unrecognised_output_raises(text):
    with pytest.raises(BenchmarkOutputError, match="summary line"):
        parse_benchmark_output(text)


def test_summary_line_missing_fields_is_rejected():
    with pytest.raises(BenchmarkOutputError, match="without min/max/avg/std"):
        parse_benchmark_output("count=5 first=1 curr=2\n")


def test_getprop_and_clusters():
    props = parse_getprop("[ro.product.model]: [Pixel 4]\n[ro.soc.model]: [SM8150]\nnoise\n[empty]: []\n")
    assert props == {"ro.product.model": "Pixel 4", "ro.soc.model": "SM8150", "empty": ""}
    clusters = parse_clusters("0 300000 1785600 schedutil\n1 300000 1785600 schedutil\n2 300000 1785600 schedutil\n"
                              "3 300000 1785600 schedutil\n4 710400 2419200 schedutil\n5 710400 2419200 schedutil\n"
                              "6 710400 2419200 schedutil\n7 825600 2841600 performance\n")
    assert [(c["cores"], c["max_mhz"], c["governor"]) for c in clusters] == [
        ("0-3", 1785.6, "schedutil"), ("4-6", 2419.2, "schedutil"), ("7", 2841.6, "performance")]


def test_clusters_without_cpufreq_are_one_group_without_frequencies():
    clusters = parse_clusters("0 - - -\n1 - - -\n")
    assert clusters == [{"cores": "0-1", "n": 2, "min_mhz": None, "max_mhz": None, "governor": None}]


def test_thermal_from_android_dumpsys():
    sections = {
        "thermalservice": "IsStatusOverride: false\nThermal Status: 2\nCurrent temperatures from HAL:\n"
                          "\tTemperature{mValue=41.5, mType=0, mName=cpu0-silver-usr, mStatus=0}\n"
                          "\tTemperature{mValue=36.2, mType=2, mName=battery, mStatus=0}\n",
        "battery": "  temperature: 312",
        "zones": "cpu-0-0-usr 41500\n",
    }
    t = parse_thermal(sections)
    assert t["throttled"] is True and t["status"] == 2
    assert t["battery_c"] == 31.2
    assert t["temps_c"]["hal:cpu0-silver-usr"] == 41.5
    assert t["temps_c"]["zone:cpu-0-0-usr"] == 41.5


def test_thermal_absent_and_linux_zone_fallback():
    assert parse_thermal({"thermalservice": "", "battery": "", "zones": ""}) is None
    t = parse_thermal({"zones": "x86_pkg_temp 91000\nacpitz 40000\n"})
    assert t["throttled"] is True and t["status"] is None
    assert parse_thermal({"zones": "acpitz 40000\n"})["throttled"] is False


def test_info_on_android_and_on_a_bare_linux_host():
    android = split_sections("@@hwnas:getprop\n[ro.product.model]: [Pixel 4]\n[ro.board.platform]: [msmnile]\n"
                             "[ro.build.version.release]: [12]\n[ro.serialno]: [9A1]\n@@hwnas:nproc\n8\n"
                             "@@hwnas:binary\nabcdef0123456789 /data/local/tmp/benchmark_model\n")
    info = info_from_sections(android)
    assert info["model"] == "Pixel 4" and info["soc"] == "msmnile" and info["android_version"] == "12"
    # the serial is kept out of identities (salted hash), but stays stable: same serial, same id
    assert info["cores"] == 8 and info["hardware_id"] == f"Pixel 4:{anonymize('9A1')}"
    assert "9A1" not in info["hardware_id"]
    assert info["runtime_version"] == "benchmark_model@abcdef012345" and info["binary_found"]
    linux = info_from_sections(split_sections('@@hwnas:os\nPRETTY_NAME="Debian GNU/Linux 12"\n'
                                              "@@hwnas:cpuinfo\nmodel name : Cortex-A72\nmodel : 1\n"
                                              "@@hwnas:binary\nmissing\n"))
    assert linux["model"] == "Debian GNU/Linux 12" and linux["cpu"] == "Cortex-A72"
    assert linux["android_version"] is None and linux["runtime_version"] == "missing"
    assert linux["thermal"] is None


def test_core_mask():
    assert core_mask((4, 5, 6, 7)) == "f0"
    assert core_mask((0,)) == "1"
    assert core_mask((0, 2)) == "5"
