"""The runner kept alive across blocks: `benchmark_model --hwnas_serve=DIR` (our runner only).

Why: every `benchmark_model` run over ADB starts a process, and our runner's
start (Python, numpy, LiteRT) costs more than timing a small block.  A
profile times a hundred blocks, several passes and a reference, so one
process that stays up and keeps the interpreters it loaded takes that cost
once.  A stock benchmark_model has no such mode; the ADB adapter asks `--help`
for the `--hwnas_serve` flag first and falls back to one process per block.

Protocol, plain POSIX shell on the device side (no netcat on a phone):

    DIR/req    a FIFO: one line per request, the benchmark_model flags (shell words)
    DIR/resp   a FIFO: the run's whole output, then `HWNAS_RUNNER_RC=N`, then EOF
    DIR/pid    the serving process's pid, written once it listens

    client:  kill -0 "$(cat DIR/pid)" && printf '%s\\n' "FLAGS" > DIR/req && cat DIR/resp

The server detaches (new session), so the daemon's shell ending does not kill
it; it exits on a `quit` line, when DIR disappears (the adapter's close()
removes its work directory), or after `IDLE_EXIT_S` without a request.
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import select
import shlex
import sys
import time
from pathlib import Path

__all__ = ["serve", "IDLE_EXIT_S", "RC_MARKER"]

#: A server nobody talked to for this long exits (a host that died cannot send `quit`).
IDLE_EXIT_S = 900.0
#: How long the server waits for the client's `cat` to open the response FIFO.
_RESP_OPEN_S = 30.0
RC_MARKER = "HWNAS_RUNNER_RC="


def _open_response(path: Path) -> int | None:
    deadline = time.monotonic() + _RESP_OPEN_S
    while time.monotonic() < deadline:
        try:
            return os.open(path, os.O_WRONLY | os.O_NONBLOCK)
        except OSError as exc:
            if exc.errno != errno.ENXIO:  # ENXIO: no reader yet
                return None
        time.sleep(0.001)
    return None


def _answer(line: str, cache: dict) -> str:
    from hwnas.devices.adbd.runner import parse_flags, run

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        try:
            rc = run(parse_flags(shlex.split(line)), cache)
        except SystemExit as exc:  # an invalid flag value: the one-shot runner's exit
            print(str(exc.code))
            rc = 1
        except Exception as exc:  # noqa: BLE001 - one bad request must not end the server
            print(f"ERROR: {type(exc).__name__}: {exc}\nBenchmarking failed.")
            rc = 1
    return buf.getvalue() + f"\n{RC_MARKER}{rc}\n"


def _loop(directory: Path) -> None:
    req, resp = directory / "req", directory / "resp"
    fd = os.open(req, os.O_RDWR | os.O_NONBLOCK)  # RDWR: never EOF while we wait
    cache: dict = {}
    try:  # pay the runtime's import once, before the first request
        import numpy  # noqa: F401
        from ai_edge_litert import interpreter  # noqa: F401
    except ImportError:
        pass  # the first request reports it, as the one-shot runner would
    pending = b""
    last = time.monotonic()
    (directory / "pid").write_text(str(os.getpid()))
    while directory.is_dir() and time.monotonic() - last < IDLE_EXIT_S:
        ready, _, _ = select.select([fd], [], [], 2.0)
        if not ready:
            continue
        try:
            pending += os.read(fd, 65536)
        except BlockingIOError:
            continue
        while b"\n" in pending:
            raw, pending = pending.split(b"\n", 1)
            line = raw.decode("utf-8", "replace").strip()
            last = time.monotonic()
            if line == "quit":
                return
            if not line:
                continue
            out = _answer(line, cache).encode()
            wfd = _open_response(resp)
            if wfd is None:
                continue
            try:
                os.set_blocking(wfd, True)
                view = memoryview(out)
                while view:
                    view = view[os.write(wfd, view):]
            except OSError:
                pass
            finally:
                os.close(wfd)
            last = time.monotonic()


def serve(directory: str) -> int:
    """Create DIR's FIFOs, detach, and answer requests until quit/idle/DIR removed; prints `serving pid=N`."""
    d = Path(directory)
    try:
        d.mkdir(parents=True, exist_ok=True)
        for name in ("req", "resp"):
            if not (d / name).exists():
                os.mkfifo(d / name, 0o600)
        (d / "pid").unlink(missing_ok=True)
    except OSError as exc:
        print(f"ERROR: cannot serve in {d}: {exc}", flush=True)
        return 1
    pid = os.fork()
    if pid:  # parent: wait until the child listens, then report it
        for _ in range(3000):
            if (d / "pid").exists():
                print(f"serving pid={(d / 'pid').read_text().strip()}", flush=True)
                return 0
            time.sleep(0.01)
        print("ERROR: the serving process did not start", flush=True)
        return 1
    os.setsid()
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    try:
        sys.stdout = io.TextIOWrapper(os.fdopen(1, "wb", closefd=False))
        _loop(d)
    finally:
        os._exit(0)
    return 0  # pragma: no cover
