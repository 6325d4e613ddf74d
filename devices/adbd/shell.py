"""The `shell:`/`exec:` service of devices/adbd: `sh -c` with output streamed back, stdin fed from the stream.

Kept apart from the framing (server.py): this is the part that runs commands
on the host, as the daemon's user, from the directory sync paths are relative to.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
from typing import Any

from hwnas.devices.adbd.sync import SHELL_CWD, SYNC_MAX_CHUNK

__all__ = ["run_shell", "kill"]


def run_shell(daemon: Any, stream: Any, command: str) -> None:
    """`sh -c command` (or an interactive sh fed from the stream) in SHELL_CWD, output streamed back.

    The process is registered with the daemon (`_procs` under `_lock`) so that
    stopping the daemon kills it; writes wait for the client's OKAY (stream.write).
    """
    argv = ["sh", "-c", command] if command else ["sh"]
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE if not command else subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=SHELL_CWD,
                            start_new_session=True)
    with daemon._lock:
        daemon._procs.add(proc)
    if not command:
        threading.Thread(target=_feed_stdin, args=(stream, proc), daemon=True).start()
    try:
        assert proc.stdout is not None
        fd = proc.stdout.fileno()
        while True:
            chunk = os.read(fd, SYNC_MAX_CHUNK)
            if not chunk:
                break
            stream.write(chunk)
        proc.wait()
    finally:
        kill(proc)
        with daemon._lock:
            daemon._procs.discard(proc)


def kill(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        proc.wait()


def _feed_stdin(stream: Any, proc: subprocess.Popen) -> None:
    assert proc.stdin is not None
    try:
        while (item := stream.take()) is not None:
            proc.stdin.write(item)
            proc.stdin.flush()
    except OSError:
        pass
    finally:
        try:
            proc.stdin.close()
        except OSError:
            pass
        if stream.closed.is_set():
            kill(proc)


