"""Property tests of the files a user hands over: LUT tables (CSV, YAML, JSON) and damaged store files.

Invariant (tests/cli_invariant.py): exit 0 with a correct result (every
imported timing finite and > 0, channel counts whole), or exit 2 with one
line, no traceback, and the store neither created nor changed.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from cli_invariant import NUMBERS, check, print_tally


@pytest.fixture(scope="module", autouse=True)
def _report():
    yield
    print_tally()


# --------------------------------------------------------------------------- LUT files

_CELL = st.one_of(NUMBERS, st.sampled_from(["16", "16.5", "0", "-3", "1e9", "true", ".nan", ".inf"]),
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
