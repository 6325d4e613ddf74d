"""`hwnas fit | predict | evaluate` as a user runs them, on a store filled with structured synthetic timings."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest

from latency_synth import block_ms, network_ms, random_archs, random_blocks
from hwnas.profiler.store import Store
from hwnas.search.space import get_space

IDENT = "Synthetic CPU|onnxruntime|1.0|threads=1|cores=all"
URI = "cpu:onnxruntime?threads=1"


def _stats(ms: float) -> dict:
    return {"n": 20, "median_ms": ms, "mean_ms": ms, "std_ms": 0.01 * ms, "p10_ms": ms, "p90_ms": ms, "min_ms": ms,
            "ci_halfwidth_ms": 0.001, "settled": True}


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    space = get_space("fbnet-cifar")
    rng = np.random.default_rng(0)
    path = tmp_path_factory.mktemp("lat") / "hwnas.db"
    specs = space.unique_blocks() + random_blocks(150, rng)
    archs = random_archs(space, 40, rng)
    with Store(path) as st:
        st.add_device(IDENT, URI, {"cpu": "Synthetic CPU", "runtime_version": "1.0"}, runtime="onnxruntime", threads=1)
        for spec, ms in zip(specs, block_ms(specs, rng)):
            st.put_block(IDENT, spec, _stats(float(ms)))
        for arch, ms in zip(archs, network_ms(space, archs, rng)):
            st.put_network(IDENT, space.name, arch, _stats(float(ms)))
        # a timing that never settled (foreign load): the profiler flags it, the models leave it out
        slow = random_archs(space, 1, np.random.default_rng(99))[0]
        st.put_network(IDENT, space.name, slow, _stats(float(network_ms(space, [slow], rng)[0] * 8)), flagged=True)
    return path


@pytest.fixture(scope="module")
def model_file(store, tmp_path_factory):
    from conftest import run_cli

    out = tmp_path_factory.mktemp("m") / "cpu.latency.json"
    proc = run_cli("fit", "--store", str(store), "--device", URI, "--out", str(out), check=True)
    assert "held out" in proc.stdout and "±10%" in proc.stdout
    return out


def test_fit_from_the_store_writes_a_model_with_cross_validated_metrics(model_file):
    data = json.loads(model_file.read_text())
    assert data["space"] == "fbnet-cifar" and data["device"] == IDENT and data["units"] == "ms"
    assert data["metrics"]["blocks_cv"]["n"] > 100
    assert data["metrics"]["networks_cv"]["acc10"] >= 0.95


def test_predict_an_architecture_with_per_layer_breakdown(cli, model_file):
    proc = cli("predict", "--model", str(model_file), "fbnet-b", "--json", check=True)
    out = json.loads(proc.stdout)
    assert out["space"] == "fbnet-cifar" and len(out["layers"]) == 25
    assert out["predicted_ms"] == pytest.approx(sum(r["predicted_ms"] for r in out["layers"]) + out["overhead_ms"])
    table = cli("predict", "--model", str(model_file), "fbnet-b", check=True).stdout
    assert "predicted latency" in table and "k5_e6" in table


def test_predict_a_block(cli, model_file):
    block = '{"op": "ir", "cin": 40, "cout": 56, "resolution": 12, "kernel": 5, "expansion": 4}'
    out = json.loads(cli("predict", "--model", str(model_file), "--block", block, "--json", check=True).stdout)
    assert out["predicted_ms"] > 0 and out["block"]["cin"] == 40


def test_evaluate_against_measured_networks(cli, model_file, store):
    out = json.loads(cli("evaluate", "--model", str(model_file), "--store", str(store), "--json", check=True).stdout)
    assert out["n"] == 40 and out["acc10"] >= 0.95 and out["spearman"] > 0.9 and out["flagged_left_out"] == 1
    every = json.loads(cli("evaluate", "--model", str(model_file), "--store", str(store), "--include-flagged",
                           "--json", check=True).stdout)
    assert every["n"] == 41 and every["worst"][0]["error_pct"] < -80  # the flagged one, 8x slow, is worst
    assert len(out["worst"]) == 5 and abs(out["worst"][0]["error_pct"]) >= abs(out["worst"][-1]["error_pct"])
    text = cli("evaluate", "--model", str(model_file), "--store", str(store), check=True).stdout
    assert "worst cases" in text and "Spearman" in text


def test_fit_from_network_timings_with_and_without_a_prior(cli, model_file, tmp_path):
    space = get_space("fbnet-cifar")
    rng = np.random.default_rng(1)
    archs = random_archs(space, 15, rng)
    csv = tmp_path / "timings.csv"
    csv.write_text("arch,latency_ms\n" + "".join(f"{a},{ms}\n" for a, ms in
                                                 zip(archs, network_ms(space, archs, rng, speed=1.5))))
    moved = tmp_path / "moved.json"
    out = json.loads(cli("fit", "--networks", str(csv), "--prior", str(model_file), "--out", str(moved),
                         "--device", "phone-2", "--json", check=True).stdout)
    fit = out["metrics"]["networks_fit"]
    assert out["kind"] == "transfer" and out["device"] == "phone-2" and fit["n_networks"] == 15
    assert fit["kind"] == "transfer" and fit["regime"] in ("scale", "macs", "affine", "launch", "corrected", "layer")
    scratch = tmp_path / "scratch.json"
    text = cli("fit", "--networks", str(csv), "--space", "fbnet-cifar", "--out", str(scratch), check=True).stdout
    assert "leave-one-out" in text and "regime" in text
    assert json.loads(scratch.read_text())["metrics"]["networks_fit"]["kind"] == "networks"


def test_a_transfer_from_a_store_with_blocks_says_it_left_them_aside(cli, store, model_file, tmp_path):
    text = cli("fit", "--store", str(store), "--device", URI, "--prior", str(model_file), "--out",
               str(tmp_path / "t.json"), check=True).stdout
    assert "block timings of this device, which a transfer does not use" in " ".join(text.split())
    data = json.loads((tmp_path / "t.json").read_text())
    assert data["metrics"]["networks_fit"]["n_networks"] == 40 and "note_blocks" in data["metrics"]


def test_fit_a_prior_to_the_network_timings_a_profile_stored(cli, model_file, tmp_path):
    """The step after `profile --no-blocks --archs suggest:N --prior`: fit from the store, no CSV in between."""
    space = get_space("fbnet-cifar")
    rng = np.random.default_rng(2)
    archs = random_archs(space, 12, rng)
    phone, uri = tmp_path / "phone.db", "adb://PHONE1?runtime=litert"
    ident = "Phone|litert|2.0|threads=4|cores=all"
    with Store(phone) as st:
        st.add_device(ident, uri, {"cpu": "Phone", "runtime_version": "2.0"}, runtime="litert", threads=4)
        for arch, ms in zip(archs, network_ms(space, archs, rng, speed=3.0)):
            st.put_network(ident, space.name, arch, _stats(float(ms)))
        st.put_network(ident, space.name, random_archs(space, 1, rng)[0], _stats(500.0), flagged=True)
    moved = tmp_path / "phone.latency.json"
    out = json.loads(cli("fit", "--store", str(phone), "--device", uri, "--prior", str(model_file),
                         "--out", str(moved), "--json", check=True).stdout)
    fit = out["metrics"]["networks_fit"]
    assert out["device"] == ident and fit["kind"] == "transfer" and fit["n_networks"] == 12  # the flagged one left out
    assert out["metrics"]["rests_on"]["networks_left_out"] == 1
    assert fit["train"]["acc10"] >= 0.9
    ev = json.loads(cli("evaluate", "--model", str(moved), "--store", str(phone), "--json", check=True).stdout)
    assert ev["n"] == 12 and ev["flagged_left_out"] == 1 and ev["in_fit"] == 12
    # networks of another space beside them: the prior's space picks the ones to adapt it to
    other = get_space("fbnet")
    with Store(phone) as st:
        for arch in random_archs(other, 3, rng):
            st.put_network(ident, other.name, arch, _stats(30.0))
    again = json.loads(cli("fit", "--store", str(phone), "--device", uri, "--prior", str(model_file),
                           "--out", str(moved), "--json", check=True).stdout)
    assert again["space"] == "fbnet-cifar" and again["metrics"]["networks_fit"]["n_networks"] == 12
    # no prior: a store without blocks is fitted from its network timings alone
    alone = json.loads(cli("fit", "--store", str(phone), "--space", "fbnet-cifar", "--out",
                           str(tmp_path / "alone.json"), "--json", check=True).stdout)
    assert alone["metrics"]["networks_fit"]["kind"] == "networks" and alone["metrics"]["n_networks"] == 12


@pytest.mark.parametrize("args, message", [
    (["predict", "--model", "{pickled}", "fbnet-b"], "pickle payload"),
    (["predict", "--model", "{model}", "k3_e1-skip"], "22"),
    (["fit", "--networks", "{csv}", "--space", "fbnet-cifar", "--out", "x.json"], "latency_ms"),
    (["fit", "--prior", "{model}", "--out", "x.json"], "--prior needs the new device's network timings"),
    (["fit", "--store", "{store}", "--device", URI, "--space", "fbnet", "--prior", "{model}", "--out", "x.json"],
     "no whole-network timings of space fbnet"),
    (["evaluate", "--model", "{model}", "--store", "{store}", "--device", "adb://nope"], "no device"),
])
def test_user_mistakes_exit_2_with_one_line(cli, model_file, store, tmp_path, args, message):
    pickled = tmp_path / "evil.latency.json"
    pickled.write_bytes(pickle.dumps({"format": "hwnas-latency-model"}))
    csv = tmp_path / "bad.csv"
    csv.write_text("arch,ms\nk3_e1,1.0\n")
    args = [a.format(pickled=pickled, model=model_file, csv=csv, store=store) for a in args]
    proc = cli(*args, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
