"""`hwnas profile` and `hwnas lut` as a user runs them, on the real local CPU runtime."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass

import pandas as pd
import pytest

from hwnas.profiler.store import SCHEMA_VERSION, Store
from hwnas.search.space import get_space
from tests.conftest import ROOT

#: fast protocol for tests: the timings are real, just less precise
DEV = "cpu:onnxruntime?threads=1&max_seconds=0.1&warmup=2"


@dataclass
class Ran:
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def run_in_process(capsys):
    """`hwnas ARGS` through the real entry point, in this process (no interpreter start-up per call)."""
    from hwnas.cli import main

    def run(*args: str) -> Ran:
        with pytest.raises(SystemExit) as exit_:
            main(list(args))
        out = capsys.readouterr()
        return Ran(exit_.value.code, out.out, out.err)

    return run


def _one_line_error(proc) -> str:
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    return lines[0]


@pytest.fixture(scope="module")
def small_store(tmp_path_factory):
    """A store with a few real fbnet-cifar blocks and one network (profiled once for the module)."""
    from tests.conftest import run_cli

    db = tmp_path_factory.mktemp("prof") / "small.db"
    proc = run_cli("profile", "--space", "fbnet-cifar", "--device", DEV, "--store", str(db), "--limit", "4",
                   "--archs", "fbnet-a", "--retries", "0", "--json", check=True)
    return db, json.loads(proc.stdout)


def test_profile_limit_json_summary_and_resume(small_store, cli):
    db, result = small_store
    dev = result["devices"][0]
    assert result["items"] == 4 and dev["measured"] == 4 and dev["failed"] is None
    # --limit keeps the first items; the network from --archs comes after the blocks
    with Store(db) as st:
        assert len(st.blocks()) == 4 and st.blocks()["median_ms"].gt(0).all()
    again = json.loads(cli("profile", "--space", "fbnet-cifar", "--device", DEV, "--store", str(db), "--limit", "4",
                           "--json", check=True).stdout)
    assert again["devices"][0]["skipped"] == 4 and again["devices"][0]["measured"] == 0


def test_profile_whole_network_end_to_end(tmp_path, cli):
    db = tmp_path / "n.db"
    # cpu:torch runs the network eagerly (no export): the same profiler path, quicker
    proc = cli("profile", "--space", "fbnet-cifar", "--device", "cpu:torch?max_seconds=0.2", "--store", str(db),
               "--no-blocks", "--archs", "random:1", "--seed", "5", "--retries", "0", check=True,
               env={"COLUMNS": "80"})
    # One line per device, whole in a pipe (rich cut it at 80 columns): grep finds the figures by device.
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("  cpu:torch?max_seconds=0.2: "))
    assert "complete" in line and "flagged" in line and line.rstrip().endswith(" s")
    with Store(db) as st:
        nets = st.networks()
    assert len(nets) == 1 and nets.iloc[0]["space"] == "fbnet-cifar" and nets.iloc[0]["median_ms"] > 0
    assert len(nets.iloc[0]["arch"].split("-")) == 22


@pytest.mark.parametrize("fmt", ["csv", "json", "parquet"])
def test_lut_export_and_import_round_trip(small_store, tmp_path, cli, fmt):
    db, _ = small_store
    out = tmp_path / f"lut.{fmt}"
    info = json.loads(cli("lut", "export", "--store", str(db), "--device", DEV, "--out", str(out), "--json",
                          check=True).stdout)
    assert info["blocks"] == 4 and out.is_file()
    if fmt == "csv":
        assert set(pd.read_csv(out)["op"]) <= {"conv", "fc", "ir", "skip"}
    copy = tmp_path / "copy.db"
    cli("lut", "import", str(out), "--store", str(copy), "--device", "colleague-phone", check=True)
    with Store(db) as a, Store(copy) as b:
        left = a.blocks().set_index("block_key")["median_ms"].sort_index()
        right = b.blocks("colleague-phone").set_index("block_key")["median_ms"].sort_index()
    pd.testing.assert_series_equal(left, right)


def test_lut_import_ofa_yaml(tmp_path, cli):
    table = tmp_path / "note10.yaml"
    table.write_text(
        "Conv-input:224x224x3-output:112x112x16:\n  count: 10\n  mean: 1.25\n  std: 0.05\n"
        "expanded_conv-input:112x112x16-output:56x56x24-expand:6-kernel:5-stride:2-idskip:0-se:1-hs:1:\n"
        "  count: 10\n  mean: 3.5\n  std: 0.2\n"
        "AvgPool2D-input:7x7x160-output:1x1x160:\n  count: 10\n  mean: 0.05\n  std: 0.0\n"
        "Logits-input:1x1x1280-output:1000:\n  count: 10\n  mean: 0.4\n  std: 0.01\n")
    db = tmp_path / "o.db"
    cli("lut", "import", str(table), "--store", str(db), "--device", "note10", check=True)
    with Store(db) as st:
        df = st.blocks("note10").set_index("op")
    assert len(df) == 3
    ir = df.loc["ir"]
    assert (ir["cin"], ir["cout"], ir["resolution"], ir["kernel"], ir["stride"]) == (16, 24, 112, 5, 2)
    assert ir["expansion"] == 6.0 and ir["se"] and ir["act"] == "hswish" and ir["median_ms"] == 3.5
    assert df.loc["fc"]["cin"] == 1280 and df.loc["conv"]["stride"] == 2


def test_lut_import_bad_tables_are_one_line(tmp_path, run_in_process):
    cli = run_in_process
    bad_key = tmp_path / "bad.yaml"
    bad_key.write_text("warp_drive-input:1x1x1-output:1x1x1:\n  mean: 1.0\n")
    assert "unknown op 'warp_drive'" in _one_line_error(cli("lut", "import", str(bad_key), "--device", "x",
                                                            "--store", str(tmp_path / "a.db")))
    not_yaml = tmp_path / "broken.yaml"
    not_yaml.write_text("a: [1, 2\n")
    assert "not valid YAML" in _one_line_error(cli("lut", "import", str(not_yaml), "--device", "x",
                                                   "--store", str(tmp_path / "a.db")))
    csv_no_latency = tmp_path / "t.csv"
    csv_no_latency.write_text("op,cin,cout,resolution\nconv,3,16,32\n")
    assert "median_ms" in _one_line_error(cli("lut", "import", str(csv_no_latency), "--device", "x",
                                              "--store", str(tmp_path / "a.db")))
    assert "not found" in _one_line_error(cli("lut", "import", str(tmp_path / "nope.csv"), "--device", "x"))


def test_lut_export_errors(small_store, tmp_path, run_in_process):
    cli = run_in_process
    db, _ = small_store
    assert "known:" in _one_line_error(cli("lut", "export", "--store", str(db), "--device", "cpu:torch",
                                           "--out", str(tmp_path / "x.csv")))
    assert "--format" in _one_line_error(cli("lut", "export", "--store", str(db), "--out", str(tmp_path / "x.txt")))
    assert "not found" in _one_line_error(cli("lut", "export", "--store", str(tmp_path / "none.db"),
                                              "--out", str(tmp_path / "x.csv")))


def test_profile_bad_input_is_one_line(tmp_path, run_in_process):
    cli = run_in_process
    db = str(tmp_path / "b.db")
    assert "unknown search space" in _one_line_error(cli("profile", "--space", "nope", "--device", DEV, "--store", db))
    assert "unknown option" in _one_line_error(cli("profile", "--space", "fbnet-cifar", "--device", "cpu?speed=11",
                                                   "--store", db))
    assert "random:N" in _one_line_error(cli("profile", "--space", "fbnet-cifar", "--device", DEV, "--store", db,
                                             "--archs", "random:x"))
    corrupt = tmp_path / "corrupt.db"
    corrupt.write_bytes(os.urandom(8192))
    assert "not a usable hwnas store" in _one_line_error(cli("profile", "--space", "fbnet-cifar", "--device", DEV,
                                                             "--store", str(corrupt), "--limit", "1"))
    newer = tmp_path / "newer.db"
    Store(newer).close()
    con = sqlite3.connect(newer)
    con.execute("UPDATE meta SET value=? WHERE key='schema_version'", (str(SCHEMA_VERSION + 5),))
    con.commit()
    con.close()
    assert "newer than this hwnas" in _one_line_error(cli("profile", "--space", "fbnet-cifar", "--device", DEV,
                                                          "--store", str(newer), "--limit", "1"))


def test_ray_missing_is_a_clear_error(monkeypatch):
    from hwnas.profiler.farm import require_ray
    from hwnas.search.space import InputError

    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(InputError, match=r"hwnas\[farm\]"):
        require_ray()


def _count(db, sql: str = "SELECT COUNT(*) FROM blocks") -> int:
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
        try:
            return con.execute(sql).fetchone()[0]
        finally:
            con.close()
    except sqlite3.Error:  # not created yet (the history tables appear on the first pass)
        return 0


_ACCEPTED = "SELECT COUNT(*) FROM pass_timings WHERE verdict IN ('accepted', 'scaled')"


def _kill_when(proc: subprocess.Popen, ready) -> None:
    """SIGKILL `proc` as soon as `ready()` holds (polled every 10 ms)."""
    try:
        deadline = time.monotonic() + 300
        while not ready() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert proc.poll() is None, "the profile finished before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()


def _all_blocks_once(db) -> pd.DataFrame:
    with Store(db) as st:
        df = st.blocks()
        assert st.integrity_check() == "ok"
    assert len(df) == 111 and df["block_key"].is_unique
    assert set(df["block_key"]) == {s.key for s in get_space("fbnet-cifar").unique_blocks()}
    return df


@pytest.mark.slow
def test_plain_profile_killed_with_sigkill_and_restarted_holds_every_block_once(tmp_path, cli):
    # The plain loop stores each block as it is measured (~0.1 s apart): a kill at the first stored
    # block always lands mid-profile.
    db = tmp_path / "full.db"
    args = [sys.executable, "-m", "hwnas", "profile", "--space", "fbnet-cifar", "--device", DEV,
            "--store", str(db), "--retries", "0", "--passes", "1", "--no-reference", "--no-selfcheck", "--json"]
    _kill_when(subprocess.Popen(args, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
               lambda: _count(db) >= 1)
    killed_at = _count(db)
    assert 1 <= killed_at < 111
    with Store(db) as st:
        before = st.blocks().set_index("block_key")["timestamp"]
    rerun = json.loads(cli("profile", *args[4:], check=True).stdout)["devices"][0]
    assert rerun["skipped"] == killed_at and rerun["measured"] == 111 - killed_at
    after = _all_blocks_once(db).set_index("block_key")["timestamp"]
    # what was measured before the kill was kept, not measured again
    assert (after[before.index] == before).all()


@pytest.mark.slow
def test_steady_profile_killed_mid_pass_resumes_its_accepted_passes(tmp_path, cli):
    # The steady loop stores a block only once two passes agree, so a kill in the first pass leaves
    # no stored block, only accepted passes in the history: the rerun must reuse them, not lose them.
    db = tmp_path / "steady.db"
    args = [sys.executable, "-m", "hwnas", "profile", "--space", "fbnet-cifar", "--device", DEV,
            "--store", str(db), "--retries", "0", "--json"]
    _kill_when(subprocess.Popen(args, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
               lambda: _count(db, _ACCEPTED) >= 20)
    accepted = _count(db, _ACCEPTED)
    assert accepted >= 20 and _count(db) < 111
    with sqlite3.connect(db) as con:
        kept = con.execute("SELECT item_key, timestamp FROM pass_timings "
                           "WHERE verdict IN ('accepted', 'scaled')").fetchall()
    rerun = json.loads(cli("profile", *args[4:], check=True).stdout)["devices"][0]
    assert rerun["steady"]["resumed_passes"] == accepted
    _all_blocks_once(db)
    with sqlite3.connect(db) as con:
        rows = set(con.execute("SELECT item_key, timestamp FROM pass_timings").fetchall())
    assert set(kept) <= rows  # the killed run's passes are still there, as they were


@pytest.mark.slow
def test_ctrl_c_stops_two_workers_cleanly_and_the_rerun_resumes(tmp_path, cli):
    db = tmp_path / "int.db"
    args = ["profile", "--space", "fbnet-cifar", "--device", DEV, "--device", "cpu:torch?threads=1&max_seconds=0.1",
            "--store", str(db), "--limit", "30", "--retries", "0", "--json"]
    proc = subprocess.Popen([sys.executable, "-m", "hwnas", *args], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 300
    while _count(db) < 5 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert proc.poll() is None, "the profile finished before Ctrl-C"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "interrupted" in err and "Traceback" not in err
    stopped_at = _count(db)
    assert stopped_at < 60
    rerun = json.loads(cli(*args, check=True).stdout)["devices"]
    assert sum(d["skipped"] for d in rerun) == stopped_at
    assert all(d["skipped"] + d["measured"] == 30 for d in rerun)
    with Store(db) as st:
        assert len(st.blocks()) == 60 and st.integrity_check() == "ok"
