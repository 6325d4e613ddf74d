"""Lookup tables in and out of the store: CSV/JSON/Parquet export, OFA-style YAML and CSV import.

Import reads only data formats (YAML through `yaml.safe_load`, CSV, JSON):
a table someone hands over never executes code.  OFA/ProxylessNAS tables key
each entry by an op name and shapes, e.g.
``expanded_conv-input:56x56x24-output:28x28x32-expand:6-kernel:5-stride:2-idskip:0-se:1-hs:0``
→ ``{count, mean, std}`` in ms; every such key becomes the `BlockSpec` it describes.
"""

from __future__ import annotations

import csv
import json
import math
import re
from pathlib import Path
from typing import Any, Iterator

import pandas as pd

from hwnas.search.space import BlockSpec, InputError

__all__ = ["FORMATS", "LUT_FORMAT_VERSION", "parse_ofa_key", "read_table", "write_table", "guess_format"]

FORMATS = ("csv", "json", "parquet")
LUT_FORMAT_VERSION = 1

_SHAPE = re.compile(r"^\d+(x\d+)*$")


def _shape(text: str, key: str) -> list[int]:
    if not _SHAPE.match(text) or len(text) > 40:
        raise InputError(f"LUT key {key[:120]!r}: bad shape {text[:40]!r} (expected HxWxC)")
    dims = [int(v) for v in text.split("x")]
    if not all(1 <= d <= 100_000 for d in dims):
        raise InputError(f"LUT key {key[:120]!r}: shape {text!r} has a dimension outside 1..100000")
    return dims


def parse_ofa_key(key: str) -> BlockSpec | None:
    """The block an OFA-style key names; None for entries with no block of ours (AvgPool2D)."""
    name, *fields = key.split("-")
    kv: dict[str, str] = {}
    for f in fields:
        k, sep, v = f.partition(":")
        if not sep:
            raise InputError(f"LUT key {key!r}: field {f!r} is not name:value")
        kv[k] = v
    if "input" not in kv or "output" not in kv:
        raise InputError(f"LUT key {key!r}: needs input: and output: shapes")
    inp, out = _shape(kv["input"], key), _shape(kv["output"], key)
    try:
        if name == "expanded_conv":
            h, _, cin = inp
            h_out, _, cout = out
            stride = int(kv.get("stride", max(1, round(h / h_out))))
            return BlockSpec("ir", cin, cout, h, stride=stride, kernel=int(kv.get("kernel", 3)),
                             expansion=float(kv.get("expand", 1)), se=kv.get("se", "0") == "1",
                             act="hswish" if kv.get("hs", "0") == "1" else "relu")
        if name in ("Conv", "Conv_1", "Conv_2", "1x1_Conv"):
            h, _, cin = inp
            h_out, _, cout = out
            kernel = 3 if name == "Conv" else 1
            act = "hswish" if kv.get("hs", "0") == "1" else "relu"
            return BlockSpec("conv", cin, cout, h, stride=max(1, round(h / h_out)), kernel=kernel, act=act)
        if name == "Logits":
            return BlockSpec("fc", inp[-1], out[-1], inp[0] if len(inp) == 3 else 1, act="none")
    except (ValueError, IndexError, TypeError, ZeroDivisionError):
        raise InputError(f"LUT key {key[:120]!r}: fields do not describe a block") from None
    if name in ("AvgPool2D", "GlobalAvgPool"):
        return None
    raise InputError(f"LUT key {key!r}: unknown op {name!r}; known: expanded_conv, Conv, Conv_1, Conv_2, Logits")


_TIMING_KEYS = ("mean_ms", "median_ms", "std_ms", "p10_ms", "p90_ms", "min_ms", "ci_halfwidth_ms")


def _number(value: Any, where: str, name: str, integer: bool = False, minimum: float = 0.0) -> float | int:
    """A table value as a finite number >= `minimum` (an integer when asked); InputError naming the cell.

    Why strict: a LUT value goes straight into every prediction made from the
    store, so `.nan`, `-3`, `abc` or 16.5 channels must be refused, not stored.
    """
    if isinstance(value, bool) or value is None:
        raise InputError(f"{where}: {name} must be a number, got {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{where}: {name} must be a number, got {str(value)[:40]!r}") from None
    if not math.isfinite(number) or number < minimum:
        raise InputError(f"{where}: {name} must be a finite number >= {minimum:g}, got {str(value)[:40]}")
    if integer:
        if number != int(number) or number > 2**31:
            raise InputError(f"{where}: {name} must be a whole number, got {str(value)[:40]}")
        return int(number)
    return number


def _checked(spec: BlockSpec, stats: dict[str, Any], where: str) -> tuple[BlockSpec, dict[str, Any]]:
    """Every timing finite and >= 0, the count whole, the median > 0, the spec storable: before any write."""
    out = dict(stats)
    for k in _TIMING_KEYS:
        if out.get(k) is not None:
            out[k] = _number(out[k], where, k)
    if out.get("median_ms") is None or out["median_ms"] <= 0:
        raise InputError(f"{where}: latency must be > 0 ms, got {out.get('median_ms')}")
    if out.get("n") is not None:
        out["n"] = _number(out["n"], where, "count", integer=True, minimum=1)
    try:
        spec.key, spec.to_json()  # noqa: B018 — a spec that cannot name itself fails here, not half-way into the store
    except (ValueError, TypeError, ZeroDivisionError) as exc:
        raise InputError(f"{where}: not a storable block ({exc})") from None
    return spec, out


def _ofa_rows(data: Any, path: Path) -> Iterator[tuple[BlockSpec, dict[str, Any]]]:
    if not isinstance(data, dict):
        raise InputError(f"{path}: an OFA-style YAML table maps keys to {{count, mean, std}}")
    for key, entry in data.items():
        spec = parse_ofa_key(str(key))
        if spec is None:
            continue
        if not isinstance(entry, dict) or "mean" not in entry:
            raise InputError(f"{path}: entry {key!r} lacks 'mean' (expected {{count, mean, std}} in ms)")
        where = f"{path}: entry {str(key)[:80]!r}"
        mean = _number(entry["mean"], where, "mean")
        yield _checked(spec, {"n": entry.get("count"), "mean_ms": mean, "median_ms": mean,
                              "std_ms": entry.get("std"), "settled": True}, where)


def _frame_rows(df: pd.DataFrame, path: Path) -> Iterator[tuple[BlockSpec, dict[str, Any]]]:
    cols = set(df.columns)
    if not ({"median_ms", "mean_ms"} & cols):
        raise InputError(f"{path}: needs a median_ms or mean_ms column")
    spec_cols = {"op", "cin", "cout", "resolution"}
    if "block_json" not in cols and not spec_cols <= cols:
        raise InputError(f"{path}: needs a block_json column or the columns {', '.join(sorted(spec_cols))}")
    fields = ("op", "cin", "cout", "resolution", "stride", "kernel", "expansion", "groups", "act", "se", "shuffle")
    for i, row in enumerate(df.to_dict("records"), start=2):
        if isinstance(row.get("block_json"), str) and row["block_json"]:
            spec = BlockSpec.from_json(row["block_json"])
        else:
            values = {f: row[f] for f in fields if f in row and not _missing(row[f])}
            try:
                for f in ("cin", "cout", "resolution", "stride", "kernel", "groups"):
                    if f in values:
                        values[f] = _number(values[f], f"{path}: row {i}", f, integer=True, minimum=1)
                if "expansion" in values:
                    values["expansion"] = _number(values["expansion"], f"{path}: row {i}", "expansion", minimum=1e-9)
                for f in ("se", "shuffle"):
                    if f in values:
                        values[f] = str(values[f]).lower() in ("1", "true", "yes")
            except ValueError:
                raise InputError(f"{path}: row {i}: a block field is not a number") from None
            spec = BlockSpec.from_dict(values)
        median = row.get("median_ms", row.get("mean_ms"))
        if _missing(median):
            median = row.get("mean_ms")
        if _missing(median):
            raise InputError(f"{path}: row {i}: no latency (median_ms/mean_ms)")
        stats = {k: row.get(k) for k in ("n", "mean_ms", "std_ms", "p10_ms", "p90_ms", "min_ms", "ci_halfwidth_ms")}
        stats = {k: (None if _missing(v) else v) for k, v in stats.items()}
        stats["median_ms"] = median
        stats["settled"] = str(row.get("settled", True)).lower() not in ("0", "false")
        yield _checked(spec, stats, f"{path}: row {i}")


def _missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v)) or v == ""


def guess_format(path: Path) -> str:
    suffix = path.suffix.lower().lstrip(".")
    return {"yml": "yaml", "yaml": "yaml", "csv": "csv", "json": "json", "parquet": "parquet"}.get(suffix, "")


def read_table(path: str | Path, fmt: str | None = None) -> list[tuple[BlockSpec, dict[str, Any]]]:
    """(spec, timing stats) pairs from an OFA YAML table, or a CSV/JSON/Parquet table we export."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"LUT file not found: {path}")
    fmt = fmt or guess_format(path)
    try:
        if fmt == "yaml":
            import yaml

            from hwnas.search.space.jsonsafe import check_depth

            text = path.read_text()
            check_depth(text, f"LUT file {path}")
            try:
                data = yaml.safe_load(text)
            except yaml.YAMLError as exc:
                raise InputError(f"{path} is not valid YAML: {str(exc).splitlines()[0]}") from None
            rows = list(_ofa_rows(data, path))
        elif fmt == "csv":
            try:
                df = pd.read_csv(path)
            except (pd.errors.ParserError, pd.errors.EmptyDataError, csv.Error) as exc:
                raise InputError(f"{path} is not a readable CSV: {exc}") from None
            rows = list(_frame_rows(df, path))
        elif fmt == "json":
            from hwnas.search.space.jsonsafe import loads

            data = loads(path.read_bytes(), f"LUT file {path}")
            if not isinstance(data, dict) or not isinstance(data.get("blocks"), list):
                raise InputError(f"{path}: expected a hwnas LUT JSON object with a 'blocks' list")
            version = data.get("format_version", 1)
            if type(version) is not int or version < 1:
                raise InputError(f"{path}: format_version must be a whole number >= 1, got {version!r}")
            if not all(isinstance(b, dict) for b in data["blocks"]):
                raise InputError(f"{path}: every entry of 'blocks' must be an object")
            if version > LUT_FORMAT_VERSION:
                raise InputError(f"{path}: LUT format version {data['format_version']} is newer than this hwnas knows")
            rows = list(_frame_rows(pd.DataFrame(data["blocks"]), path))
        elif fmt == "parquet":
            try:
                frame = pd.read_parquet(path)
            except Exception as exc:  # pyarrow raises its own error types for a file that is not Parquet
                raise InputError(f"{path} is not a readable Parquet file: {str(exc).splitlines()[0][:120]}") from None
            rows = list(_frame_rows(frame, path))
        else:
            raise InputError(f"cannot tell the format of {path}; name it .yaml, .csv, .json or .parquet")
    except UnicodeDecodeError:
        raise InputError(f"{path} is not a text {fmt} file") from None
    if not rows:
        raise InputError(f"{path}: no block latencies found")
    return rows


_EXPORT_COLUMNS = ("block_key", "block_json", "op", "family", "cin", "cout", "resolution", "kernel", "expansion",
                   "groups", "stride", "act", "se", "n", "median_ms", "mean_ms", "std_ms", "p10_ms", "p90_ms",
                   "min_ms", "ci_halfwidth_ms", "settled", "flagged")


def write_table(df: pd.DataFrame, fmt: str, out: str | Path, device: str, device_uri: str) -> Path:
    """Write a device's block table (`Store.blocks(device)`) as CSV, JSON or Parquet (units: ms)."""
    if fmt not in FORMATS:
        raise InputError(f"unknown LUT format {fmt!r}; expected one of {', '.join(FORMATS)}")
    out = Path(out)
    if not out.parent.is_dir():
        raise InputError(f"output directory does not exist: {out.parent}")
    table = df[list(_EXPORT_COLUMNS)]
    if fmt == "csv":
        table.to_csv(out, index=False)
    elif fmt == "parquet":
        table.to_parquet(out, index=False)
    else:
        records = json.loads(table.to_json(orient="records"))
        out.write_text(json.dumps({"format": "hwnas-lut", "format_version": LUT_FORMAT_VERSION, "units": "ms",
                                   "device": device, "device_uri": device_uri, "blocks": records}, indent=1))
    return out
