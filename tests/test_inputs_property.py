"""Property tests of every input surface: exit 0 with a correct result, or exit 2 with one line.

Each example runs the real CLI in-process (`hwnas.cli.main`, much faster than a
subprocess) inside a fresh directory, and checks the invariant the issue sets:
no traceback, at most one line on stderr, and on exit 2 no file created or
changed.  Counts of what each surface saw are kept in `TALLY` and printed at
the end of the session (the reliability table in benchmarks/RESULTS.md).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Callable

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from hwnas.cli import main
from hwnas.devices.uri import OPTION_BOUNDS, parse_uri
from hwnas.search.space import InputError

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow],
                    derandomize=True)

_OPS = ["k3_e1", "k3_e1_g2", "k3_e3", "k3_e6", "k5_e1", "k5_e1_g2", "k5_e3", "k5_e6", "skip"]

#: surface -> counts of inputs tried, clean exit-0 results, clean errors, tracebacks, silent acceptances
TALLY: dict[str, dict[str, int]] = {}


def _tally(surface: str, outcome: str) -> None:
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
            _tally(surface, "traceback")
            raise
        lines = [line for line in err.splitlines() if line.strip()]
        if "Traceback" in err or code not in (0, 2):
            _tally(surface, "traceback")
            pytest.fail(f"{surface}: exit {code}, stderr {err[-500:]!r}")
        if code == 2:
            assert len(lines) == 1 and err.lstrip() == err, f"{surface}: not one line: {err!r}"
            assert "\x1b" not in err, f"{surface}: control characters reached the terminal"
            assert _snapshot(folder) == before, f"{surface}: a refused input changed files"
            _tally(surface, "clean_error")
        else:
            if must_fail:
                _tally(surface, "silent")
                pytest.fail(f"{surface}: {args} was accepted")
            if on_ok:
                on_ok(folder, out)
            _tally(surface, "ok")
        return code


@pytest.fixture(scope="module", autouse=True)
def _report():
    yield
    print("\nreliability tally (surface: tried / ok / clean errors / tracebacks / silent):")
    for surface, row in sorted(TALLY.items()):
        print(f"  {surface}: {row['tried']} / {row['ok']} / {row['clean_error']} / {row['traceback']} / {row['silent']}")


# --------------------------------------------------------------------------- numbers

_NUMBERS = st.one_of(
    st.sampled_from(["nan", "NaN", "inf", "-inf", "-1", "0", "1e309", "-0", "1e-320", "99999999999999999999",
                     "3", "0.5", "abc", "", "0x10", "1_000"]),
    st.integers(min_value=-10**12, max_value=10**12).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
)

#: (surface, command prefix, flag): a command that fails cleanly on a missing file once its numbers pass
_NUMERIC = [
    ("profile", ["profile", "--space", "fbnet-cifar", "--device", "cpu", "--limit", "1", "--store", "no/s.db"],
     ["--samples", "--seed", "--retries"]),
    ("search", ["search", "--latency", "missing.json", "--out", "run"],
     ["--epochs", "--warmup-epochs", "--alpha", "--beta", "--target-ms", "--arch-lr", "--weight-lr", "--seed",
      "--batch-size", "--micro-batch", "--limit", "--candidates"]),
    ("train", ["train", "missing-arch.json"], ["--epochs", "--batch-size", "--lr", "--seed", "--limit"]),
    ("fit", ["fit", "--store", "missing.db", "--out", "m.json"], ["--folds"]),
    ("adb serve", ["adb", "serve", "--keys", "missing.pub"], ["--port"]),
]
_FLAGS = [(surface, prefix, flag) for surface, prefix, flags in _NUMERIC for flag in flags]


def _bad_number(text: str) -> bool:
    try:
        value = float(text)
    except ValueError:
        return True
    return not math.isfinite(value) or value < 0


@SETTINGS
@given(case=st.sampled_from(_FLAGS), value=_NUMBERS)
def test_every_numeric_option_is_finite_and_bounded(case, value):
    surface, prefix, flag = case
    code = check(f"numeric options ({surface})", [*prefix, flag, value])
    assert code == 2  # either the number is refused, or the missing file is
    if _bad_number(value):  # NaN, inf, negatives and text are always refused by the option itself
        out = run([*prefix, flag, value], Path(tempfile.gettempdir()))[2]
        assert flag in out or "Invalid value" in out or "valid" in out, out


def test_relations_between_options_are_checked_up_front(tmp_path):
    code, _, err = run(["search", "--latency", "m.json", "--out", "r", "--epochs", "2", "--warmup-epochs", "5"],
                       tmp_path)
    assert code == 2 and "--warmup-epochs" in err and not (tmp_path / "r").exists()


# --------------------------------------------------------------------------- device URIs

_URI_KEYS = st.sampled_from([*OPTION_BOUNDS, "cores", "runtime", "binary", "bogus", "threads"])
_URI_VALUES = st.one_of(_NUMBERS, st.sampled_from(["0-3", "0-30000000", "4-7,0", "7-4", "x", "1,1"]),
                        st.text(max_size=8))
_URIS = st.builds(lambda base, opts: base + ("?" + "&".join(f"{k}={v}" for k, v in opts) if opts else ""),
                  st.sampled_from(["cpu", "cpu:torch", "cpu:onnxruntime", "cuda:0", "adb://R58", "adb://",
                                   "bogus", "cpu:a:b", ""]),
                  st.lists(st.tuples(_URI_KEYS, _URI_VALUES), max_size=3))


@SETTINGS
@given(text=_URIS)
def test_device_uris_parse_to_bounded_options_or_one_clear_error(text):
    try:
        uri = parse_uri(text)
    except InputError:
        _tally("device URIs (parse_uri)", "clean_error")
        return
    _tally("device URIs (parse_uri)", "ok")
    keys = [p.split("=", 1)[0] for p in text.partition("?")[2].split("&") if p]
    assert len(keys) == len(set(keys)), "a duplicate key was resolved silently"
    for key, value in uri.options:
        if key in OPTION_BOUNDS:
            lo, hi = OPTION_BOUNDS[key]
            assert math.isfinite(value) and lo <= value <= hi, (key, value)
    assert len(uri.cores) <= 4096


@settings(max_examples=25, deadline=None, derandomize=True)
@given(text=_URIS)
def test_device_uris_on_the_command_line(text):
    check("device URIs (profile --device)",
          ["profile", "--space", "fbnet-cifar", "--device", text, "--limit", "1", "--store", "no/s.db"])


# --------------------------------------------------------------------------- architectures

_ARCH_TEXT = st.one_of(
    st.lists(st.sampled_from(_OPS), min_size=22, max_size=22).map("-".join),
    st.lists(st.integers(0, 8), min_size=22, max_size=22).map(lambda v: " ".join(map(str, v))),
    st.lists(st.sampled_from(["k3_e1", "k5_e6", "skip", "k3_e1_g2", "0", "8", "9", "-1", "[/]", "x", ""]),
             min_size=0, max_size=24).map("-".join),
    st.lists(st.integers(-2, 10), min_size=20, max_size=23).map(lambda v: ",".join(map(str, v))),
    st.sampled_from(["fbnet-a", "fbnet-b", "[/]", "[bold]x", "adb-shell[usb]", "\x1b]0;pwned\x07", "{", "[" * 5000]),
    st.text(max_size=30),
)


@SETTINGS
@given(text=_ARCH_TEXT, space=st.sampled_from(["fbnet-cifar", "fbnet", "fbnetv2", "[/]"]))
def test_architecture_strings(text, space):
    def ok(_folder: Path, out: str) -> None:
        info = json.loads(out)
        assert info["total_macs"] > 0

    check("architecture strings (arch info)", ["arch", "info", text, "--space", space, "--json"], on_ok=ok)


_JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=6),
                     lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner,
                                                                                  max_size=4), max_leaves=12)
_FILE_TEXT = st.one_of(
    _JSON.map(lambda v: json.dumps(v)),
    st.lists(st.sampled_from(_OPS), min_size=22, max_size=22).map(
        lambda ops: json.dumps({"space": "fbnet-cifar", "arch": "-".join(ops)})),
    st.builds(lambda arch, extra: json.dumps({"space": "fbnet-cifar", "arch": arch, **extra}),
              st.one_of(st.text(max_size=10), st.lists(st.integers(-1, 9), max_size=23), _JSON),
              st.dictionaries(st.sampled_from(["space_options", "format_version", "space"]), _JSON, max_size=2)),
    st.sampled_from(["[" * 50000, "{\"arch\": " * 3000, "NaN", "{\"arch\": Infinity}", "\xff\xfe", ""]),
)


@SETTINGS
@given(text=_FILE_TEXT)
def test_architecture_files(text):
    check("architecture files (arch info FILE)", ["arch", "info", "a.json", "--json"],
          setup=lambda d: (d / "a.json").write_text(text, encoding="utf-8", errors="surrogateescape"))


@SETTINGS
@given(text=st.one_of(_FILE_TEXT, st.builds(
    lambda version, units, model: json.dumps({"format": "hwnas-latency-model", "format_version": version,
                                              "units": units, "model": model}),
    st.one_of(st.just(1), st.booleans(), st.integers(-1, 3), st.floats(), st.text(max_size=3)),
    st.sampled_from(["ms", "s", ""]), _JSON)))
def test_model_files(text):
    check("model files (predict --model)", ["predict", "fbnet-a", "--model", "m.json", "--json"],
          setup=lambda d: (d / "m.json").write_text(text, encoding="utf-8", errors="surrogateescape"),
          must_fail=True)  # none of these is a usable model


@pytest.mark.parametrize("case", _FLAGS, ids=lambda c: f"{c[0]}{c[2]}")
def test_known_bad_numbers_are_refused_by_the_option_itself(case, tmp_path):
    surface, prefix, flag = case
    for value in ("nan", "-1", "inf", "1e309"):
        code, _, err = run([*prefix, flag, value], tmp_path)
        outcome = "clean_error" if code == 2 and (flag in err or "Invalid value" in err) else "silent"
        _tally("numeric options (known bad: nan, -1, inf, 1e309)", outcome)
        assert outcome == "clean_error", (flag, value, err)
    assert not any(tmp_path.iterdir())


def test_markup_and_control_characters_print_as_text(tmp_path):
    for name in ("[/]", "[bold]x[/bold]", "adb-shell[usb]", "\x1b]0;pwned\x07title", "\n\nlead"):
        code, out, err = run(["space", "info", name], tmp_path)
        assert code == 2 and err.count("\n") == 1 and err.startswith("error:"), repr(err)
        assert "\x1b" not in err and "\x07" not in err
    code, _, err = run(["profile", "--space", "fbnet-cifar", "--device", "adb://x?binary=a[usb]", "--limit", "1",
                        "--store", "no/s.db"], tmp_path)
    assert code == 2 and "no" in err


# --------------------------------------------------------------------------- LUT files

_CELL = st.one_of(_NUMBERS, st.sampled_from(["16", "16.5", "0", "-3", "1e9", "true", ".nan", ".inf"]),
                  st.text(max_size=4))
_SHAPES = st.sampled_from(["32x32x16", "16x16x24", "0x0x0", "32x32", "axbxc", "32x32x16.5", "99999999x1x1"])


def _yaml_lut(entries) -> str:
    lines = []
    for inp, out, mean, count, std in entries:
        key = f"expanded_conv-input:{inp}-output:{out}-expand:3-kernel:3-stride:1-idskip:0-se:0-hs:0"
        lines.append(f"{key}: {{count: {count or 'null'}, mean: {mean or 'null'}, std: {std or 'null'}}}")
    return "\n".join(lines) + "\n"


def _csv_lut(rows) -> str:
    head = "op,cin,cout,resolution,stride,kernel,expansion,median_ms,n\n"
    return head + "".join(f"ir,{a},{b},{r},1,3,3,{m},{n}\n" for a, b, r, m, n in rows)


def _json_lut(rows, version) -> str:
    blocks = [{"op": "ir", "cin": a, "cout": b, "resolution": r, "stride": 1, "kernel": 3, "expansion": 3,
               "median_ms": m, "n": n} for a, b, r, m, n in rows]
    return json.dumps({"format": "hwnas-lut", "format_version": version, "units": "ms", "blocks": blocks})


def _lut_ok(folder: Path, out: str) -> None:
    """Accepted: every stored timing finite and > 0, every channel count whole."""
    from hwnas.profiler.store import Store

    with Store(folder / "s.db", readonly=True) as store:
        df = store.blocks()
    assert len(df) >= 1
    assert all(math.isfinite(v) and v > 0 for v in df["median_ms"])
    assert all(float(c) == int(c) and c > 0 for c in df["cin"])


_GOOD_MS = st.sampled_from(["0.5", "1.25", "3"])
_GOOD_N = st.sampled_from(["5", "10", ""])
_ROW = st.tuples(st.sampled_from([16, 24, "16", 16.5, 0, -3, "abc"]), st.sampled_from([16, 24, "x", 1e9]),
                 st.sampled_from([32, 16, 0, "32.0"]), st.one_of(_GOOD_MS, _CELL), st.one_of(_GOOD_N, _CELL))


@settings(max_examples=60, deadline=None, derandomize=True)
@example(kind="json", yaml_rows=[], rows=[(16, 24, 32, "0.5", "5")], version=1)
@example(kind="yaml", yaml_rows=[("32x32x16", "32x32x24", "0.5", "10", "0.01")], rows=[], version=1)
@given(kind=st.sampled_from(["yaml", "csv", "json"]),
       yaml_rows=st.lists(st.tuples(st.one_of(st.just("32x32x16"), _SHAPES), st.one_of(st.just("32x32x24"), _SHAPES),
                                    st.one_of(_GOOD_MS, _CELL), st.one_of(_GOOD_N, _CELL),
                                    st.one_of(st.just("0.01"), _CELL)), min_size=1, max_size=3),
       rows=st.lists(_ROW, min_size=1, max_size=3),
       version=st.one_of(st.just(1), st.booleans(), st.integers(-1, 3), st.text(max_size=2)))
def test_lut_files_are_imported_strictly(kind, yaml_rows, rows, version):
    text = {"yaml": lambda: _yaml_lut(yaml_rows), "csv": lambda: _csv_lut(rows),
            "json": lambda: _json_lut(rows, version)}[kind]()
    check(f"LUT files ({kind})", ["lut", "import", f"t.{kind}", "--store", "s.db", "--device", "imp"],
          setup=lambda d: (d / f"t.{kind}").write_text(text), on_ok=_lut_ok)


@settings(max_examples=10, deadline=None, derandomize=True)
@given(text=st.sampled_from(["[" * 50000, "a: " * 3 + "[" * 30000, "{", "\x00\x01", "- - - -"]))
def test_hostile_yaml_and_json_luts(text):
    for suffix in ("yaml", "json"):
        check(f"LUT files ({suffix})", ["lut", "import", f"t.{suffix}", "--store", "s.db", "--device", "imp"],
              setup=lambda d: (d / f"t.{suffix}").write_text(text), must_fail=True)


# --------------------------------------------------------------------------- store files

def _good_store(folder: Path) -> Path:
    from hwnas.profiler.store import Store
    from hwnas.search.space import get_space

    path = folder / "s.db"
    with Store(path) as store:
        store.add_device("dev", "cpu", {"cpu": "x"})
        for spec in get_space("fbnet-cifar").unique_blocks()[:40]:
            store.put_block("dev", spec, {"n": 5, "median_ms": 0.3, "mean_ms": 0.3, "settled": True})
        store._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return path


@settings(max_examples=30, deadline=None, derandomize=True)
@given(damage=st.sampled_from(["truncate", "overwrite", "zero", "foreign", "text", "header"]),
       where=st.floats(0.0, 0.95), command=st.sampled_from(["lut export", "report", "fit", "evaluate"]))
def test_damaged_store_files(damage, where, command):
    import sqlite3

    def setup(folder: Path) -> None:
        path = _good_store(folder)
        data = bytearray(path.read_bytes())
        at = int(len(data) * where)
        if damage == "truncate":
            data = data[:at]
        elif damage == "overwrite":
            data[at:at + 4096] = os.urandom(min(4096, len(data) - at))
        elif damage == "zero":
            data = bytearray()
        elif damage == "text":
            data = bytearray(b"not a database\n" * 100)
        elif damage == "header":
            data[0:16] = b"SQLite format 9\x00"
        path.write_bytes(bytes(data))
        if damage == "foreign":
            path.unlink()
            with sqlite3.connect(path) as db:
                db.execute("CREATE TABLE other (x)")

    args = {"lut export": ["lut", "export", "--store", "s.db", "--out", "o.csv"],
            "report": ["report", "--store", "s.db", "--out", "r.html"],
            "fit": ["fit", "--store", "s.db", "--out", "m.json"],
            "evaluate": ["evaluate", "--store", "s.db", "--model", "m.json"]}[command]
    check(f"store files ({command})", args, setup=setup)


def _numeric_options() -> list[tuple[list[str], str]]:
    """Every INT/FLOAT option of every command in the tree: (command path, flag)."""
    import typer

    from hwnas.cli import app
    from hwnas.validation import _numeric

    found: list[tuple[list[str], str]] = []

    def walk(cmd, path):
        for name, sub in getattr(cmd, "commands", {}).items():
            walk(sub, [*path, name])
        for param in getattr(cmd, "params", ()):
            flags = [o for o in getattr(param, "opts", ()) if o.startswith("--")]
            if flags and _numeric(param):
                found.append((path, flags[0]))

    walk(typer.main.get_command(app), [])
    return found


def test_every_numeric_option_in_the_tree_refuses_nan_and_negatives(tmp_path):
    options = _numeric_options()
    assert len(options) >= 20  # the walk found the tree
    for path, flag in options:
        for value in ("nan", "-1"):
            code, _, err = run([*path, flag, value], tmp_path)
            outcome = "clean_error" if code == 2 and flag in err and err.count("\n") == 1 else "silent"
            _tally("numeric options (whole tree: nan, -1)", outcome)
            assert outcome == "clean_error", (path, flag, value, err)
    assert not any(tmp_path.iterdir())
