"""The invariant every input surface is held to, shared by the property tests.

`check` runs the real CLI in-process (`hwnas.cli.main`, much faster than a
subprocess) inside a fresh directory and asserts: exit 0 with a correct
result, or exit 2 with one line on stderr; never a traceback; on exit 2 no
file created or changed.  `TALLY` counts what each surface saw, and
`print_tally` prints it (the reliability table in benchmarks/RESULTS.md).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import tempfile
from pathlib import Path
from typing import Callable

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from hwnas.cli import main

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow],
                    derandomize=True)

OPS = ["k3_e1", "k3_e1_g2", "k3_e3", "k3_e6", "k5_e1", "k5_e1_g2", "k5_e3", "k5_e6", "skip"]

#: surface -> counts of inputs tried, clean exit-0 results, clean errors, tracebacks, silent acceptances
TALLY: dict[str, dict[str, int]] = {}

def tally(surface: str, outcome: str) -> None:
    row = TALLY.setdefault(surface, {"tried": 0, "ok": 0, "clean_error": 0, "traceback": 0, "silent": 0})
    row["tried"] += 1
    row[outcome] += 1

def _snapshot(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}

def run(args: list[str], folder: Path) -> tuple[int, str, str]:
    """The CLI in-process in `folder`: (exit code, stdout, stderr); any escaping exception is a traceback."""
    out, err = io.StringIO(), io.StringIO()
    cwd = os.getcwd()
    os.chdir(folder)
    code: int | str = 0
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                main(args)
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 1
    finally:
        os.chdir(cwd)
    return int(code), out.getvalue(), err.getvalue()

def check(surface: str, args: list[str], setup: Callable[[Path], None] | None = None,
          must_fail: bool = False, on_ok: Callable[[Path, str], None] | None = None) -> int:
    """Run one input and assert the invariant; returns the exit code."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        if setup:
            setup(folder)
        before = _snapshot(folder)
        try:
            code, out, err = run(args, folder)
        except Exception:  # noqa: BLE001 — anything escaping main() is the traceback the issue forbids
            tally(surface, "traceback")
            raise
        lines = [line for line in err.splitlines() if line.strip()]
        if "Traceback" in err or code not in (0, 2):
            tally(surface, "traceback")
            pytest.fail(f"{surface}: exit {code}, stderr {err[-500:]!r}")
        if code == 2:
            assert len(lines) == 1 and err.lstrip() == err, f"{surface}: not one line: {err!r}"
            assert "\x1b" not in err, f"{surface}: control characters reached the terminal"
            assert _snapshot(folder) == before, f"{surface}: a refused input changed files"
            tally(surface, "clean_error")
        else:
            if must_fail:
                tally(surface, "silent")
                pytest.fail(f"{surface}: {args} was accepted")
            if on_ok:
                on_ok(folder, out)
            tally(surface, "ok")
        return code

def print_tally() -> None:
    print("\nreliability tally (surface: tried / ok / clean errors / tracebacks / silent):")
    for surface, row in sorted(TALLY.items()):
        print(f"  {surface}: {row['tried']} / {row['ok']} / {row['clean_error']} / {row['traceback']} / {row['silent']}")

#: numbers a user might type: NaN/inf spellings, negatives, huge, text, hex, underscores
NUMBERS = st.one_of(
    st.sampled_from(["nan", "NaN", "inf", "-inf", "-1", "0", "1e309", "-0", "1e-320", "99999999999999999999",
                     "3", "0.5", "abc", "", "0x10", "1_000"]),
    st.integers(min_value=-10**12, max_value=10**12).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
)
