"""BatchNorm statistics re-estimated for the weights as they are ("precise BN").

A BatchNorm layer's running statistics are an exponential average over the last
few dozen training batches, taken while the weights under them were still
moving.  After a short training those averages lag the final weights, and over
22 layers the mismatch compounds: measured on fbnet-cifar trained 2 epochs on
2000 Fashion-MNIST images, one seed scored 0.32 in eval mode while the same
weights with batch statistics scored 0.74.  Re-estimating the statistics with
the final weights on a few training batches, as an equal-weight average (Wu &
Johnson 2021, "Rethinking BatchNorm"), removes the lag.  It is also what
scoring one path of a supernet needs (its running statistics are those of many
paths).
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterable, Iterator

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

__all__ = ["batchnorms", "precise_bn", "recalibrated_bn"]


def batchnorms(net: nn.Module) -> list[_BatchNorm]:
    """The BatchNorm layers that keep running statistics (the ones an eval-mode forward reads)."""
    return [m for m in net.modules() if isinstance(m, _BatchNorm) and m.track_running_stats]


@torch.no_grad()
def precise_bn(net: nn.Module, batches: Iterable[torch.Tensor]) -> None:
    """Replace every BatchNorm's running statistics by their average over `batches` (inputs on net's device).

    The network's forward runs in its current mode except for the BatchNorm layers, which
    run in training mode with a cumulative average (momentum None); they end in eval mode
    when the network is in eval mode, as before.  The momenta are restored.
    """
    bns = batchnorms(net)
    if not bns:
        return
    momenta = [m.momentum for m in bns]
    try:
        for m in bns:
            m.reset_running_stats()
            m.momentum = None
            m.train()
        for x in batches:
            net(x)
    finally:
        for m, momentum in zip(bns, momenta):
            m.momentum = momentum
            m.train(net.training)


@contextmanager
def recalibrated_bn(net: nn.Module, batches: list[torch.Tensor]) -> Iterator[None]:
    """`precise_bn` within the block only: on exit every BatchNorm buffer is as it was."""
    bns = batchnorms(net)
    if not batches or not bns:
        yield
        return
    saved = [{k: v.clone() for k, v in m.named_buffers(recurse=False)} for m in bns]
    try:
        precise_bn(net, batches)
        yield
    finally:
        for m, buffers in zip(bns, saved):
            for k, v in buffers.items():
                getattr(m, k).copy_(v)
