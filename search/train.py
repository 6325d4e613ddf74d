"""Train one architecture from scratch and report its test accuracy.

SGD with momentum and a cosine schedule, the usual recipe for small
MobileNet-like networks; one seed fixes initialisation and data order.
Residual blocks start as the identity (`blocks.zero_init_residuals`), and
before every evaluation the BatchNorm statistics are re-estimated for the
final weights (`bn.precise_bn`): after a short training the running averages
lag the weights, and one seed in several then scored near chance.
Weights are saved as a plain state dict (`torch.save`), read back with
`weights_only=True`.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch.nn import functional as F

from hwnas.search.blocks import Network, build_network, zero_init_residuals
from hwnas.search.bn import precise_bn
from hwnas.search.data import Data, normalize
from hwnas.search.space import InputError, SearchSpace

__all__ = ["train_network", "evaluate", "load_weights"]

#: training images that re-estimate BatchNorm statistics before each evaluation (precise BN)
PRECISE_BN_IMAGES = 4096


@torch.no_grad()
def evaluate(net: torch.nn.Module, x_all: torch.Tensor, y_all: torch.Tensor, batch: int = 256) -> float:
    """Top-1 accuracy in eval mode (on the device the network's weights are on)."""
    net.eval()
    dev = next(net.parameters()).device
    correct = 0
    for i in range(0, len(y_all), batch):
        correct += int((net(normalize(x_all[i:i + batch]).to(dev)).argmax(1).cpu() == y_all[i:i + batch]).sum())
    return correct / max(1, len(y_all))


def train_network(space: SearchSpace, arch: Any, data: Data, epochs: int = 30, batch_size: int = 64,
                  lr: float = 0.05, weight_decay: float = 1e-4, seed: int = 0,
                  progress: Callable[[dict[str, Any]], None] | None = None) -> tuple[Network, dict[str, Any]]:
    """Train `arch` on `data.train_*`, evaluate on `data.test_*` after every epoch."""
    if epochs < 1 or batch_size < 1:
        raise InputError("epochs and batch size must be positive")
    if len(data.train_y) < 2:
        raise InputError("need at least two training images")
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if data.num_classes != space.num_classes:
        space = space.with_options(num_classes=data.num_classes)
    # On a GPU where one is present (the search does the same); the CPU path is unchanged.
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    net = zero_init_residuals(build_network(space, arch)).to(device)
    opt = torch.optim.SGD(net.parameters(), lr=lr, momentum=0.9, weight_decay=weight_decay, nesterov=True)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
    gen = torch.Generator().manual_seed(seed)
    history = []
    n = len(data.train_y)
    bs = min(batch_size, n)
    for epoch in range(epochs):
        net.train()
        order = torch.randperm(n, generator=gen)
        losses = []
        steps = n // bs
        for s in range(steps):
            idx = order[s * bs:(s + 1) * bs]
            loss = F.cross_entropy(net(normalize(data.train_x[idx]).to(device)), data.train_y[idx].to(device))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            losses.append(float(loss.detach()))
            if progress:
                progress({"epoch": epoch, "step": s + 1, "steps": steps, "loss": losses[-1]})
        sched.step()
        net.eval()
        precise_bn(net, (normalize(data.train_x[i:i + 256]).to(device)
                         for i in range(0, min(n, PRECISE_BN_IMAGES), 256)))
        acc = evaluate(net, data.test_x, data.test_y)
        history.append({"epoch": epoch + 1, "loss": float(np.mean(losses)), "test_acc": acc})
    return net.cpu(), {"test_acc": history[-1]["test_acc"], "best_test_acc": max(h["test_acc"] for h in history),
                 "epochs": history, "num_classes": data.num_classes, "train_images": n,
                 "test_images": len(data.test_y)}


def load_weights(net: torch.nn.Module, path: Path) -> None:
    """Load a saved state dict without executing code; a mismatch is the user's file, one line."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        net.load_state_dict(state)
    except (RuntimeError, KeyError, ValueError, OSError) as exc:
        raise InputError(f"cannot load weights {path}: {str(exc).splitlines()[0]}") from None
    except Exception as exc:  # weights_only refusals raise UnpicklingError
        raise InputError(f"refusing weights file {path}: {str(exc).splitlines()[0]}") from None
