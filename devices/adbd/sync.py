"""The ADB file-sync service (`sync:`) for devices/adbd: STAT, LIST, SEND, RECV, DONE, QUIT.

Requests are id(4) + u32 length + payload and may straddle WRTE packets, so the service reads
from the stream's byte buffer, not per packet. On any failure it sends FAIL and ends the
stream (adb 29 hangs if QUIT is not answered by a close). A pushed file appears only once
complete (written beside it, then renamed).
"""

from __future__ import annotations

import os
import secrets
import struct
from typing import Protocol

__all__ = ["run_sync", "SYNC_MAX_CHUNK", "SHELL_CWD"]

SYNC_MAX_CHUNK = 64 * 1024
#: Where shell commands run, and what a relative sync path is relative to: the two must agree.
SHELL_CWD = "/"


def _absolute(path: str) -> str:
    """A relative sync path resolved as the shell would see it (from SHELL_CWD, not the daemon's cwd)."""
    return path if os.path.isabs(path) else os.path.join(SHELL_CWD, path)


class SyncStream(Protocol):
    def write(self, data: bytes) -> None: ...
    def read_exact(self, n: int) -> bytes | None: ...


def run_sync(stream: SyncStream) -> None:
    """Serve sync requests until QUIT, a failure, or the stream closing."""
    while True:
        head = stream.read_exact(8)
        if head is None:
            return
        ident, length = head[:4], struct.unpack("<I", head[4:])[0]
        if ident == b"QUIT":
            return
        if length > 4096:
            return _fail(stream, "path too long")
        payload = stream.read_exact(length)
        if payload is None:
            return
        path = payload.decode("utf-8", "surrogateescape")
        if ident == b"SEND":
            spec_path, sep, mode = path.rpartition(",")
            path = f"{_absolute(spec_path)},{mode}" if sep and spec_path else _absolute(path)
        else:
            path = _absolute(path)
        if ident == b"STAT":
            stream.write(b"STAT" + _stat_triplet(path))
        elif ident == b"LIST":
            _sync_list(stream, path)
        elif ident == b"SEND":
            if not _sync_send(stream, path):
                return
        elif ident == b"RECV":
            if not _sync_recv(stream, path):
                return
        else:
            return _fail(stream, f"unknown sync request {ident!r}")


def _fail(stream: SyncStream, message: str) -> None:
    msg = message.encode("utf-8", "replace")
    stream.write(b"FAIL" + struct.pack("<I", len(msg)) + msg)


def _stat_triplet(path: str) -> bytes:
    try:
        st = os.stat(path)
        return struct.pack("<3I", st.st_mode & 0xFFFFFFFF, st.st_size & 0xFFFFFFFF, int(st.st_mtime) & 0xFFFFFFFF)
    except OSError:
        return struct.pack("<3I", 0, 0, 0)


def _sync_list(stream: SyncStream, path: str) -> None:
    out = bytearray()
    try:
        names = [".", ".."] + sorted(os.listdir(path))
    except OSError:
        names = []
    for name in names:
        raw = name.encode("utf-8", "surrogateescape")
        out += b"DENT" + _stat_triplet(os.path.join(path, name)) + struct.pack("<I", len(raw)) + raw
        if len(out) >= SYNC_MAX_CHUNK:
            stream.write(bytes(out))
            out.clear()
    stream.write(bytes(out) + b"DONE" + bytes(16))


def _sync_send(stream: SyncStream, spec: str) -> bool:
    """SEND "path,mode", DATA chunks, DONE(mtime) → OKAY, or FAIL; the file appears only when complete."""
    path, _, mode_text = spec.rpartition(",")
    try:
        mode = int(mode_text) if path else 0
    except ValueError:
        path, mode = spec, 0
    path = path or spec
    tmp = f"{path}.adbd-{secrets.token_hex(4)}"
    try:
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        with open(tmp, "wb") as fh:
            while True:
                head = stream.read_exact(8)
                if head is None:
                    raise ConnectionError("stream closed mid-transfer")
                ident, length = head[:4], struct.unpack("<I", head[4:])[0]
                if ident == b"DATA":
                    if length > SYNC_MAX_CHUNK:
                        raise ValueError(f"DATA chunk of {length} bytes exceeds {SYNC_MAX_CHUNK}")
                    data = stream.read_exact(length)
                    if data is None:
                        raise ConnectionError("stream closed mid-transfer")
                    fh.write(data)
                elif ident == b"DONE":
                    mtime = length
                    break
                else:
                    raise ValueError(f"unexpected {ident!r} during SEND")
        os.chmod(tmp, (mode & 0o777) or 0o644)
        os.replace(tmp, path)
        if mtime:
            os.utime(path, (mtime, mtime))
    except ConnectionError:
        _unlink(tmp)
        return False
    except (OSError, ValueError) as exc:
        _unlink(tmp)
        _fail(stream, f"{path}: {getattr(exc, 'strerror', None) or exc}")
        return False
    stream.write(b"OKAY" + bytes(4))
    return True


def _sync_recv(stream: SyncStream, path: str) -> bool:
    try:
        with open(path, "rb") as fh:
            while chunk := fh.read(SYNC_MAX_CHUNK):
                stream.write(b"DATA" + struct.pack("<I", len(chunk)) + chunk)
    except OSError as exc:
        _fail(stream, f"{path}: {exc.strerror or exc}")
        return False
    stream.write(b"DONE" + bytes(4))
    return True


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass
