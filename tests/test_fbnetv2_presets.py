"""FBNetV2's published family as presets: MACs and params against the paper's table."""

from __future__ import annotations

import json

import pytest
import torch

from hwnas.search.blocks import build_network
from hwnas.search.count import summarize
from hwnas.search.fbnetv2.presets import FBNETV2_PUBLISHED
from hwnas.search.space import InputError, get_preset, resolve_arch


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(FBNETV2_PUBLISHED))
def test_preset_macs_and_params_match_the_published_table(name):
    size, mmacs, mparams, _ = FBNETV2_PUBLISHED[name]
    space, arch = get_preset(name)
    info = summarize(space.blocks(arch))
    assert abs(info["total_macs"] / 1e6 / mmacs - 1) <= 0.02, info["total_macs"]
    assert abs(info["total_params"] / 1e6 / mparams - 1) <= 0.02, info["total_params"]
    assert space.blocks(arch)[0].resolution == size


def test_f1_f2_f3_share_one_block_list_at_three_input_sizes():
    bodies = []
    for name in ("fbnetv2-f1", "fbnetv2-f2", "fbnetv2-f3"):
        space, arch = get_preset(name)
        bodies.append([(b.op, b.cin, b.cout, b.kernel, b.expansion, b.se, b.act) for b in space.blocks(arch)[:-2]])
    assert bodies[0] == bodies[1] == bodies[2]


def test_preset_builds_and_runs_at_its_input_size():
    space, arch = resolve_arch("FBNetV2-F1")
    net = build_network(space, arch).eval()
    with torch.no_grad():
        assert net(torch.zeros(1, 3, 128, 128)).shape == (1, 1000)
    with pytest.raises(InputError, match="fixed network"):
        space.blocks({"resolution": 160})


def test_arch_info_cli(cli):
    data = json.loads(cli("arch", "info", "fbnetv2-f1", "--json", check=True).stdout)
    assert data["space"] == "fbnetv2-f1" and abs(data["total_macs"] / 56.4e6 - 1) <= 0.02
    table = cli("arch", "info", "fbnetv2-f1", check=True).stdout
    assert "pool_conv" in table and "total:" in table
    bad = cli("arch", "info", "fbnetv2-f9")
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
