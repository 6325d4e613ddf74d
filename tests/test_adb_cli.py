"""`hwnas adb keygen | install-runner | serve` as a user runs them."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_keygen_creates_a_private_key_once(cli, tmp_path):
    env = {"HOME": str(tmp_path)}
    first = cli("adb", "keygen", "--json", env=env)
    assert first.returncode == 0, first.stderr
    data = json.loads(first.stdout)
    assert data["created"] is True and data["mode"] == "0o600"
    key = tmp_path / ".android" / "adbkey"
    assert key.exists() and Path(data["public_key"]).read_text().strip()
    before = key.read_bytes()
    again = json.loads(cli("adb", "keygen", "--json", env=env).stdout)
    assert again["created"] is False and key.read_bytes() == before  # never overwrites the user's key


def test_install_runner_writes_an_executable_benchmark_model(cli, tmp_path):
    proc = cli("adb", "install-runner", str(tmp_path / "bin"), "--json")
    assert proc.returncode == 0, proc.stderr
    binary = Path(json.loads(proc.stdout)["binary"])
    assert binary.name == "benchmark_model" and os.access(binary, os.X_OK)
    out = subprocess.run([str(binary), "--graph=/nonexistent.tflite", "--bogus_flag=1"], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 1
    assert "Unconsumed cmdline flags: --bogus_flag=1" in out.stdout
    assert "Benchmarking failed." in out.stdout


def test_install_runner_onto_a_file_is_a_one_line_error(cli, tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    proc = cli("adb", "install-runner", str(f))
    assert proc.returncode == 2
    assert "is not a directory" in proc.stderr and "Traceback" not in proc.stderr


def test_serve_with_a_missing_keys_file_exits_2(cli, tmp_path):
    proc = cli("adb", "serve", "--port", "0", "--keys", str(tmp_path / "none.pub"))
    assert proc.returncode == 2 and "cannot read keys file" in proc.stderr


@pytest.mark.integration
def test_serve_prints_its_address_and_stops_on_ctrl_c(cli, tmp_path):
    cli("adb", "keygen", env={"HOME": str(tmp_path)}, check=True)
    proc = subprocess.Popen([sys.executable, "-m", "hwnas", "adb", "serve", "--port", "0",
                             "--keys", str(tmp_path / ".android" / "adbkey.pub")],
                            cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert line.startswith("adbd listening on 127.0.0.1:")
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
