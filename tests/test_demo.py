"""`hwnas demo`: the plan it runs, its bad input, and (slow) the whole loop in --quick mode."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from hwnas.commands.demo import COMPARE_DEVICE, DEMO_DEVICE, SPACE, Settings, fashion_available, plan


def test_plan_runs_the_whole_loop_in_order_with_the_real_commands(tmp_path):
    steps = plan(tmp_path, Settings.for_mode(quick=False, data="digits"))
    assert [s.key for s in steps] == ["profile", "compare1", "networks", "fit", "evaluate", "search", "train",
                                      "baseline", "measure", "report"]
    assert [s.name for s in steps] == ["profile", "profile", "profile", "fit", "evaluate", "search", "train",
                                       "train", "profile", "report"]
    profile = steps[0].argv()
    assert profile[:3] == ["profile", "--space", SPACE]
    assert profile[profile.index("--device") + 1].startswith(DEMO_DEVICE + "&max_seconds=")
    assert steps[1].argv()[steps[1].argv().index("--device") + 1].startswith(COMPARE_DEVICE + "&")
    search = steps[5].argv()
    assert search[search.index("--data") + 1] == "digits"
    assert search[search.index("--paths") + 1] == "all" and search[search.index("--width-mult") + 1] == "0.5"
    train = steps[6].argv()
    assert train[train.index("--width-mult") + 1] == "0.5"  # the searched and the baseline: one recipe
    assert search[search.index("--latency") + 1] == str(tmp_path / "cpu.latency.json")
    assert "--resume" not in search
    (tmp_path / "runs" / "cpu-onnxruntime").mkdir(parents=True)
    (tmp_path / "runs" / "cpu-onnxruntime" / "checkpoint.pt").write_bytes(b"")
    assert steps[5].argv()[-1] == "--resume"  # a rerun continues the search it finds
    report = steps[-1].argv()
    assert report[report.index("--out") + 1] == str(tmp_path / "report.html")
    assert steps[-1].produces == [tmp_path / "report.html"]
    # the report compares the devices whose profile succeeded, never one that failed
    assert [report[i + 1] for i, a in enumerate(report) if a == "--device"] == [DEMO_DEVICE]
    steps[1].ok = True
    report = steps[-1].argv()
    assert [report[i + 1] for i, a in enumerate(report) if a == "--device"] == [DEMO_DEVICE, COMPARE_DEVICE]


def test_data_is_fashion_mnist_where_installed_else_digits(monkeypatch):
    import hwnas.search.idx as idx

    assert Settings.for_mode(False).data == ("fashion-mnist" if fashion_available() else "digits")
    monkeypatch.setattr(idx, "FASHION_DIR", Path("/nonexistent"))
    assert not fashion_available() and Settings.for_mode(False).data == "digits"


def test_baseline_is_a_random_architecture_near_the_searched_latency(tmp_path):
    import pandas as pd

    from hwnas.commands.demo import pick_baseline
    from hwnas.latency_models.io import save_model
    from hwnas.latency_models.network import fit_latency_model
    from hwnas.search.count import count_block
    from hwnas.search.space import get_space

    rows = [{"block_json": b.to_json(), "median_ms": 0.01 + count_block(b).macs / 1e6 * 0.002}
            for b in get_space(SPACE).unique_blocks()]
    save_model(fit_latency_model(pd.DataFrame(rows), None, SPACE, "synthetic-cpu", n_estimators=5),
               tmp_path / "m.json")
    run = tmp_path / "run"
    run.mkdir()
    (run / "arch.json").write_text(json.dumps({"space": SPACE, "arch": "-".join(["k3_e3"] * 22), "predicted_ms": 2.0}))
    record = pick_baseline(run, tmp_path / "m.json", tmp_path / "base", n=50)
    written = json.loads((tmp_path / "base" / "arch.json").read_text())
    assert written["arch"] == record["arch"] and written["arch"] != "-".join(["k3_e3"] * 22)
    assert "random baseline" in written["source"] and record["predicted_ms"] > 0

    # A search that skipped most layers lies far below uniform random networks' latencies; the
    # baseline pool spreads over depth, so a random network of that latency is still found.
    from hwnas.latency_models.io import load_model
    from hwnas.profiler.enumerate import random_archs

    space = get_space(SPACE)
    model = load_model(tmp_path / "m.json")
    shallow = ["skip"] * 16 + ["k3_e1"] * 6
    target = float(model.predict_networks(space, [tuple(shallow)])[0])
    (run / "arch.json").write_text(json.dumps({"space": SPACE, "arch": "-".join(shallow), "predicted_ms": target}))
    uniform = model.predict_networks(space, random_archs(space, 300))
    assert min(uniform) > 1.1 * target  # uniform random networks cannot match it
    record = pick_baseline(run, tmp_path / "m.json", tmp_path / "base2")
    assert abs(record["predicted_ms"] / target - 1) < 0.05 and record["arch"] != "-".join(shallow)


def test_quick_mode_does_less_work_than_the_full_demo():
    quick, full = Settings.for_mode(True), Settings.for_mode(False)
    assert quick.archs < full.archs and quick.max_seconds < full.max_seconds
    assert quick.search_epochs < full.search_epochs and quick.train_epochs <= full.train_epochs
    assert quick.compare == () and full.compare == (COMPARE_DEVICE,)


def test_measure_step_reads_the_searched_architecture(tmp_path):
    step = [s for s in plan(tmp_path, Settings.for_mode(True)) if s.key == "measure"][0]
    run = tmp_path / "runs" / "cpu-onnxruntime"
    run.mkdir(parents=True)
    (run / "arch.json").write_text(json.dumps({"space": SPACE, "arch": ["k3_e1"] * 22}))
    argv = step.argv()
    assert argv[argv.index("--archs") + 1] == "-".join(["k3_e1"] * 22)


def test_every_command_the_demo_drives_exists(tmp_path):
    from hwnas.cli import app

    have = {c.name or c.callback.__name__ for c in app.registered_commands} | {g.name for g in app.registered_groups}
    assert {step.name for step in plan(tmp_path, Settings.for_mode(True))} <= have


def test_out_that_is_a_file_is_refused(cli, tmp_path):
    target = tmp_path / "file"
    target.write_text("x")
    proc = cli("demo", "--out", str(target))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "not a folder" in proc.stderr


@pytest.mark.slow
@pytest.mark.integration
@pytest.mark.timeout(1800)
def test_quick_demo_runs_the_whole_loop_and_ends_with_the_report(cli, tmp_path):
    out = tmp_path / "demo"
    proc = cli("demo", "--quick", "--out", str(out), timeout=1200)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    assert lines[-2] == f"report: {out / 'report.html'}"
    assert re.match(r"test accuracy on (fashion-mnist|digits) .*: searched [01]\.\d{4} .* vs random baseline [01]\.\d{4}",
                    lines[-1]), lines[-1]
    for title in ("Profiling", "Fitting", "Searching", "Writing the report"):
        assert title in proc.stdout
    page = (out / "report.html").read_text()
    assert "median latency of each candidate block" in page
    assert "Search results" in page and re.search(r'<img src="data:image/png;base64,[^"]+" alt="scatter: accuracy', page)
    assert (out / "cpu.latency.json").is_file() and (out / "runs" / "cpu-onnxruntime" / "arch.json").is_file()
    assert Path(out / "demo.log").read_text().count("$ hwnas ") >= 6


def test_random_depth_archs_are_valid_in_every_space_and_spread_over_depth():
    from hwnas.commands.demo import random_depth_archs
    from hwnas.search.space import get_space, list_spaces

    for name in list_spaces():
        space = get_space(name)
        archs = random_depth_archs(space, 40, seed=1)
        assert len(archs) == 40 and all(space.check_arch(a) is not None for a in archs)
        assert random_depth_archs(space, 40, seed=1) == archs  # one seed, one pool
    cifar = get_space(SPACE)
    skips = [list(a).count("skip") for a in random_depth_archs(cifar, 200, seed=0)]
    assert min(skips) <= 2 and max(skips) >= 18  # uniform choices would give ~2-5 skips of 22
