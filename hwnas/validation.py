"""One input-validation layer for every command: numbers finite and in bounds before any work.

Why a layer and not checks in each command: NaN passes `x <= 0` checks
(`NaN <= 0` is false), typer accepts `nan`, `inf` and any integer, and the
same flag (`--seed`, `--limit`, `--epochs`) appears in several commands.  So
every INT/FLOAT parameter of every command is checked here by its parameter
name, once, when click converts it, and relations between parameters
(`warmup_epochs <= epochs`) are checked before the command body runs.  A
parameter missing from `BOUNDS` still must be finite and within a generous
default range, so a new flag cannot slip through unchecked.

The errors name the flag (the CLI's words); library code names parameters.
"""

from __future__ import annotations

import functools
import math
import typing
from dataclasses import dataclass
from typing import Any, Callable

from hwnas.search.space import InputError

__all__ = ["Bound", "BOUNDS", "RELATIONS", "check_number", "install"]


@dataclass(frozen=True)
class Bound:
    """Closed range [lo, hi]; `lo_open` makes the low end exclusive (a rate must be > 0)."""

    lo: float
    hi: float
    lo_open: bool = False

    def describe(self) -> str:
        return f"{'>' if self.lo_open else '>='} {_fmt(self.lo)} and <= {_fmt(self.hi)}"


def _fmt(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


_BIG = 10**9
#: Bounds by parameter name, shared by every command that has the parameter.
BOUNDS: dict[str, Bound] = {
    "seed": Bound(0, 2**32 - 1),
    "port": Bound(0, 65535),
    "samples": Bound(0, 10_000_000),
    "limit": Bound(1, _BIG),
    "retries": Bound(0, 100),
    "reference_every": Bound(1, 100_000),
    "band": Bound(0, 99, lo_open=True),
    "agree": Bound(0, 99, lo_open=True),
    "epochs": Bound(1, 100_000),
    "warmup_epochs": Bound(0, 100_000),
    "stop_after": Bound(1, 100_000),
    "candidates": Bound(1, 100_000),
    "batch_size": Bound(1, 1_000_000),
    "micro_batch": Bound(1, 1_000_000),
    "folds": Bound(2, 1000),
    "worst": Bound(0, 1_000_000),
    "alpha": Bound(0, 1e6, lo_open=True),
    "beta": Bound(0, 1e6, lo_open=True),
    "target_ms": Bound(0, 1e9, lo_open=True),
    "lr": Bound(0, 100, lo_open=True),
    "weight_lr": Bound(0, 100, lo_open=True),
    "arch_lr": Bound(0, 100, lo_open=True),
    "runs": Bound(1, 1_000_000),
    "warmup": Bound(0, 1_000_000),
    "top": Bound(1, 1_000_000),
    "timeout": Bound(0, 86_400, lo_open=True),
}
#: What a number with no entry above must satisfy.
DEFAULT_INT = Bound(0, _BIG)
DEFAULT_FLOAT = Bound(0, 1e12)

#: (smaller, larger) parameter pairs: smaller <= larger when both are given.
RELATIONS: tuple[tuple[str, str], ...] = (("warmup_epochs", "epochs"), ("stop_after", "epochs"),
                                          ("micro_batch", "batch_size"))


def check_number(name: str, value: Any, flag: str | None = None, bound: Bound | None = None) -> Any:
    """`value` if it is a finite number within `name`'s bound; InputError naming the flag otherwise."""
    if value is None or isinstance(value, bool):
        return value
    label = flag or name
    if isinstance(value, float) and not math.isfinite(value):
        raise InputError(f"{label} must be a finite number, got {value}")
    b = bound or BOUNDS.get(name) or (DEFAULT_FLOAT if isinstance(value, float) else DEFAULT_INT)
    too_low = value <= b.lo if b.lo_open else value < b.lo
    if too_low or value > b.hi:
        raise InputError(f"{label} must be {b.describe()}, got {value:g}" if isinstance(value, float)
                         else f"{label} must be {b.describe()}, got {value}")
    return value


def _flag(param: Any) -> str:
    opts = [o for o in getattr(param, "opts", ()) if o.startswith("--")]
    return opts[0] if opts else (param.name or "value").upper()


def _numeric(param: Any) -> bool:
    """An INT/FLOAT parameter: click's type name, or (typer >= 0.2x, no `.type`) its annotation."""
    kind = getattr(getattr(param, "type", None), "name", "")
    if kind in ("integer", "float", "integer range", "float range"):
        return True
    annotation = getattr(getattr(param, "type_descriptor", None), "annotation", None)
    candidates = (annotation, *typing.get_args(annotation))
    return any(a in (int, float) for a in candidates)


def _wrap_callback(param: Any) -> None:
    inner = param.callback
    flag = _flag(param)

    def callback(ctx: Any, p: Any, value: Any) -> Any:
        if inner is not None:
            value = inner(ctx, p, value)
        if isinstance(value, (list, tuple)):
            return type(value)(check_number(p.name, v, flag) for v in value)
        return check_number(p.name, value, flag)

    param.callback = callback


def _wrap_relations(command: Any) -> None:
    inner: Callable[..., Any] | None = command.callback
    if inner is None:
        return
    flags = {p.name: _flag(p) for p in command.params}

    @functools.wraps(inner)
    def callback(*args: Any, **kwargs: Any) -> Any:
        for small, large in RELATIONS:
            a, b = kwargs.get(small), kwargs.get(large)
            if isinstance(a, (int, float)) and isinstance(b, (int, float)) and a > b:
                raise InputError(f"{flags.get(small, small)} ({a}) must not exceed {flags.get(large, large)} ({b})")
        return inner(*args, **kwargs)

    command.callback = callback


def install(command: Any) -> Any:
    """Attach the checks to every numeric parameter of a click command tree (idempotent); returns it."""
    if getattr(command, "_hwnas_validated", False):
        return command
    command._hwnas_validated = True
    for param in getattr(command, "params", ()):
        if _numeric(param):
            _wrap_callback(param)
    _wrap_relations(command)
    for sub in getattr(command, "commands", {}).values():
        install(sub)
    return command
