"""devices/adbd: the ADB daemon, driven by adb-shell and by Debian's adb client."""

from __future__ import annotations

import io
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from adb_shell.adb_device import AdbDeviceTcp
from adb_shell.auth.keygen import keygen
from adb_shell.auth.sign_cryptography import CryptographySigner
from adb_shell.exceptions import PushFailedError

from devices.adbd import AdbDaemon, load_authorized_keys
from search.space import InputError

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def keypair(tmp_path_factory):
    d = tmp_path_factory.mktemp("adbkeys")
    keygen(str(d / "adbkey"))
    return d / "adbkey"


@pytest.fixture
def daemon(keypair):
    with AdbDaemon(keys=load_authorized_keys(str(keypair) + ".pub")) as d:
        yield d


def client(port: int, key: Path) -> AdbDeviceTcp:
    dev = AdbDeviceTcp("127.0.0.1", port, default_transport_timeout_s=5)
    dev.connect(rsa_keys=[CryptographySigner(str(key))], auth_timeout_s=3, read_timeout_s=5)
    return dev


def test_shell_merges_stdout_and_stderr(daemon, keypair):
    dev = client(daemon.port, keypair)
    assert dev.shell("echo out; echo err >&2") == "out\nerr\n"
    assert dev.shell("pwd").strip() == "/"
    dev.close()


def test_sync_push_stat_list_pull_round_trip(daemon, keypair, tmp_path):
    dev = client(daemon.port, keypair)
    payload = os.urandom(300_000)  # several 64 KiB DATA chunks, requests straddling WRTEs
    target = tmp_path / "sub dir" / "blob.bin"
    dev.push(io.BytesIO(payload), str(target), mtime=1_700_000_000)
    assert target.read_bytes() == payload
    mode, size, mtime = dev.stat(str(target))
    assert size == len(payload) and mtime == 1_700_000_000 and mode & 0o100000
    assert dev.stat(str(tmp_path / "missing")) == (0, 0, 0)
    names = {bytes(f.filename).decode() for f in dev.list(str(target.parent))}
    assert {"blob.bin", ".", ".."} <= names
    back = tmp_path / "back.bin"
    dev.pull(str(target), str(back))
    assert back.read_bytes() == payload
    dev.close()


def test_push_into_an_unwritable_place_fails_cleanly(daemon, keypair, tmp_path):
    dev = client(daemon.port, keypair)
    (tmp_path / "file").write_text("x")
    with pytest.raises(PushFailedError, match="inside: "):
        dev.push(io.BytesIO(b"data"), str(tmp_path / "file" / "inside"))
    assert dev.shell("echo still-alive") == "still-alive\n"  # the connection survives a FAIL
    dev.close()


def test_unknown_key_is_refused(daemon, tmp_path):
    keygen(str(tmp_path / "stranger"))
    dev = AdbDeviceTcp("127.0.0.1", daemon.port, default_transport_timeout_s=3)
    with pytest.raises(Exception):
        dev.connect(rsa_keys=[CryptographySigner(str(tmp_path / "stranger"))], auth_timeout_s=3, read_timeout_s=3)
    assert not dev.available


def test_many_connections_at_once(daemon, keypair):
    results: dict[int, str] = {}

    def work(i: int) -> None:
        dev = client(daemon.port, keypair)
        results[i] = "".join(dev.shell(f"echo {i}-{j}").strip() + "," for j in range(5))
        dev.close()

    threads = [threading.Thread(target=work, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert results == {i: "".join(f"{i}-{j}," for j in range(5)) for i in range(6)}


def test_bad_keys_file_is_one_clear_error(tmp_path):
    with pytest.raises(InputError, match="cannot read keys file"):
        load_authorized_keys(tmp_path / "nope.pub")
    (tmp_path / "bad.pub").write_text("not-base64!! user@host\n")
    with pytest.raises(InputError, match="bad.pub:1"):
        load_authorized_keys(tmp_path / "bad.pub")


@pytest.mark.integration
def test_cli_daemon_serves_and_stops_on_sigterm(keypair):
    proc = subprocess.Popen([sys.executable, "-m", "devices.adbd", "--port", "0", "--keys", str(keypair) + ".pub"],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert line.startswith("adbd listening on 127.0.0.1:")
        port = int(line.split(":")[1].split()[0])
        dev = client(port, keypair)
        assert dev.shell("echo ok") == "ok\n"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=2)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_cli_daemon_missing_keys_file_exits_2(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "devices.adbd", "--port", "0", "--keys", str(tmp_path / "none.pub")],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "cannot read keys file" in proc.stderr and "Traceback" not in proc.stderr


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.integration
@pytest.mark.skipif(shutil.which("adb") is None, reason="Debian's adb client is not installed (make test installs it)")
def test_debian_adb_client_connects_shells_and_pushes(tmp_path):
    home = tmp_path / "home"
    (home / ".android").mkdir(parents=True)
    keygen(str(home / ".android" / "adbkey"))
    server_port = str(_free_port())
    env = {**os.environ, "HOME": str(home)}

    def adb(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["adb", "-P", server_port, *args], env=env, capture_output=True, text=True, timeout=60)

    with AdbDaemon(keys=load_authorized_keys(home / ".android" / "adbkey.pub")) as d:
        serial = f"127.0.0.1:{d.port}"
        try:
            assert "connected to" in adb("connect", serial).stdout
            shell = adb("-s", serial, "shell", "echo", "ok")
            assert shell.stdout == "ok\n", shell
            src = tmp_path / "hello.txt"
            src.write_text("hello from adb\n")
            dest = tmp_path / "pushed.txt"
            assert adb("-s", serial, "push", str(src), str(dest)).returncode == 0
            assert dest.read_text() == "hello from adb\n"
            pulled = tmp_path / "pulled.txt"
            assert adb("-s", serial, "pull", str(dest), str(pulled)).returncode == 0
            assert pulled.read_text() == "hello from adb\n"
        finally:
            adb("kill-server")
