"""Running the daemon from a shell: `python -m hwnas.devices.adbd` and `hwnas adb serve`.

Bad flags (a port outside 0..65535, a keys file that is not text) end in one
line; binding beyond loopback warns, since anyone who reaches the port and
holds an authorized key runs commands as this user.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from hwnas.devices.adbd.auth import load_authorized_keys
from hwnas.devices.adbd.limits import is_loopback
from hwnas.devices.adbd.server import AdbDaemon
from hwnas.search.space import InputError

__all__ = ["serve", "main"]


def serve(host: str, port: int, keys_path: str | Path) -> None:
    """Serve until SIGTERM/SIGINT, printing the bound address first; InputError on bad keys or port."""
    keys = load_authorized_keys(keys_path)
    daemon = AdbDaemon(host, port, keys, quiet=False)
    if not is_loopback(host):
        print(f"warning: listening on {host}, not loopback: anyone who can reach this port and holds an "
              f"authorized key runs commands as {os.environ.get('USER', 'this user')}", file=sys.stderr, flush=True)
    stopping = threading.Event()

    def _stop(*_: Any) -> None:
        if not stopping.is_set():
            stopping.set()
            threading.Thread(target=daemon.stop, daemon=True).start()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    print(f"adbd listening on {daemon.host}:{daemon.port} ({len(keys)} authorized key(s))", flush=True)
    daemon.serve_forever()
    daemon.stop()


def main(argv: list[str] | None = None) -> int:
    """Command line: `python -m devices.adbd --port 5555 --keys ~/.android/adbkey.pub [--host 127.0.0.1]`."""
    ap = argparse.ArgumentParser(prog="python -m hwnas.devices.adbd", description=(
        "Serve ADB (shell and sync) on this Linux host so the hwnas phone path, adb-shell and "
        "Debian's adb client can use it like a phone. Executes commands as the current user."))
    ap.add_argument("--port", type=int, default=5555, help="TCP port (0 picks a free one; printed on start)")
    ap.add_argument("--host", default="127.0.0.1", help="address to bind (default loopback only)")
    ap.add_argument("--keys", default="~/.android/adbkey.pub",
                    help="authorized public keys, adbkey.pub format, one per line")
    args = ap.parse_args(argv)
    try:
        serve(args.host, args.port, args.keys)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
