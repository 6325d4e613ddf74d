"""FBNetV2's masked supernet and its latency cost, as the search and a user see them."""

from __future__ import annotations

import itertools
import json
import random

import pytest
import torch

from hwnas.search.blocks import build_network
from hwnas.search.count import summarize
from hwnas.search.fbnetv2.supernet import DMaskingSupernet, intersperse, prefix_masks, spaced_indices, subsample
from hwnas.search.fbnetv2.cost import ChannelCost, mac_channel_cost
from hwnas.search.fbnetv2.space import ChannelSearchSpace
from hwnas.search.space import InputError, get_space
from hwnas.search.build import build_supernet


def tiny_space(name: str = "tiny-v2") -> ChannelSearchSpace:
    """A 3-layer channel space small enough to enumerate every architecture."""
    return ChannelSearchSpace(
        name=name, input_resolution=16, stem_channels=8, stem_stride=1, stages=((8, 1, 1), (16, 2, 2)),
        head_channels=32, num_classes=10, candidates=("k3_e1", "k3_e3_se", "k5_e2", "skip"), head_act="hswish",
        pooled_head=True, channel_options=((4, 8), (8, 12, 16), (8, 16)), stem_channel_options=(4, 8),
        resolutions=(12, 16), stage_acts=("relu", "hswish"),
    )


def all_archs(space: ChannelSearchSpace):
    per_layer = [list(itertools.product(space.candidates, opts)) for opts in space.channel_options]
    for res, stem, *layers in itertools.product(space.resolutions, space.stem_channel_options, *per_layer):
        yield {"resolution": res, "stem": stem, "layers": [list(l) for l in layers]}


def random_weights(cost: ChannelCost, seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)

    def p(n: int) -> torch.Tensor:
        return torch.softmax(torch.randn(n, generator=g, dtype=torch.float64), 0).requires_grad_()

    return {"res": p(len(cost.resolutions)), "stem": p(len(cost.stem_options)),
            "ops": [p(len(cost.ops)) for _ in cost.layers], "ch": [p(len(o)) for o in cost.cout_options]}


# --------------------------------------------------------------------------- cost


def test_mac_cost_matches_torch_counter_on_sampled_architectures():
    space = get_space("fbnetv2-cifar")
    cost = mac_channel_cost(space, ms_per_mmac=1.0)
    rng = random.Random(1)
    for _ in range(4):
        arch = {"resolution": rng.choice(space.resolutions), "stem": rng.choice(space.stem_channel_options),
                "layers": [[rng.choice(space.candidates), rng.choice(o)] for o in space.channel_options]}
        assert cost.arch_ms(arch) == pytest.approx(summarize(space.blocks(arch))["total_macs"] / 1e6, rel=1e-9)


def test_expected_latency_is_the_exact_expectation_and_differentiable_in_every_weight():
    space = tiny_space()
    cost = mac_channel_cost(space, overhead_ms=0.5)
    w = random_weights(cost)
    expected = cost.expected_ms(w["res"], w["stem"], w["ops"], w["ch"])
    brute = 0.0
    for arch in all_archs(space):
        r, s, layers = cost.indices(arch)
        p = w["res"][r] * w["stem"][s]
        for (o, c), po, pc in zip(layers, w["ops"], w["ch"]):
            p = p * po[o] * pc[c]
        brute += float(p.detach()) * cost.arch_ms(arch)
    assert float(expected) == pytest.approx(brute, rel=1e-9)
    expected.backward()
    for t in [w["res"], w["stem"], *w["ops"], *w["ch"]]:
        assert t.grad is not None and torch.any(t.grad != 0)


def test_one_hot_weights_give_the_architecture_latency_and_wider_costs_more():
    space = tiny_space()
    cost = mac_channel_cost(space)
    net = DMaskingSupernet(space, cost)
    arch = {"resolution": 16, "stem": 4, "layers": [["k5_e2", 8], ["k3_e3_se", 12], ["k3_e1", 16]]}
    w = net._one_hot(arch)
    lat = cost.expected_ms(w["res"].double(), w["stem"].double(), [o.double() for o in w["ops"]],
                           [c.double() for c in w["ch"]])
    assert float(lat) == pytest.approx(cost.arch_ms(arch))
    wider = {**arch, "layers": [["k5_e2", 8], ["k3_e3_se", 16], ["k3_e1", 16]]}
    assert cost.arch_ms(wider) > cost.arch_ms(arch)


def test_fastest_is_the_true_minimum():
    space = tiny_space()
    cost = mac_channel_cost(space, overhead_ms=0.25)
    ms, arch = cost.fastest()
    brute = min(cost.arch_ms(a) for a in all_archs(space))
    assert ms == pytest.approx(brute)
    assert cost.arch_ms(arch) == pytest.approx(ms)


def test_cost_refuses_arrays_of_another_shape_or_space():
    space = tiny_space()
    cost = mac_channel_cost(space)
    with pytest.raises(InputError, match="layer 1 shape"):
        ChannelCost.from_arrays([cost.layers[0].numpy(), cost.layers[1].numpy()[:, :1], cost.layers[2].numpy()],
                                cost.stem_ms.numpy(), cost.head_ms.numpy(), 0.0, cost.resolutions,
                                [cost.stem_options, *cost.cout_options[:-1]], cost.cout_options, cost.ops)
    with pytest.raises(InputError, match="negative"):
        ChannelCost.from_arrays([-t.numpy() - 1 for t in cost.layers], cost.stem_ms.numpy(), cost.head_ms.numpy(),
                                0.0, cost.resolutions, [cost.stem_options, *cost.cout_options[:-1]],
                                cost.cout_options, cost.ops)
    with pytest.raises(InputError, match="not 'fbnetv2-cifar'"):
        DMaskingSupernet(get_space("fbnetv2-cifar"), cost)
    with pytest.raises(InputError, match="not a channel table"):
        ChannelCost.from_table(object())
    with pytest.raises(InputError, match="does not fit"):
        cost.arch_ms({"resolution": 99, "stem": 4, "layers": []})


# --------------------------------------------------------------------------- masking


def test_masks_subsampling_and_interspersed_padding():
    assert prefix_masks((2, 4), 4).tolist() == [[1, 1, 0, 0], [1, 1, 1, 1]]
    assert spaced_indices(3, 4).tolist() == [0, 1, 2]
    assert spaced_indices(2, 4).tolist() == [0, 2]
    x = torch.arange(2 * 3 * 3, dtype=torch.float32).view(1, 2, 3, 3)
    big = intersperse(x, 6)
    assert big.shape == (1, 2, 6, 6)
    assert torch.equal(subsample(big, 3), x)              # values sit at the spaced positions
    assert float(big.abs().sum()) == float(x.abs().sum())  # zeros everywhere else


def test_fixed_architecture_has_zero_channels_beyond_its_widths():
    torch.manual_seed(0)
    space = tiny_space()
    net = DMaskingSupernet(space, mac_channel_cost(space)).eval()
    arch = {"resolution": 12, "stem": 4, "layers": [["k3_e1", 4], ["skip", 12], ["k5_e2", 8]]}
    net.fix(arch)
    seen = []
    hooks = [layer.register_forward_hook(lambda m, i, o: seen.append(o)) for layer in net.layers]
    with torch.no_grad():
        logits = net(torch.randn(2, 3, 16, 16))
    for h in hooks:
        h.remove()
    assert logits.shape == (2, 10)
    for out, (_, width) in zip(seen, arch["layers"]):
        assert torch.all(out[:, width:] == 0) and torch.any(out[:, :width] != 0)
    assert seen[0].shape[-1] == 12  # ran on the subsampled 12x12 map


def test_parameters_do_not_grow_with_channel_options():
    """One convolution stack per kernel at the widest width: more width options add no weights."""
    def space(k: int) -> ChannelSearchSpace:
        opts = tuple(range(32 // k, 33, 32 // k))
        return ChannelSearchSpace(
            name=f"w{k}", input_resolution=8, stem_channels=32, stem_stride=1, stages=((32, 3, 1),),
            head_channels=32, num_classes=10, candidates=("k3_e3",), pooled_head=True,
            channel_options=(opts,) * 3, stem_channel_options=opts, resolutions=(8,), stage_acts=("relu",))

    counts = {k: sum(p.numel() for p in DMaskingSupernet(space(k)).weight_parameters()) for k in (1, 4, 32)}
    assert counts[1] == counts[4] == counts[32]


def test_training_step_moves_every_architecture_parameter_and_derives_a_buildable_net():
    torch.manual_seed(0)
    space = tiny_space()
    net = DMaskingSupernet(space, mac_channel_cost(space))
    net.train()
    logits = net(torch.randn(4, 3, 16, 16))
    loss = torch.nn.functional.cross_entropy(logits, torch.arange(4)) * torch.log(net.expected_latency())
    loss.backward()
    for p in net.arch_parameters():
        assert p.grad is not None and torch.any(p.grad != 0)
    arch = net.derive()
    assert net.arch_to_json(arch) == space.check_arch(arch)
    model = build_network(space, arch)
    res = arch["resolution"]
    assert model(torch.randn(1, 3, res, res)).shape == (1, 10)
    samples = net.sample(5, torch.Generator().manual_seed(0))
    assert len(samples) == 5 and all(space.check_arch(s) == s for s in samples)
    assert net.min_latency_ms() <= min(net.predicted_ms(s) for s in samples)


def test_registry_builds_the_masked_supernet_for_fbnetv2_spaces():
    space = get_space("fbnetv2-cifar")
    net = build_supernet(space, mac_channel_cost(space))
    assert isinstance(net, DMaskingSupernet)
    assert len(net.distribution()) == space.num_layers == len(net.effective_channels())


def test_bad_input_is_an_input_error():
    space = tiny_space()
    net = DMaskingSupernet(space, mac_channel_cost(space))
    with pytest.raises(InputError, match="16x16"):
        net(torch.randn(1, 3, 32, 32))
    with pytest.raises(InputError, match="channel options"):
        DMaskingSupernet(get_space("fbnet-cifar"))
    with pytest.raises(InputError, match="channels 10"):
        net.fix({"resolution": 16, "stem": 4, "layers": [["k3_e1", 10], ["skip", 12], ["k5_e2", 8]]})
    with pytest.raises(InputError, match="without a latency table"):
        DMaskingSupernet(space).expected_latency()


def test_space_info_compares_with_fbnet(cli):
    proc = cli("space", "info", "fbnetv2-cifar", check=True)
    assert "size vs FBNet (9^22)" in proc.stdout and "resolutions: [24, 28, 32]" in proc.stdout


def test_arch_info_reads_a_searched_fbnetv2_arch_file(cli, tmp_path):
    space = get_space("fbnetv2-cifar")
    arch = {"resolution": 28, "stem": 8, "layers": [["k3_e1", min(o)] for o in space.channel_options]}
    path = tmp_path / "arch.json"
    path.write_text(json.dumps({"space": "fbnetv2-cifar", "arch": arch}))
    data = json.loads(cli("arch", "info", str(path), "--json", check=True).stdout)
    assert data["arch"] == arch and data["total_macs"] > 0
    bad = cli("arch", "info", '{"resolution": 7}', "--space", "fbnetv2-cifar")
    assert bad.returncode == 2 and "resolution 7" in bad.stderr and "Traceback" not in bad.stderr


def test_distribution_latency_uses_softmax_theta_and_keeps_the_gumbel_sample():
    """With a target the loss uses Pθ, not the near-uniform τ = 5 sample of the last forward."""
    torch.manual_seed(0)
    space = tiny_space()
    net = DMaskingSupernet(space, mac_channel_cost(space))
    with torch.no_grad():
        for p in net.arch_parameters():
            p.copy_(3 * torch.randn_like(p))
    net.train()
    net(torch.randn(2, 3, 16, 16))
    sample = net._weights
    sampled = float(net.expected_latency())
    under_p = net.distribution_latency()
    assert net._weights is sample  # the training forward's weights are left for its backward
    net._weights = None
    assert float(under_p) == pytest.approx(float(net.expected_latency()))
    assert float(under_p) != pytest.approx(sampled)
    under_p.backward()
    assert all(p.grad is not None for p in net.arch_parameters())
