"""Single-path search (`paths="sampled"`), the width proxy and thread settings."""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

from hwnas.search.build import build_supernet, default_paths
from hwnas.search.distributed import set_threads
from hwnas.search.fbnet.cost import mac_cost
from hwnas.search.space import InputError, get_space
from search_helpers import TINY


def _net(paths: str, space=TINY):
    torch.manual_seed(0)
    return build_supernet(space, mac_cost(TINY), tau=1.0, paths=paths)


def test_sampled_forward_runs_one_candidate_per_layer():
    net = _net("sampled")
    calls: list[tuple[int, int]] = []
    for li, layer in enumerate(net.layers):
        for oi, op in enumerate(layer.ops):
            op.register_forward_hook(lambda m, i, o, li=li, oi=oi: calls.append((li, oi)))
    net.train()
    net(torch.randn(4, 3, 8, 8))
    assert sorted(li for li, _ in calls) == list(range(TINY.num_layers))  # exactly one op per layer
    chosen = [oi for _, oi in sorted(calls)]
    assert chosen == net._weights.argmax(dim=1).tolist()
    assert torch.equal(net._weights.detach().sum(dim=1), torch.ones(TINY.num_layers))  # hard one-hot


def test_sampled_theta_gets_straight_through_gradient_from_ce_and_latency():
    net = _net("sampled")
    net.train()
    ce = F.cross_entropy(net(torch.randn(4, 3, 8, 8)), torch.tensor([0, 1, 2, 3]))
    (g_ce,) = torch.autograd.grad(ce, net.theta, retain_graph=True)
    assert torch.count_nonzero(g_ce) > 0 and torch.isfinite(g_ce).all()
    lat = net.expected_latency()
    assert float(lat.detach()) == pytest.approx(net.predicted_ms(net._ops(net._weights.argmax(1).tolist())), rel=1e-5)
    (g_lat,) = torch.autograd.grad(lat, net.theta)
    assert torch.count_nonzero(g_lat) > 0  # the latency term stays differentiable in θ


def test_only_the_sampled_candidates_weights_get_gradients():
    net = _net("sampled")
    net.train()
    net(torch.randn(4, 3, 8, 8)).sum().backward()
    chosen = net._weights.argmax(dim=1).tolist()
    for layer, c in zip(net.layers, chosen):
        for oi, op in enumerate(layer.ops):
            grads = [p.grad for p in op.parameters()]
            if oi == c:
                assert any(g is not None for g in grads) or not grads
            else:
                assert all(g is None for g in grads)


def test_paths_are_checked_and_defaults_follow_the_family():
    with pytest.raises(InputError, match="`paths`"):
        _net("some")
    assert default_paths(TINY) == "all"  # the measured winner per CPU-second (RESULTS.md)
    v2 = get_space("fbnetv2")
    assert v2.family == "fbnetv2" and default_paths(v2) == "all"
    with pytest.raises(InputError, match="`paths` 'sampled' is for FBNet-family"):
        build_supernet(v2, None, paths="sampled")
    with pytest.raises(InputError, match="`width_mult` 0.5: space fbnetv2"):
        v2.scaled(0.5)


def test_width_mult_scales_widths_keeps_architectures_and_refuses_empty_layers():
    half = TINY.scaled(0.5)
    assert half.stem_channels == 4 and [c for c, _, _ in half.stages] == [4, 8] and half.head_channels == 16
    assert half.num_layers == TINY.num_layers and half.name == TINY.name
    assert TINY.scaled(1.0) is TINY
    arch = ("k3_e1",) * TINY.num_layers
    assert half.format(arch) == TINY.format(arch)
    mac_cost(TINY).check_space(half)  # the full-size cost fits the proxy supernet
    net = build_supernet(half, mac_cost(TINY), paths="sampled")
    assert net.predicted_ms(arch) == pytest.approx(mac_cost(TINY).arch_ms([0] * TINY.num_layers))
    with pytest.raises(InputError, match="`width_mult` 0.05 leaves the stem"):
        TINY.scaled(0.05)
    for bad in (0.0, -1.0, float("nan")):
        with pytest.raises(InputError, match="`width_mult`"):
            TINY.scaled(bad)


def test_set_threads_is_deliberate(monkeypatch):
    import os

    import hwnas.search.distributed as d

    before = torch.get_num_threads()
    try:
        assert set_threads(1) == 1 and torch.get_num_threads() == 1
        monkeypatch.setattr(d, "available_cores", lambda: 4)
        monkeypatch.setattr(os, "getloadavg", lambda: (0.2, 0.0, 0.0))
        assert set_threads(None) == 4 and set_threads(None, world=2) == 2  # idle: every core, shared out
        monkeypatch.setattr(os, "getloadavg", lambda: (2.6, 0.0, 0.0))
        assert set_threads(None) == 1  # 1.4 cores free: one thread (rounded)
        monkeypatch.setattr(os, "getloadavg", lambda: (11.0, 0.0, 0.0))
        assert set_threads(None) == 1 and set_threads(None, world=2) == 1  # never below one
        with pytest.raises(InputError, match="`threads`"):
            set_threads(0)
    finally:
        torch.set_num_threads(before)
