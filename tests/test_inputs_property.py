"""Property tests of the typed inputs: numeric options, device URIs, architectures, model files, markup.

Invariant (tests/cli_invariant.py): exit 0 with a correct result, or exit 2
with one line on stderr, no traceback, and no file created or changed.
"""

from __future__ import annotations

import json
import math
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cli_invariant import NUMBERS, OPS, SETTINGS, check, print_tally, run, tally
from hwnas.devices.uri import OPTION_BOUNDS, parse_uri
from hwnas.search.space import InputError


@pytest.fixture(scope="module", autouse=True)
def _report():
    yield
    print_tally()


# --------------------------------------------------------------------------- numbers

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
@given(case=st.sampled_from(_FLAGS), value=NUMBERS)
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
_URI_VALUES = st.one_of(NUMBERS, st.sampled_from(["0-3", "0-30000000", "4-7,0", "7-4", "x", "1,1"]),
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
        tally("device URIs (parse_uri)", "clean_error")
        return
    tally("device URIs (parse_uri)", "ok")
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
    st.lists(st.sampled_from(OPS), min_size=22, max_size=22).map("-".join),
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
    st.lists(st.sampled_from(OPS), min_size=22, max_size=22).map(
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
        tally("numeric options (known bad: nan, -1, inf, 1e309)", outcome)
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
            tally("numeric options (whole tree: nan, -1)", outcome)
            assert outcome == "clean_error", (path, flag, value, err)
    assert not any(tmp_path.iterdir())
