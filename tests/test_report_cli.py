"""`hwnas report` as a user runs it: a real store, model files and run directories; bad input."""

from __future__ import annotations

import json
import pickle
import sqlite3

import pytest

from hwnas.report.render import ReportData
from hwnas.report.sample import sample_data
from hwnas.search.space import BlockSpec, get_space


@pytest.fixture(scope="module")
def store_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("store") / "hwnas.db"
    fill_store(path, sample_data())
    return path


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    space = get_space("fbnet-cifar")
    for i, uri in enumerate(("cpu-a:onnxruntime?threads=1", "cpu-b")):
        d = root / f"run{i}"
        d.mkdir()
        ops = [space.candidates[(j + i) % 9] for j in range(space.num_layers)]
        (d / "arch.json").write_text(json.dumps({"space": "fbnet-cifar", "arch": "-".join(ops),
                                                 "predicted_ms": 2.0 + i, "device": uri, "target_ms": 2.0}))
        (d / "history.json").write_text(json.dumps([{"epoch": e, "val_accuracy": 0.6 + 0.1 * e,
                                                     "expected_latency_ms": 3 - 0.1 * e} for e in range(3)]))
        (d / "candidates.json").write_text(json.dumps([{"arch": "-".join(ops), "predicted_ms": 2.2, "accuracy": 0.7}]))
    return root


def fill_store(path, data: ReportData) -> None:
    """Write a ReportData's devices, blocks and networks into a real `hwnas.profiler.store.Store`."""
    from hwnas.profiler.store import Store  # tests may wire any two parts; the report package may not

    with Store(path) as store:
        for _, d in data.devices.iterrows():
            store.add_device(d["device"], d["device_uri"], d["info"], runtime="onnxruntime", threads=1)
        for _, r in data.blocks.iterrows():
            thermal = r["thermal_after"]
            stats = {**r.to_dict(), "thermal_after": json.loads(thermal) if isinstance(thermal, str) else thermal}
            store.put_block(r["device"], BlockSpec.from_json(r["block_json"]), stats)
        for _, r in data.networks.iterrows():
            store.put_network(r["device"], r["space"], r["arch"], r.to_dict())


def test_report_html_with_two_devices_runs_and_json_summary(cli, store_path, run_dir, tmp_path):
    out = tmp_path / "report.html"
    proc = cli("report", "--store", str(store_path), "--device", "cpu-a:onnxruntime?threads=1", "--device", "cpu-b",
               "--runs", str(run_dir), "--out", str(out), "--json", check=True)
    summary = json.loads(proc.stdout)
    assert summary["devices"] == ["cpu-a", "cpu-b"] and summary["space"] == "fbnet-cifar"
    assert summary["runs"] == ["run0", "run1"]
    page = out.read_text()
    assert "Which blocks are relatively cheap where" in page and "Chosen blocks per layer" in page
    assert page.count("<img ") == 5


def test_report_markdown_from_suffix(cli, store_path, tmp_path):
    out = tmp_path / "report.md"
    proc = cli("report", "--store", str(store_path), "--out", str(out), check=True)
    assert "report written" in proc.stdout
    assert out.read_text().startswith("# hwnas device comparison")


def test_report_with_a_fitted_model_shows_predictor_accuracy(cli, store_path, tmp_path):
    from hwnas.latency_models.io import save_model
    from hwnas.latency_models.network import fit_latency_model
    from hwnas.profiler.store import Store

    with Store(store_path, create=False) as store:
        model = fit_latency_model(store.blocks("cpu-a"), store.networks("cpu-a"), "fbnet-cifar", "cpu-a")
    path = save_model(model, tmp_path / "a.latency.json")
    out = tmp_path / "r.html"
    cli("report", "--store", str(store_path), "--device", "cpu-a", "--model", str(path), "--out", str(out), check=True)
    page = out.read_text()
    section = page.split('id="predictors"')[1].split('id="search"')[0]
    assert "a.latency.json" in section and "<img " in section and "±10%" in section


def _fails(proc, *words):
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:")
    for w in words:
        assert w in proc.stderr


def test_missing_store(cli, tmp_path):
    out = tmp_path / "r.html"
    _fails(cli("report", "--store", str(tmp_path / "none.db"), "--out", str(out)), "store not found")
    assert not out.exists()


def test_empty_store(cli, tmp_path):
    from hwnas.profiler.store import Store

    Store(tmp_path / "empty.db").close()
    out = tmp_path / "r.html"
    _fails(cli("report", "--store", str(tmp_path / "empty.db"), "--out", str(out)), "holds no measurements")
    assert not out.exists()


def test_unknown_device_names_the_known_ones(cli, store_path, tmp_path):
    _fails(cli("report", "--store", str(store_path), "--device", "adb://nope", "--out", str(tmp_path / "r.html")),
           "adb://nope", "cpu-a")


def test_device_without_measurements_keeps_the_old_report(cli, tmp_path):
    from hwnas.profiler.store import Store

    path = tmp_path / "s.db"
    fill_store(path, sample_data())
    with Store(path) as store:
        store.add_device("idle", "cpu:torch", {"cpu": "x"})
    out = tmp_path / "r.html"
    out.write_text("previous report")
    _fails(cli("report", "--store", str(path), "--device", "cpu-a", "--device", "idle", "--out", str(out)),
           "no measurements", "idle")
    assert out.read_text() == "previous report"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_a_device_with_networks_but_no_blocks_is_reported_with_a_warning(cli, tmp_path):
    from hwnas.profiler.store import Store

    data = sample_data(with_runs=False, with_model=False)
    path = tmp_path / "s.db"
    fill_store(path, data)
    with Store(path) as store:
        store.add_device("phone", "adb://PHONE1", {"model": "Pixel"})
        for _, r in data.networks.iterrows():
            store.put_network("phone", r["space"], r["arch"], {**r.to_dict(), "median_ms": 3 * r["median_ms"]})
    out = tmp_path / "r.md"
    proc = cli("report", "--store", str(path), "--device", "cpu-a", "--device", "adb://PHONE1", "--out", str(out),
               check=True)
    assert "adb://PHONE1: whole networks only" in proc.stdout + proc.stderr
    page = out.read_text()
    assert "| adb://PHONE1 | phone | 0 |" in page and page.count("| adb://PHONE1 |") >= 2  # devices and networks


def test_store_of_a_newer_schema(cli, tmp_path):
    path = tmp_path / "new.db"
    fill_store(path, sample_data(with_model=False, with_runs=False))
    with sqlite3.connect(path) as db:
        db.execute("UPDATE meta SET value='99' WHERE key='schema_version'")
    out = tmp_path / "r.html"
    _fails(cli("report", "--store", str(path), "--out", str(out)), "schema version 99")
    assert not out.exists()


def test_pickled_model_is_refused(cli, store_path, tmp_path):
    bad = tmp_path / "m.latency.json"
    bad.write_bytes(pickle.dumps({"a": 1}))
    out = tmp_path / "r.html"
    _fails(cli("report", "--store", str(store_path), "--model", str(bad), "--out", str(out)), "pickle")
    assert not out.exists()


@pytest.mark.parametrize("args,words", [
    (["--format", "pdf"], ["unknown --format"]),
    (["--runs", "/nonexistent/runs"], ["runs path not found"]),
])
def test_bad_options(cli, store_path, tmp_path, args, words):
    _fails(cli("report", "--store", str(store_path), "--out", str(tmp_path / "r.html"), *args), *words)


def test_out_directory_missing(cli, store_path, tmp_path):
    _fails(cli("report", "--store", str(store_path), "--out", str(tmp_path / "no" / "r.html")), "does not exist")


def test_broken_run_directory(cli, store_path, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "arch.json").write_text("{not json")
    _fails(cli("report", "--store", str(store_path), "--runs", str(run), "--out", str(tmp_path / "r.html")),
           "arch.json")
