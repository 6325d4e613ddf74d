"""A small ADB daemon: lets the phone path (adb-shell, Debian's adb) run against a Linux host.

    python -m devices.adbd --port 5555 --keys ~/.android/adbkey.pub [--host 127.0.0.1]

Serves CNXN/AUTH/OPEN/OKAY/WRTE/CLSE, the `shell:`/`exec:` service (sh -c, stdout and
stderr merged, no exit code: clients append their own marker) and the `sync:` service
(STAT, LIST, SEND, RECV, DONE, QUIT), authenticating clients by RSA signature against an
authorized-keys file (unknown keys are refused, never prompted for).

Hand-written on purpose: no maintained Python package implements the *device* side of
ADB (adb-shell and pure-python-adb are clients; AOSP's adbd is C++ tied to Android), and
the subset needed here is a few hundred lines of framing. Wire facts follow AOSP
platform-tools 29 and adb-shell 0.4.4 (see REFERENCE.md, "ADB").
"""

from __future__ import annotations

import queue
import secrets
import socket
import socketserver
import struct
import subprocess
import sys
import threading
from typing import Any

from cryptography.hazmat.primitives.asymmetric import rsa

from hwnas.devices.adbd.auth import decode_android_pubkey, load_authorized_keys, same_key, verify_token
from hwnas.devices.adbd.limits import HANDSHAKE_DEADLINE_S, PREAUTH_MAX_DATA, STREAM_BUFFER_MAX, Deadline, Gate
from hwnas.devices.adbd.shell import kill, run_shell
from hwnas.devices.adbd.sync import run_sync
from hwnas.search.space import InputError

__all__ = ["AdbDaemon", "load_authorized_keys", "decode_android_pubkey", "Stream", "Connection", "pack"]

CNXN, AUTH, OPEN, OKAY, CLSE, WRTE = 0x4E584E43, 0x48545541, 0x4E45504F, 0x59414B4F, 0x45534C43, 0x45545257
AUTH_TOKEN, AUTH_SIGNATURE, AUTH_RSAPUBLICKEY = 1, 2, 3
VERSION = 0x01000000
MAX_DATA = 1024 * 1024
HEADER = struct.Struct("<6I")
#: Seconds a stream writer waits for the client's OKAY before giving up on the connection.
ACK_TIMEOUT_S = 60.0
#: Seconds a client may take to finish the whole handshake (one deadline, not per read).
HANDSHAKE_TIMEOUT_S = HANDSHAKE_DEADLINE_S
#: Failed auth rounds before the connection is dropped.
MAX_AUTH_ROUNDS = 4


class ProtocolError(Exception):
    """The peer broke the framing; the connection is dropped."""


def checksum(data: bytes) -> int:
    """ADB's data_check: a byte sum (not a CRC)."""
    return sum(data) & 0xFFFFFFFF


def pack(command: int, arg0: int, arg1: int, data: bytes = b"") -> bytes:
    """Header and payload in one buffer, so one send() carries both (no Nagle stall)."""
    return HEADER.pack(command, arg0, arg1, len(data), checksum(data), command ^ 0xFFFFFFFF) + data


class Stream:
    """One ADB stream: inbox of client data, and write credit (one WRTE in flight)."""

    def __init__(self, conn: "Connection", local_id: int, remote_id: int) -> None:
        self.conn, self.local_id, self.remote_id = conn, local_id, remote_id
        self.inbox: "queue.Queue[bytes | None]" = queue.Queue()
        self.credit = threading.Event()
        self.credit.set()
        self.closed = threading.Event()
        self._buf = bytearray()
        self.buffered = 0  # client bytes in the inbox, not yet taken by the service
        self.ack_owed = False  # an OKAY held back until the service reads (backpressure)
        self._flow = threading.Lock()
        self.policy = "hold"  # "hold" (interactive shell: cap and held OKAY) | "ack" (sync) | "discard"

    def offer(self, data: bytes) -> None:
        """A client WRTE: queue it, and acknowledge only while the buffer is under its cap.

        `policy` "discard" (a command service with no stdin: nobody will ever read) drops
        the bytes and acknowledges; "ack" (sync) queues and acknowledges at once, as before.
        """
        if self.policy == "discard":
            self.conn.send(OKAY, self.local_id, self.remote_id)
            return
        if self.policy == "ack":
            self.inbox.put(data)
            self.conn.send(OKAY, self.local_id, self.remote_id)
            return
        with self._flow:
            if self.ack_owed:  # the client wrote again without the OKAY it was owed: a protocol breach
                raise ProtocolError("client wrote past the flow-control window")
            self.inbox.put(data)
            self.buffered += len(data)
            hold = self.buffered > STREAM_BUFFER_MAX
            self.ack_owed = hold
        if not hold:
            self.conn.send(OKAY, self.local_id, self.remote_id)

    def take(self) -> bytes | None:
        """The next client chunk (None once closed); sends the held OKAY once the buffer drains.

        Before waiting on an empty inbox it always pays an owed OKAY: the client may be
        waiting for it to send the very bytes this read waits for.
        """
        with self._flow:
            owed = self.ack_owed and self.inbox.empty()
            if owed:
                self.ack_owed = False
        if owed and not self.closed.is_set():
            try:
                self.conn.send(OKAY, self.local_id, self.remote_id)
            except OSError:
                pass
        item = self.inbox.get()
        if item is None or self.policy != "hold":
            return item
        with self._flow:
            self.buffered -= len(item)
            release = self.ack_owed and self.buffered <= STREAM_BUFFER_MAX
            if release:
                self.ack_owed = False
        if release and not self.closed.is_set():
            try:
                self.conn.send(OKAY, self.local_id, self.remote_id)
            except OSError:
                pass
        return item

    def write(self, data: bytes) -> None:
        """Send data in chunks the client accepts, waiting for each OKAY."""
        view = memoryview(data)
        while view:
            if not self.credit.wait(ACK_TIMEOUT_S) or self.closed.is_set():
                raise ConnectionError("stream closed or client stopped acknowledging")
            self.credit.clear()
            if self.closed.is_set():
                raise ConnectionError("stream closed")
            chunk, view = view[: self.conn.maxdata], view[self.conn.maxdata:]
            self.conn.send(WRTE, self.local_id, self.remote_id, bytes(chunk))

    def read_exact(self, n: int) -> bytes | None:
        """n bytes of client data (requests may straddle WRTEs), None once closed."""
        while len(self._buf) < n:
            item = self.take()
            if item is None:
                self.inbox.put(None)
                return None
            self._buf += item
        out = bytes(self._buf[:n])
        del self._buf[:n]
        return out

    def close(self) -> None:
        """Close from our side (the client echoes CLSE, which is then ignored)."""
        if not self.closed.is_set():
            self.closed.set()
            self.credit.set()
            self.conn.send(CLSE, self.local_id, self.remote_id)
            self.conn.forget(self.local_id)


class Connection:
    """One client connection: handshake, then a reader loop dispatching packets to streams."""

    def __init__(self, sock: socket.socket, daemon: "AdbDaemon") -> None:
        self.sock, self.daemon = sock, daemon
        self.maxdata = MAX_DATA
        self._send_lock = threading.Lock()
        self._streams: dict[int, Stream] = {}
        self._next_id = 1
        self._lock = threading.Lock()
        self.alive = True
        self.deadline: Deadline | None = None  # set for the handshake: one total limit on every read
        self.admitted = False

    # -- framing -------------------------------------------------------------
    def send(self, command: int, arg0: int, arg1: int, data: bytes = b"") -> None:
        with self._send_lock:
            self.sock.sendall(pack(command, arg0, arg1, data))

    def _recv_exact(self, n: int) -> bytes:
        buf = bytearray()
        while len(buf) < n:
            if self.deadline is not None:
                self.sock.settimeout(self.deadline.remaining())
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise ConnectionError("client closed the connection")
            buf += chunk
        return bytes(buf)

    def recv(self) -> tuple[int, int, int, bytes]:
        command, arg0, arg1, length, check, magic = HEADER.unpack(self._recv_exact(HEADER.size))
        if magic != command ^ 0xFFFFFFFF:
            raise ProtocolError(f"bad magic for command {command:#x}")
        limit = MAX_DATA if self.admitted else PREAUTH_MAX_DATA
        if length > limit:
            raise ProtocolError(f"payload of {length} bytes exceeds {limit}")
        data = self._recv_exact(length) if length else b""
        # adb 29 sends a zero checksum once the daemon speaks 0x01000001: accept 0.
        if check and check != checksum(data):
            raise ProtocolError("bad checksum")
        return command, arg0, arg1, data

    # -- lifecycle -------------------------------------------------------------
    def handshake(self) -> bool:
        """CNXN, then AUTH rounds when keys are configured; True once the client is admitted."""
        self.deadline = Deadline(HANDSHAKE_TIMEOUT_S)
        command, _version, maxdata, _banner = self.recv()
        if command != CNXN:
            return False
        self.maxdata = max(256, min(maxdata or MAX_DATA, MAX_DATA))
        keys = self.daemon.keys
        if keys is not None:
            for _ in range(MAX_AUTH_ROUNDS):
                token = secrets.token_bytes(20)
                self.send(AUTH, AUTH_TOKEN, 0, token)
                command, kind, _, data = self.recv()
                if command != AUTH:
                    return False
                if kind == AUTH_SIGNATURE and verify_token(keys, token, data):
                    break
                if kind == AUTH_RSAPUBLICKEY:
                    # A real phone would prompt; we only re-challenge a key already
                    # authorized (the client must still prove it holds the private key).
                    try:
                        offered = decode_android_pubkey(data.rstrip(b"\0").decode("ascii", "replace"))
                    except ValueError:
                        return False
                    if not any(same_key(offered, k) for k in keys):
                        self.daemon.log("refused a connection: unknown public key")
                        return False
            else:
                self.daemon.log("refused a connection: no valid signature")
                return False
        self.send(CNXN, VERSION, MAX_DATA, self.daemon.banner)
        self.deadline = None
        self.admitted = True
        self.sock.settimeout(None)
        return True

    def serve(self) -> None:
        try:
            admitted = self.handshake()
            self.daemon.gate.leave(self.sock)
            if not admitted:
                return
            while self.alive:
                self._dispatch(*self.recv())
        except (ConnectionError, OSError, ProtocolError, socket.timeout, struct.error):
            pass
        finally:
            self.shutdown()

    def shutdown(self) -> None:
        self.alive = False
        with self._lock:
            streams = list(self._streams.values())
            self._streams.clear()
        for s in streams:
            s.closed.set()
            s.credit.set()
            s.inbox.put(None)
        try:
            self.sock.close()
        except OSError:
            pass

    def forget(self, local_id: int) -> None:
        with self._lock:
            self._streams.pop(local_id, None)

    def _dispatch(self, command: int, arg0: int, arg1: int, data: bytes) -> None:
        if command == OPEN:
            self._open(arg0, data.rstrip(b"\0").decode("utf-8", "replace"))
            return
        with self._lock:
            stream = self._streams.get(arg1)
        if stream is None:
            return  # a stream we already closed: its echoed CLSE/late OKAY is harmless
        if command == OKAY:
            stream.credit.set()
        elif command == WRTE:
            stream.offer(data)  # acknowledged now, or once the service has read (backpressure)
        elif command == CLSE:
            stream.inbox.put(None)
            stream.close()  # echo: adb-shell waits for it

    def _open(self, remote_id: int, service: str) -> None:
        handler = None
        if service.startswith(("shell:", "exec:")):
            handler = self.daemon.run_shell
        elif service == "sync:":
            handler = lambda stream, _arg: run_sync(stream)  # noqa: E731
        if handler is None:
            self.send(CLSE, 0, remote_id)  # refuse an unknown service
            return
        with self._lock:
            local_id = self._next_id
            self._next_id += 1
            stream = Stream(self, local_id, remote_id)
            stream.policy = ("ack" if service == "sync:" else
                             "discard" if service.partition(":")[2].strip() else "hold")
            self._streams[local_id] = stream
        self.send(OKAY, local_id, remote_id)
        threading.Thread(target=self._run, args=(handler, stream, service), daemon=True).start()

    @staticmethod
    def _run(handler: Any, stream: Stream, service: str) -> None:
        try:
            handler(stream, service.partition(":")[2])
        except (ConnectionError, OSError):
            pass
        finally:
            try:
                stream.close()
            except OSError:
                pass


class _Handler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        sock: socket.socket = self.request
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn = Connection(sock, self.server.adbd)  # type: ignore[attr-defined]
        self.server.adbd.track(conn, True)  # type: ignore[attr-defined]
        try:
            conn.serve()
        finally:
            self.server.adbd.gate.leave(sock)  # type: ignore[attr-defined]
            self.server.adbd.track(conn, False)  # type: ignore[attr-defined]


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64

    def process_request(self, request: Any, client_address: Any) -> None:
        """Count the connection at the gate before its thread starts (a full gate evicts the oldest)."""
        self.adbd.gate.enter(request)  # type: ignore[attr-defined]
        super().process_request(request, client_address)


class AdbDaemon:
    """The daemon: a threaded TCP server plus the shell and sync services it runs on this host."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, keys: list[rsa.RSAPublicKey] | None = None,
                 quiet: bool = True) -> None:
        self.keys = keys
        self.quiet = quiet
        node = socket.gethostname() or "linux"
        self.banner = f"device::ro.product.name=hwnas-adbd;ro.product.model={node};ro.product.device=linux;features=".encode()
        self._conns: set[Connection] = set()
        self._procs: set[subprocess.Popen] = set()
        self._lock = threading.Lock()
        self.gate = Gate()
        if not 0 <= port <= 65535:
            raise InputError(f"port must be between 0 and 65535, got {port}")
        try:
            self.server = _Server((host, port), _Handler)
        except OSError as exc:
            raise InputError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
        self.server.adbd = self  # type: ignore[attr-defined]
        self.host, self.port = self.server.server_address[:2]
        self._thread: threading.Thread | None = None

    def log(self, msg: str) -> None:
        if not self.quiet:
            print(f"adbd: {msg}", file=sys.stderr, flush=True)

    def track(self, conn: Connection, add: bool) -> None:
        with self._lock:
            (self._conns.add if add else self._conns.discard)(conn)

    def start(self) -> "AdbDaemon":
        """Serve in a background thread (tests, benchmarks)."""
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self.server.serve_forever()

    def stop(self) -> None:
        """Stop accepting, drop every connection and kill every running shell."""
        self.server.shutdown()
        self.server.server_close()
        with self._lock:
            conns, procs = list(self._conns), list(self._procs)
        for c in conns:
            c.shutdown()
        for p in procs:
            kill(p)

    def __enter__(self) -> "AdbDaemon":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # -- services ---------------------------------------------------------------
    def run_shell(self, stream: Stream, command: str) -> None:
        """`sh -c command` (or an interactive sh fed from the stream), output streamed back."""
        run_shell(self, stream, command)
