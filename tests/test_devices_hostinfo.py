"""Host info read from a fake /proc and /sys tree: CPU model, cores, cpufreq, thermal zones."""

from __future__ import annotations

from pathlib import Path

from hwnas.devices import hostinfo


def _write(root: Path, rel: str, text: str) -> None:
    p = root / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text)


def _arm_board(root: Path, zone_temp: int) -> None:
    _write(root, "proc/cpuinfo", "processor\t: 0\nBogoMIPS\t: 108.00\n\nHardware\t: BCM2711\nModel\t: Raspberry Pi 4\n")
    for i, (lo, hi, gov) in enumerate([(600000, 1800000, "performance")] * 2 + [(300000, 2400000, "schedutil")] * 2):
        base = f"sys/devices/system/cpu/cpu{i}/cpufreq/"
        _write(root, base + "cpuinfo_min_freq", str(lo))
        _write(root, base + "cpuinfo_max_freq", str(hi))
        _write(root, base + "scaling_cur_freq", str(hi))
        _write(root, base + "scaling_governor", gov)
    z = "sys/class/thermal/thermal_zone0/"
    _write(root, z + "type", "cpu-thermal")
    _write(root, z + "temp", str(zone_temp))
    _write(root, z + "trip_point_0_type", "passive")
    _write(root, z + "trip_point_0_temp", "80000")
    _write(root, z + "trip_point_1_type", "critical")
    _write(root, z + "trip_point_1_temp", "90000")


def test_arm_board_info(tmp_path):
    _arm_board(tmp_path, 45500)
    info = hostinfo.host_info(tmp_path)
    assert info["cpu"] == "BCM2711"
    assert info["cores"] == 4
    assert info["max_mhz"] == 2400.0
    assert info["governors"] == ["performance", "schedutil"]
    assert info["frequencies"]["cores"]["cpu0"] == {"min_mhz": 600.0, "max_mhz": 1800.0, "cur_mhz": 1800.0,
                                                     "governor": "performance"}
    assert info["thermal"] == {"temps_c": {"cpu-thermal": 45.5}, "throttled": False}
    assert info["hardware_id"] == "BCM2711 x4"


def test_throttled_at_passive_trip_point(tmp_path):
    _arm_board(tmp_path, 81000)
    assert hostinfo.thermal(tmp_path)["throttled"] is True


def test_vm_without_cpufreq_or_thermal_reports_none(tmp_path):
    _write(tmp_path, "proc/cpuinfo", "processor\t: 0\nmodel name\t: AMD EPYC\n")
    (tmp_path / "sys/devices/system/cpu/cpu0").mkdir(parents=True)
    assert hostinfo.cpu_model(tmp_path) == "AMD EPYC"
    assert hostinfo.frequencies(tmp_path) is None
    assert hostinfo.thermal(tmp_path) is None


def test_this_host():
    info = hostinfo.host_info()
    assert info["cores"] >= 1 and info["cpu"]
    assert set(info["usable_cores"]) <= set(range(1024))
