"""Block features: vectorised closed forms that must agree with torch's FLOP counter (search.count)."""

from __future__ import annotations

import numpy as np
import pytest

from hwnas.latency_models.features import FEATURE_NAMES, KERNELS, block_features, family_names, kernel_design, spec_fields
from hwnas.search.count import count_block
from hwnas.search.space import BlockSpec, get_space

MACS, PARAMS, HIDDEN = (FEATURE_NAMES.index(n) for n in ("macs", "params", "hidden"))


def _random_specs(n: int, seed: int) -> list[BlockSpec]:
    rng = np.random.default_rng(seed)
    specs = []
    for _ in range(n):
        op = str(rng.choice(["ir", "ir", "ir", "skip", "conv", "fc", "pool_conv"]))
        cin, cout, res = int(rng.integers(1, 40)) * 4, int(rng.integers(1, 40)) * 4, int(rng.integers(3, 40))
        if op == "ir":
            g = int(rng.choice([1, 2, 4]))
            e = float(rng.choice([0.5, 0.75, 1, 2, 3, 4.5, 6]))
            spec = BlockSpec("ir", cin, cout, res, stride=int(rng.choice([1, 2])), kernel=int(rng.choice([3, 5, 7])),
                             expansion=e, se=bool(rng.integers(2)), act=str(rng.choice(["relu", "hswish"])))
            if g > 1 and spec.hidden % g == 0:
                spec = BlockSpec("ir", cin, cout, res, stride=spec.stride, kernel=spec.kernel, expansion=e, groups=g,
                                 shuffle=True)
        elif op == "skip":
            spec = BlockSpec("skip", cin, cin if rng.integers(2) else cout, res, stride=int(rng.choice([1, 2])))
        elif op == "conv":
            spec = BlockSpec("conv", cin, cout, res, stride=int(rng.choice([1, 2])), kernel=int(rng.choice([1, 3])))
        else:
            spec = BlockSpec(op, cin, cout, res, act="none" if op == "fc" else "hswish")
        specs.append(spec)
    return specs


def _check(specs: list[BlockSpec]) -> None:
    feats = block_features(specs)
    fams = family_names(spec_fields(specs))
    for spec, row, fam in zip(specs, feats, fams):
        counted = count_block(spec)
        assert (row[MACS], row[PARAMS]) == (counted.macs, counted.params), spec.key
        assert fam == spec.family, spec.key
        if spec.op == "ir":
            assert row[HIDDEN] == spec.hidden, spec.key


@pytest.mark.slow
def test_features_match_the_flop_counter_on_fbnet_cifar_blocks():
    _check(get_space("fbnet-cifar").unique_blocks())


def test_features_match_the_flop_counter_on_random_blocks():
    _check(_random_specs(60, seed=3))


@pytest.mark.slow
def test_features_match_the_flop_counter_on_fbnetv2_blocks():
    _check(get_space("fbnetv2").unique_blocks())


def test_features_are_vectorised_and_row_independent():
    specs = _random_specs(40, seed=5)
    whole = block_features(specs)
    one_by_one = np.vstack([block_features([s]) for s in specs])
    np.testing.assert_array_equal(whole, one_by_one)
    assert whole.shape == (40, len(FEATURE_NAMES))
    assert (whole[:, FEATURE_NAMES.index("bytes")] > 0).all()


def test_identity_skip_costs_nothing_to_compute():
    row = block_features([BlockSpec("skip", 32, 32, 16)])[0]
    assert row[MACS] == 0 and row[PARAMS] == 0


def test_kernel_design_splits_every_block_into_kernels_whose_macs_add_up_to_the_block():
    """The kernel view and the FLOP counter agree: a block's kernels carry all of its MACs, none twice."""
    specs = _random_specs(200, seed=11) + get_space("fbnet-cifar").unique_blocks()
    fields = spec_fields(specs)
    D = kernel_design(fields)
    assert D.shape == (len(specs), 1 + 3 * len(KERNELS)) and np.isfinite(D).all() and (D >= 0).all()
    macs = D[:, 2::3].sum(axis=1) * 1e6
    np.testing.assert_allclose(macs, block_features(specs)[:, MACS], rtol=1e-9)
    launches = D[:, 1::3].sum(axis=1)
    for spec, n in zip(specs, launches):
        identity = spec.op == "skip" and spec.cin == spec.cout and spec.stride == 1
        assert (n == 0) == identity, spec.key  # every block but an identity skip launches kernels
    np.testing.assert_array_equal(D, np.vstack([kernel_design(spec_fields([s])) for s in specs]))
