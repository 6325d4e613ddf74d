"""What keeps strangers from wearing the daemon down: deadlines, a gate, buffer caps.

- One total deadline for the whole handshake (not a per-read timeout, which a
  client dripping one byte every few seconds renews for ever).
- Before authentication a packet may carry at most `PREAUTH_MAX_DATA` bytes:
  CNXN banners, tokens, signatures and public keys are all under 1 KiB.
- At most `MAX_PENDING` connections wait in the handshake at once; a new one
  past that evicts the oldest (SSH's MaxStartups idea), so a flood cannot lock a
  trusted client out for longer than its own quick handshake, and threads and
  memory stay bounded whatever the flood's size.
- Each stream buffers at most `STREAM_BUFFER_MAX` bytes of client data: past
  that, the OKAY that lets the client send its next WRTE is held until the
  service reads; a client that writes on without an OKAY is dropped.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from collections import OrderedDict

__all__ = ["HANDSHAKE_DEADLINE_S", "PREAUTH_MAX_DATA", "MAX_PENDING", "STREAM_BUFFER_MAX", "Gate", "is_loopback",
           "Deadline"]

#: Seconds a client has, in total, from connecting to being admitted.
HANDSHAKE_DEADLINE_S = 10.0
#: Largest payload accepted before authentication.
PREAUTH_MAX_DATA = 64 * 1024
#: Connections allowed in the handshake at once.
MAX_PENDING = 32
#: Client bytes a stream holds before it stops acknowledging.
STREAM_BUFFER_MAX = 256 * 1024


class Deadline:
    """A point in time every read before it must finish by (monotonic clock)."""

    def __init__(self, seconds: float) -> None:
        self.at = time.monotonic() + seconds

    def remaining(self) -> float:
        left = self.at - time.monotonic()
        if left <= 0:
            raise socket.timeout("handshake deadline passed")
        return left


class Gate:
    """The connections still in their handshake, oldest first; admits a new one by evicting the oldest."""

    def __init__(self, limit: int = MAX_PENDING) -> None:
        self.limit = limit
        self._pending: "OrderedDict[int, socket.socket]" = OrderedDict()
        self._lock = threading.Lock()
        self.evicted = 0

    def enter(self, sock: socket.socket) -> None:
        """Register a new connection; the oldest pending one is shut down when the gate is full."""
        victims = []
        with self._lock:
            while len(self._pending) >= self.limit:
                victims.append(self._pending.popitem(last=False)[1])
                self.evicted += 1
            self._pending[id(sock)] = sock
        for victim in victims:
            try:
                victim.shutdown(socket.SHUT_RDWR)  # its thread's blocking recv returns at once
            except OSError:
                pass

    def leave(self, sock: socket.socket) -> None:
        """Admitted, refused or gone: no longer counted."""
        with self._lock:
            self._pending.pop(id(sock), None)

    def __len__(self) -> int:
        with self._lock:
            return len(self._pending)


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and 'localhost'; anything else exposes a shell to the network."""
    if host in ("localhost", "ip6-localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        try:
            return all(ipaddress.ip_address(info[4][0]).is_loopback
                       for info in socket.getaddrinfo(host, None))
        except (OSError, ValueError):
            return False
