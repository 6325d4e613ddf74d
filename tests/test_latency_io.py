"""Model files: JSON with provenance, identical predictions after a round trip, and refusals in one line."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest

from hwnas.latency_models.io import FORMAT_VERSION, load_model, save_model
from hwnas.latency_models.network import fit_latency_model
from hwnas.latency_models.transfer import fit_from_networks, fit_transfer
from latency_synth import block_ms, blocks_frame, network_ms, random_archs, random_blocks
from hwnas.search.space import InputError, get_space


@pytest.fixture(scope="module")
def model():
    space = get_space("fbnet-cifar")
    rng = np.random.default_rng(0)
    specs = space.unique_blocks() + random_blocks(50, rng)
    return fit_latency_model(blocks_frame(specs, block_ms(specs, rng)), None, space.name, "cpu-x|ort|1|threads=1",
                             device_uri="cpu:onnxruntime?threads=1")


def test_round_trip_predicts_identically_and_carries_provenance(model, tmp_path):
    space = get_space("fbnet-cifar")
    model.metrics["blocks_cv"] = {"acc10": 0.97}
    path = save_model(model, tmp_path / "m.latency.json")
    data = json.loads(path.read_text())
    assert data["format_version"] == FORMAT_VERSION and data["units"] == "ms"
    assert data["space"] == "fbnet-cifar" and data["device"] == "cpu-x|ort|1|threads=1"
    assert {"numpy", "scipy", "scikit-learn"} <= set(data["versions"]) and data["metrics"]["blocks_cv"]["acc10"] == 0.97
    again = load_model(path, space="fbnet-cifar", device="cpu:onnxruntime?threads=1")
    archs = random_archs(space, 10, np.random.default_rng(1))
    np.testing.assert_array_equal(again.predict_networks(space, archs), model.predict_networks(space, archs))


def test_a_version_1_file_still_loads_and_predicts_as_it_did(tmp_path):
    """Version 1 files hold per-family GBM regressors whose parameters predate `base`, `min_family`
    and extra-trees; they load as what they were fitted as."""
    space = get_space("fbnet-cifar")
    rng = np.random.default_rng(2)
    specs = space.unique_blocks() + random_blocks(30, rng)
    old = fit_latency_model(blocks_frame(specs, block_ms(specs, rng)), None, space.name, "cpu-x|ort|1|threads=1",
                            kind="gbm", base="cost", min_family=12, n_estimators=60)
    path = save_model(old, tmp_path / "v1.latency.json")
    data = json.loads(path.read_text())
    data["format_version"] = 1
    for key in ("base", "min_family", "kind", "n_estimators", "max_depth", "alpha"):
        data["model"]["block_model"]["regressor"]["params"].pop(key)
    path.write_text(json.dumps(data))
    again = load_model(path)
    archs = random_archs(space, 10, np.random.default_rng(3))
    np.testing.assert_array_equal(again.predict_networks(space, archs), old.predict_networks(space, archs))


def test_transfer_and_network_models_round_trip(model, tmp_path):
    space = get_space("fbnet-cifar")
    rng = np.random.default_rng(2)
    archs = random_archs(space, 12, rng)
    y = network_ms(space, archs, rng, speed=2.0)
    for m in (fit_transfer(model, space, archs, y, "new"), fit_from_networks(space, archs, y, "new")):
        again = load_model(save_model(m, tmp_path / f"{m.kind}.json"))
        assert again.kind == m.kind
        np.testing.assert_allclose(again.predict_networks(space, archs), m.predict_networks(space, archs))


@pytest.mark.parametrize("payload, message", [
    (pickle.dumps({"format": "hwnas-latency-model"}), "pickle payload"),
    (b"PK\x03\x04" + b"\0" * 20, "zip archive"),
    (b"\x00\xff garbage", "not a JSON latency model"),
    (b'{"format": "something-else"}', "not an hwnas latency model"),
])
def test_foreign_payloads_are_refused_without_unpickling(tmp_path, payload, message):
    path = tmp_path / "m.json"
    path.write_bytes(payload)
    with pytest.raises(InputError, match=message):
        load_model(path)


def test_future_format_wrong_space_and_wrong_device_are_refused(model, tmp_path):
    path = save_model(model, tmp_path / "m.json")
    with pytest.raises(InputError, match="for space 'fbnet-cifar', not 'fbnet'"):
        load_model(path, space="fbnet")
    with pytest.raises(InputError, match="not 'phone'"):
        load_model(path, device="phone")
    data = json.loads(path.read_text())
    data["format_version"] = FORMAT_VERSION + 1
    path.write_text(json.dumps(data))
    with pytest.raises(InputError, match="newer than this hwnas reads"):
        load_model(path)


def test_damaged_model_and_missing_file_give_one_line_errors(model, tmp_path):
    path = save_model(model, tmp_path / "m.json")
    data = json.loads(path.read_text())
    del data["model"]["block_model"]["regressor"]
    path.write_text(json.dumps(data))
    with pytest.raises(InputError, match="damaged"):
        load_model(path)
    with pytest.raises(InputError, match="not found"):
        load_model(tmp_path / "nope.json")
