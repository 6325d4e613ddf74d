"""The `hwnas` command line: one typer app, command groups registered from `hwnas.commands`.

A user mistake (any `hwnas.search.space.InputError`) prints one line and exits 2;
a Ctrl-C exits 130 without a traceback.  Anything else is a bug and keeps
its traceback.
"""

from __future__ import annotations

import inspect
import re
import sys

import typer

try:  # typer >= 0.2x vendors its own click; its exceptions are not the click package's
    from typer._click import exceptions as click_exc
except ImportError:  # older typer runs on the click package
    from click import exceptions as click_exc
from hwnas.output import LineConsole

from hwnas.search.space import InputError

from hwnas.commands import COMMAND_MODULES

app = typer.Typer(
    name="hwnas",
    help="Hardware-aware NAS: profile blocks on devices, fit latency models, search FBNet/FBNetV2.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
err = LineConsole(stderr=True)

for _module in COMMAND_MODULES:
    _module.register(app)


def _flags() -> dict[str, str]:
    """Library parameter name → the CLI flag that sets it (`arch_lr` → `--arch-lr`), from every command."""
    out: dict[str, str] = {}
    stack = [typer.main.get_command(app)]
    while stack:
        cmd = stack.pop()
        stack.extend(getattr(cmd, "commands", {}).values())
        for param in getattr(cmd, "params", []):
            longs = [o for o in getattr(param, "opts", []) if o.startswith("--")]
            if param.name and longs:
                out.setdefault(param.name, longs[0])
    return out


#: API parameters whose CLI flag has another name.
_RENAMED = {"priors": "--prior", "fmt": "--format", "devices": "--device", "models": "--model",
            "interval": "--reference-every"}


def cli_message(message: str) -> str:
    """A library error as the CLI shows it: each `parameter` named by its flag (the one place that maps them)."""
    flags = {**_flags(), **_RENAMED}
    return re.sub(r"`([a-z_][a-z0-9_]*)`", lambda m: flags.get(m[1], m[1]), message)


def _unwrap(text: str) -> str:
    """Docstring paragraphs as single lines: typer's rich help keeps a docstring's line breaks and then
    wraps each line again at the terminal's width, which left ragged half-empty lines."""
    paragraphs = inspect.cleandoc(text).split("\n\n")
    return "\n\n".join(" ".join(line.strip() for line in p.splitlines()) for p in paragraphs)


def _command():
    """The click command tree with the validation layer (hwnas.validation) on every numeric option."""
    from hwnas.validation import install

    root = install(typer.main.get_command(app))
    stack = [root]
    while stack:
        cmd = stack.pop()
        stack.extend(getattr(cmd, "commands", {}).values())
        if cmd.help:
            cmd.help = _unwrap(cmd.help)
    return root


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

        err.print(f"[bold red]error:[/] {safe(one_line(cli_message(str(exc))))}", highlight=False, soft_wrap=True)
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
