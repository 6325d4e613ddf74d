"""`hwnas demo`: the plan it runs, its bad input, and (slow) the whole loop in --quick mode."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from hwnas.commands.demo import COMPARE_DEVICE, DEMO_DEVICE, SPACE, Settings, plan


def test_plan_runs_the_whole_loop_in_order_with_the_real_commands(tmp_path):
    steps = plan(tmp_path, Settings.for_mode(quick=False))
    assert [s.key for s in steps] == ["profile", "compare1", "networks", "fit", "evaluate", "search", "train",
                                      "measure", "report"]
    assert [s.name for s in steps] == ["profile", "profile", "profile", "fit", "evaluate", "search", "train",
                                       "profile", "report"]
    profile = steps[0].argv()
    assert profile[:3] == ["profile", "--space", SPACE]
    assert profile[profile.index("--device") + 1].startswith(DEMO_DEVICE + "&max_seconds=")
    assert steps[1].argv()[steps[1].argv().index("--device") + 1].startswith(COMPARE_DEVICE + "&")
    search = steps[5].argv()
    assert search[search.index("--data") + 1] == "digits"
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
    last = [line for line in proc.stdout.splitlines() if line.strip()][-1]
    assert last == f"report: {out / 'report.html'}"
    for title in ("Profiling", "Fitting", "Searching", "Writing the report"):
        assert title in proc.stdout
    page = (out / "report.html").read_text()
    assert "median latency of each candidate block" in page
    assert "Search results" in page and re.search(r'<img src="data:image/png;base64,[^"]+" alt="scatter: accuracy', page)
    assert (out / "cpu.latency.json").is_file() and (out / "runs" / "cpu-onnxruntime" / "arch.json").is_file()
    assert Path(out / "demo.log").read_text().count("$ hwnas ") >= 6
