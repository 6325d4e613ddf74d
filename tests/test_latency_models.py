"""Latency models as a user relies on them: LUT exactness, regressors off the grid, networks, transfer, tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.ensemble import ExtraTreesRegressor, GradientBoostingRegressor, RandomForestRegressor

from hwnas.latency_models import metrics
from hwnas.latency_models.export import channel_table, layer_table
from hwnas.latency_models.features import spec_fields
from hwnas.latency_models.lut import LookupTable
from hwnas.latency_models.network import fit_latency_model
from hwnas.latency_models.regressors import PRESETS, BlockRegressor
from hwnas.latency_models.transfer import fit_from_networks, fit_transfer
from hwnas.latency_models.trees import TreeEnsemble
from latency_synth import block_ms, blocks_frame, network_ms, random_archs, random_blocks
from hwnas.search.space import BlockSpec, InputError, get_space


@pytest.fixture(scope="module")
def cifar():
    return get_space("fbnet-cifar")


@pytest.fixture(scope="module")
def fitted(cifar):
    """A device model fitted on the grid plus off-grid samples and 30 measured networks."""
    rng = np.random.default_rng(0)
    specs = cifar.unique_blocks() + random_blocks(300, rng)
    archs = random_archs(cifar, 30, rng)
    nets = pd.DataFrame({"space": cifar.name, "arch": archs, "median_ms": network_ms(cifar, archs, rng)})
    ms = block_ms(specs, rng)
    model = fit_latency_model(blocks_frame(specs, ms), nets, cifar.name, "dev-a")
    return model, specs, ms


# --------------------------------------------------------------------------- LUT and regressors


def test_lut_returns_the_median_of_repeated_measurements_and_nan_elsewhere():
    a, b = BlockSpec("ir", 16, 24, 32, kernel=3, expansion=3.0), BlockSpec("skip", 16, 16, 32)
    lut = LookupTable().fit(spec_fields([a, a, a, b]), [1.0, 2.0, 9.0, 0.5])
    out = lut.predict(spec_fields([a, b, BlockSpec("skip", 16, 16, 8)]))
    assert out[0] == 2.0 and out[1] == 0.5 and np.isnan(out[2])


@pytest.mark.parametrize("space", ["fbnet-cifar", "fbnet", "fbnetv2-cifar", "fbnetv2"])
def test_lut_row_hashes_are_distinct_on_every_registered_space(space):
    """Colliding hashes send every lookup through a per-row dictionary (a Python loop): the first
    hash, linear in the float bits, collided on all four spaces."""
    X = spec_fields(get_space(space).unique_blocks())
    lut = LookupTable().fit(X, np.arange(1.0, len(X) + 1))
    assert lut._unique_hash
    np.testing.assert_array_equal(lut.lookup(X), np.arange(len(X)))


def test_lut_fallback_is_exact_on_measured_blocks(fitted):
    model, specs, measured = fitted
    unique = {s: m for s, m in zip(specs, measured)}  # a block drawn twice keeps one of its values here
    pred = model.block_model.predict_fields(spec_fields(list(unique)))
    exact = [sum(1 for s in specs if s == k) == 1 for k in unique]
    np.testing.assert_allclose(pred[exact], np.array(list(unique.values()))[exact])


def test_regressor_predicts_held_out_off_grid_blocks_within_10_percent(cifar):
    rng = np.random.default_rng(1)
    train = cifar.unique_blocks() + random_blocks(400, rng)
    test = random_blocks(200, rng)
    reg = BlockRegressor().fit(spec_fields(train), block_ms(train, rng))
    assert metrics.within(reg.predict(spec_fields(test)), block_ms(test, rng, noise=0.0), 10) >= 0.95


@pytest.mark.parametrize("kind", ["et", "gbm", "rf"])
def test_regressor_follows_the_sklearn_estimator_api(kind, cifar):
    rng = np.random.default_rng(2)
    specs = cifar.unique_blocks() + random_blocks(60, rng)
    X, y = spec_fields(specs), block_ms(specs, rng)
    reg = clone(BlockRegressor(**{**PRESETS[kind], "n_estimators": 10})).fit(X, y)
    assert reg.get_params()["kind"] == kind
    assert reg.score(X, y) > 0.9
    again = BlockRegressor.from_dict(reg.to_dict())
    np.testing.assert_array_equal(again.predict(X), reg.predict(X))


@pytest.mark.parametrize("bad, message", [
    ((np.zeros((3, 4)), [1.0, 1.0, 1.0]), "shape"),
    ((np.full((3, 11), np.nan), [1.0, 1.0, 1.0]), "NaN"),
    (("SELECT * FROM blocks", [1.0]), "numeric"),
])
def test_regressor_rejects_malformed_inputs_with_a_clear_error(bad, message):
    with pytest.raises(InputError, match=message):
        BlockRegressor().fit(*bad)


def test_regressor_rejects_non_positive_latencies():
    X = spec_fields([BlockSpec("skip", 8, 8, 8), BlockSpec("skip", 8, 16, 8)])
    with pytest.raises(InputError, match="positive"):
        BlockRegressor().fit(X, [1.0, -2.0])
    with pytest.raises(InputError, match="2 blocks but 3"):
        BlockRegressor().fit(X, [1.0, 2.0, 3.0])


def test_a_grid_only_fit_extrapolates_off_the_grid_through_shared_kernel_costs(cifar):
    """Fitted on fbnet-cifar's grid alone, the default regressor prices off-grid blocks (random
    widths and resolutions) from what each kernel costs.  (These synthetic latencies follow the
    per-family cost model's own form, so it is exact here; on this VM's ONNX Runtime timings the
    kernel base is the better one off the grid: 26-40% -> 40-47% of the off-grid blocks within ±10%, RESULTS.)"""
    rng = np.random.default_rng(5)
    grid, off = cifar.unique_blocks(), random_blocks(300, rng)
    X, y = spec_fields(grid), block_ms(grid, rng)
    pred = BlockRegressor().fit(X, y).predict(spec_fields(off))
    truth = block_ms(off, rng, noise=0.0)
    assert metrics.rmspe(pred, truth) < 10 and metrics.within(pred, truth, 10) >= 0.8


def test_a_block_whose_kernels_no_training_block_runs_is_priced_like_the_measured_kernels(cifar):
    """Held out by cross-validation, fbnet-cifar's one FC head and one stem conv run kernels no
    training block runs.  The least-squares solver left such kernels at its starting point,
    0.1 ms per launch, MMAC and MB: the FC head came out at 34x its time."""
    rng = np.random.default_rng(8)
    grid = cifar.unique_blocks()
    alone = [s for s in grid if s.op in ("fc", "conv")]
    rest = [s for s in grid if s.op not in ("fc", "conv")]
    reg = BlockRegressor().fit(spec_fields(rest), block_ms(rest, rng))
    ratio = reg.predict(spec_fields(alone)) / block_ms(alone, rng, noise=0.0)
    assert ((ratio > 0.2) & (ratio < 5)).all(), ratio


def test_a_model_file_written_before_the_kernel_base_predicts_as_it_did(cifar):
    """Files whose regressor parameters predate `base`/`min_family`/`kind="et"` were fitted with the
    per-family GBM; they load as that, not as today's defaults."""
    rng = np.random.default_rng(6)
    specs = cifar.unique_blocks() + random_blocks(40, rng)
    X, y = spec_fields(specs), block_ms(specs, rng)
    old = BlockRegressor(**PRESETS["gbm"]).fit(X, y).to_dict()
    for key in ("base", "min_family", "n_estimators", "kind", "max_depth", "alpha"):
        old["params"].pop(key)
    again = BlockRegressor.from_dict(old)
    assert again.get_params()["base"] == "cost" and again.get_params()["kind"] == "gbm"
    np.testing.assert_array_equal(again.predict(X), BlockRegressor(**PRESETS["gbm"]).fit(X, y).predict(X))


def test_regressor_rejects_unknown_parameters():
    X = spec_fields([BlockSpec("skip", 8, 8, 8), BlockSpec("skip", 8, 16, 8)])
    for bad, word in ((dict(kind="svm"), "kind"), (dict(base="tables"), "base"), (dict(min_family=-1), "min_family")):
        with pytest.raises(InputError, match=word):
            BlockRegressor(**bad).fit(X, [1.0, 2.0])


def test_unfitted_regressor_says_so():
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        BlockRegressor().predict(np.zeros((1, 11)))


@pytest.mark.parametrize("make", [
    lambda: GradientBoostingRegressor(n_estimators=30, max_depth=3, random_state=0),
    lambda: RandomForestRegressor(n_estimators=8, max_depth=7, random_state=0),
    lambda: ExtraTreesRegressor(n_estimators=40, max_depth=9, min_samples_leaf=2, random_state=0),
])
def test_numpy_tree_predictor_matches_scikit_learn_exactly(make):
    rng = np.random.default_rng(3)
    X = rng.normal(size=(2000, 5))
    y = X[:, 0] ** 2 + np.sin(3 * X[:, 1])
    est = make().fit(X, y)
    Xt = rng.normal(size=(20000, 5)).astype(np.float32)  # deep forests walk it in several row blocks
    if isinstance(est, GradientBoostingRegressor):
        ours = TreeEnsemble.from_sklearn([e[0] for e in est.estimators_], est.learning_rate).predict(Xt)
        ref = est.predict(Xt) - np.ravel(est.init_.constant_)[0]
    else:
        ours = TreeEnsemble.from_sklearn(est.estimators_, 1 / len(est.estimators_)).predict(Xt)
        ref = est.predict(Xt)
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-12)


def test_tree_arrays_with_bad_child_indices_are_refused():
    with pytest.raises(ValueError, match="out of range"):
        TreeEnsemble([1, -1], [5, -1], [0, 0], [0.5, 0.0], [0.0, 1.0], [0], 1, 1.0)


# --------------------------------------------------------------------------- networks


def test_network_model_learns_the_per_network_overhead(fitted, cifar):
    model, *_ = fitted
    rng = np.random.default_rng(4)
    archs = random_archs(cifar, 40, rng)
    truth = network_ms(cifar, archs, rng)
    pred = model.predict_networks(cifar, archs)
    assert 0.02 < model.overhead_ms < 0.08  # the synthetic device adds 0.05 ms per network
    assert metrics.within(pred, truth, 10) >= 0.95
    total, per = model.predict_network(cifar, tuple(archs[0].split("-")))
    assert per.shape == (cifar.num_layers + 3,) and total == pytest.approx(per.sum() + model.overhead_ms)


def test_network_model_without_networks_is_the_block_sum(cifar):
    rng = np.random.default_rng(5)
    specs = cifar.unique_blocks()
    model = fit_latency_model(blocks_frame(specs, block_ms(specs, rng)), None, cifar.name, "dev")
    total, per = model.predict_network(cifar, ("skip",) * cifar.num_layers)
    assert model.overhead_ms == 0 and model.scale == 1 and total == pytest.approx(per.sum())


def test_transfer_from_ten_networks_beats_fitting_from_scratch(fitted, cifar):
    prior, *_ = fitted
    rng = np.random.default_rng(6)
    archs = random_archs(cifar, 60, rng)
    y = network_ms(cifar, archs, rng, speed=1.8, overhead=0.2)  # a slower device with a larger overhead
    train, test = slice(0, 10), slice(10, None)
    moved = fit_transfer(prior, cifar, archs[train], y[train], "dev-b")
    scratch = fit_from_networks(cifar, archs[train], y[train], "dev-b")
    acc_t = metrics.within(moved.predict_networks(cifar, archs[test]), y[test], 10)
    acc_s = metrics.within(scratch.predict_networks(cifar, archs[test]), y[test], 10)
    assert acc_t >= 0.95 and acc_t >= acc_s
    assert moved.metrics["networks_fit"]["n_networks"] == 10


def test_transfer_rejects_mismatched_or_bad_timings(fitted, cifar):
    prior, *_ = fitted
    archs = random_archs(cifar, 5, np.random.default_rng(7))
    with pytest.raises(InputError, match="5 architectures but 4"):
        fit_transfer(prior, cifar, archs, [1.0] * 4, "x")
    with pytest.raises(InputError, match="positive"):
        fit_from_networks(cifar, archs, [1.0, 2.0, 0.0, 1.0, 1.0], "x")
    with pytest.raises(InputError, match="at least 3"):
        fit_from_networks(cifar, archs[:2], [1.0, 2.0], "x")


# --------------------------------------------------------------------------- export tables


def test_layer_table_expectation_of_a_one_hot_is_the_network_prediction(fitted, cifar):
    model, *_ = fitted
    table = layer_table(model, cifar)
    assert table.table_ms.shape == (cifar.num_layers, len(cifar.candidates))
    ops = tuple(np.random.default_rng(8).choice(cifar.candidates, cifar.num_layers))
    onehot = np.array([[op == c for c in cifar.candidates] for op in ops], dtype=float)
    assert table.expected_ms(onehot) == pytest.approx(model.predict_network(cifar, ops)[0])


def test_layer_table_refuses_another_space(fitted):
    model, *_ = fitted
    with pytest.raises(InputError, match="fbnet-cifar"):
        layer_table(model, get_space("fbnet"))


def test_channel_table_entries_add_up_to_the_network_prediction():
    space = get_space("fbnetv2")
    rng = np.random.default_rng(9)
    specs = space.unique_blocks()
    model = fit_latency_model(blocks_frame(specs, block_ms(specs, rng)), None, space.name, "dev")
    model.overhead_ms = 0.3
    ct = channel_table(model, space)
    assert len(ct.layers) == space.num_layers
    assert ct.layers[0].shape == (len(space.candidates), len(space.stem_channel_options),
                                  len(space.channel_options[0]), len(space.resolutions))
    assert ct.cin_options[1] == list(space.channel_options[0])
    ri, stem_i = 1, 2
    arch = {"resolution": space.resolutions[ri], "stem": space.stem_channel_options[stem_i],
            "layers": [[str(rng.choice(space.candidates)), int(rng.choice(o))] for o in space.channel_options]}
    total = ct.stem_ms[stem_i, ri] + ct.overhead_ms
    cin = stem_i
    for i, (op, ch) in enumerate(arch["layers"]):
        cout = ct.cout_options[i].index(ch)
        total += ct.layers[i][space.candidates.index(op), cin, cout, ri]
        cin = cout
    total += ct.head_ms[cin, ri]
    assert total == pytest.approx(model.predict_network(space, arch)[0])
    with pytest.raises(InputError, match="no channels"):
        channel_table(fit_latency_model(blocks_frame(specs, block_ms(specs, rng)), None, "fbnet-cifar", "d"),
                      get_space("fbnet-cifar"))


# --------------------------------------------------------------------------- metrics


def test_metrics_follow_the_published_definitions():
    true = np.array([1.0, 2.0, 4.0, 10.0])
    pred = np.array([1.04, 2.3, 4.0, 9.0])  # errors +4%, +15%, 0%, -10%
    assert metrics.within(pred, true, 5) == 0.5
    assert metrics.within(pred, true, 10) == 0.75
    assert metrics.within(pred, true, 15) == 1.0
    assert metrics.rmspe(pred, true) == pytest.approx(100 * np.sqrt((0.04**2 + 0.15**2 + 0 + 0.1**2) / 4))
    assert metrics.rmse(pred, true) == pytest.approx(np.sqrt((0.04**2 + 0.3**2 + 0 + 1.0) / 4))
    assert metrics.spearman(pred, true) == pytest.approx(1.0)
    assert metrics.kendall([3, 2, 1], [1, 2, 3]) == pytest.approx(-1.0)
    worst = metrics.worst_cases(pred, true, ["a", "b", "c", "d"], k=2)
    assert [w["name"] for w in worst] == ["b", "d"]


def test_metrics_refuse_empty_or_non_positive_measurements():
    with pytest.raises(InputError, match="no measurements"):
        metrics.evaluate([], [])
    with pytest.raises(InputError, match="positive"):
        metrics.rmspe([1.0], [0.0])
    assert metrics.spearman([1.0, 2.0], [1.0, 2.0]) is None  # undefined on two points


def test_unreliable_timings_are_left_out_of_fitting():
    from hwnas.latency_models.network import reliable, unreliable_mask

    frame = pd.DataFrame({"median_ms": [1.0, 3.0, 1.1, 1.0], "min_ms": [0.95, 1.0, 1.0, 0.9],
                          "flagged": [False, False, False, True]})
    # the 2nd ran 3x slower than its own fastest run (foreign load), the 4th never settled
    assert unreliable_mask(frame).tolist() == [False, True, False, True]
    assert reliable(frame)["median_ms"].tolist() == [1.0, 1.1]
    assert len(reliable(frame.iloc[[1, 3]])) == 2  # nothing reliable: keep all rather than nothing


def test_network_overhead_is_never_negative():
    """Networks measured faster than their blocks' sum (a host that sped up) scale down, not below zero."""
    from hwnas.latency_models.network import fit_overhead

    sums = np.array([1.0, 2.0, 3.0, 4.0])
    scale, overhead = fit_overhead(sums, 0.5 * sums - 0.1)
    assert overhead == pytest.approx(0.0, abs=1e-9) and 0.3 < scale < 0.6
    assert fit_overhead(np.array([2.0]), np.array([1.0]))[1] == 0.0
