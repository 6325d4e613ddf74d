"""Reading JSON a user handed us: bounded nesting, finite numbers, one clear line on failure.

Why not plain `json.loads`: `'[' * 50000` blows the recursion limit (a
RecursionError traceback), and Python's JSON accepts `NaN`, `Infinity` and
`1e999`, none of which any hwnas file may hold (a model of inf predicts
"inf ms", and writing it back emits `Infinity`, which is not JSON).
Every reader of a user file (architectures, models, LUTs, report inputs)
goes through `loads`.
"""

from __future__ import annotations

import json
import math
from typing import Any

from hwnas.search.space.errors import InputError

__all__ = ["loads", "MAX_DEPTH", "check_depth", "finite"]

#: Deepest nesting any hwnas file has is ~5; 64 leaves room and stays far from the recursion limit.
MAX_DEPTH = 64


def check_depth(text: str, what: str, limit: int = MAX_DEPTH) -> None:
    """Refuse text nested deeper than `limit` before a recursive parser sees it (strings skipped)."""
    depth, in_str, escaped = 0, False, False
    for ch in text:
        if in_str:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_str = False
        elif ch == '"':
            in_str = True
        elif ch in "[{":
            depth += 1
            if depth > limit:
                raise InputError(f"{what} is nested deeper than {limit} levels: not an hwnas file")
        elif ch in "]}":
            depth -= 1


def _no_constant(name: str) -> Any:
    raise ValueError(f"non-finite number {name}")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text[:20]} out of range")
    return value


def loads(text: str | bytes, what: str) -> Any:
    """Parse JSON from a user file or argument; InputError naming `what` on anything unusable."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError:
            raise InputError(f"{what} is not UTF-8 text") from None
    check_depth(text, what)
    try:
        return json.loads(text, parse_constant=_no_constant, parse_float=_finite_float)
    except json.JSONDecodeError as exc:
        raise InputError(f"{what} is not valid JSON: {exc.msg} at position {exc.pos}") from None
    except (ValueError, RecursionError) as exc:
        raise InputError(f"{what}: {exc}") from None


def finite(data: Any) -> Any:
    """NaN and ±inf as null, recursively: what a writer stores so that `loads` (and any JSON parser) reads it."""
    if isinstance(data, float) and not math.isfinite(data):
        return None
    if isinstance(data, dict):
        return {k: finite(v) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [finite(v) for v in data]
    return data
