"""`hwnas adb keygen | serve | install-runner`: the ADB key, the loopback daemon and the benchmark runner.

Measuring on a phone itself goes through `hwnas devices adb://...` and `hwnas bench --device adb://...`;
these commands set up what that path needs.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import typer
from hwnas.output import safe as escape  # markup-escaped and control characters stripped

from hwnas.output import console, print_json
from hwnas.search.space import InputError

adb_app = typer.Typer(help="ADB set-up: your key, a loopback ADB daemon for phone-less runs, the benchmark runner.",
                      no_args_is_help=True)


def _check_key_path(key: Path) -> None:
    """A directory, an unreadable file or a missing parent get one line; a key others can read, a warning."""
    if key.is_dir():
        raise InputError(f"{key} is a directory; --path names the private key file")
    if key.exists():
        if not key.is_file():
            raise InputError(f"{key} is not a regular file")
        if not os.access(key, os.R_OK):
            raise InputError(f"cannot read {key}: permission denied")
        mode = key.stat().st_mode & 0o777
        if mode & 0o077:
            from hwnas.output import safe
            from hwnas.output import LineConsole

            LineConsole(stderr=True).print(f"warning: private key {safe(key)} is readable by others (mode {oct(mode)}); "
                                       f"chmod 600 it", highlight=False, soft_wrap=True)
    elif not key.parent.is_dir() and key.parent != Path.home() / ".android":
        raise InputError(f"directory does not exist: {key.parent}")


@adb_app.command("keygen")
def keygen_cmd(
    path: Optional[Path] = typer.Option(None, "--path", help="Private key file (default ~/.android/adbkey, "
                                                             "the key adb and your phones already use)."),
    json_out: bool = typer.Option(False, "--json", help="Print the key paths as JSON."),
) -> None:
    """Create the ADB RSA key (mode 0600) if it does not exist yet, and show its public half.

    The public key (adbkey.pub) is what a phone asks you to accept, and what
    `hwnas adb serve --keys` authorises.
    """
    from hwnas.devices.adb.client import load_signer

    key = (path or Path.home() / ".android" / "adbkey").expanduser()
    _check_key_path(key)
    existed = key.exists()
    load_signer(key)
    result = {"private_key": str(key), "public_key": f"{key}.pub", "created": not existed,
              "mode": oct(os.stat(key).st_mode & 0o777)}
    if json_out:
        print_json(result)
        return
    what = "created" if not existed else "exists"
    console.print(f"{escape(str(key))} ({what}, mode {result['mode']})\npublic key: {escape(result['public_key'])}",
                  highlight=False)


@adb_app.command("serve")
def serve_cmd(
    port: int = typer.Option(5555, "--port", help="TCP port; 0 picks a free one (printed on start)."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to bind; loopback unless you mean to expose this host."),
    keys: Path = typer.Option(Path("~/.android/adbkey.pub"), "--keys",
                              help="Authorized public keys (adbkey.pub format, one per line); others are refused."),
) -> None:
    """Serve ADB (shell + sync) on this Linux host until Ctrl-C, so adb://HOST:PORT works without a phone.

    Same as `python -m hwnas.devices.adbd`. Commands run as the current user: bind to
    loopback unless the network is yours.
    """
    from hwnas.devices.adbd import serve

    serve(host, port, keys)


@adb_app.command("install-runner")
def install_runner_cmd(
    directory: Path = typer.Argument(..., help="Where to write the `benchmark_model` wrapper."),
    json_out: bool = typer.Option(False, "--json", help="Print the path as JSON."),
) -> None:
    """Install a benchmark_model-compatible LiteRT runner as DIR/benchmark_model on this host.

    Point a device at it with `--benchmark-binary DIR/benchmark_model` or `?binary=`.
    """
    from hwnas.devices.adbd.runner import install

    if directory.exists() and not directory.is_dir():
        raise InputError(f"{directory} exists and is not a directory")
    try:
        target = install(directory)
    except OSError as exc:
        raise InputError(f"cannot write the runner into {directory}: {exc.strerror or exc}") from None
    if json_out:
        print_json({"binary": str(target)})
    else:
        console.print(f"installed {escape(str(target))}", highlight=False)


def register(app: typer.Typer) -> None:
    app.add_typer(adb_app, name="adb")
