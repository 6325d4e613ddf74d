"""Torch modules for every block a `BlockSpec` can describe, and whole networks.

One builder (`build_block`) maps a spec to its module, so the profiler
measures exactly what the search trains and the counter counts.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
from torch import nn

from hwnas.search.space import BlockSpec, SearchSpace, make_divisible

__all__ = [
    "ConvBNAct",
    "SqueezeExcite",
    "ChannelShuffle",
    "InvertedResidual",
    "Skip",
    "Classifier",
    "PooledConv",
    "build_block",
    "build_network",
    "Network",
    "zero_init_residuals",
]


def activation(name: str) -> nn.Module:
    if name == "relu":
        return nn.ReLU(inplace=True)
    if name == "hswish":
        return nn.Hardswish(inplace=True)
    return nn.Identity()


class ConvBNAct(nn.Sequential):
    def __init__(self, cin: int, cout: int, kernel: int = 1, stride: int = 1, groups: int = 1,
                 act: str = "relu") -> None:
        super().__init__(
            nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=False),
            nn.BatchNorm2d(cout),
            activation(act),
        )


class ChannelShuffle(nn.Module):
    def __init__(self, groups: int) -> None:
        super().__init__()
        self.groups = groups

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        return x.view(n, self.groups, c // self.groups, h, w).transpose(1, 2).reshape(n, c, h, w)


class SqueezeExcite(nn.Module):
    """SE with a hard-sigmoid gate, reduction 4, as MobileNetV3/FBNetV2."""

    def __init__(self, channels: int, reduction: int = 4) -> None:
        super().__init__()
        mid = make_divisible(channels / reduction, 8)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(channels, mid, 1)
        self.act = nn.ReLU(inplace=True)
        self.fc2 = nn.Conv2d(mid, channels, 1)
        self.gate = nn.Hardsigmoid(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gate(self.fc2(self.act(self.fc1(self.pool(x)))))


class InvertedResidual(nn.Module):
    """FBNet's block: 1x1 group conv → BN → act → shuffle → dw k×k → BN → act → [SE] → 1x1 group conv → BN."""

    def __init__(self, spec: BlockSpec) -> None:
        super().__init__()
        hidden, g = spec.hidden, spec.groups
        self.pw = ConvBNAct(spec.cin, hidden, 1, 1, g, spec.act)
        self.shuffle = ChannelShuffle(g) if spec.shuffle and g > 1 else nn.Identity()
        self.dw = ConvBNAct(hidden, hidden, spec.kernel, spec.stride, hidden, spec.act)
        self.se = SqueezeExcite(hidden) if spec.se else nn.Identity()
        self.pwl = ConvBNAct(hidden, spec.cout, 1, 1, g, "none")
        self.residual = spec.residual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.pwl(self.se(self.dw(self.shuffle(self.pw(x)))))
        return x + y if self.residual else y


def zero_init_residuals(net: nn.Module) -> nn.Module:
    """Zero the last BatchNorm scale of every residual block, so each starts as the identity.

    The usual start for training deep residual networks (Goyal et al. 2017; timm's
    ``zero_init_last``).  Without it, fbnet-cifar's 22 layers trained briefly from scratch
    (Fashion-MNIST, 2 epochs on 2000 images) let seeds stall: two networks' three seeds
    scored 0.74/0.41/0.64 and 0.72/0.69/0.36; with it, 0.77/0.77/0.77 and 0.76/0.70/0.74.
    Training only: the profiler times freshly built blocks, whose latency does not depend on
    their values.
    """
    for m in net.modules():
        if isinstance(m, InvertedResidual) and m.residual:
            nn.init.zeros_(m.pwl[1].weight)
    return net


class Skip(nn.Module):
    """Identity when shapes match, else a strided 1x1 conv + BN + ReLU projection."""

    def __init__(self, spec: BlockSpec) -> None:
        super().__init__()
        same = spec.cin == spec.cout and spec.stride == 1
        self.proj = nn.Identity() if same else ConvBNAct(spec.cin, spec.cout, 1, spec.stride, 1, "relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x)


class Classifier(nn.Module):
    """Global average pool + linear layer."""

    def __init__(self, spec: BlockSpec) -> None:
        super().__init__()
        self.fc = nn.Linear(spec.cin, spec.cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))


class PooledConv(nn.Module):
    """FBNetV2's pooled head: global pool, then 1x1 conv (with bias) and activation."""

    def __init__(self, spec: BlockSpec) -> None:
        super().__init__()
        self.conv = nn.Conv2d(spec.cin, spec.cout, 1)
        self.act = activation(spec.act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.conv(nn.functional.adaptive_avg_pool2d(x, 1)))


def build_block(spec: BlockSpec) -> nn.Module:
    """The torch module a spec describes (in eval mode is up to the caller)."""
    if spec.op == "ir":
        return InvertedResidual(spec)
    if spec.op == "skip":
        return Skip(spec)
    if spec.op == "conv":
        return ConvBNAct(spec.cin, spec.cout, spec.kernel, spec.stride, spec.groups, spec.act)
    if spec.op == "fc":
        return Classifier(spec)
    if spec.op == "pool_conv":
        return PooledConv(spec)
    raise ValueError(f"no module for op {spec.op!r}")  # unreachable: BlockSpec validates op


class Network(nn.Sequential):
    """A whole network: its blocks in order, and the specs they were built from."""

    def __init__(self, specs: Sequence[BlockSpec]) -> None:
        super().__init__(*[build_block(s) for s in specs])
        self.specs = tuple(specs)

    @property
    def input_shape(self) -> tuple[int, int, int, int]:
        return self.specs[0].input_shape


def build_network(space: SearchSpace, arch: Any) -> Network:
    """The network of architecture `arch` in `space` (op tuple, or JSON for FBNetV2)."""
    return Network(space.blocks(arch))
