"""The shared vocabulary: block specs, spaces, architecture parsing, presets."""

from __future__ import annotations

import json

import pytest

from hwnas.search.space import (
    FBNET_OPS,
    ArchParseError,
    BlockSpec,
    InputError,
    format_arch,
    get_preset,
    get_space,
    list_spaces,
    parse_arch,
    resolve_arch,
)


def test_blockspec_is_hashable_frozen_and_round_trips_json():
    spec = BlockSpec("ir", 16, 24, 32, stride=2, kernel=5, expansion=6.0, groups=1)
    assert hash(spec) == hash(BlockSpec.from_json(spec.to_json()))
    assert BlockSpec.from_json(spec.to_json()) == spec
    assert BlockSpec.from_dict(json.loads(spec.to_json())).key == spec.key
    with pytest.raises(Exception):
        spec.cin = 8  # frozen


def test_blockspec_key_is_stable_text():
    spec = BlockSpec("ir", 16, 24, 32, stride=2, kernel=5, expansion=6.0)
    assert spec.key == "ir_r32_i16_o24_k5_e6_s2_g1_relu_se0_sh0"
    assert BlockSpec("ir", 16, 24, 32, expansion=1.7912).key.split("_")[5] == "e1.7912"


@pytest.mark.parametrize("bad", [
    dict(op="conv9", cin=3, cout=8, resolution=32),
    dict(op="ir", cin=0, cout=8, resolution=32),
    dict(op="ir", cin=16, cout=8, resolution=32, kernel=4),
    dict(op="ir", cin=16, cout=24, resolution=32, groups=5),
    dict(op="ir", cin=16, cout=24, resolution=32, act="gelu"),
])
def test_blockspec_rejects_bad_fields(bad):
    with pytest.raises(InputError):
        BlockSpec(**bad)


def test_blockspec_from_json_rejects_unknown_and_missing_fields():
    with pytest.raises(InputError, match="unknown"):
        BlockSpec.from_dict({"op": "ir", "cin": 8, "cout": 8, "resolution": 8, "colour": 1})
    with pytest.raises(InputError, match="lacks"):
        BlockSpec.from_dict({"op": "ir", "cin": 8})
    with pytest.raises(InputError, match="JSON"):
        BlockSpec.from_json("{not json")


def test_fbnet_space_shape():
    space = get_space("fbnet")
    layers = space.layers
    assert len(layers) == 22 and space.candidates == FBNET_OPS
    assert [l.stride for l in layers if l.stride == 2] == [2, 2, 2, 2]
    strided = [l.index for l in layers if l.stride == 2]
    assert strided == [1, 5, 9, 17]  # first layers of stages 2, 3, 4 and 6
    assert layers[0].resolution == 112 and layers[-1].resolution == 7 and layers[-1].cout == 352
    assert space.size == 9 ** 22


def test_fbnet_cifar_space_shape():
    space = get_space("fbnet-cifar")
    layers = space.layers
    assert space.input_resolution == 32 and space.stem_stride == 1 and space.head_channels == 1504
    assert layers[0].resolution == 32 and layers[1].stride == 1 and layers[5].stride == 2
    assert layers[-1].resolution == 4


def test_unique_blocks_have_unique_keys_and_cover_every_architecture():
    space = get_space("fbnet-cifar")
    blocks = space.unique_blocks()
    keys = [b.key for b in blocks]
    assert len(keys) == len(set(keys))
    all_keys = set(keys)
    for op in FBNET_OPS:
        assert {b.key for b in space.blocks([op] * 22)} <= all_keys


def test_parse_arch_names_commas_and_integers_agree():
    space = get_space("fbnet")
    _, ops = get_preset("fbnet-b")
    text = format_arch(ops)
    assert parse_arch(text, space) == ops
    assert parse_arch(text.replace("-", ","), space) == ops
    ints = ",".join(str(FBNET_OPS.index(o)) for o in ops)
    assert parse_arch(ints, space) == ops
    assert parse_arch([FBNET_OPS.index(o) for o in ops], space) == ops


@pytest.mark.parametrize("text, match", [
    ("k3_e1-skip", "needs 22 op names, got 2"),
    ("-".join(["k3_e1"] * 21 + ["k7_e9"]), "position 22: unknown op 'k7_e9'; accepted: k3_e1"),
    (",".join(["0"] * 10 + ["9"] + ["0"] * 11), r"position 11: integer 9 out of range; accepted: 0..8"),
    ("", "empty"),
])
def test_parse_arch_errors_name_position_and_accepted_values(text, match):
    with pytest.raises(ArchParseError, match=match):
        parse_arch(text, get_space("fbnet"))


def test_unknown_space_and_preset_are_input_errors():
    with pytest.raises(InputError, match="unknown search space"):
        get_space("resnet")
    with pytest.raises(InputError, match="unknown preset"):
        get_preset("fbnet-z")
    assert {"fbnet", "fbnet-cifar", "fbnetv2"} <= set(list_spaces())


def test_resolve_arch_reads_json_files(tmp_path):
    _, ops = get_preset("fbnet-c")
    path = tmp_path / "arch.json"
    path.write_text(json.dumps({"space": "fbnet-cifar", "arch": format_arch(ops)}))
    space, parsed = resolve_arch(str(path))
    assert space.name == "fbnet-cifar" and parsed == ops
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(InputError, match="not valid JSON"):
        resolve_arch(str(tmp_path / "bad.json"))
    with pytest.raises(InputError, match="not found"):
        resolve_arch(str(tmp_path / "missing.json"))


def test_fbnetv2_space_is_much_larger_than_fbnet_and_checks_json_archs():
    v2 = get_space("fbnetv2")
    info = v2.describe()
    assert info["num_layers"] == 17
    assert info["log10_size_vs_fbnet"] > 10  # the paper: ~10^14 times FBNet's space
    arch = v2.widest_arch("k3_e3", resolution=160)
    blocks = v2.blocks(arch)
    assert blocks[0].resolution == 160 and blocks[-1].op == "fc"
    bad = dict(arch, layers=[["k3_e3", 17]] + arch["layers"][1:])
    with pytest.raises(ArchParseError, match="layer 1: channels 17"):
        v2.check_arch(bad)
    with pytest.raises(ArchParseError, match="resolution"):
        v2.check_arch(dict(arch, resolution=100))
