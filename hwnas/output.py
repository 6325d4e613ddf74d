"""Shared CLI output helpers: one console, JSON printing, rich tables."""

from __future__ import annotations

import json
import os
import re
from typing import Any, Iterable, Sequence

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from hwnas.search.space.jsonsafe import finite


class LineConsole(Console):
    """A text line prints as one line, in a pipe too (rich cut it at 80 columns there, mid-word in a
    device identity or a `next:` command): grep and copy see it whole, a terminal wraps it.
    Tables and other renderables keep rich's layout."""

    def print(self, *objects: Any, soft_wrap: bool | None = None, **kwargs: Any) -> None:  # type: ignore[override]
        if soft_wrap is None and objects and all(isinstance(o, str) for o in objects):
            soft_wrap = True
        super().print(*objects, soft_wrap=soft_wrap, **kwargs)


console = LineConsole()

#: C0/C1 control characters (ESC, BEL, CR, ...) but not tab/newline: what a terminal would act on.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def clean(text: Any) -> str:
    """Text from a user or a file, safe to show: control characters gone (no ESC]0; title rewrites)."""
    return _CONTROL.sub("", str(text))


def safe(text: Any) -> str:
    """`clean`, then escaped for rich markup: `[/]` and `adb-shell[usb]` print as written."""
    return escape(clean(text))


def one_line(text: Any) -> str:
    """An error message as the one line the CLI promises: cleaned, newlines folded, no leading blank."""
    return " ".join(part.strip() for part in clean(text).splitlines() if part.strip())


def default_mode(path: str | os.PathLike) -> None:
    """Give a written file the mode open() would (0666 less the umask), as reports get: some writers
    (mkstemp, converters) leave 0600, which a user sharing the file does not expect."""
    mask = os.umask(0o022)
    os.umask(mask)
    try:
        os.chmod(path, 0o666 & ~mask)
    except OSError:
        pass


def print_json(data: Any) -> None:
    """Plain JSON on stdout (no colour codes), for scripts; never NaN/Infinity."""
    print(json.dumps(finite(data), indent=2, default=str, allow_nan=False))


def table(title: str | None, columns: Sequence[str], rows: Iterable[Sequence[Any]],
          right: Sequence[str] = ()) -> Table:
    t = Table(title=clean(title) if title is not None else None, show_lines=False)
    for c in columns:
        t.add_column(c, justify="right" if c in right else "left")
    for r in rows:
        t.add_row(*[safe(v) for v in r])
    return t
