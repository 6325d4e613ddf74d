"""The `hwnas` command line: one typer app, command groups registered from `hwnas.commands`.

A user mistake (any `hwnas.search.space.InputError`) prints one line and exits 2;
a Ctrl-C exits 130 without a traceback.  Anything else is a bug and keeps
its traceback.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys

import typer

try:  # typer >= 0.2x vendors its own click; its exceptions are not the click package's
    from typer._click import exceptions as click_exc
except ImportError:  # older typer runs on the click package
    from click import exceptions as click_exc
from rich.console import Console

from hwnas.search.space import InputError

import hwnas.commands

#: command modules under hwnas.commands, each with register(app); found, not listed,
#: so adding a command group never edits this file.
COMMAND_MODULES = tuple(sorted(m.name for m in pkgutil.iter_modules(hwnas.commands.__path__)))

app = typer.Typer(
    name="hwnas",
    help="Hardware-aware NAS: profile blocks on devices, fit latency models, search FBNet/FBNetV2.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
err = Console(stderr=True)

for _name in COMMAND_MODULES:
    importlib.import_module(f"hwnas.commands.{_name}").register(app)


def _command():
    """The click command tree with the validation layer (hwnas.validation) on every numeric option."""
    from hwnas.validation import install

    return install(typer.main.get_command(app))


def main(argv: list[str] | None = None) -> None:
    from hwnas.noise import quiet_third_party

    quiet_third_party()
    try:
        # Not standalone, click returns a command's exit code (typer.Exit(n)) rather
        # than exiting, and turns Ctrl-C into a returned 130 (click >= 8.2).
        code = _command()(args=argv, standalone_mode=False, prog_name="hwnas")
        if code == 130:
            raise KeyboardInterrupt
        if isinstance(code, int) and code:
            sys.exit(code)
    except InputError as exc:
        from hwnas.output import one_line, safe

        err.print(f"[bold red]error:[/] {safe(one_line(exc))}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except click_exc.ClickException as exc:
        from hwnas.output import one_line, safe

        ctx = getattr(exc, "ctx", None)
        hint = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
        err.print(f"[bold red]error:[/] {safe(one_line(exc.format_message()))}{safe(hint)}", highlight=False,
                  soft_wrap=True)
        sys.exit(2 if exc.exit_code in (1, 2) else exc.exit_code)
    except typer.Abort:
        err.print("aborted")
        sys.exit(130)
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)
    sys.exit(0)
