"""The measurement store as later parts and users see it: DataFrames, resume keys, bad files."""

from __future__ import annotations

import sqlite3
import threading

import pytest

from hwnas.devices.uri import canonical_uri
from hwnas.profiler.store import SCHEMA_VERSION, Store, StoreError
from hwnas.search.space import BlockSpec, InputError, get_space

BLOCK_COLUMNS = ["device", "device_uri", "runtime", "runtime_version", "threads", "cores", "block_key", "block_json",
                 "op", "family", "cin", "cout", "resolution", "kernel", "expansion", "groups", "stride", "act", "se",
                 "n", "median_ms", "mean_ms", "std_ms", "p10_ms", "p90_ms", "min_ms", "ci_halfwidth_ms", "settled",
                 "flagged", "thermal_before", "thermal_after", "timestamp", "tool_version"]

STATS = {"n": 50, "median_ms": 1.5, "mean_ms": 1.6, "std_ms": 0.1, "p10_ms": 1.4, "p90_ms": 1.8, "min_ms": 1.3,
         "ci_halfwidth_ms": 0.01, "settled": True, "thermal_before": {"temps_c": {"cpu": 41.0}, "throttled": False}}

IDENT = "Test CPU|onnxruntime|1.0|threads=1|cores=all"


def _store(tmp_path) -> Store:
    st = Store(tmp_path / "s.db")
    st.add_device(IDENT, "cpu:onnxruntime?threads=1", {"cpu": "Test CPU", "runtime_version": "1.0"},
                  runtime="onnxruntime", threads=1)
    return st


def test_blocks_frame_has_contract_columns_and_spec_fields(tmp_path):
    st = _store(tmp_path)
    spec = BlockSpec("ir", 16, 24, 32, stride=2, kernel=5, expansion=6.0, groups=1)
    st.put_block(IDENT, spec, STATS)
    df = st.blocks()
    assert list(df.columns) == BLOCK_COLUMNS
    row = df.iloc[0]
    assert row["block_key"] == spec.key and row["family"] == "ir_k5" and row["kernel"] == 5
    assert row["median_ms"] == 1.5 and row["threads"] == 1 and row["runtime_version"] == "1.0"
    assert row["thermal_before"]["temps_c"]["cpu"] == 41.0 and row["thermal_after"] is None
    assert bool(row["settled"]) and not bool(row["flagged"])
    assert BlockSpec.from_json(row["block_json"]) == spec


def test_device_by_uri_or_identity_and_unknown_device_names_known_ones(tmp_path):
    st = _store(tmp_path)
    st.put_block(IDENT, BlockSpec("skip", 16, 16, 8), STATS)
    assert st.resolve_device(IDENT) == IDENT
    assert st.resolve_device("cpu:onnxruntime?threads=1") == IDENT
    # protocol options tune the measurement, they do not name another device
    assert st.resolve_device("cpu?threads=1&max_seconds=0.5") == IDENT
    assert len(st.blocks("cpu:onnxruntime?threads=1")) == 1
    with pytest.raises(InputError, match="known: cpu:onnxruntime\\?threads=1"):
        st.blocks("cpu:torch")
    devices = st.devices()
    assert list(devices.columns) == ["device", "device_uri", "info", "n_blocks", "n_networks"]
    assert devices.iloc[0]["n_blocks"] == 1 and devices.iloc[0]["info"]["cpu"] == "Test CPU"


def test_networks_frame_and_resume_keys(tmp_path):
    st = _store(tmp_path)
    arch = "-".join(["k3_e1"] * 22)
    st.put_network(IDENT, "fbnet-cifar", arch, STATS)
    df = st.networks()
    assert {"space", "arch", "median_ms", "device_uri"} <= set(df.columns)
    assert df.iloc[0]["arch"] == arch
    assert st.measured_networks(IDENT, "fbnet-cifar") == {arch}
    assert st.measured_networks(IDENT, "fbnet") == set()


def test_remeasure_replaces_and_keys_stay_unique(tmp_path):
    st = _store(tmp_path)
    spec = BlockSpec("skip", 16, 24, 8, stride=2)
    st.put_block(IDENT, spec, STATS)
    st.put_block(IDENT, spec, {**STATS, "median_ms": 2.5}, flagged=True)
    df = st.blocks(IDENT)
    assert len(df) == 1 and df.iloc[0]["median_ms"] == 2.5 and bool(df.iloc[0]["flagged"])


def test_reopen_keeps_everything(tmp_path):
    st = _store(tmp_path)
    specs = get_space("fbnet-cifar").unique_blocks()[:5]
    for s in specs:
        st.put_block(IDENT, s, STATS)
    st.close()
    again = Store(tmp_path / "s.db")
    assert again.measured_blocks(IDENT) == {s.key for s in specs}
    assert again.integrity_check() == "ok"


def test_concurrent_writers_serialize(tmp_path):
    st = _store(tmp_path)
    specs = get_space("fbnet-cifar").unique_blocks()

    def write(part):
        for s in part:
            st.put_block(IDENT, s, STATS)

    threads = [threading.Thread(target=write, args=(specs[i::3],)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(st.blocks()) == len(specs) and st.integrity_check() == "ok"


def test_newer_schema_is_refused_in_one_line(tmp_path):
    _store(tmp_path).close()
    db = sqlite3.connect(tmp_path / "s.db")
    db.execute("UPDATE meta SET value=? WHERE key='schema_version'", (str(SCHEMA_VERSION + 1),))
    db.commit()
    db.close()
    with pytest.raises(StoreError, match="newer than this hwnas knows") as err:
        Store(tmp_path / "s.db")
    assert "\n" not in str(err.value)


def test_corrupt_and_foreign_files_are_refused(tmp_path):
    bad = tmp_path / "bad.db"
    bad.write_bytes(b"this is not a database at all" * 200)
    with pytest.raises(StoreError, match="not a usable hwnas store"):
        Store(bad)
    foreign = tmp_path / "foreign.db"
    db = sqlite3.connect(foreign)
    db.execute("CREATE TABLE songs (title TEXT)")
    db.commit()
    db.close()
    with pytest.raises(StoreError, match="another program"):
        Store(foreign)
    with pytest.raises(StoreError, match="not found"):
        Store(tmp_path / "missing.db", create=False)
    with pytest.raises(StoreError, match="directory does not exist"):
        Store(tmp_path / "nodir" / "x.db")


def test_canonical_uri_drops_protocol_options_only():
    assert canonical_uri("cpu:onnxruntime?max_seconds=1.0&threads=1") == "cpu:onnxruntime?threads=1"
    assert canonical_uri("cpu:onnxruntime?max_seconds=1.0") == "cpu:onnxruntime"
    assert canonical_uri("adb://R58M?cores=4-7&cooldown=2") == "adb://R58M?cores=4-7"
    assert canonical_uri("cpu?threads=1&warmup=3") == canonical_uri("cpu:onnxruntime?threads=1")
