"""A dropped phone: `hwnas profile` over ADB (devices/adbd on loopback), the daemon killed mid-run.

The run must stop with one clear line, keep every block it measured, and a
rerun against the phone (back on the same address) must finish the rest
without measuring anything twice.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time

import pytest

from hwnas.profiler.store import Store
from tests.conftest import ROOT

pytest.importorskip("litert_torch", reason="the phone path exports .tflite with litert-torch (hwnas[tflite])")

pytestmark = [pytest.mark.integration, pytest.mark.slow]

N = 4


def _start_daemon(keys, env, port: int = 0) -> tuple[subprocess.Popen, int]:
    proc = subprocess.Popen([sys.executable, "-m", "hwnas.devices.adbd", "--port", str(port), "--keys", str(keys)],
                            cwd=ROOT, stdout=subprocess.PIPE, text=True, env=env)
    line = proc.stdout.readline()
    return proc, int(line.split(":")[1].split()[0])


def _count(db) -> int:
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
        try:
            return con.execute("SELECT COUNT(*) FROM blocks").fetchone()[0]
        finally:
            con.close()
    except sqlite3.Error:
        return 0


def test_dropped_phone_stops_cleanly_and_the_rerun_resumes(tmp_path, cli, monkeypatch):
    from hwnas.devices.adb.client import load_signer
    from hwnas.devices.adbd.runner import install

    home = tmp_path / "home"
    monkeypatch.setenv("HOME", str(home))
    load_signer()  # ~/.android/adbkey, as a first-time user gets it
    env = {**os.environ, "HOME": str(home)}
    keys = home / ".android" / "adbkey.pub"
    runner = install(tmp_path / "bin")
    daemon, port = _start_daemon(keys, env)
    db = tmp_path / "phone.db"
    args = ["profile", "--space", "fbnet-cifar", "--device", f"adb://127.0.0.1:{port}?binary={runner}&runs=20",
            "--store", str(db), "--limit", str(N), "--retries", "0", "--json",
            # the plain loop stores each block as it goes, which this test counts; the steady loop's
            # resume from its pass history is tested in test_profiler_steady.py
            "--passes", "1", "--no-reference", "--no-selfcheck"]
    try:
        proc = subprocess.Popen([sys.executable, "-m", "hwnas", *args], cwd=ROOT, env=env, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 400
        while _count(db) < 1 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        daemon.kill()  # the phone drops off
        daemon.wait()
        out, err = proc.communicate(timeout=300)
        kept = _count(db)
        if proc.returncode == 0:
            pytest.skip("the profile finished before the phone could be dropped")
        assert proc.returncode == 2 and "Traceback" not in err, err
        assert f"127.0.0.1:{port}" in err and "run the same command again" in err
        assert 1 <= kept < N
        assert json.loads(out)["devices"][0]["measured"] == kept
        daemon, _ = _start_daemon(keys, env, port)  # plugged back in
        rerun = json.loads(cli(*args, env={"HOME": str(home)}, check=True).stdout)["devices"][0]
        assert rerun["skipped"] == kept and rerun["measured"] == N - kept
        with Store(db) as st:
            assert len(st.blocks()) == N and st.integrity_check() == "ok"
            assert len(st.devices()) == 1
    finally:
        daemon.kill()
        daemon.wait()
