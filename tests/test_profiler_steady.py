"""The steady profile loop against a device whose speed changes: passes, reference, re-queue, scaling.

`SpeedDevice` is a real `Device` (scheme `speedfake`) whose every item has a
true latency (from its key) multiplied by the device's current slowdown; the
slowdown follows a script over the number of measurements taken, so a test
says exactly when the device halves its speed.
"""

from __future__ import annotations

import hashlib
import threading

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hwnas.devices.base import Device
from hwnas.devices.protocol import summarize
from hwnas.devices.registry import register_device
from hwnas.profiler import history
from hwnas.profiler.drift import DriftPolicy, SpeedCurve
from hwnas.profiler.enumerate import block_items
from hwnas.profiler.passes import combine, cost_proxy, disagree, reference_item
from hwnas.profiler.steady import Steadiness
from hwnas.profiler.store import Store
from hwnas.profiler.worker import run_device
from hwnas.search.space import get_space, parse_arch

STATE = {"spikes": {}, "odd": {}, "late": {}, "seq": {}, "fail_at": None, "keys": [], "calls": 0, "slow_from": None, "slow_until": None, "factor": 2.0, "thermal": False, "throttle": False}
_lock = threading.Lock()


_SPECS = {s.key: s for s in get_space("fbnet-cifar").unique_blocks()}


def true_ms(key: str) -> float:
    """The device's true latency at full speed: a block's grows with its size (±10% by key), a
    network's is 1.1x the sum of its blocks plus 0.05 ms, as on a real device."""
    if key.startswith("fbnet-cifar:"):
        sp = get_space("fbnet-cifar")
        return 1.1 * sum(true_ms(b.key) for b in sp.blocks(parse_arch(key.split(":", 1)[1], sp))) + 0.05
    jitter = 0.9 + int(hashlib.sha256(key.encode()).hexdigest()[:6], 16) % 200 / 1000.0
    return (0.02 + cost_proxy(_SPECS[key]) / 2e7) * jitter


class SpeedDevice(Device):
    def info(self):
        return {"cpu": "Speed fake", "hardware_id": "speedfake", "runtime": self.uri.runtime,
                "runtime_version": "1"}

    def prepare(self, artifact):
        return artifact

    def thermal(self):
        if not STATE["thermal"]:
            return None
        return {"temps_c": {"cpu": 80.0 if STATE["throttle"] else 40.0}, "throttled": STATE["throttle"]}

    def measure(self, module_or_file, input_shape=None, key=None):
        with _lock:
            n = STATE["calls"] = STATE["calls"] + 1
            STATE["keys"].append(key)
        if STATE["fail_at"] is not None and n >= STATE["fail_at"]:
            raise ConnectionResetError("device offline")
        slow = (STATE["slow_from"] is not None and n >= STATE["slow_from"]
                and (STATE["slow_until"] is None or n < STATE["slow_until"]))
        base = true_ms(key) * (STATE["factor"] if slow else 1.0) * STATE["odd"].get(key, 1.0)
        if key in STATE["late"] and STATE["keys"].count(key) > 2:  # slowed from its third timing on
            base *= STATE["late"][key]
        if key in STATE["seq"]:  # its i-th timing reads seq[i] times its value (the last one from then on)
            seq = STATE["seq"][key]
            base *= seq[min(STATE["keys"].count(key), len(seq)) - 1]
        spike = STATE["spikes"].get(key, 0)
        if spike:  # this item reads slow for its next `spike` measurements (a disturbance no reference saw)
            STATE["spikes"][key] = spike - 1 if spike > 0 else spike
            base *= 2.7
        samples = [base * (1 + 0.002 * ((i * 7) % 5 - 2)) for i in range(30)]
        return summarize(samples, warmup=2, settled=True)


register_device("speedfake")(SpeedDevice)


@pytest.fixture(autouse=True)
def _reset():
    STATE.update(spikes={}, odd={}, late={}, seq={}, fail_at=None, keys=[], calls=0, slow_from=None, slow_until=None, factor=2.0, thermal=False, throttle=False)
    yield


@pytest.fixture
def items():
    return block_items(get_space("fbnet-cifar").unique_blocks()[:40])


def _table_errors(store: Store) -> list[float]:
    df = store.blocks("speedfake")
    return [abs(row.median_ms / true_ms(row.block_key) - 1) for row in df.itertuples()]


def test_speed_halving_midway_is_detected_remeasured_and_the_table_is_true(tmp_path, items):
    """The device slows 2x a third of the way in, for good: re-queued first, then scaled by the ratio."""
    STATE["slow_from"] = 35  # after the baseline and ~30 items of pass 1
    with Store(tmp_path / "s.db") as st:
        summary = run_device("speedfake", st, items)
        assert summary.failed is None and summary.measured == len(items)
        steady = summary.steady
        assert steady["drift_events"] >= 1 and steady["requeued"] > 0 and steady["scaled"] > 0
        errors = _table_errors(st)
        assert len(errors) == len(items) and max(errors) < 0.05
        passes = history.passes(st, "speedfake")
        refs = history.references(st, "speedfake")
        assert set(passes["verdict"]) >= {"accepted", "requeued", "scaled"}
        assert (refs["ratio"].dropna() > 1.5).any() and refs["timestamp"].is_monotonic_increasing
        # every item has at least the two passes, each with its own timestamp
        accepted = passes[passes["verdict"] != "requeued"].groupby("item_key")["pass_no"].nunique()
        assert (accepted >= 2).all()


def test_a_burst_within_one_batch_is_held_then_caught_by_the_passes(tmp_path, items):
    """8 slow measurements, one reference timing off band: the batch is held, the next timing is back in
    band, so nothing is re-queued; the items the burst hit disagree with their other pass and get a third."""
    STATE.update(slow_from=20, slow_until=28)
    with Store(tmp_path / "s.db") as st:
        summary = run_device("speedfake", st, items)
        assert summary.steady["requeued"] == 0 and summary.steady["scaled"] == 0
        assert summary.steady["extra_pass_items"] > 0
        assert "hold" in set(history.references(st, "speedfake")["action"])
        assert max(_table_errors(st)) < 0.02


def test_a_slowdown_over_several_batches_is_requeued_not_scaled(tmp_path, items):
    """25 slow measurements (two reference timings off band): what was timed in it is measured again."""
    STATE.update(slow_from=20, slow_until=45)
    with Store(tmp_path / "s.db") as st:
        summary = run_device("speedfake", st, items)
        assert summary.steady["requeued"] > 0 and summary.steady["scaled"] == 0
        assert max(_table_errors(st)) < 0.02


def test_a_held_batch_is_requeued_when_the_next_timing_is_off_band_too():
    curve = SpeedCurve(DriftPolicy(band=0.1, patience=3))
    for t in range(3):
        curve.add_baseline(t, 1.0)
    assert curve.judge(3, 1.5).action == "hold"
    assert curve.judge(4, 1.5).action == "requeue"  # for the held batch too
    curve2 = SpeedCurve(DriftPolicy(band=0.1, patience=3, hold=False))
    for t in range(3):
        curve2.add_baseline(t, 1.0)
    assert curve2.judge(3, 1.5).action == "requeue"


def test_without_the_mechanisms_the_halving_lands_in_the_table(tmp_path, items):
    """The off switch runs the plain loop: the same halving then corrupts the table (the test's control)."""
    STATE["slow_from"] = 20
    with Store(tmp_path / "s.db") as st:
        summary = run_device("speedfake", st, items, steadiness=Steadiness.off())
        assert summary.steady == {}
        errors = _table_errors(st)
        assert sum(e > 0.5 for e in errors) >= 15
        assert history.passes(st).empty  # an old-style run keeps no pass history


def test_wait_policy_cools_down_instead_of_scaling(tmp_path, items):
    """Drift policy "wait" (auto's choice on phones): the device is waited for, not scaled; the wait is recorded."""
    STATE.update(thermal=True, slow_from=20, slow_until=62)
    sleeps: list[float] = []
    opts = Steadiness(max_wait_s=30.0, wait_poll_s=5.0, drift=DriftPolicy(action="wait"))
    with Store(tmp_path / "s.db") as st:
        import hwnas.profiler.steady as steady_mod

        orig = steady_mod.SteadyRun.__post_init__

        def patched(self):
            orig(self)
            self.sleep = sleeps.append
        steady_mod.SteadyRun.__post_init__ = patched
        try:
            summary = run_device("speedfake", st, items, steadiness=opts)
        finally:
            steady_mod.SteadyRun.__post_init__ = orig
        assert summary.steady["scaled"] == 0 and summary.steady["waited_s"] > 0 and sleeps
        assert max(_table_errors(st)) < 0.02
        assert "cooling" in set(history.references(st)["action"])


def test_speed_curve_verdicts():
    curve = SpeedCurve(DriftPolicy(band=0.05, patience=2))
    for t in range(3):
        curve.add_baseline(t, 1.0)
    assert curve.judge(3, 1.02).action == "accept"
    assert curve.judge(4, 1.5).action == "hold"  # one timing off band: the next decides
    v = curve.judge(6, 1.5)  # still off, at one level for `patience` timings: scaled (the held batch too)
    assert v.action == "accept" and v.persistent and v.scale == pytest.approx(1.5)
    assert curve.judge(7, 1.0).action == "requeue"  # back, but the batch began slow
    assert curve.judge(8, 1.0).action == "accept"
    assert "1.00x" in curve.line()


@given(st.lists(st.floats(0.001, 1000.0), min_size=1, max_size=6), st.floats(0.0, 0.5))
def test_combine_lies_between_the_fastest_pass_and_half_the_agreement_bound_above_it(values, bound):
    c = combine(values, bound)
    assert min(values) <= c <= min(values) * (1 + bound / 2) * (1 + 1e-12)
    assert combine(values) == min(values)


def test_combine_and_disagree():
    assert combine([1.1, 1.0]) == pytest.approx(1.0)  # load only slows: the fastest pass
    assert combine([1.1, 1.0], 0.05) == pytest.approx(1.0)  # the second disagrees: still the fastest
    assert combine([1.02, 1.0], 0.05) == pytest.approx(1.01)  # two agreeing passes: their mean
    assert combine([3.0, 1.02, 1.0], 0.05) == pytest.approx(1.01)  # a disturbed third pass is left out
    with pytest.raises(ValueError):
        combine([])
    assert disagree([1.0, 1.2], 0.05) and not disagree([1.0, 1.03], 0.05)
    assert not disagree([1.0, 1.02, 3.0], 0.05)  # one disturbed pass among agreeing ones is outvoted


def test_reference_is_a_median_sized_block(items):
    ref = reference_item(items)
    assert ref is not None and ref.spec.op != "skip"


def test_old_store_without_history_tables_still_reads(tmp_path):
    with Store(tmp_path / "old.db") as st:
        assert history.passes(st).empty and history.references(st).empty


def test_interrupted_steady_run_resumes_from_its_accepted_passes(tmp_path, items):
    """A device lost mid-pass: the passes already accepted are kept and not measured again."""
    STATE["fail_at"] = 60
    with Store(tmp_path / "s.db") as st:
        first = run_device("speedfake", st, items)
        assert first.failed and "device offline" in first.failed
        accepted = set(history.passes(st)["item_key"][history.passes(st)["verdict"] == "accepted"])
        assert accepted
        STATE.update(spikes={}, fail_at=None, keys=[])
        second = run_device("speedfake", st, items)
        assert second.failed is None and second.measured == len(items)
        assert second.steady["resumed_passes"] >= len(accepted)
        ref = second.steady["reference"]
        remeasured = [k for k in STATE["keys"] if k != ref]
        assert len(remeasured) < 2 * len(items)  # fewer than two fresh passes over everything
        assert max(_table_errors(st)) < 0.02


def _nets(n: int = 8):
    from hwnas.profiler.enumerate import arch_items, random_archs

    sp = get_space("fbnet-cifar")
    return arch_items(sp, random_archs(sp, n, seed=3))


def test_network_at_2_7x_its_prediction_is_remeasured_before_it_is_believed(tmp_path):
    """Both passes of one network read 2.7x (they agree, so no extra pass): the self-check re-measures it."""
    blocks = block_items(get_space("fbnet-cifar").unique_blocks())
    nets = _nets()
    STATE["spikes"] = {nets[2].key: 2}
    with Store(tmp_path / "s.db") as st:
        summary = run_device("speedfake", st, blocks + nets)
        assert summary.steady["selfcheck_suspects"] == [nets[2].key]
        assert summary.steady["selfcheck_confirmed"] == []
        row = st.networks("speedfake").set_index("arch").loc[nets[2].arch_text]
        assert row["median_ms"] == pytest.approx(true_ms(nets[2].key), rel=0.02) and not row["flagged"]
        rechecked = history.passes(st).query("item_key == @nets[2].key")
        assert len(rechecked) == 4  # two passes, then two more after the self-check


def test_network_that_stays_2_7x_is_flagged_so_fits_leave_it_out(tmp_path):
    blocks = block_items(get_space("fbnet-cifar").unique_blocks())
    nets = _nets()
    STATE["spikes"] = {nets[5].key: -1}  # for ever
    with Store(tmp_path / "s.db") as st:
        summary = run_device("speedfake", st, blocks + nets)
        assert summary.steady["selfcheck_confirmed"] == [nets[5].key]
        df = st.networks("speedfake").set_index("arch")
        assert df.loc[nets[5].arch_text, "flagged"] and df["flagged"].sum() == 1
        assert summary.flagged == [nets[5].key]  # the summary counts what the self-check flagged
    from hwnas.commands.profile import _summary_lines

    lines = _summary_lines("fbnet-cifar", tmp_path / "s.db", [summary])
    assert "1 flagged (fits leave them out)" in lines[1]
    assert next(x for x in lines if "self-check" in x).endswith("0 kept, as the new timing reproduced the first; 1 flagged")


def test_block_far_from_its_family_is_remeasured(tmp_path):
    blocks = block_items(get_space("fbnet-cifar").unique_blocks())
    victim = next(b for b in blocks if b.spec.op == "ir" and b.spec.kernel == 5 and b.spec.expansion == 6)
    STATE["spikes"] = {victim.key: 2}
    with Store(tmp_path / "s.db") as st:
        summary = run_device("speedfake", st, blocks)
        assert victim.key in summary.steady["selfcheck_suspects"]
        row = st.blocks("speedfake").set_index("block_key").loc[victim.key]
        assert row["median_ms"] == pytest.approx(true_ms(victim.key), rel=0.02)


def _odd_block():
    blocks = block_items(get_space("fbnet-cifar").unique_blocks())
    return blocks, next(b for b in blocks if b.spec.op == "ir" and b.spec.kernel == 5 and b.spec.expansion == 6)


def test_block_whose_remeasurement_reproduces_it_is_kept_not_flagged(tmp_path):
    """A block truly 2.7x its family's trend (an unusual shape) reads the same when measured again: believed."""
    blocks, victim = _odd_block()
    STATE["spikes"] = {victim.key: -1}  # every timing, before and after the self-check
    with Store(tmp_path / "s.db") as st:
        summary = run_device("speedfake", st, blocks)
        assert victim.key in summary.steady["selfcheck_suspects"]
        assert summary.steady["selfcheck_reproduced"] == [victim.key]
        assert victim.key not in summary.steady["selfcheck_confirmed"] and victim.key not in summary.flagged
        row = st.blocks("speedfake").set_index("block_key").loc[victim.key]
        assert row["median_ms"] == pytest.approx(2.7 * true_ms(victim.key), rel=0.02) and not row["flagged"]
        assert len(history.passes(st).query("item_key == @victim.key")) == 4  # it was measured again
    from hwnas.commands.profile import _summary_lines

    line = next(x for x in _summary_lines("fbnet-cifar", tmp_path / "s.db", [summary]) if "self-check" in x)
    assert "1 kept, as the new timing reproduced the first; 0 flagged" in line


def test_block_that_moves_when_measured_again_and_stays_far_is_flagged(tmp_path):
    """2.7x in its passes, 2x in the self-check's: neither timing confirms the other, so fits leave it out."""
    blocks, victim = _odd_block()
    STATE["spikes"], STATE["late"] = {victim.key: 2}, {victim.key: 2.0}
    with Store(tmp_path / "s.db") as st:
        summary = run_device("speedfake", st, blocks)
        assert summary.steady["selfcheck_confirmed"] == [victim.key]
        assert summary.steady["selfcheck_reproduced"] == []
        assert summary.flagged == [victim.key]
        row = st.blocks("speedfake").set_index("block_key").loc[victim.key]
        assert row["flagged"] and row["median_ms"] == pytest.approx(2.0 * true_ms(victim.key), rel=0.02)


def test_block_flagged_by_its_passes_and_settled_by_the_self_check_is_counted_as_stored(tmp_path):
    """Its passes disagree to the last (flagged), it sits 3x its trend, and the self-check's timings
    agree: the store keeps it unflagged, and the summary must not count it among the flagged."""
    blocks, victim = _odd_block()
    STATE["odd"] = {victim.key: 3.0}
    STATE["seq"] = {victim.key: [1.0, 1.3, 1.3, 1.3, 1.0]}  # passes 1-4, then the self-check's
    with Store(tmp_path / "s.db") as st:
        summary = run_device("speedfake", st, blocks)
        assert victim.key in summary.steady["selfcheck_suspects"]
        assert len(history.passes(st).query("item_key == @victim.key")) >= 6  # four passes, then re-measured
        row = st.blocks("speedfake").set_index("block_key").loc[victim.key]
        assert not row["flagged"] and row["median_ms"] == pytest.approx(3.0 * true_ms(victim.key), rel=0.02)
        assert summary.flagged == [] and int(st.blocks("speedfake")["flagged"].sum()) == 0


def test_report_shows_the_drift_curve_and_the_repeated_measurements(tmp_path, items):
    from hwnas.reporting import collect
    from hwnas.report.render import render_report

    STATE["slow_from"] = 35
    with Store(tmp_path / "s.db") as st:
        run_device("speedfake", st, items)
    data, _ = collect(tmp_path / "s.db", [], [], [], "fbnet-cifar")
    text = render_report(data, "md")
    section = text.split("## Device drift and repeated measurements", 1)[1].split("## Predictor accuracy")[0]
    row = next(line for line in section.splitlines() if line.startswith("| speedfake"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert int(cells[1]) > 5 and cells[2].endswith("2.00") and int(cells[4]) > 0 and int(cells[5]) > 0
    assert "![reference timing over the baseline" in section
    assert section.count("| speedfake") > 2  # the device row plus repeated items


def test_network_only_profile_takes_its_reference_from_the_space(tmp_path):
    """Timing a network as the reference would double the profile: a block of the networks' space is used."""
    nets = _nets(3)
    ref = reference_item(nets)
    assert ref is not None and ref.kind == "block" and ref.spec.op != "skip"
    with Store(tmp_path / "s.db") as st:
        summary = run_device("speedfake", st, nets)
        assert summary.measured == 3 and summary.steady["reference"] == ref.key


def test_a_jittering_reference_is_never_taken_for_a_new_speed():
    """Foreign load makes the reference jump about: re-queue (then accept unchecked), never scale by it."""
    curve = SpeedCurve(DriftPolicy(band=0.06, patience=3))
    for t in range(3):
        curve.add_baseline(t, 1.0)
    verdicts = [curve.judge(3 + i, r) for i, r in enumerate([1.3, 1.35, 1.8, 1.25, 2.1, 1.4, 1.3])]
    assert verdicts[0].action == "hold"
    assert all(v.action == "requeue" and v.scale == 1.0 for v in verdicts[1:])
    steady = [curve.judge(20 + i, 1.6) for i in range(3)]
    assert steady[-1].action == "accept" and steady[-1].scale == pytest.approx(1.6)  # then a real step


def test_a_baseline_taken_while_slowed_moves_down_instead_of_scaling():
    """Load only slows: a reference faster than the baseline moves the baseline, never scales."""
    curve = SpeedCurve(DriftPolicy(band=0.06, patience=3))
    for t in range(3):
        curve.add_baseline(t, 1.2)  # taken during a burst
    vs = [curve.judge(3 + i, 1.0) for i in range(4)]
    assert vs[0].action == "requeue" and "baseline moved" in vs[0].reason
    assert curve.baseline_ms == pytest.approx(1.0) and all(v.action == "accept" and v.scale == 1.0 for v in vs[1:])


def test_each_pass_gets_its_share_of_the_timing_budget():
    """p passes: 1/p of the minimum time, of the cap and of the minimum runs (at least 3), sqrt(p)
    times the CI target (their median has about the spread of one full timing), unless the URI
    sets its own."""
    from hwnas.devices.protocol import Policy
    from hwnas.profiler.steady import measure_options
    from hwnas.profiler.worker import profile_uri

    share = measure_options(Steadiness(passes=2), 0.1, 1.0, 0.01, 10)
    assert share == pytest.approx({"min_seconds": 0.05, "max_seconds": 0.5, "target_ci": 0.01 * 2 ** 0.5,
                                   "min_runs": 5})
    assert measure_options(Steadiness(passes=4), 0.1, 1.0, 0.01, 10)["min_runs"] == 3  # never below 3 a pass
    assert measure_options(Steadiness.off(), 0.1, 1.0, 0.01, 10) == {}
    policy = Policy.from_uri(profile_uri("cpu:onnxruntime?threads=1", pass_share=share))
    assert policy.min_seconds == pytest.approx(0.05) and policy.target_rel_ci == pytest.approx(0.01414, rel=1e-3)
    assert policy.min_runs == 5 and policy.max_runs == Policy.max_runs
    capped = Policy.from_uri(profile_uri("cpu:onnxruntime?max_runs=4", pass_share=share))  # the user's cap holds
    assert capped.max_runs == 4 and capped.min_runs == 4
    own = Policy.from_uri(profile_uri("cpu:onnxruntime?min_seconds=0.2&target_ci=0.02", pass_share=share))
    assert own.min_seconds == pytest.approx(0.2) and own.target_rel_ci == pytest.approx(0.02)
    fixed = Policy.from_uri(profile_uri("cpu:onnxruntime?runs=7", pass_share=share))
    assert fixed.min_runs == fixed.max_runs == 7 and fixed.min_seconds == 0.0


def test_a_self_check_remeasurement_slowed_by_load_does_not_replace_a_faster_believed_value(tmp_path):
    """A block that really is far from its family is a suspect; if foreign load slows its
    re-measurement, the faster value of its passes stays (load only slows a device)."""
    blocks = block_items(get_space("fbnet-cifar").unique_blocks())
    victim = next(b for b in blocks if b.spec.op == "ir" and b.spec.kernel == 5 and b.spec.expansion == 6)
    STATE["odd"] = {victim.key: 3.0}
    STATE["late"] = {victim.key: 2.0}
    with Store(tmp_path / "s.db") as st:
        summary = run_device("speedfake", st, blocks)
        assert victim.key in summary.steady["selfcheck_suspects"]
        assert STATE["keys"].count(victim.key) > 2  # it was measured again
        row = st.blocks("speedfake").set_index("block_key").loc[victim.key]
        assert row["median_ms"] == pytest.approx(3.0 * true_ms(victim.key), rel=0.02)


def test_resumed_passes_that_disagree_with_this_run_are_set_aside_not_flagged(tmp_path, items):
    """An interrupted process took its passes 8% faster than the resumed one runs (its own state):
    the resumed run measures those items afresh and stores its own speed, flagging none of them."""
    STATE["fail_at"] = len(items) + 20  # lost early in pass 2
    with Store(tmp_path / "s.db") as st:
        assert run_device("speedfake", st, items).failed
        resumed = set(history.passes(st).query("verdict == 'accepted'")["item_key"])
        STATE.update(spikes={}, fail_at=None, keys=[], calls=0, slow_from=1, factor=1.08)  # this process: 8% slower
        second = run_device("speedfake", st, items)
        assert second.failed is None and second.measured == len(items)
        assert second.flagged == []
        assert second.steady["resumed_passes"] >= len(resumed) > 0
        assert second.steady["resumed_dropped"] >= len(items) - 25  # all but those whose passes were all resumed
        # Each item at one process's speed: the first's where both its passes came from there, else
        # this run's (the mix, the fastest of a 1.00 and a 1.08 pass, is what it stored before).
        both = set(history.passes(st).query("verdict == 'accepted' and pass_no == 2")["item_key"]) & resumed
        for row in st.blocks("speedfake").itertuples():
            speed = 1.0 if row.block_key in both and row.block_key not in STATE["keys"] else 1.08
            assert row.median_ms == pytest.approx(speed * true_ms(row.block_key), rel=0.02)


def test_self_check_measures_again_an_item_whose_passes_were_all_resumed(tmp_path):
    """An item finished from an interrupted run's passes alone is still this run's to re-check
    (it was skipped as "already stored" by this very run, and counted so)."""
    nets = _nets()
    plan = block_items(get_space("fbnet-cifar").unique_blocks()) + nets
    STATE["spikes"] = {nets[2].key: 2}  # both of its passes read 2.7x
    with Store(tmp_path / "s.db") as st:
        run_device("speedfake", st, plan, steadiness=Steadiness(selfcheck=False))
        # As if the first process were lost after accepting its two passes and before storing it:
        st._db.execute("DELETE FROM networks WHERE arch = ?", (nets[2].arch_text,))
        st._db.commit()
        STATE.update(keys=[], calls=0)
        second = run_device("speedfake", st, plan)
        assert second.skipped == len(plan) - 1 and second.measured == 1 and not second.failed
        assert second.steady["resumed_passes"] == 2
        assert second.steady["selfcheck_suspects"] == [nets[2].key]
        assert nets[2].key in STATE["keys"]  # measured again by the self-check, not skipped as stored
        row = st.networks("speedfake").set_index("arch").loc[nets[2].arch_text]
        assert row["median_ms"] == pytest.approx(true_ms(nets[2].key), rel=0.02) and not row["flagged"]
