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
import time
from pathlib import Path

import pytest
from adb_shell.adb_device import AdbDeviceTcp
from adb_shell.auth.keygen import keygen
from adb_shell.auth.sign_cryptography import CryptographySigner
from adb_shell.exceptions import PushFailedError

from hwnas.devices.adbd import AUTH, CLSE, CNXN, HEADER, OKAY, OPEN, WRTE, AdbDaemon, load_authorized_keys, pack
from hwnas.search.space import InputError

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
    proc = subprocess.Popen([sys.executable, "-m", "hwnas.devices.adbd", "--port", "0", "--keys", str(keypair) + ".pub"],
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
    proc = subprocess.run([sys.executable, "-m", "hwnas.devices.adbd", "--port", "0", "--keys", str(tmp_path / "none.pub")],
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


class RawClient:
    """Speaks the wire format directly, to check what adb-shell never exercises."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)

    def send(self, command: int, arg0: int, arg1: int, data: bytes = b"") -> None:
        self.sock.sendall(pack(command, arg0, arg1, data))

    def recv(self) -> tuple[int, int, int, bytes]:
        def exact(n: int) -> bytes:
            buf = b""
            while len(buf) < n:
                chunk = self.sock.recv(n - len(buf))
                if not chunk:
                    raise ConnectionError("closed")
                buf += chunk
            return buf

        command, arg0, arg1, length, check, magic = HEADER.unpack(exact(HEADER.size))
        assert magic == command ^ 0xFFFFFFFF
        data = exact(length)
        assert check == sum(data) & 0xFFFFFFFF  # the daemon always sends correct sums
        return command, arg0, arg1, data

    def closed(self) -> bool:
        try:
            return self.sock.recv(1) == b""
        except (ConnectionError, socket.timeout):
            return True


def test_known_public_key_is_rechallenged_then_admitted(daemon, keypair):
    signer = CryptographySigner(str(keypair))
    c = RawClient(daemon.port)
    c.send(CNXN, 0x01000000, 1 << 20, b"host::\0")
    command, kind, _, token = c.recv()
    assert (command, kind, len(token)) == (AUTH, 1, 20)
    c.send(AUTH, 3, 0, signer.GetPublicKey() + b"\0")  # "I have no signature, here is my key"
    command, kind, _, token2 = c.recv()
    assert (command, kind) == (AUTH, 1) and token2 != token  # must still prove it holds the private key
    c.send(AUTH, 2, 0, signer.Sign(token2))
    command, version, maxdata, banner = c.recv()
    assert command == CNXN and banner.startswith(b"device::") and b"features=" in banner
    c.send(OPEN, 7, 0, b"framebuffer:\0")  # a service the daemon does not offer is refused
    assert c.recv()[:3] == (CLSE, 0, 7)
    c.send(OPEN, 8, 0, b"shell:echo raw\0")
    command, local, remote, _ = c.recv()
    assert (command, remote) == (OKAY, 8)
    command, _, _, data = c.recv()
    assert (command, data) == (WRTE, b"raw\n")


def test_unknown_public_key_and_bad_checksum_drop_the_connection(daemon, tmp_path):
    keygen(str(tmp_path / "stranger"))
    c = RawClient(daemon.port)
    c.send(CNXN, 0x01000000, 1 << 20, b"host::\0")
    c.recv()
    c.send(AUTH, 3, 0, CryptographySigner(str(tmp_path / "stranger")).GetPublicKey() + b"\0")
    assert c.closed()
    c2 = RawClient(daemon.port)
    frame = bytearray(pack(CNXN, 0x01000000, 1 << 20, b"host::\0"))
    frame[16] ^= 0xFF  # corrupt data_check
    c2.sock.sendall(bytes(frame))
    assert c2.closed()


def test_stop_kills_running_shells(keypair, tmp_path):
    marker = tmp_path / "still-running"
    d = AdbDaemon(keys=load_authorized_keys(str(keypair) + ".pub")).start()
    dev = client(d.port, keypair)
    t = threading.Thread(target=lambda: _swallow(lambda: dev.shell(f"sleep 30; touch {marker}", read_timeout_s=40)))
    t.start()
    deadline = time.monotonic() + 10
    while not d._procs and time.monotonic() < deadline:
        time.sleep(0.05)
    procs = list(d._procs)
    assert procs
    d.stop()
    assert all(p.poll() is not None for p in procs)
    t.join(30)
    assert not marker.exists()


def _swallow(fn) -> None:
    try:
        fn()
    except Exception:  # noqa: BLE001 - the client sees its daemon vanish; only the daemon side is checked
        pass
