"""What gets measured and in which order: enumeration, random samples, random networks, the schedule."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass

import pytest

from hwnas.profiler.enumerate import arch_items, block_items, parse_archs, random_archs, sample_blocks
from hwnas.profiler.schedule import Schedule, interleave
from hwnas.search.space import InputError, get_space


def test_fbnet_cifar_blocks_are_unique_items():
    items = block_items(get_space("fbnet-cifar").unique_blocks())
    assert len(items) == 111
    assert len({i.key for i in items}) == 111
    assert {i.kind for i in items} == {"block"}


@pytest.mark.parametrize("space", ["fbnet-cifar", "fbnetv2"])
def test_samples_are_valid_distinct_deterministic_and_cover_families(space):
    sp = get_space(space)
    a = sample_blocks(sp, 200, seed=3)
    b = sample_blocks(sp, 200, seed=3)
    c = sample_blocks(sp, 200, seed=4)
    assert [s.key for s in a] == [s.key for s in b] != [s.key for s in c]
    assert len({s.key for s in a}) == 200
    ops = Counter(s.op for s in a)
    assert {"ir", "skip", "conv", "fc"} <= set(ops)
    assert ops["ir"] > ops["skip"]
    widest = max(l.cout for l in sp.layers)
    for s in a:
        if s.op in ("ir", "skip"):
            assert 8 <= s.cin <= 2 * widest and s.cin % 8 == 0 and s.cout % 8 == 0
    if space == "fbnetv2":
        assert any(s.se for s in a) and any(s.act == "hswish" for s in a) and ops["pool_conv"] > 0
    else:
        assert any(s.groups == 2 for s in a)


def test_negative_samples_is_input_error():
    with pytest.raises(InputError):
        sample_blocks(get_space("fbnet-cifar"), -1)


def test_random_archs_fbnet_text_and_fbnetv2_json():
    sp = get_space("fbnet-cifar")
    archs = random_archs(sp, 10, seed=0)
    assert archs == random_archs(sp, 10, seed=0) and len(archs) == 10
    items = arch_items(sp, archs)
    assert all(i.key == f"fbnet-cifar:{i.arch_text}" and len(i.arch_text.split("-")) == 22 for i in items)
    v2 = get_space("fbnetv2")
    item = arch_items(v2, random_archs(v2, 1, seed=1))[0]
    data = json.loads(item.arch_text)
    assert set(data) == {"resolution", "stem", "layers"} and " " not in item.arch_text


def test_parse_archs_forms_and_errors():
    sp = get_space("fbnet-cifar")
    assert len(parse_archs("random:3", sp)) == 3
    assert len(parse_archs("fbnet-a; fbnet-b", sp)) == 2
    with pytest.raises(InputError, match="random:N"):
        parse_archs("random:lots", sp)
    with pytest.raises(InputError):
        parse_archs("k3_e1-k3_e1", sp)


@dataclass(frozen=True)
class It:
    key: str
    family: str


def test_interleave_spreads_every_family_over_the_run():
    items = [It(f"a{i}", "a") for i in range(6)] + [It(f"b{i}", "b") for i in range(3)] + [It("c0", "c")]
    order = [i.key for i in interleave(items)]
    assert order[:3] == ["a0", "b0", "c0"]
    assert sorted(order) == sorted(i.key for i in items)
    # family order within itself is kept
    assert [k for k in order if k.startswith("a")] == [f"a{i}" for i in range(6)]


def test_unsettled_block_retried_next_round_then_flagged_with_best_try():
    s = Schedule([It("x", "a"), It("y", "b")], max_attempts=3)
    first = s.next()
    assert first.key == "x"
    assert s.report(first, settled=False, payload="x1", spread=0.5).action == "retry"
    y = s.next()
    assert y.key == "y" and s.report(y, settled=True, payload="y1").action == "store"
    again = s.next()
    assert again.key == "x" and s.round == 2
    s.report(again, settled=False, payload="x2", spread=0.2)
    last = s.next()
    decision = s.report(last, settled=False, payload="x3", spread=0.9)
    assert decision.action == "store" and decision.flagged and decision.payload == "x2"
    assert s.next() is None and s.done == 2 and s.flagged == ["x"] and s.retried == 2
