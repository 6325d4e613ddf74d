"""The worker loop against a scripted device: resume, thermal pause, unsettled blocks, a dropped device.

These tests pin the plain one-pass loop (`Steadiness.off()`, `--passes 1 --no-reference --no-selfcheck`): the steady
loop's passes and reference are tested in test_profiler_steady.py.

`FakeDevice` is a real `Device` registered under the `fake` scheme; its
timings are made up but everything around them (store, schedule, CLI) is
the code a user runs.
"""

from __future__ import annotations

import json
import threading

import pytest

from hwnas.devices.base import Device
from hwnas.devices.registry import register_device
from hwnas.devices.protocol import summarize
from hwnas.profiler.enumerate import arch_items, block_items, random_archs
from hwnas.profiler.store import Store
from hwnas.profiler.steady import Steadiness
from hwnas.profiler.worker import ThermalGuard, run_device, run_local
from hwnas.search.space import get_space

#: knobs a test turns: fail after N measurements, report throttling N times, never settle
SCRIPT = {"fail_after": None, "hot_reads": 0, "unsettled": False}
CALLS: list[str] = []
_lock = threading.Lock()


class FakeDevice(Device):
    def info(self):
        return {"cpu": "Fake CPU", "hardware_id": f"fake-{self.uri.target or 'host'}", "cores": 2,
                "runtime": self.uri.runtime, "runtime_version": "9.9"}

    def prepare(self, artifact):
        return artifact

    def thermal(self):
        with _lock:
            if SCRIPT["hot_reads"] > 0:
                SCRIPT["hot_reads"] -= 1
                return {"temps_c": {"cpu": 90.0}, "throttled": True}
        return {"temps_c": {"cpu": 45.0}, "throttled": False}

    def measure(self, module_or_file, input_shape=None, key=None):
        with _lock:
            if SCRIPT["fail_after"] is not None and len(CALLS) >= SCRIPT["fail_after"]:
                raise ConnectionResetError("device offline")
            CALLS.append(key)
        base = 0.01 * (sum(input_shape) % 17 + 1)
        samples = [base * (1 + (i % 5) * (0.3 if SCRIPT["unsettled"] else 0.001)) for i in range(20)]
        m = summarize(samples, warmup=2, settled=not SCRIPT["unsettled"])
        m.thermal_before = m.thermal_after = self.thermal()
        return m


register_device("fake")(FakeDevice)
OFF = Steadiness.off()


@pytest.fixture(autouse=True)
def _reset():
    SCRIPT.update(fail_after=None, hot_reads=0, unsettled=False)
    CALLS.clear()
    yield


@pytest.fixture
def items():
    return block_items(get_space("fbnet-cifar").unique_blocks()[:12])


def test_run_measures_everything_once_and_resumes_with_nothing_to_do(tmp_path, items):
    with Store(tmp_path / "s.db") as st:
        first = run_device("fake:rt", st, items, steadiness=OFF)
        assert first.measured == 12 and first.skipped == 0 and first.failed is None
        assert sorted(CALLS) == sorted(i.key for i in items)
        again = run_device("fake:rt", st, items, steadiness=OFF)
        assert again.measured == 0 and again.skipped == 12 and len(CALLS) == 12
        forced = run_device("fake:rt", st, items, remeasure=True, steadiness=OFF)
        assert forced.measured == 12 and len(CALLS) == 24
        df = st.blocks("fake:rt")
        assert len(df) == 12 and df["runtime_version"].eq("9.9").all()
        assert df["thermal_after"].iloc[0]["temps_c"]["cpu"] == 45.0


def test_dropped_device_stops_cleanly_keeps_results_and_resumes(tmp_path, items):
    SCRIPT["fail_after"] = 5
    events = []
    with Store(tmp_path / "s.db") as st:
        summary = run_device("fake:rt", st, items, on_progress=events.append, steadiness=OFF)
        assert summary.failed and "device offline" in summary.failed and summary.measured == 5
        assert events[-1].state == "failed"
        assert len(st.blocks()) == 5
        SCRIPT["fail_after"] = None
        resumed = run_device("fake:rt", st, items, steadiness=OFF)
        assert resumed.skipped == 5 and resumed.measured == 7 and resumed.failed is None
        assert len(CALLS) == 12 and len(set(CALLS)) == 12
        assert st.integrity_check() == "ok"


def test_throttled_device_is_paused_until_cool(tmp_path, items):
    SCRIPT["hot_reads"] = 3
    pauses, events = [], []
    guard = ThermalGuard(pause_s=7.0, max_wait_s=100.0, sleep=pauses.append)
    with Store(tmp_path / "s.db") as st:
        # three hot readings (the first, taken at the start, is reused by the guard): three pauses
        run_device("fake:rt", st, items[:2], guard=guard, on_progress=events.append, steadiness=OFF)
        assert pauses == [7.0, 7.0, 7.0]
        assert any(e.state == "cooling" and e.temp_c == 90.0 for e in events)
        assert not st.blocks()["flagged"].any()


def test_device_stuck_hot_is_measured_anyway_and_flagged(tmp_path, items):
    SCRIPT["hot_reads"] = 1000
    guard = ThermalGuard(pause_s=1.0, max_wait_s=2.0, sleep=lambda s: None)
    with Store(tmp_path / "s.db") as st:
        summary = run_device("fake:rt", st, items[:2], guard=guard, max_attempts=1, steadiness=OFF)
        assert summary.measured == 2 and st.blocks()["flagged"].all()


def test_unsettled_blocks_come_back_in_a_later_round_then_are_flagged(tmp_path, items):
    SCRIPT["unsettled"] = True
    with Store(tmp_path / "s.db") as st:
        summary = run_device("fake:rt", st, items[:4], max_attempts=3, steadiness=OFF)
        assert summary.retried == 8 and len(summary.flagged) == 4
        # every block measured three times, in rounds: all four before any comes back
        keys = {i.key for i in items[:4]}
        assert set(CALLS[:4]) == set(CALLS[4:8]) == set(CALLS[8:]) == keys and len(CALLS) == 12
        df = st.blocks()
        assert df["flagged"].all() and not df["settled"].any()


def test_several_devices_one_store(tmp_path, items):
    with Store(tmp_path / "s.db") as st:
        summaries = run_local(["fake:rt", "fake:other"], st, items, steadiness=OFF)
        assert [s.measured for s in summaries] == [12, 12]
        devices = st.devices()
        assert sorted(devices["n_blocks"]) == [12, 12] and len(devices) == 2
        assert st.integrity_check() == "ok"


def test_unreachable_device_reported_not_raised(tmp_path, items):
    with Store(tmp_path / "s.db") as st:
        bad, good = run_local(["cpu:nosuchruntime", "fake:rt"], st, items[:3], steadiness=OFF)
        assert bad.failed and "nosuchruntime" in bad.failed
        assert good.measured == 3


def test_whole_networks_stored_beside_blocks(tmp_path):
    sp = get_space("fbnet-cifar")
    nets = arch_items(sp, random_archs(sp, 2, seed=0))
    with Store(tmp_path / "s.db") as st:
        run_device("fake:rt", st, nets, steadiness=OFF)
        df = st.networks("fake:rt")
        assert len(df) == 2 and set(df["space"]) == {"fbnet-cifar"}
        assert set(df["arch"]) == {i.arch_text for i in nets}
        assert run_device("fake:rt", st, nets, steadiness=OFF).skipped == 2


def test_cli_reports_dropped_device_in_one_line_and_resume_finishes(tmp_path, capsys):
    from hwnas.cli import main

    db = str(tmp_path / "cli.db")
    SCRIPT["fail_after"] = 3
    args = ["profile", "--space", "fbnet-cifar", "--device", "fake:rt", "--store", db, "--limit", "6", "--json", "--passes", "1", "--no-reference", "--no-selfcheck"]
    with pytest.raises(SystemExit) as exit_:
        main(args)
    out = capsys.readouterr()
    assert exit_.value.code == 2
    assert "device offline" in out.err and "run the same command again" in out.err and "Traceback" not in out.err
    assert json.loads(out.out)["devices"][0]["measured"] == 3
    SCRIPT["fail_after"] = None
    with pytest.raises(SystemExit) as exit_:
        main(args)
    assert exit_.value.code == 0
    done = json.loads(capsys.readouterr().out)["devices"][0]
    assert done["skipped"] == 3 and done["measured"] == 3


def test_cli_steadiness_knobs_reach_the_loop_and_bad_ones_exit_2(tmp_path, capsys):
    """--reference-every, --band and --agree set the steady loop; out-of-range values stop before any work."""
    from hwnas.cli import main

    db = tmp_path / "knobs.db"
    base = ["profile", "--space", "fbnet-cifar", "--device", "fake:rt", "--store", str(db), "--limit", "12", "--json"]
    with pytest.raises(SystemExit) as exit_:
        main(base + ["--reference-every", "3", "--band", "30", "--agree", "8", "--no-selfcheck"])
    assert exit_.value.code == 0
    steady = json.loads(capsys.readouterr().out)["devices"][0]["steady"]
    # 3 baseline timings, then one reference timing per 3 items of each pass (12 items, 2 passes)
    assert steady["reference_timings"] >= 3 + 2 * 12 // 3
    for bad in (["--band", "0"], ["--agree", "150"], ["--reference-every", "0"]):
        fresh = tmp_path / f"bad{bad[0]}.db"
        args = [a if a != str(db) else str(fresh) for a in base] + bad
        with pytest.raises(SystemExit) as exit_:
            main(args)
        err = capsys.readouterr().err
        assert exit_.value.code == 2 and bad[0] in err and len(err.strip().splitlines()) == 1
        assert not fresh.exists()
