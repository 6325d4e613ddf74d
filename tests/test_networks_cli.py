"""Many networks from the CLI: `predict --archs FILE`, `evaluate --networks CSV`, `fit --prior` x2, `profile --archs suggest:N`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hwnas.latency_models.io import save_model
from hwnas.latency_models.network import fit_latency_model
from hwnas.networks_io import predict_archs, read_archs, read_timings, suggest_archs
from hwnas.search.space import InputError, get_space
from latency_synth import block_ms, blocks_frame, network_ms, random_archs

SPACE = get_space("fbnet-cifar")
OPS = st.lists(st.sampled_from(SPACE.candidates), min_size=SPACE.num_layers, max_size=SPACE.num_layers)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """Two prior models (files) of different synthetic devices."""
    d = tmp_path_factory.mktemp("models")
    rng = np.random.default_rng(0)
    specs = SPACE.unique_blocks()
    paths = []
    for name, speed in (("a", 1.0), ("b", 3.0)):
        m = fit_latency_model(blocks_frame(specs, block_ms(specs, rng, speed)), None, SPACE.name, name)
        paths.append(save_model(m, d / f"{name}.latency.json"))
    return paths


@pytest.fixture(scope="module")
def timings(tmp_path_factory):
    rng = np.random.default_rng(1)
    archs = random_archs(SPACE, 40, rng)
    path = tmp_path_factory.mktemp("t") / "phone.csv"
    pd.DataFrame({"arch": archs, "latency_ms": np.round(network_ms(SPACE, archs, rng, speed=20), 0)}).to_csv(
        path, index=False)
    return path


# --------------------------------------------------------------------------- file formats (properties)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(archs=st.lists(OPS, min_size=1, max_size=6), csv_form=st.booleans(), comments=st.booleans())
def test_archs_file_round_trips_in_both_forms(tmp_path_factory, archs, csv_form, comments):
    texts = ["-".join(a) for a in archs]
    path = tmp_path_factory.mktemp("a") / "archs.txt"
    if csv_form:
        pd.DataFrame({"name": range(len(texts)), "arch": texts}).to_csv(path, index=False)
    else:
        path.write_text(("# my networks\n\n" if comments else "") + "\n".join(texts) + "\n")
    assert read_archs(path) == texts


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ms=st.lists(st.floats(min_value=1e-3, max_value=1e4, allow_nan=False), min_size=1, max_size=6),
       bad=st.sampled_from(["", "-1", "0", "abc", "nan", "inf"]), where=st.integers(0, 5))
def test_timings_csv_accepts_positive_numbers_and_names_the_bad_line(tmp_path_factory, ms, bad, where):
    path = tmp_path_factory.mktemp("t") / "t.csv"
    archs = ["-".join(["skip"] * SPACE.num_layers)] * len(ms)
    pd.DataFrame({"arch": archs, "latency_ms": ms}).to_csv(path, index=False)
    assert read_timings(path)["latency_ms"].tolist() == pytest.approx(ms)
    rows = [f"{a},{m!r}" for a, m in zip(archs, ms)]
    i = min(where, len(rows) - 1)
    rows[i] = f"{archs[i]},{bad}"
    path.write_text("arch,latency_ms\n" + "\n".join(rows) + "\n")
    with pytest.raises(InputError, match=f"line {i + 2}: latency_ms"):
        read_timings(path)


def test_file_errors_are_one_line_and_name_the_place(tmp_path, models):
    from hwnas.latency_models.io import load_model

    with pytest.raises(InputError, match="not found"):
        read_archs(tmp_path / "missing.txt")
    (tmp_path / "empty.txt").write_text("# nothing\n\n")
    with pytest.raises(InputError, match="no architectures"):
        read_archs(tmp_path / "empty.txt")
    (tmp_path / "t.csv").write_text("arch,ms\nx,1\n")
    with pytest.raises(InputError, match="lacks column"):
        read_timings(tmp_path / "t.csv")
    good = "-".join(["skip"] * SPACE.num_layers)
    with pytest.raises(InputError, match="archs.txt line 2"):
        predict_archs(load_model(models[0]), [good, "k3_e1-nonsense"], "archs.txt")


# --------------------------------------------------------------------------- commands


def test_predict_a_file_of_architectures_as_csv_and_json(cli, models, tmp_path):
    archs = ["-".join(a) for a in np.random.default_rng(2).choice(SPACE.candidates, (5, SPACE.num_layers))]
    src = tmp_path / "archs.txt"
    src.write_text("\n".join(archs) + "\n")
    out = tmp_path / "pred.csv"
    cli("predict", "--model", str(models[0]), "--archs", str(src), "--out", str(out), check=True)
    frame = pd.read_csv(out)
    assert frame["arch"].tolist() == archs and (frame["predicted_ms"] > 0).all()
    one = json.loads(cli("predict", archs[0], "--model", str(models[0]), "--json", check=True).stdout)
    assert frame["predicted_ms"][0] == pytest.approx(one["predicted_ms"], rel=1e-5)
    data = json.loads(cli("predict", "--model", str(models[0]), "--archs", str(src), "--json", check=True).stdout)
    assert [r["arch"] for r in data["predictions"]] == archs
    bad = cli("predict", "--model", str(models[0]), "--archs", str(tmp_path / "nope.txt"))
    assert bad.returncode == 2 and "not found" in bad.stderr + bad.stdout and "Traceback" not in bad.stderr


def test_fit_with_two_priors_then_evaluate_against_a_timings_csv(cli, models, timings, tmp_path):
    out = tmp_path / "phone.latency.json"
    proc = cli("fit", "--networks", str(timings), "--prior", str(models[0]), "--prior", str(models[1]),
               "--out", str(out), check=True)
    assert "regime" in proc.stdout
    fit = json.loads(out.read_text())["metrics"]["networks_fit"]
    assert fit["priors"] == ["a", "b"] and fit["regime"] in ("scale", "macs", "affine", "launch", "corrected", "layer")
    # The fixture's timings are whole milliseconds: the fit says so when the step is coarse against them.
    median = float(pd.read_csv(timings)["latency_ms"].median())
    assert fit["rounded_ms"] == 1.0
    assert ("rounded to 1 ms" in " ".join(proc.stdout.split())) == (1.0 / median >= 0.05)
    res = json.loads(cli("evaluate", "--model", str(out), "--networks", str(timings), "--json", check=True).stdout)
    assert res["n"] == 40 and res["acc10"] >= 0.9 and res["spearman"] > 0.9 and len(res["worst"]) == 5
    assert res["in_fit"] == 40  # the fit's own timings: evaluate says the figures are in-sample
    text = cli("evaluate", "--model", str(out), "--networks", str(timings), check=True).stdout
    assert "40 of these 40 networks are timings the model was fitted on" in " ".join(text.split())
    held = tmp_path / "held.csv"  # networks the fit never saw: nothing to say
    rng = np.random.default_rng(7)
    other = random_archs(SPACE, 10, rng)
    pd.DataFrame({"arch": other, "latency_ms": network_ms(SPACE, other, rng, speed=20)}).to_csv(held, index=False)
    fresh = json.loads(cli("evaluate", "--model", str(out), "--networks", str(held), "--json", check=True).stdout)
    assert fresh["in_fit"] == 0
    assert "±10%" in text and "worst cases" in text


def test_suggest_returns_networks_that_differ_from_random_and_wires_into_profile(models):
    from hwnas.api import plan

    picked = suggest_archs(SPACE, 6, [models[0]], seed=3)
    assert len({"-".join(a) for a in picked}) == 6
    items = plan(SPACE.name, archs="suggest:6", blocks=False, seed=3, priors=[Path(models[0])])
    assert [i.arch for i in items] == [tuple(a) for a in picked]
    with pytest.raises(InputError, match="suggest:N"):
        plan(SPACE.name, archs="suggest:x", blocks=False, seed=3)
    with pytest.raises(InputError, match="only with `archs` suggest"):
        plan(SPACE.name, archs="random:3", blocks=False, seed=3, priors=[Path(models[0])])


@pytest.mark.slow
def test_profile_suggest_then_the_printed_fit_command_closes_the_new_device_loop(cli, models, tmp_path):
    """A user follows `profile --archs suggest:N --prior`'s last line: the fit it names works as printed."""
    import shlex

    store = tmp_path / "new.db"
    proc = cli("profile", "--space", SPACE.name, "--device", "cpu:onnxruntime?threads=1", "--no-blocks",
               "--archs", "suggest:4", "--prior", str(models[0]), "--store", str(store),
               "--passes", "1", "--no-reference", "--no-selfcheck", check=True, cwd=tmp_path)
    line = proc.stdout.split("next: ", 1)[1].splitlines()[0]  # one line, as a user copies it
    argv = shlex.split(line)
    assert argv[:2] == ["hwnas", "fit"] and argv[argv.index("--device") + 1] == "cpu:onnxruntime?threads=1"
    argv[argv.index("NEW.latency.json")] = str(tmp_path / "new.latency.json")
    out = json.loads(cli(*argv[1:], "--json", check=True, cwd=tmp_path).stdout)
    fit = out["metrics"]["networks_fit"]
    from hwnas.latency_models.network import reliable
    from hwnas.profiler.store import Store

    with Store(store, create=False, readonly=True) as st:
        timed, usable = len(st.networks()), len(reliable(st.networks()))
    # a busy host can leave one timing contaminated (median > 1.5x its minimum): the fit leaves it out
    assert timed == 4 and usable >= 3
    assert fit["kind"] == "transfer" and fit["n_networks"] == usable
    trust = out["metrics"]["rests_on"]  # what was timed, and how much of it the fit left out
    assert trust["networks"] == timed and trust["networks_left_out"] == timed - usable

    def again(*args):
        return cli("profile", "--space", SPACE.name, "--device", "cpu:onnxruntime?threads=1", "--no-blocks",
                   "--prior", str(models[0]), "--store", str(store), "--passes", "1", "--no-reference",
                   "--no-selfcheck", *args, check=True, cwd=tmp_path).stdout

    def stored():
        with Store(store, create=False, readonly=True) as st:
            return st.networks()["arch"].nunique()

    # the same command again resumes: nothing new; suggest:6 extends the same design by two
    assert "4 already stored" in " ".join(again("--archs", "suggest:4").split()) and stored() == 4
    assert "picking beside" not in again("--archs", "suggest:6") and stored() == 6
    # another seed: three more, picked beside the six already timed (none twice)
    assert "picking beside the 6 networks already timed" in again("--archs", "suggest:3", "--seed", "5")
    assert stored() == 9
