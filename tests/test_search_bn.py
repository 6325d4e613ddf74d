"""Precise BN: BatchNorm statistics re-estimated for the final weights (search/bn.py, used by training)."""

from __future__ import annotations

import torch
from torch.nn.modules.batchnorm import _BatchNorm

from hwnas.search.blocks import build_network
from hwnas.search.bn import precise_bn, recalibrated_bn
from search_helpers import TINY

ARCH = ("k3_e6", "skip", "k5_e1")


def _scrambled_net() -> torch.nn.Module:
    torch.manual_seed(0)
    net = build_network(TINY, ARCH).eval()
    g = torch.Generator().manual_seed(1)
    for m in net.modules():
        if isinstance(m, _BatchNorm):  # running statistics that lag far behind the weights
            m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g) * 5)
            m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) * 50 + 0.01)
    return net


def test_precise_bn_makes_eval_mode_match_batch_statistics():
    net = _scrambled_net()
    x = torch.randn(256, 3, 8, 8, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        net.train()
        batch_stats = net(x)
        net.eval()
        assert not torch.allclose(net(x), batch_stats, atol=1e-2)
        precise_bn(net, [x[:128], x[128:]])
        assert not net.training and all(not m.training for m in net.modules() if isinstance(m, _BatchNorm))
        assert all(m.momentum == 0.1 for m in net.modules() if isinstance(m, _BatchNorm))
        # the equal-weight average of two halves' statistics is the whole batch's (up to the
        # unbiased variance the running estimate keeps)
        assert torch.allclose(net(x), batch_stats, atol=0.05, rtol=0.05)


def test_recalibrated_bn_restores_every_buffer():
    net = _scrambled_net()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    x = torch.randn(64, 3, 8, 8)
    with torch.no_grad(), recalibrated_bn(net, [x]):
        changed = any(not torch.equal(before[k], v) for k, v in net.state_dict().items())
    assert changed and all(torch.equal(before[k], v) for k, v in net.state_dict().items())


def test_training_scores_the_final_weights_not_lagging_statistics(monkeypatch):
    """train_network's test accuracy is that of the trained weights: scrambling the statistics
    just before its evaluation changes nothing, because they are re-estimated first."""
    from hwnas.search import train as train_mod
    from hwnas.search.data import load_data

    data = load_data("digits", 8).limited(640)
    torch.set_num_threads(1)
    _, clean = train_mod.train_network(TINY, ARCH, data, epochs=4, batch_size=32, seed=3)

    real_precise = train_mod.precise_bn

    def scramble_then_precise(net, batches):
        for m in net.modules():
            if isinstance(m, _BatchNorm):
                m.running_mean.fill_(7.0)
        real_precise(net, batches)

    monkeypatch.setattr(train_mod, "precise_bn", scramble_then_precise)
    _, scrambled = train_mod.train_network(TINY, ARCH, data, epochs=4, batch_size=32, seed=3)
    assert scrambled["test_acc"] == clean["test_acc"] > 0.3
