"""The store under damage and sharing: quick_check on open, read-only opening, pending retries, leases.

Uses a scripted device (`crashfake`) whose timings are made up; the store,
schedule, leases and worker loop around it are the code a user runs.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import threading
import time

import pytest
from scripted_device import scripted_device

from hwnas.devices.registry import register_device
from hwnas.profiler.enumerate import block_items
from hwnas.profiler.sharing import claim, hardware_lock, pending_keys, release
from hwnas.profiler.store import Store, StoreError
from hwnas.profiler.worker import run_device
from hwnas.search.space import get_space

#: which keys never settle (the schedule retries, then flags them) and how long each measurement takes
SCRIPT: dict = {"unsettled": set(), "delay": 0.0}
UNSETTLED: set[str] = SCRIPT["unsettled"]


CrashFake = scripted_device("crashfake", SCRIPT)


register_device("crashfake")(CrashFake)


@pytest.fixture(autouse=True)
def _reset():
    UNSETTLED.clear()
    SCRIPT["delay"] = 0.0
    yield


@pytest.fixture
def items():
    return block_items(get_space("fbnet-cifar").unique_blocks()[:10])


def _digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _fill(path, items) -> None:
    with Store(path) as st:
        run_device("crashfake:rt", st, items)


def test_damaged_store_is_refused_on_open_and_left_as_it_was(tmp_path, items):
    path = tmp_path / "s.db"
    with Store(path) as st:  # enough rows to span several pages
        for _ in range(5):
            run_device("crashfake:rt", st, items, remeasure=True)
        st._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    data = bytearray(path.read_bytes())
    assert len(data) >= 3 * 4096
    data[4096:8192] = os.urandom(4096)  # 4 KiB of random bytes in the middle, as the issue found
    path.write_bytes(bytes(data))
    before = _digest(path)
    for readonly in (False, True):
        with pytest.raises(StoreError, match="damaged|not a usable"):
            Store(path, readonly=readonly)
    assert _digest(path) == before


def test_readonly_open_writes_nothing_into_an_empty_or_foreign_file(tmp_path):
    empty = tmp_path / "empty.db"
    empty.write_bytes(b"")
    with pytest.raises(StoreError, match="empty"):
        Store(empty, create=False, readonly=True)
    assert empty.stat().st_size == 0
    foreign = tmp_path / "foreign.db"
    with sqlite3.connect(foreign) as db:
        db.execute("CREATE TABLE t (x)")
    before = _digest(foreign)
    with pytest.raises(StoreError, match="another program"):
        Store(foreign, readonly=True)
    assert _digest(foreign) == before


def test_readonly_open_reads_a_store_whose_file_and_directory_are_read_only(tmp_path, items):
    folder = tmp_path / "ro"
    folder.mkdir()
    path = folder / "s.db"
    _fill(path, items)
    before = _digest(path)
    path.chmod(0o444)
    folder.chmod(0o555)
    try:
        with Store(path, readonly=True) as st:
            assert len(st.blocks()) == len(items) and st.integrity_check() == "ok"
    finally:
        folder.chmod(0o755)
        path.chmod(0o644)
    assert _digest(path) == before


def test_an_unsettled_try_is_in_the_store_at_once_and_marked_for_retry(tmp_path, items):
    """The plain loop (`Steadiness.off()`): an unsettled try is a row at once, marked pending.

    The default steady loop keeps every pass in the store's pass history as it is taken (tests/test_steady*).
    """
    from hwnas.profiler.steady import Steadiness

    UNSETTLED.update(i.key for i in items[:3])
    path = tmp_path / "s.db"
    seen: list[set[str]] = []

    def watch(progress):  # what the store holds while the run is still going
        if progress.round == 2 and not seen:
            with Store(path, readonly=True) as other:
                seen.append(pending_keys(other, other.devices()["device"].iloc[0]))

    with Store(path) as st:
        summary = run_device("crashfake:rt", st, items, on_progress=watch, steadiness=Steadiness.off())
        identity = summary.identity
        assert seen and seen[0] == {i.key for i in items[:3]}  # written before the retry round began
        assert pending_keys(st, identity) == set()  # the final (flagged) rows cleared the marks
        df = st.blocks(identity)
    assert len(df) == len(items) and df["flagged"].sum() == 3


def test_pending_items_are_measured_again_on_the_next_run(tmp_path, items):
    path = tmp_path / "s.db"
    with Store(path) as st:
        identity = run_device("crashfake:rt", st, items).identity
        from hwnas.profiler.sharing import mark_pending

        mark_pending(st, identity, items[0].key)  # as a run killed between its rounds leaves it
        again = run_device("crashfake:rt", st, items)
        assert again.measured == 1 and again.skipped == len(items) - 1
        assert pending_keys(st, identity) == set()


def test_leases_split_one_plan_between_two_owners(tmp_path, items):
    with Store(tmp_path / "s.db") as st:
        assert claim(st, "d", "k1", owner="hostA:1")
        assert not claim(st, "d", "k1", owner="hostB:2")  # held by a live owner elsewhere
        release(st, "d", "k1", owner="hostA:1")
        assert claim(st, "d", "k1", owner="hostB:2")
        assert claim(st, "d", "k2", owner="hostB:2", ttl=-1)  # expired at once
        assert claim(st, "d", "k2", owner="hostA:1")


def test_a_lease_of_a_dead_process_on_this_host_is_taken_over_at_once(tmp_path):
    import socket
    import subprocess

    proc = subprocess.Popen(["true"])
    proc.wait()  # a pid that no longer runs
    with Store(tmp_path / "s.db") as st:
        assert claim(st, "d", "k", owner=f"{socket.gethostname()}:{proc.pid}")
        assert claim(st, "d", "k")  # this process: the dead owner's lease does not hold


def test_hardware_lock_serialises_two_holders(tmp_path):
    path = tmp_path / "s.db"
    order: list[str] = []
    with Store(path) as a, Store(path) as b:
        with hardware_lock(a, "hw", owner="hostA:1"):
            def other():
                with hardware_lock(b, "hw", owner="hostB:2"):
                    order.append("b")
            t = threading.Thread(target=other)
            t.start()
            time.sleep(0.3)
            order.append("a done")
        t.join(10)
    assert order == ["a done", "b"]


def test_two_workers_on_one_store_measure_each_item_once(tmp_path, items):
    """Two runs of one plan at once (threads standing in for processes: distinct owners) split it.

    Each item takes 0.1 s: the steady loop claims an item when it first measures it, so one pass
    must outlast the other run's start-up (its reference baseline) for both to get a share.
    """
    import hwnas.profiler.sharing as sharing

    SCRIPT["delay"] = 0.1
    path = tmp_path / "s.db"
    owners = {}
    real_owner = sharing.owner_id

    def owner_for_thread() -> str:
        return owners.get(threading.get_ident(), real_owner())

    summaries = []

    def work(name):
        owners[threading.get_ident()] = f"{name}:{os.getpid()}"
        with Store(path) as st:
            summaries.append(run_device("crashfake:rt", st, items))

    sharing.owner_id = owner_for_thread
    try:
        threads = [threading.Thread(target=work, args=(n,)) for n in ("worker-a", "worker-b")]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    finally:
        sharing.owner_id = real_owner
    assert sum(s.measured for s in summaries) == len(items)
    assert all(s.measured > 0 for s in summaries)
    with Store(path, readonly=True) as st:
        assert len(st.blocks()) == len(items)


@pytest.mark.slow
@pytest.mark.integration
def test_two_profile_processes_split_one_plan(tmp_path):
    """The real CLI twice at once on one store and one device: every item measured by exactly one of them."""
    import json
    import subprocess
    import sys

    uri = "cpu:onnxruntime?threads=1&max_seconds=0.05&runs=5"
    args = [sys.executable, "-m", "hwnas", "profile", "--space", "fbnet-cifar", "--device", uri, "--limit", "12",
            "--store", str(tmp_path / "two.db"), "--json"]
    procs = [subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True) for _ in range(2)]
    results = [json.loads(p.communicate(timeout=600)[0])["devices"][0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0]
    assert sum(r["measured"] for r in results) == 12  # split, never both
    with Store(tmp_path / "two.db", readonly=True) as st:
        assert len(st.blocks()) == 12
        assert st._db.execute("SELECT COUNT(*) FROM leases").fetchone()[0] == 0
        assert st._db.execute("SELECT COUNT(*) FROM hw_locks").fetchone()[0] == 0
