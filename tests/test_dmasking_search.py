"""A DMaskingNAS search on digits, end to end through the shared DNAS loop (local CPU)."""

from __future__ import annotations

import json

import pytest
import torch

from hwnas.search.blocks import build_network
from hwnas.search.data import load_data
from hwnas.search.fbnetv2.supernet import DMaskingSupernet
from hwnas.search.fbnetv2.cost import mac_channel_cost
from hwnas.search.dnas import SearchConfig, run_search
from hwnas.search.space import InputError
from test_dmasking import tiny_space


@pytest.mark.slow
def test_search_on_digits_writes_a_buildable_fbnetv2_architecture(tmp_path):
    space = tiny_space()
    cost = mac_channel_cost(space, ms_per_mmac=1.0, overhead_ms=0.1)
    torch.manual_seed(0)
    net = DMaskingSupernet(space, cost)
    data = load_data("digits", space.input_resolution).limited(96)
    cfg = SearchConfig(epochs=2, warmup_epochs=1, batch_size=16, micro_batch=16, candidates=2, eval_images=32)
    run_search(net, data, cfg, tmp_path, meta={"device": cost.device})
    result = json.loads((tmp_path / "arch.json").read_text())
    arch = space.check_arch(result["arch"])
    assert result["predicted_ms"] == pytest.approx(cost.arch_ms(arch), rel=1e-6)
    history = json.loads((tmp_path / "history.json").read_text())
    assert len(history) >= 2
    model = build_network(space, arch).eval()
    res = arch["resolution"]
    with torch.no_grad():
        assert model(torch.zeros(1, 3, res, res)).shape == (1, 10)


def test_target_below_the_fastest_architecture_is_refused(tmp_path):
    space = tiny_space()
    cost = mac_channel_cost(space, overhead_ms=0.1)
    net = DMaskingSupernet(space, cost)
    data = load_data("digits", space.input_resolution).limited(16)
    fastest = cost.fastest()[0]
    with pytest.raises(InputError, match="below the fastest"):
        run_search(net, data, SearchConfig(epochs=1, target_ms=fastest / 2), tmp_path)
