"""The DNAS loop: latency loss, temperature, files written, determinism, resume, target, DDP."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import math

import pytest
import torch

from hwnas.search.fbnet.cost import LayerCost, mac_cost
from hwnas.search.dnas import SearchConfig, latency_factor, load_checkpoint, temperature
from hwnas.search.space import InputError, get_space
from hwnas.search.build import build_supernet
from hwnas.search.fbnet.supernet import FBNetSupernet
from search_helpers import TINY, tiny_search

ROOT = Path(__file__).resolve().parents[1]


def test_latency_factor_is_fbnet_loss_and_target_mirrors():
    lat = torch.tensor(9.0)
    assert float(latency_factor(lat, 0.2, 0.6)) == pytest.approx(0.2 * math.log(10.0) ** 0.6)
    # above the target: the plain loss; below: rises again as latency falls
    assert float(latency_factor(lat, 0.2, 0.6, target_ms=5.0)) == pytest.approx(float(latency_factor(lat, 0.2, 0.6)))
    assert float(latency_factor(torch.tensor(3.0), 0.2, 0.6, 5.0)) == pytest.approx(float(latency_factor(torch.tensor(7.0), 0.2, 0.6)))
    assert float(latency_factor(torch.tensor(5.0), 0.2, 0.6, 5.0)) < float(latency_factor(torch.tensor(4.0), 0.2, 0.6, 5.0))


def test_weight_lr_follows_the_linear_scaling_rule_unless_given():
    assert SearchConfig(batch_size=256).weight_lr == pytest.approx(0.1)  # FBNet's lr at its reference batch
    assert SearchConfig(batch_size=32).weight_lr == pytest.approx(0.0125)
    assert SearchConfig(batch_size=32, w_lr=0.03).weight_lr == 0.03
    with pytest.raises(InputError):
        SearchConfig(w_lr=-1.0).check()


def test_temperature_schedule_paper_values():
    cfg = SearchConfig(warmup_epochs=2)
    assert temperature(cfg, 0) == temperature(cfg, 2) == 5.0
    assert temperature(cfg, 3) == pytest.approx(5.0 * math.exp(-0.045))
    assert temperature(cfg, 12) == pytest.approx(5.0 * 0.956 ** 10, rel=1e-3)


def test_expected_latency_is_differentiable_and_matches_table():
    cost = mac_cost(TINY)
    net = FBNetSupernet(TINY, cost)
    net.train()
    net(torch.zeros(2, 3, 8, 8))
    lat = net.expected_latency()
    lat.backward()
    assert net.theta.grad is not None and net.theta.grad.abs().sum() > 0
    w = net._weights.detach().numpy()
    assert float(lat.detach()) == pytest.approx(cost.fixed_ms + (w * cost.table_ms).sum(), rel=1e-5)
    arch = net.derive()
    assert net.predicted_ms(arch) == pytest.approx(cost.arch_ms([TINY.candidates.index(o) for o in arch]))
    assert cost.min_ms() <= net.predicted_ms(arch) <= cost.max_ms()


def test_distribution_latency_is_the_expectation_under_softmax_theta():
    """With a target the loss uses Pθ, not the near-uniform τ = 5 Gumbel sample of the last forward."""
    cost = mac_cost(TINY)
    net = FBNetSupernet(TINY, cost)
    with torch.no_grad():
        net.theta.copy_(3 * torch.randn_like(net.theta))
    net.train()
    net(torch.zeros(2, 3, 8, 8))
    sample = net._weights
    lat = net.distribution_latency()
    assert net._weights is sample
    p = torch.softmax(net.theta.detach(), dim=-1).numpy()
    assert float(lat) == pytest.approx(cost.fixed_ms + (p * cost.table_ms).sum(), rel=1e-5)
    lat.backward()
    assert net.theta.grad.abs().sum() > 0


def test_cost_for_another_space_is_refused():
    cost = mac_cost(TINY)
    with pytest.raises(InputError, match="tiny-test"):
        build_supernet(get_space("fbnet-cifar"), cost)
    with pytest.raises(InputError, match="layers x"):
        LayerCost([[1.0, 2.0]], 0.0, ("a", "b", "c"), "x")


@pytest.mark.parametrize("paths", ["all", "sampled"])
def test_search_writes_run_files_and_is_deterministic(tmp_path, paths):
    r1, n1 = tiny_search(tmp_path / "a", paths=paths)
    r2, n2 = tiny_search(tmp_path / "b", paths=paths)
    assert r1["arch"] == r2["arch"]
    assert torch.equal(n1.theta, n2.theta)
    arch = json.loads((tmp_path / "a" / "arch.json").read_text())
    assert arch["space"] == "tiny-test" and arch["arch"] == r1["arch"] and arch["predicted_ms"] > 0
    assert "device" in arch and arch["target_ms"] is None
    hist = json.loads((tmp_path / "a" / "history.json").read_text())["epochs"]
    assert [h["phase"] for h in hist] == ["warmup", "search"]
    assert len(hist[-1]["distribution"]) == TINY.num_layers
    assert all(abs(sum(p) - 1) < 1e-3 for p in hist[-1]["distribution"])
    cands = json.loads((tmp_path / "a" / "candidates.json").read_text())["candidates"]
    assert cands[0]["rank"] == 1 and any(c["source"] == "argmax" for c in cands)
    assert all(0 <= c["short_eval_acc"] <= 1 for c in cands)
    ckpt = load_checkpoint(tmp_path / "a" / "checkpoint.pt")  # weights_only load works
    assert ckpt["epoch"] == 2


@pytest.mark.parametrize("paths", ["all", "sampled"])
def test_resume_continues_bit_for_bit(tmp_path, paths):
    full, net_full = tiny_search(tmp_path / "full", epochs=3, paths=paths)
    stopped, _ = tiny_search(tmp_path / "part", epochs=3, stop_after=2, paths=paths)
    assert not stopped["complete"] and not (tmp_path / "part" / "arch.json").exists()
    resumed, net_res = tiny_search(tmp_path / "part", epochs=3, resume=True, paths=paths)
    assert resumed["arch"] == full["arch"]
    for (k, a), (_, b) in zip(net_full.state_dict().items(), net_res.state_dict().items()):
        assert torch.equal(a, b), k
    h_full = json.loads((tmp_path / "full" / "history.json").read_text())["epochs"]
    h_res = json.loads((tmp_path / "part" / "history.json").read_text())["epochs"]
    assert h_full == h_res


def test_resume_refuses_missing_checkpoint_and_existing_run(tmp_path):
    with pytest.raises(InputError, match="nothing to resume"):
        tiny_search(tmp_path / "none", resume=True)
    tiny_search(tmp_path / "run", epochs=1)
    with pytest.raises(InputError, match="`resume`"):
        tiny_search(tmp_path / "run", epochs=1)


def test_target_below_fastest_names_the_minimum(tmp_path):
    minimum = mac_cost(TINY).min_ms()
    with pytest.raises(InputError, match=f"{minimum:.4g}"):
        tiny_search(tmp_path / "t", target_ms=minimum / 2)


def test_too_little_data_for_a_batch(tmp_path):
    with pytest.raises(InputError, match="`batch_size`"):
        tiny_search(tmp_path / "t", limit=40)


@pytest.mark.integration
@pytest.mark.slow
@pytest.mark.parametrize("paths", ["all", "sampled"])
def test_two_process_gloo_search_matches_one_process(tmp_path, paths):
    torchrun = Path(sys.executable).with_name("torchrun")
    if not torchrun.exists():
        pytest.skip("torchrun not installed next to the interpreter")
    results = {}
    for n in (1, 2):
        out = tmp_path / f"n{n}" / "result.json"
        out.parent.mkdir()
        env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
        proc = subprocess.run([str(torchrun), "--standalone", f"--nproc_per_node={n}",
                               str(ROOT / "tests" / "search_helpers.py"), str(out), paths],
                              capture_output=True, text=True, env=env, cwd=ROOT, timeout=600)
        assert proc.returncode == 0, proc.stderr[-3000:]
        results[n] = json.loads(out.read_text())
    assert results[1]["arch"] == results[2]["arch"]
    flat = [[v for row in results[n]["theta"] for v in row] for n in (1, 2)]
    assert flat[0] == pytest.approx(flat[1], abs=1e-4)


def test_a_target_ships_the_best_ranked_sampled_architecture(tmp_path):
    cost = mac_cost(TINY)
    target = 0.5 * (cost.min_ms() + cost.arch_ms((cost.table_ms.argmax(axis=1)).tolist()))
    result, net = tiny_search(tmp_path / "t", epochs=2, target_ms=target)
    ranked = json.loads((tmp_path / "t" / "candidates.json").read_text())["candidates"]
    assert result["arch"] == ranked[0]["arch"] and result["predicted_ms"] == ranked[0]["predicted_ms"]
    assert result["argmax"] == net.arch_to_json(net.derive())


def _stub_net(ms: dict, logp: dict, samples: list):
    """A supernet stand-in for rank_candidates: argmax "a", then `samples`; latency and log Pθ from the dicts."""

    class Stub:
        def derive(self):
            return "a"

        def sample(self, n, gen):
            return samples[:n]

        def arch_to_json(self, arch):
            return arch

        def predicted_ms(self, arch):
            return ms[arch]

        def log_prob(self, arch):
            return logp[arch]

    return Stub


@pytest.mark.parametrize("paths", ["sampled", "all"])
def test_ranking_puts_candidates_that_meet_the_target_first(paths):
    from types import SimpleNamespace

    from hwnas.search.sample import rank_candidates

    ms = {"a": 1.30, "b": 1.02, "c": 0.97, "d": 0.60}  # target 1.0: b and c meet it (±5%)
    acc = {"a": 0.9, "b": 0.5, "c": 0.7, "d": 0.95}
    logp = {"a": -1.0, "b": -2.0, "c": -3.0, "d": -4.0}

    Stub = _stub_net(ms, logp, ["b", "c", "d", "b"])

    cfg = SimpleNamespace(seed=0, candidates=4, eval_images=8, target_ms=1.0, paths=paths)
    ranked = rank_candidates(Stub(), cfg, lambda arch, limit: acc[arch])
    # single paths: those meeting the target by their short evaluation, then the closest;
    # a mixture-trained supernet: by θ's own probability, since one path of it scores near chance
    assert [r["arch"] for r in ranked] == (["c", "b", "a", "d"] if paths == "sampled" else ["b", "c", "a", "d"])
    assert ranked[1]["count"] == 2 or ranked[0]["count"] == 2
    assert {r["ranked_by"] for r in ranked} == {"short_eval_acc" if paths == "sampled" else "log_prob"}
    cfg.target_ms = None
    got = [r["arch"] for r in rank_candidates(Stub(), cfg, lambda arch, limit: acc[arch])]
    assert got == (["d", "a", "c", "b"] if paths == "sampled" else ["a", "b", "c", "d"])


def test_log_prob_is_the_sum_of_per_layer_log_softmax():
    net = build_supernet(TINY, mac_cost(TINY))
    with torch.no_grad():
        net.theta.copy_(torch.randn(net.theta.shape, generator=torch.Generator().manual_seed(0)))
    arch = ("k3_e6", "skip", "k5_e1")
    p = torch.softmax(net.theta.double(), -1)
    want = sum(math.log(p[i, TINY.candidates.index(op)]) for i, op in enumerate(arch))
    assert net.log_prob(arch) == pytest.approx(want)
    assert net.log_prob(net.derive()) >= max(net.log_prob(a) for a in net.sample(20, torch.Generator()))


def _trained_loop(bn_recal_batches: int):
    from hwnas.search.data import load_data
    from hwnas.search.distributed import Dist
    from hwnas.search.dnas import _Loop, seed_everything

    torch.set_num_threads(1)
    cfg = SearchConfig(epochs=2, warmup_epochs=1, batch_size=32, micro_batch=16, eval_images=128,
                       bn_recal_batches=bn_recal_batches)
    cost = mac_cost(TINY)
    seed_everything(0)
    net = build_supernet(TINY, cost)
    loop = _Loop(net, load_data("digits", 8).limited(400), cfg, Dist(), None)
    loop.epoch(0)  # warm-up: weights only
    return loop, net


def test_evaluation_recalibrates_batchnorm_for_the_one_path_and_restores_it():
    """The mixture's running statistics must neither decide a candidate's score nor be changed by it."""
    from torch.nn.modules.batchnorm import _BatchNorm

    loop, net = _trained_loop(bn_recal_batches=2)
    arch = ("k3_e6", "skip", "k5_e1")
    before = {k: v.clone() for k, v in net.state_dict().items()}
    acc = loop.evaluate(arch, limit=128)
    assert net.training and all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    assert all(m.momentum == 0.1 for m in net.modules() if isinstance(m, _BatchNorm))
    # Scramble the stored statistics: the recalibrated score does not move ...
    g = torch.Generator().manual_seed(1)
    for m in net.modules():
        if isinstance(m, _BatchNorm):
            m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g) * 5)
            m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) * 50 + 0.01)
    assert loop.evaluate(arch, limit=128) == acc
    # ... while without recalibration it is at the mercy of whatever the buffers hold.
    loop.cfg.bn_recal_batches = 0
    assert loop.evaluate(arch, limit=128) != acc


def test_negative_recalibration_batches_are_refused():
    with pytest.raises(InputError, match="bn_recal_batches"):
        SearchConfig(bn_recal_batches=-1).check()


def test_a_crash_while_checkpointing_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    tiny_search(tmp_path / "run", epochs=3, stop_after=1)
    ckpt = tmp_path / "run" / "checkpoint.pt"
    before = ckpt.read_bytes()

    def dies_half_way(obj, f, *a, **k):
        Path(f).write_bytes(b"PK\x03\x04 half a zip")
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", dies_half_way)
    with pytest.raises(KeyboardInterrupt):
        tiny_search(tmp_path / "run", epochs=3, stop_after=2, resume=True)
    assert ckpt.read_bytes() == before and load_checkpoint(ckpt)["epoch"] == 1
    assert [p.name for p in (tmp_path / "run").iterdir() if p.name.endswith(".tmp")] == []


@pytest.mark.parametrize("content", [b"", b"PK\x03\x04", b"\x80\x02garbage"])
def test_a_damaged_checkpoint_is_one_clear_error(tmp_path, content):
    tiny_search(tmp_path / "run", epochs=3, stop_after=1)
    (tmp_path / "run" / "checkpoint.pt").write_bytes(content)
    with pytest.raises(InputError, match=r"cannot read checkpoint .*checkpoint\.pt: \S"):
        tiny_search(tmp_path / "run", epochs=3, resume=True)


def test_finalists_trained_from_scratch_decide_among_those_that_meet_the_target():
    from types import SimpleNamespace

    from hwnas.search.sample import rank_candidates

    ms = {"a": 1.30, "b": 1.02, "c": 0.97, "d": 0.99, "e": 0.60}  # target 1.0: b, c, d meet it
    logp = {"a": -1.0, "b": -2.0, "c": -3.0, "d": -4.0, "e": -5.0}
    scratch = {"b": 0.6, "c": 0.8, "d": 0.7}
    trained: list[tuple[str, int, int]] = []

    Stub = _stub_net(ms, logp, ["b", "c", "d", "e"])

    def train(arch, i, k):
        trained.append((arch, i, k))
        return scratch[arch]

    cfg = SimpleNamespace(seed=0, candidates=4, eval_images=8, target_ms=1.0, paths="all", finalists=2)
    ranked = rank_candidates(Stub(), cfg, lambda arch, limit: 0.1, train)
    # the two most probable that meet the target are trained; the better one ships; the rest keep their order
    assert trained == [("b", 1, 2), ("c", 2, 2)]
    assert [r["arch"] for r in ranked] == ["c", "b", "d", "a", "e"]
    assert [r["ranked_by"] for r in ranked] == ["finalist_acc", "finalist_acc", "log_prob", "log_prob", "log_prob"]
    assert ranked[0]["finalist_acc"] == 0.8 and "finalist_acc" not in ranked[2]
    # none meets the target: only the nearest miss is worth a training
    trained.clear()
    ms.update(b=1.5, c=1.6, d=1.7)
    scratch["a"] = 0.5
    ranked = rank_candidates(Stub(), cfg, lambda arch, limit: 0.1, train)
    assert [t[0] for t in trained] == ["a"] and ranked[0]["arch"] == "a"


def test_a_search_with_finalists_ships_the_best_trained_and_a_complete_search_can_be_reranked(tmp_path):
    result, _ = tiny_search(tmp_path / "f", epochs=2, finalists=3)
    ranked = json.loads((tmp_path / "f" / "candidates.json").read_text())["candidates"]
    finalists = [r for r in ranked if r["ranked_by"] == "finalist_acc"]
    assert 1 <= len(finalists) <= 3 and finalists == ranked[:len(finalists)]
    assert [r["finalist_acc"] for r in finalists] == sorted((r["finalist_acc"] for r in finalists), reverse=True)
    assert result["arch"] == ranked[0]["arch"] and result["finalist_acc"] == ranked[0]["finalist_acc"]
    # same seed, same finalists: the same architecture (training from scratch is seeded too)
    again, _ = tiny_search(tmp_path / "g", epochs=2, finalists=3)
    assert again["arch"] == result["arch"] and again["finalist_acc"] == result["finalist_acc"]
    # a complete search resumed with another K re-ranks; any option that shaped the search is still refused
    rerank, _ = tiny_search(tmp_path / "f", epochs=2, finalists=1, resume=True)
    reranked = json.loads((tmp_path / "f" / "candidates.json").read_text())["candidates"]
    assert [r["ranked_by"] for r in reranked].count("finalist_acc") == 1
    assert rerank["arch"] == max(ranked, key=lambda r: r["log_prob"])["arch"] == reranked[0]["arch"]
    with pytest.raises(InputError, match="options differ"):
        tiny_search(tmp_path / "f", epochs=2, finalists=1, resume=True, seed=1)


def test_negative_finalists_are_refused():
    with pytest.raises(InputError, match="finalists"):
        SearchConfig(finalists=-1).check()
    with pytest.raises(InputError, match="finalist_epochs"):
        SearchConfig(finalist_epochs=0).check()
