"""The daemon against strangers, on loopback, bounded in time and count.

A daemon process (`python -m hwnas.devices.adbd`) is attacked; its memory and
threads are read from /proc (VmRSS, VmHWM = peak, Threads) against its idle
figures.  Figures are printed (pytest -s) for benchmarks/RESULTS.md.
"""

from __future__ import annotations

import os
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

from hwnas.devices.adbd import AUTH, CNXN, HEADER, OKAY, OPEN, WRTE, pack
from hwnas.devices.adbd.limits import HANDSHAKE_DEADLINE_S, MAX_PENDING, STREAM_BUFFER_MAX

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[1]
MB = 1024 * 1024


@pytest.fixture(scope="module")
def keypair(tmp_path_factory):
    d = tmp_path_factory.mktemp("attackkeys")
    keygen(str(d / "adbkey"))
    return d / "adbkey"


class Daemon:
    """A daemon subprocess and its /proc figures."""

    def __init__(self, keys: Path) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "hwnas.devices.adbd", "--port", "0", "--keys", str(keys)],
                                     cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        line = self.proc.stdout.readline()
        assert line.startswith("adbd listening on 127.0.0.1:"), line
        self.port = int(line.split(":")[1].split()[0])
        time.sleep(0.3)
        self.idle = self.status()

    def status(self) -> dict[str, int]:
        """VmRSS and VmHWM in bytes, and the thread count."""
        out = {}
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(value.split()[0]) * 1024
            elif key == "Threads":
                out[key] = int(value)
        return out

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait()


@pytest.fixture
def daemon(keypair):
    d = Daemon(Path(str(keypair) + ".pub"))
    yield d
    d.stop()


def trusted_echo(port: int, key: Path, attempts: int = 5) -> str:
    """A trusted client's round trip; a flood may evict one handshake, so it tries again a few times."""
    last: Exception | None = None
    for _ in range(attempts):
        dev = AdbDeviceTcp("127.0.0.1", port, default_transport_timeout_s=5)
        try:
            dev.connect(rsa_keys=[CryptographySigner(str(key))], auth_timeout_s=3, read_timeout_s=5)
            out = dev.shell("echo served")
            dev.close()
            return out
        except Exception as exc:  # noqa: BLE001 — evicted by the gate; retried
            last = exc
            dev.close()
    raise AssertionError(f"trusted client never served: {last}")


def recv_packet(sock: socket.socket) -> tuple[int, int, int, bytes]:
    head = b""
    while len(head) < HEADER.size:
        chunk = sock.recv(HEADER.size - len(head))
        if not chunk:
            raise ConnectionError("closed")
        head += chunk
    command, arg0, arg1, length, _, _ = HEADER.unpack(head)
    data = b""
    while len(data) < length:
        chunk = sock.recv(length - len(data))
        if not chunk:
            raise ConnectionError("closed")
        data += chunk
    return command, arg0, arg1, data


def authenticated(port: int, key: Path) -> socket.socket:
    """A raw connection through CNXN and AUTH (signature), ready for OPEN."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.sendall(pack(CNXN, 0x01000000, MB, b"host::\0"))
    command, kind, _, token = recv_packet(sock)
    assert command == AUTH and kind == 1
    sock.sendall(pack(AUTH, 2, 0, CryptographySigner(str(key)).Sign(token)))
    command, *_ = recv_packet(sock)
    assert command == CNXN
    return sock


def report(name: str, d: Daemon, peak: dict[str, int], extra: str = "") -> None:
    print(f"\n[adbd {name}] idle rss={d.idle['VmRSS'] / MB:.1f} MB threads={d.idle['Threads']}; "
          f"peak rss={peak['VmHWM'] / MB:.1f} MB (+{(peak['VmHWM'] - d.idle['VmRSS']) / MB:.1f}) "
          f"threads={peak['Threads']} {extra}")


def test_slow_drip_is_closed_at_the_handshake_deadline(daemon):
    socks = []
    for _ in range(10):
        s = socket.create_connection(("127.0.0.1", daemon.port), timeout=5)
        s.sendall(HEADER.pack(CNXN, 0x01000000, MB, 60_000, 0, CNXN ^ 0xFFFFFFFF))  # announces 60 KB, sends ~none
        socks.append(s)
    t0 = time.monotonic()
    closed_at: list[float] = []
    peak_threads = 0
    while len(closed_at) < len(socks) and time.monotonic() - t0 < HANDSHAKE_DEADLINE_S + 8:
        for s in socks:
            if s.fileno() < 0:
                continue
            try:
                s.sendall(b"x")  # one byte every half second: a per-read timeout would never fire
                s.setblocking(False)
                if s.recv(1) == b"":
                    raise ConnectionError
            except BlockingIOError:
                pass
            except OSError:
                closed_at.append(time.monotonic() - t0)
                s.close()
                continue
            finally:
                if s.fileno() >= 0:
                    s.setblocking(True)
        peak_threads = max(peak_threads, daemon.status()["Threads"])
        time.sleep(0.5)
    peak = {**daemon.status(), "Threads": peak_threads}
    report("slow drip x10", daemon, peak, f"closed after {max(closed_at or [0]):.1f} s")
    assert len(closed_at) == len(socks)
    assert max(closed_at) <= HANDSHAKE_DEADLINE_S + 3


def test_500_unauthenticated_connections_stay_bounded_while_a_trusted_client_is_served(daemon, keypair):
    socks = []
    peak_threads = 0
    for i in range(500):
        try:
            s = socket.create_connection(("127.0.0.1", daemon.port), timeout=5)
            if i % 2:
                s.sendall(pack(CNXN, 0x01000000, MB, b"host::\0"))  # then never answers AUTH
            socks.append(s)
        except OSError:
            pass
        if i % 50 == 0:
            peak_threads = max(peak_threads, daemon.status()["Threads"])
    served = trusted_echo(daemon.port, keypair)
    churn_stop = threading.Event()

    def churn() -> None:  # strangers keep coming while the trusted client works
        while not churn_stop.is_set():
            try:
                socks.append(socket.create_connection(("127.0.0.1", daemon.port), timeout=5))
            except OSError:
                pass
            time.sleep(0.005)

    t = threading.Thread(target=churn)
    t.start()
    try:
        served_during = trusted_echo(daemon.port, keypair)
        peak_threads = max(peak_threads, daemon.status()["Threads"])
    finally:
        churn_stop.set()
        t.join()
    peak = {**daemon.status(), "Threads": peak_threads}
    report("500 unauthenticated", daemon, peak, f"(+{len(socks) - 500} during churn)")
    for s in socks:
        s.close()
    assert served == served_during == "served\n"
    assert peak["Threads"] <= daemon.idle["Threads"] + MAX_PENDING + 8
    assert peak["VmHWM"] - daemon.idle["VmRSS"] < 64 * MB


def _write_unread(port: int, key: Path, total: int, honour_okay: bool,
                  service: bytes = b"shell:\0", first: bytes = b"sleep 25\n") -> tuple[int, bool]:
    """Write `total` bytes into a stream whose reader stops reading; returns (bytes sent, stalled)."""
    sock = authenticated(port, key)
    sock.sendall(pack(OPEN, 1, 0, service))
    command, remote, _, _ = recv_packet(sock)
    assert command == OKAY
    if first:  # the interactive shell reads this, then sleeps: its stdin is no longer read
        sock.sendall(pack(WRTE, 1, remote, first))
        while recv_packet(sock)[0] != OKAY:
            pass
        time.sleep(0.5)
    chunk = os.urandom(MB)
    sent = 0
    stalled = False
    try:
        while sent < total:
            sock.sendall(pack(WRTE, 1, remote, chunk))
            sent += len(chunk)
            if honour_okay:
                sock.settimeout(3)
                try:
                    while True:  # the OKAY for our WRTE (skip any other packet)
                        command, *_ = recv_packet(sock)
                        if command == OKAY:
                            break
                except socket.timeout:
                    stalled = True  # the daemon holds the acknowledgement: backpressure
                    break
    except OSError:
        stalled = True  # dropped for writing past the window
    finally:
        sock.close()
    return sent, stalled


@pytest.mark.parametrize("honour_okay", [True, False], ids=["polite", "ignores-okay"])
def test_unread_stream_write_of_1_gib_grows_the_daemon_less_than_64_mb(daemon, keypair, honour_okay):
    sent, stalled = _write_unread(daemon.port, keypair, 1024 * MB, honour_okay)
    time.sleep(0.5)
    peak = daemon.status()
    report(f"1 GiB unread write into shell: ({'waits for OKAY' if honour_okay else 'ignores OKAY'})", daemon, peak,
           f"accepted {sent / MB:.0f} MiB of 1024 before the daemon {'held OKAY' if honour_okay else 'dropped it'}")
    assert stalled and sent < 64 * MB
    assert peak["VmHWM"] - daemon.idle["VmRSS"] < 64 * MB
    assert trusted_echo(daemon.port, keypair) == "served\n"
    assert STREAM_BUFFER_MAX < 64 * MB


def test_writes_into_a_command_without_stdin_are_discarded(daemon, keypair):
    """`exec:sleep 25` never reads: its bytes are dropped (acknowledged), so memory stays flat.
    256 MiB instead of 1 GiB: every byte crosses loopback on a shared 2-core VM."""
    sent, _ = _write_unread(daemon.port, keypair, 256 * MB, True, service=b"exec:sleep 25\0", first=b"")
    peak = daemon.status()
    report("256 MiB into exec:sleep 25 (discarded)", daemon, peak, f"sent {sent / MB:.0f} MiB")
    assert peak["VmHWM"] - daemon.idle["VmRSS"] < 64 * MB
