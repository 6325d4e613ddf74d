"""devices/adb: the phone adapter end to end against devices/adbd on loopback, faults included."""

from __future__ import annotations

import math
import json
import os
import shlex
import shutil
import socket
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import hwnas.devices.adb.client as adb_mod
from hwnas.devices.adb.client import WORK_ROOT, AdbPhone, load_signer
from hwnas.devices.adbd import AdbDaemon, load_authorized_keys
from hwnas.devices.base import DeviceError
from hwnas.devices.registry import open_device
from hwnas.devices.uri import parse_uri
from hwnas.devices.adbd.runner import install
from hwnas.devices.identity import anonymize

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tflite(tmp_path_factory) -> Path:
    """A real .tflite (a small conv block) exported once for the module."""
    import torch

    from hwnas.devices.export import export_tflite

    block = torch.nn.Sequential(torch.nn.Conv2d(8, 8, 3, padding=1), torch.nn.ReLU()).eval()
    return Path(export_tflite(block, (1, 8, 16, 16), path=tmp_path_factory.mktemp("model") / "block.tflite"))


@pytest.fixture
def dummy(tmp_path) -> Path:
    """Bytes named .tflite, for tests whose (fake) binary never reads the model."""
    path = tmp_path / "dummy.tflite"
    path.write_bytes(b"\x1c\x00\x00\x00TFL3" + bytes(24))
    return path


@pytest.fixture(scope="module")
def runner(tmp_path_factory) -> Path:
    """benchmark_model installed in a directory whose name needs quoting."""
    return install(tmp_path_factory.mktemp("bin") / "it's a dir")


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    load_signer()  # generates ~/.android/adbkey like a first-time user
    return tmp_path / "home"


@pytest.fixture
def daemon(home):
    with AdbDaemon(keys=load_authorized_keys(home / ".android" / "adbkey.pub")) as d:
        yield d


def uri(d: AdbDaemon, runner: Path | None = None, **opts) -> str:
    if runner is not None:
        opts["binary"] = str(runner)
    q = "&".join(f"{k}={v}" for k, v in opts.items())
    return f"adb://127.0.0.1:{d.port}" + (f"?{q}" if q else "")


def fake_binary(directory: Path, body: str) -> Path:
    path = directory / "fake_benchmark_model"
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)
    return path


def test_key_is_generated_private(home):
    key = home / ".android" / "adbkey"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert (home / ".android" / "adbkey.pub").read_text().split()[0]


def test_info_and_identity_on_a_linux_host(daemon, runner):
    with open_device(uri(daemon, runner, threads=1, cores="0")) as dev:
        info = dev.info()
        assert info["cores"] == os.cpu_count()
        assert info["clusters"] and info["model"]
        assert info["runtime"] == "benchmark_model" and info["binary_found"]
        assert info["runtime_version"].startswith("benchmark_model@")
        assert "android_version" in info and "battery_temp_c" in info and "thermal" in info
        assert dev.identity.endswith("|threads=1|cores=0")


@pytest.mark.slow
def test_info_reads_android_properties_and_thermal_when_present(daemon, tmp_path, monkeypatch):
    """Fake getprop/dumpsys on the daemon's PATH stand in for a phone's."""
    bindir = tmp_path / "fakebin"
    bindir.mkdir()
    (bindir / "getprop").write_text("#!/bin/sh\necho '[ro.product.model]: [Pixel 4]'\n"
                                    "echo '[ro.board.platform]: [msmnile]'\necho '[ro.build.version.release]: [12]'\n"
                                    "echo '[ro.serialno]: [9A1X]'\n")
    (bindir / "dumpsys").write_text('#!/bin/sh\n[ "$1" = thermalservice ] && echo "Thermal Status: 0"\n'
                                    '[ "$1" = battery ] && echo "  temperature: 301"\ntrue\n')
    for f in bindir.iterdir():
        f.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}:{os.environ['PATH']}")
    with open_device(uri(daemon, cores="0-1")) as dev:
        info = dev.info()
        assert (info["model"], info["soc"], info["android_version"]) == ("Pixel 4", "msmnile", "12")
        assert info["os"] == "Android 12" and info["battery_temp_c"] == 30.1
        assert info["thermal"]["status"] == 0 and info["thermal"]["throttled"] is False
        assert dev.identity.startswith(f"Pixel 4:{anonymize('9A1X')}|benchmark_model|missing|threads=1|cores=0-1")


def test_measure_tflite_with_taskset_and_cleanup(daemon, runner, tflite):
    with open_device(uri(daemon, runner, threads=1, cores="0", warmup=3, runs=20)) as dev:
        m = dev.measure(tflite)
        workdir = dev.workdir
        assert Path(workdir).parent == Path(WORK_ROOT) and Path(workdir).is_dir()
        assert m.n == 20 and m.warmup == 3
        assert 0 < m.min_ms <= m.median_ms <= m.max_ms
        assert m.extra["command"].startswith("taskset 1 ")
        assert "--num_threads=1" in m.extra["command"] and "--num_runs=20" in m.extra["command"]
        assert "thermal_before" in m.to_dict() and m.extra["thermal_retries"] == 0
        m2 = dev.measure(tflite)  # same content: pushed once
        models = lambda: [p for p in Path(workdir).iterdir() if p.suffix == ".tflite"]  # noqa: E731
        assert m2.n == 20 and len(models()) == 1
        assert m.extra["runner"] == m2.extra["runner"] == "serving"  # our runner stays alive across blocks
        pid = int(dev.link.pid)
        import torch  # a torch module is exported to .tflite (cached by key) and pushed

        block = torch.nn.Sequential(torch.nn.Conv2d(4, 4, 1)).eval()
        m3 = dev.measure(block, (1, 4, 8, 8), key="test-adb-conv1x1")
        assert m3.n == 20 and len(models()) == 2
    assert not Path(workdir).exists()
    import os
    import time

    for _ in range(100):  # the serving runner was stopped with the device
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    else:
        pytest.fail(f"serving runner {pid} still alive after close()")


def test_shell_exit_status_and_quoting(daemon):
    with AdbPhone(parse_uri(uri(daemon))) as dev:
        assert dev.shell("exit 7", check=False)[0] == 7
        assert dev.shell("printf 'no newline'")[1] == "no newline"
        with pytest.raises(DeviceError, match=r"adb://127\.0\.0\.1:\d+: `false` exited 1"):
            dev.shell("false")
        nasty = "a b'; touch /tmp/hwnas-pwned-$$; echo '"
        rc, out = dev.run("echo", nasty)
        assert rc == 0 and out == nasty + "\n"
        assert not list(Path("/tmp").glob("hwnas-pwned-*"))
        with pytest.raises(DeviceError, match="outside the work directory"):
            dev.push(Path(__file__), "../escape")


def test_abandoned_work_dirs_are_swept_live_ones_kept(daemon, dummy, tmp_path):
    fake = fake_binary(tmp_path, "echo 'count=5 first=10 curr=10 min=9 max=11 avg=10 std=1'\n")
    old, live = Path(WORK_ROOT) / "run-1-deadbeef", Path(WORK_ROOT) / "run-2-cafef00d"
    for d in (old, live):
        d.mkdir(parents=True, exist_ok=True)
        (d / "x.tflite").write_bytes(b"x")
    day_ago = time.time() - 24 * 3600
    os.utime(old, (day_ago, day_ago))
    try:
        with open_device(uri(daemon, fake)) as dev:
            dev.measure(dummy)
            assert not old.exists() and live.exists()
    finally:
        shutil.rmtree(old, ignore_errors=True)
        shutil.rmtree(live, ignore_errors=True)


def test_missing_binary_names_device_and_command(daemon, dummy, tmp_path):
    with open_device(uri(daemon, binary=str(tmp_path / "no_such_benchmark_model"))) as dev:
        assert dev.info()["binary_found"] is False
        with pytest.raises(DeviceError, match=r"adb://127\.0\.0\.1:\d+: benchmark binary .*no_such_benchmark_model not found"):
            dev.measure(dummy)
        assert dev._workdir is None  # nothing was pushed


def test_corrupt_model_rejected_by_the_runtime(daemon, runner, tmp_path):
    bad = tmp_path / "corrupt.tflite"
    bad.write_bytes(os.urandom(256))
    with open_device(uri(daemon, runner)) as dev:
        with pytest.raises(DeviceError, match=r"benchmark_model'? --graph=.* exited 1: .*not a valid Flatbuffer.*Benchmarking failed"):
            dev.measure(bad)


def test_non_tflite_file_is_refused_before_pushing(daemon, runner, tmp_path):
    f = tmp_path / "model.onnx"
    f.write_bytes(b"x")
    with open_device(uri(daemon, runner)) as dev:
        with pytest.raises(DeviceError, match="runs .tflite models; got model.onnx"):
            dev.measure(f)


def test_unrecognised_output_is_a_clear_error(daemon, dummy, tmp_path):
    fake = fake_binary(tmp_path, "echo 'Segmentation fault (core dumped)'\nexit 0\n")
    with open_device(uri(daemon, fake)) as dev:
        with pytest.raises(DeviceError, match=r"fake_benchmark_model --graph.*no 'count= \.\.\. avg= std=' summary line.*Segmentation fault"):
            dev.measure(dummy)


def test_unconsumed_flags_fail_loudly(daemon, dummy, tmp_path):
    fake = fake_binary(tmp_path, "echo 'Unconsumed cmdline flags: --warmup_min_secs=0'\n"
                                 "echo 'count=5 first=10 curr=10 min=9 max=11 avg=10 std=1'\n")
    with open_device(uri(daemon, fake)) as dev:
        with pytest.raises(DeviceError, match="Unconsumed cmdline flags: --warmup_min_secs=0"):
            dev.measure(dummy)


def test_throttled_device_cools_down_and_measures_again(daemon, dummy, tmp_path, monkeypatch):
    """A fake `dumpsys` reports Thermal Status 3 for its first three readings, then 0."""
    bindir = tmp_path / "fakebin"
    bindir.mkdir()
    state = tmp_path / "readings"
    (bindir / "dumpsys").write_text(
        "#!/bin/sh\n"
        f"n=$(cat {shlex.quote(str(state))} 2>/dev/null || echo 0); n=$((n+1)); echo $n > {shlex.quote(str(state))}\n"
        'if [ "$1" = thermalservice ]; then if [ $n -le 3 ]; then echo "Thermal Status: 3"; else echo "Thermal Status: 0"; fi; fi\n'
        'if [ "$1" = battery ]; then echo "  temperature: 385"; fi\n')
    (bindir / "dumpsys").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}:{os.environ['PATH']}")
    fake = fake_binary(tmp_path, "echo 'count=5 first=10 curr=10 min=9 max=11 avg=10 std=1'\n")
    with open_device(uri(daemon, fake)) as dev:
        dev.poll_s = 0.01
        m = dev.measure(dummy)
    # readings: before (throttled) → two polls (throttled) → cool, measure → after (cool)
    assert m.thermal_before["throttled"] is False and m.thermal_after["throttled"] is False
    assert m.thermal_after["battery_c"] == 38.5
    assert m.extra["thermal_history"][0]["waited_s"] > 0 and m.extra["throttled"] is False
    assert m.extra["runner"] == "unsupported"  # a binary without --hwnas_serve: one process per block


def test_still_throttled_after_the_wait_is_flagged_unsettled(daemon, dummy, tmp_path, monkeypatch):
    bindir = tmp_path / "fakebin"
    bindir.mkdir()
    (bindir / "dumpsys").write_text('#!/bin/sh\n[ "$1" = thermalservice ] && echo "Thermal Status: 2"\ntrue\n')
    (bindir / "dumpsys").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}:{os.environ['PATH']}")
    fake = fake_binary(tmp_path, "echo 'count=50 first=10 curr=10 min=9 max=11 avg=10 std=0'\n")
    with open_device(uri(daemon, fake)) as dev:
        dev.poll_s, dev.max_cooldown_s, dev.max_thermal_retries = 0.01, 0.03, 1
        m = dev.measure(dummy)
    assert m.extra["throttled"] is True and m.settled is False
    assert m.extra["thermal_retries"] == 1 and len(m.extra["thermal_history"]) == 2


def test_refused_key_is_a_clear_error(home, tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    load_signer(other / "adbkey")
    with AdbDaemon(keys=load_authorized_keys(other / "adbkey.pub")) as d:
        with pytest.raises(DeviceError, match=r"adb://127\.0\.0\.1:\d+: the device refused our key"):
            open_device(uri(d))


def test_connection_refused_is_a_clear_error(home):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(DeviceError, match=rf"adb://127\.0\.0\.1:{port}: cannot connect"):
        open_device(f"adb://127.0.0.1:{port}")


def test_silent_host_times_out(home, monkeypatch):
    """A host that accepts TCP but never speaks ADB: a timeout, not a hang."""
    monkeypatch.setattr(adb_mod, "CONNECT_TIMEOUT_S", 0.5)
    with socket.socket() as srv:
        srv.bind(("127.0.0.1", 0))
        srv.listen()
        port = srv.getsockname()[1]
        with pytest.raises(DeviceError, match=rf"adb://127\.0\.0\.1:{port}: no answer within 0.5 s"):
            open_device(f"adb://127.0.0.1:{port}")


def test_usb_serial_without_usb_support_says_what_to_install(home):
    pytest.importorskip("adb_shell")
    try:
        import usb1  # noqa: F401
        pytest.skip("libusb1 is installed here; the missing-extra message cannot be shown")
    except ImportError:
        pass
    with pytest.raises(DeviceError, match=r"adb://R58M123: USB needs adb-shell's usb extra"):
        open_device("adb://R58M123")


def test_reconnects_after_a_dropped_connection(daemon):
    with AdbPhone(parse_uri(uri(daemon))) as dev:
        assert dev.shell("echo one")[1] == "one\n"
        for conn in list(daemon._conns):  # the link drops (phone unplugged and re-plugged, Wi-Fi blip)
            conn.shutdown()
        assert dev.shell("echo two")[1] == "two\n"
        workdir = dev.workdir
        for conn in list(daemon._conns):
            conn.shutdown()
    assert not Path(workdir).exists()  # close() reconnected to clean up


@pytest.mark.integration
def test_daemon_killed_mid_run_fails_fast(home, dummy, tmp_path):
    fake = fake_binary(tmp_path, "sleep 60\n")
    proc = subprocess.Popen([sys.executable, "-m", "hwnas.devices.adbd", "--port", "0",
                             "--keys", str(home / ".android" / "adbkey.pub")],
                            cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        port = int(proc.stdout.readline().split(":")[1].split()[0])
        dev = open_device(f"adb://127.0.0.1:{port}?binary={fake}")
        threading.Timer(1.5, proc.kill).start()
        t0 = time.monotonic()
        with pytest.raises(DeviceError, match=rf"adb://127\.0\.0\.1:{port}: connection lost during"):
            dev.measure(dummy)
        assert time.monotonic() - t0 < 30  # a bound on a hang, not a performance assertion
        workdir = dev.workdir
        dev.close()  # the device is gone: close must not hang or raise
        assert Path(workdir).is_dir()  # left on the "phone": nothing could reach it
        shutil.rmtree(workdir)
    finally:
        proc.kill()
        proc.wait()


@pytest.mark.integration
def test_cli_devices_and_bench_over_adb(daemon, runner, tflite, cli, home):
    """`hwnas devices adb://... --json` and `hwnas bench` work through open_device."""
    commands = {p.stem for p in (ROOT / "hwnas" / "commands").glob("*.py")}
    if not {"devices"} <= commands:
        pytest.skip("hwnas devices/bench commands are not in this tree yet (issue 3)")
    env = {"HOME": str(home)}
    proc = cli("devices", uri(daemon), "--json", env=env)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    text = json.dumps(data)
    assert "benchmark_model" in text and "clusters" in text
    proc = cli("bench", str(tflite), "--device", uri(daemon, threads=1, cores="0", runs=20),
               "--benchmark-binary", str(runner), "--json", env=env)
    assert proc.returncode == 0, proc.stderr
    assert "median_ms" in proc.stdout


def test_tiny_model_settles_with_the_local_protocols_minimum_time(daemon, runner, tflite):
    """No ?runs=: at least min_seconds of timed runs (as locally), so a µs-scale model settles on the first try."""
    with open_device(uri(daemon, runner, threads=1, min_seconds=0.2)) as dev:
        m = dev.measure(tflite)
        assert "--min_secs=0.2" in m.extra["command"] and "--num_runs=10" in m.extra["command"]
        assert m.settled and m.n > 100 and m.relative_ci <= 0.01
        assert "median_ms" not in m.extra["estimated"]  # our runner prints the median itself


def test_runs_needed_asks_for_what_the_interval_says():
    from hwnas.devices.adb.timing import runs_needed
    from hwnas.devices.base import Measurement
    from hwnas.devices.protocol import Policy

    m = Measurement(n=50, median_ms=0.014, mean_ms=0.014, std_ms=0.001, p10_ms=0.013, p90_ms=0.015, min_ms=0.013,
                    max_ms=0.02, ci_halfwidth_ms=0.014 * 0.024, settled=False)
    n = runs_needed(m, Policy(max_seconds=1.0))
    assert n == math.ceil(50 * 2.4 ** 2 * 1.5)
    assert runs_needed(m, Policy(max_seconds=0.0005)) is None  # nothing more fits in the time cap


def test_wide_interval_gets_a_second_longer_run(daemon, dummy, tmp_path):
    """A binary that prints as many runs as asked, std 10 µs on 100: 10 runs are not enough, the
    second run asks for what the interval says (and settles); the first run's count is kept."""
    body = ('n=10; for a in "$@"; do case "$a" in --num_runs=*) n=${a#--num_runs=};; esac; done\n'
            'echo "count=$n first=100 curr=100 min=80 max=120 avg=100 std=10"\n')
    fake = fake_binary(tmp_path, body)
    with open_device(uri(daemon, fake)) as dev:
        m = dev.measure(dummy)
    assert m.extra["first_phase_runs"] == 10
    expected = math.ceil(10 * (1.96 * 1.2533 * 10.5 / math.sqrt(10) / 100 / 0.01) ** 2 * 1.5)
    assert abs(m.n - expected) <= 2 and m.settled
