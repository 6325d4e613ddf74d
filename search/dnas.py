"""FBNet's DNAS loop, generic over any `hwnas.search.supernet.Supernet`.

Per epoch: the weights train on 80% of the training data (SGD lr 0.1 per
256 images of batch, momentum 0.9, wd 1e-4, cosine), then θ on the other 20% (Adam lr 0.01,
wd 5e-4); warm-up epochs train only the weights (cross-entropy alone).  The
temperature starts at τ0 = 5 and is multiplied by exp(-0.045) after every
search epoch.  The loss is FBNet's ``CE · α · log(LAT)^β`` (α = 0.2, β = 0.6)
for θ, with LAT the expected latency in ms of the Gumbel-softmax sample, except that
the log is taken of ``1 + LAT``: a desktop may run a small network in under a
millisecond, where log(LAT) turns negative and its β-th power undefined; for
LAT of several ms the two agree closely.  The weights train on cross-entropy
alone: the latency factor does not depend on them and would only rescale
their SGD learning rate by a device-dependent constant (about 0.2 here).

Latency target (`target_ms = T`): LAT is mirrored about T, i.e. the loss uses
``T + |LAT - T|`` in place of LAT, and LAT is the expected latency under
Pθ = softmax(θ), the distribution the final architectures are drawn from, rather
than under the Gumbel sample: at τ ≈ 5 the sample's weights are nearly uniform
whatever θ is, so its expectation sits near the space's mean latency and a target
there would be "met" by the smoothing while θ drifts to dear ops.  At the end the
best sampled candidate predicted within ±5% of T is the result (the argmax is kept
as `argmax`).  Above T this is exactly the plain loss;
below T the loss rises as LAT falls, so the search is pulled onto the target
rather than past it (accuracy usually pulls upward, so a one-sided hinge
would leave a search that starts below T wherever CE happens to put it).

Reproducibility: one seed fixes everything.  Every global batch is split
into micro-batches of `micro_batch` images in a fixed order, and each process
of a `torchrun` job takes every world-th micro-batch; each micro-batch draws
the same Gumbel sample (the RNG is rewound to the step's state before each),
and the gradients are summed over micro-batches and processes.  BatchNorm
statistics are therefore always per micro-batch, so 1 and N processes compute
the same thing.  Checkpoints hold weights, θ, optimizers, scheduler, RNG
states and the epoch, so `resume` continues bit-for-bit.
"""

from __future__ import annotations

import json
import math
import random
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch.nn import functional as F

from hwnas.search.bn import recalibrated_bn
from hwnas.search.data import Data, normalize
from hwnas.search.distributed import Dist
from hwnas.search.rundir import Run
from hwnas.search.space import InputError
from hwnas.search.supernet import Supernet

__all__ = ["SearchConfig", "latency_factor", "run_search", "temperature"]

Progress = Callable[[dict[str, Any]], None]


#: options that act only once the last epoch is done: a resumed (or complete) search may change them.
AFTER_SEARCH = frozenset({"finalists", "finalist_epochs"})


@dataclass
class SearchConfig:
    epochs: int = 10
    warmup_epochs: int = 2
    batch_size: int = 32
    micro_batch: int = 16
    alpha: float = 0.2
    beta: float = 0.6
    target_ms: float | None = None
    tau0: float = 5.0
    tau_decay: float = 0.045
    #: SGD learning rate of the weights; None: FBNet's 0.1 scaled to the batch by the linear
    #: scaling rule (0.1 per 256 images, Goyal et al. 2017). 0.1 itself diverges on a batch of 32.
    w_lr: float | None = None
    w_momentum: float = 0.9
    w_wd: float = 1e-4
    a_lr: float = 0.01
    a_wd: float = 5e-4
    theta_fraction: float = 0.2
    seed: int = 0
    candidates: int = 8
    eval_images: int = 256
    #: batches of 128 weight-split images that re-estimate BatchNorm statistics for the one
    #: architecture under evaluation (0: use the supernet's running statistics as they are).
    bn_recal_batches: int = 4
    #: supernet forward: "sampled" (one candidate per layer and step) or "all" (FBNet's mixture).
    paths: str = "all"
    #: every width × this during the search (a CPU proxy); latency stays the full-size network's.
    width_mult: float = 1.0
    #: candidates (meeting the target) trained from scratch at the end, the best shipped (0: none).
    finalists: int = 0
    #: epochs of each finalist's training (on the weight split, scored on the θ split).
    finalist_epochs: int = 2

    @property
    def weight_lr(self) -> float:
        return self.w_lr if self.w_lr is not None else 0.1 * self.batch_size / 256

    def check(self, world: int = 1) -> None:
        if self.epochs < 1 or self.warmup_epochs < 0:
            raise InputError("epochs must be at least 1 and warm-up epochs not negative")
        if self.batch_size < 1 or self.micro_batch < 1:
            raise InputError("batch size and micro-batch must be positive")
        chunks = math.ceil(self.batch_size / self.micro_batch)
        if chunks % world:
            raise InputError(
                f"global batch {self.batch_size} in micro-batches of {self.micro_batch} gives {chunks}, "
                f"which {world} processes cannot share evenly; change `batch_size` or `micro_batch`"
            )
        if self.a_lr <= 0 or (self.w_lr is not None and self.w_lr <= 0):
            raise InputError("learning rates (`arch_lr`, `weight_lr`) must be positive")
        if self.alpha <= 0 or self.beta <= 0:
            raise InputError("`alpha` and `beta` must be positive")
        if self.target_ms is not None and self.target_ms <= 0:
            raise InputError("`target_ms` must be positive")
        if self.bn_recal_batches < 0 or self.eval_images < 0:
            raise InputError("`bn_recal_batches` and `eval_images` must not be negative")
        if self.paths not in ("all", "sampled"):
            raise InputError(f"`paths` must be all or sampled, got {self.paths!r}")
        if self.finalists < 0 or self.finalist_epochs < 1:
            raise InputError("`finalists` must not be negative and `finalist_epochs` must be at least 1")
        if not (self.width_mult > 0 and math.isfinite(self.width_mult)):
            raise InputError(f"`width_mult` must be a positive number, got {self.width_mult!r}")


def temperature(cfg: SearchConfig, epoch: int) -> float:
    """τ at `epoch` (0-based): τ0 during warm-up, then τ0·exp(-decay·search epochs done)."""
    return cfg.tau0 * math.exp(-cfg.tau_decay * max(0, epoch - cfg.warmup_epochs))


def latency_factor(lat_ms: torch.Tensor, alpha: float, beta: float, target_ms: float | None = None) -> torch.Tensor:
    """α · log(1 + LAT)^β, with LAT mirrored about the target when one is given (see module doc)."""
    if target_ms is not None:
        lat_ms = target_ms + (lat_ms - target_ms).abs()
    return alpha * torch.log1p(lat_ms).pow(beta)


# --------------------------------------------------------------------------- RNG state


def _rng_state() -> dict[str, Any]:
    """RNG states as tensors and plain lists, so a weights_only load accepts them."""
    np_state = np.random.get_state()
    py_state = random.getstate()
    out: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": [np_state[0], torch.as_tensor(np_state[1].astype(np.int64)), *map(float, np_state[2:])],
        "python": [py_state[0], list(py_state[1]), py_state[2]],
    }
    if torch.cuda.is_available():
        out["cuda"] = torch.cuda.get_rng_state_all()
    return out


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), int(pos), int(has_gauss), float(cached)))
    random.setstate((state["python"][0], tuple(state["python"][1]), state["python"][2]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


# --------------------------------------------------------------------------- steps


class _Loop:
    """One search's state: supernet, optimizers, schedule, splits."""

    def __init__(self, net: Supernet, data: Data, cfg: SearchConfig, dist: Dist, progress: Progress | None) -> None:
        self.net, self.data, self.cfg, self.dist = net, data, cfg, dist
        self.progress = progress or (lambda event: None)
        n = len(data.train_y)
        perm = torch.randperm(n, generator=torch.Generator().manual_seed(cfg.seed))
        n_theta = int(round(n * cfg.theta_fraction))
        self.w_idx, self.a_idx = perm[n_theta:], perm[:n_theta]
        if len(self.w_idx) < cfg.batch_size or len(self.a_idx) < cfg.batch_size:
            raise InputError(
                f"{n} training images give {len(self.w_idx)} for the weights and {len(self.a_idx)} for θ; "
                f"each needs at least one batch of {cfg.batch_size} (lower `batch_size` or raise `limit`)"
            )
        self.w_opt = torch.optim.SGD(net.weight_parameters(), lr=cfg.weight_lr, momentum=cfg.w_momentum,
                                     weight_decay=cfg.w_wd)
        self.a_opt = torch.optim.Adam(net.arch_parameters(), lr=cfg.a_lr, weight_decay=cfg.a_wd)
        self.sched = torch.optim.lr_scheduler.CosineAnnealingLR(self.w_opt, T_max=cfg.epochs)
        self._recal: list[torch.Tensor] | None = None  # BN re-estimation batches, built on first evaluation

    def batches(self, idx: torch.Tensor, epoch: int, salt: int) -> list[torch.Tensor]:
        """Global batches of one epoch, shuffled by (seed, epoch, split): identical on every process."""
        g = torch.Generator().manual_seed(self.cfg.seed * 1_000_003 + epoch * 2 + salt)
        order = idx[torch.randperm(len(idx), generator=g)]
        b = self.cfg.batch_size
        return [order[i:i + b] for i in range(0, len(order) - b + 1, b)]  # drop the ragged tail

    def step(self, batch: torch.Tensor, params: list[torch.nn.Parameter], use_latency: bool) -> dict[str, float]:
        """Forward/backward over this process's micro-batches of one global batch; sums gradients."""
        cfg, net, dev = self.cfg, self.net, self.dist.device
        for p in net.parameters():
            p.grad = None
        chunks = list(torch.split(batch, cfg.micro_batch))
        mine = chunks[self.dist.rank::self.dist.world]
        start = _rng_state()
        ce_sum, correct, lat = 0.0, 0.0, 0.0
        for chunk in mine:
            _set_rng_state(start)  # the same Gumbel sample for every micro-batch of the step
            x = normalize(self.data.train_x[chunk]).to(dev)
            y = self.data.train_y[chunk].to(dev)
            logits = net(x)
            ce = F.cross_entropy(logits, y, reduction="sum") / len(batch)
            loss = ce
            if use_latency:
                expected = net.expected_latency() if cfg.target_ms is None else net.distribution_latency()
                loss = ce * latency_factor(expected, cfg.alpha, cfg.beta, cfg.target_ms)
                lat = float(expected.detach())
            loss.backward()
            ce_sum += float(ce.detach())
            correct += float((logits.argmax(1) == y).sum())
        self.dist.all_reduce_grads(params)
        ce_total = self.dist.all_sum(ce_sum)
        acc = self.dist.all_sum(correct) / len(batch)
        return {"ce": ce_total, "acc": acc, "lat": lat if use_latency else float(net.expected_latency().detach())}

    @torch.no_grad()
    def evaluate(self, arch: Any = None, limit: int | None = None) -> float:
        """Accuracy of one architecture (argmax when None) on the test split, shared weights.

        The supernet's running BatchNorm statistics are those of many sampled paths (or of the
        mixture), not of this one.  So, as single-path NAS does (Guo et al. 2020, SPOS), they
        are re-estimated for `arch` on a few fixed weight-split batches first, and restored
        afterwards so that checkpoints and `resume` are untouched.  (For a mixture-trained
        supernet one path stays near chance even so; `sample.rank_candidates` ranks those by Pθ.)
        """
        net = self.net
        net.eval()
        net.fix(arch)
        try:
            with recalibrated_bn(net, self._recal_batches()):
                x_all, y_all = self.data.test_x, self.data.test_y
                if limit:
                    x_all, y_all = x_all[:limit], y_all[:limit]
                correct = 0
                for i in range(0, len(y_all), 128):
                    x = normalize(x_all[i:i + 128]).to(self.dist.device)
                    correct += int((net(x).argmax(1).cpu() == y_all[i:i + 128]).sum())
        finally:
            net.fix(None)
            net.train()
        return correct / max(1, len(y_all))

    def train_finalist(self, arch: Any, i: int, k: int) -> float:
        """Accuracy of `arch` trained from scratch on the weight split, scored on the θ split.

        The recipe is `hwnas train`'s (SGD lr 0.05, cosine) at the search's batch size and
        width; one seed for every finalist, so they differ only by architecture.  Neither
        split is the test set, which stays for the user's own comparison.  The search's RNG
        state is put back afterwards.
        """
        from hwnas.search.train import train_network

        cfg, d = self.cfg, self.data
        split = Data(d.name, d.train_x[self.w_idx], d.train_y[self.w_idx], d.train_x[self.a_idx],
                     d.train_y[self.a_idx], d.num_classes)

        def progress(ev: dict[str, Any]) -> None:
            self.progress({"epoch": cfg.epochs - 1, "phase": f"finalist {i}/{k}", "step": ev["step"],
                           "steps": ev["steps"], "ce": ev["loss"], "lat": self.net.predicted_ms(arch)})

        state = _rng_state()
        try:
            _, result = train_network(self.net.space, arch, split, epochs=cfg.finalist_epochs,
                                      batch_size=cfg.batch_size, seed=cfg.seed, progress=progress)
        finally:
            _set_rng_state(state)
        return result["test_acc"]

    def _recal_batches(self) -> list[torch.Tensor]:
        """Fixed images for BN re-estimation: the weight split's first images (already shuffled by seed).

        Built once and kept: every candidate and every epoch's evaluation uses the same ones."""
        n = min(len(self.w_idx), 128 * self.cfg.bn_recal_batches)
        if self._recal is None or sum(len(x) for x in self._recal) != n:
            idx = self.w_idx[:n]
            self._recal = [normalize(self.data.train_x[idx[i:i + 128]]).to(self.dist.device) for i in range(0, n, 128)]
        return self._recal

    def epoch(self, epoch: int) -> dict[str, Any]:
        cfg, net = self.cfg, self.net
        net.tau = temperature(cfg, epoch)
        searching = epoch >= cfg.warmup_epochs
        net.train()
        w_batches = self.batches(self.w_idx, epoch, 0)
        a_batches = self.batches(self.a_idx, epoch, 1) if searching else []
        total = len(w_batches) + len(a_batches)
        stats = {"w": [], "a": []}
        for i, batch in enumerate(w_batches):
            s = self.step(batch, net.weight_parameters(), use_latency=False)
            self.w_opt.step()
            stats["w"].append(s)
            self.progress({"epoch": epoch, "phase": "weights", "step": i + 1, "steps": total, **s})
        for i, batch in enumerate(a_batches):
            s = self.step(batch, net.arch_parameters(), use_latency=True)
            self.a_opt.step()
            stats["a"].append(s)
            self.progress({"epoch": epoch, "phase": "theta", "step": len(w_batches) + i + 1, "steps": total, **s})
        self.sched.step()
        mean = lambda rows, k: float(np.mean([r[k] for r in rows])) if rows else None  # noqa: E731
        arch = net.derive()
        return {
            "epoch": epoch + 1,
            "phase": "search" if searching else "warmup",
            "tau": net.tau,
            "w_ce": mean(stats["w"], "ce"), "w_acc": mean(stats["w"], "acc"),
            "theta_ce": mean(stats["a"], "ce"), "theta_acc": mean(stats["a"], "acc"),
            "expected_ms": float(net.expected_latency().detach()) if not searching else mean(stats["a"], "lat"),
            "derived": net.arch_to_json(arch),
            "derived_ms": net.predicted_ms(arch),
            "val_acc": self.evaluate(limit=cfg.eval_images) if self.dist.main else None,
            "distribution": net.distribution(),
        }

    # -- checkpoints -------------------------------------------------------------------
    def state(self, epoch: int, history: list[dict]) -> dict[str, Any]:
        return {
            "format": 1, "epoch": epoch, "config": asdict(self.cfg), "history": json.dumps(history),
            "model": self.net.state_dict(), "w_opt": self.w_opt.state_dict(), "a_opt": self.a_opt.state_dict(),
            "sched": self.sched.state_dict(), "rng": _rng_state(), "tau": self.net.tau,
        }

    def load(self, ckpt: dict[str, Any]) -> tuple[int, list[dict]]:
        self.net.load_state_dict(ckpt["model"])
        self.w_opt.load_state_dict(ckpt["w_opt"])
        self.a_opt.load_state_dict(ckpt["a_opt"])
        self.sched.load_state_dict(ckpt["sched"])
        self.net.tau = float(ckpt["tau"])
        _set_rng_state(ckpt["rng"])
        return int(ckpt["epoch"]), json.loads(ckpt["history"])


def load_checkpoint(path: Path) -> dict[str, Any]:
    """A search checkpoint, loaded without executing code (weights_only=True)."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for a damaged or foreign file
        first = (str(exc).splitlines() or [""])[0] or type(exc).__name__  # EOFError() says nothing itself
        raise InputError(f"cannot read checkpoint {path}: {first}") from None


def _check_resume_config(ckpt: dict[str, Any], cfg: SearchConfig) -> None:
    saved = ckpt.get("config", {})
    differ = [f.name for f in fields(cfg) if f.name in saved and f.name not in AFTER_SEARCH
              and saved[f.name] != getattr(cfg, f.name)]
    if differ:
        raise InputError("cannot resume: options differ from the stopped search: " + ", ".join(
            f"{k} (was {saved[k]!r}, now {getattr(cfg, k)!r})" for k in differ))


def run_search(net: Supernet, data: Data, cfg: SearchConfig, out: Path | Run, *, dist: Dist | None = None,
               resume: bool = False, stop_after: int | None = None, progress: Progress | None = None,
               meta: dict[str, Any] | None = None) -> dict[str, Any]:
    """Run (or resume) a search; rank 0 writes arch.json, history.json, checkpoint.pt, candidates.json.

    `stop_after` ends this run after that many epochs in total (a stopped search, for resuming).
    The network and `data` must already be built identically on every process (same seed).
    """
    from hwnas.search.sample import rank_candidates

    dist = dist or Dist()
    cfg.check(dist.world)
    if cfg.target_ms is not None and cfg.target_ms < net.min_latency_ms():
        raise InputError(f"target {cfg.target_ms:g} ms is below the fastest architecture of the space: "
                         f"{net.min_latency_ms():.4g} ms predicted on this device")
    net.to(dist.device)
    loop = _Loop(net, data, cfg, dist, progress)
    run = out if isinstance(out, Run) else Run(out)
    ckpt_path = run.checkpoint_path
    start, history = 0, []
    if resume:
        if not ckpt_path.is_file():
            raise InputError(f"nothing to resume: {ckpt_path} does not exist")
        ckpt = load_checkpoint(ckpt_path)
        _check_resume_config(ckpt, cfg)
        start, history = loop.load(ckpt)
    elif dist.main and ckpt_path.exists():
        raise InputError(f"{run.path} already holds a search; pass `resume` to continue it or choose another `out`")
    if dist.main:
        run.prepare()
    end = cfg.epochs if stop_after is None else min(cfg.epochs, stop_after)
    for epoch in range(start, end):
        history.append(loop.epoch(epoch))
        if dist.main:
            run.save_checkpoint(loop.state(epoch + 1, history))
            run.write_history(asdict(cfg), history, meta or {})
        dist.barrier()
    arch = net.derive()
    result: dict[str, Any] = {
        "device": getattr(getattr(net, "cost", None), "device", None),
        **(meta or {}),
        "space": net.space.name,
        "arch": net.arch_to_json(arch),
        "predicted_ms": net.predicted_ms(arch),
        "target_ms": cfg.target_ms,
        "min_ms": net.min_latency_ms(),
        "epochs_done": len(history),
        "complete": len(history) >= cfg.epochs,
        "val_acc": history[-1]["val_acc"] if history else None,
    }
    if dist.main and result["complete"]:
        ranked = rank_candidates(net, cfg, loop.evaluate, loop.train_finalist)
        run.write_candidates(net.space.name, ranked)
        if cfg.target_ms is not None or cfg.finalists:  # FBNet samples its final architectures from Pθ
            best = ranked[0]
            result.update(argmax=result["arch"], arch=best["arch"], predicted_ms=best["predicted_ms"],
                          val_acc=best["short_eval_acc"], source=best["source"])
            if "finalist_acc" in best:
                result["finalist_acc"] = best["finalist_acc"]
        run.write_result(result)
    dist.barrier()
    return result

