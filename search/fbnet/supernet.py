"""FBNet's supernet: every candidate of every layer, mixed by Gumbel-softmax weights, or one path.

For every searchable layer it holds all candidate blocks built with
`hwnas.search.blocks.build_block` (the very modules the profiler measures).
`paths="all"` (FBNet) mixes their outputs with Gumbel-softmax weights
``m = softmax((θ + g) / τ)`` drawn once per forward and per layer, as in the
paper: a step runs all nine candidates.  `paths="sampled"` (GDAS,
ProxylessNAS) draws the hard one-hot sample instead and runs only its
candidate, scaled by the one-hot entry; the straight-through estimator
passes the soft sample's gradient to θ, so a step costs about one network.
In both modes the expected latency under the sample's weights is
differentiable in θ (for `sampled` through the same straight-through one-hot).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from hwnas.search.blocks import build_block, zero_init_residuals
from hwnas.search.space import InputError, SearchSpace
from hwnas.search.supernet import Supernet

__all__ = ["FBNetSupernet", "MixedLayer", "PATHS"]

#: supernet forward modes: every candidate mixed (FBNet) or the sampled one alone (GDAS).
PATHS = ("all", "sampled")


class MixedLayer(nn.Module):
    """One searchable layer: every candidate block, summed with the given weights."""

    def __init__(self, blocks: Sequence[nn.Module]) -> None:
        super().__init__()
        self.ops = nn.ModuleList(blocks)

    def forward(self, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        return sum(w * op(x) for w, op in zip(weights, self.ops))  # type: ignore[return-value]

    def forward_one(self, x: torch.Tensor, one_hot: torch.Tensor) -> torch.Tensor:
        """Run only the chosen candidate; ×one_hot[i] (=1) carries the straight-through gradient to θ."""
        i = int(one_hot.detach().argmax())
        return one_hot[i] * self.ops[i](x)


class FBNetSupernet(Supernet):
    """FBNet's supernet over any space whose layers choose one op from `space.candidates`."""

    def __init__(self, space: SearchSpace, cost: Any, tau: float = 5.0, paths: str = "all") -> None:
        super().__init__()
        if paths not in PATHS:
            raise InputError(f"`paths` must be one of {', '.join(PATHS)}, got {paths!r}")
        cost.check_space(space)
        self.space, self.cost, self.tau, self.paths = space, cost, tau, paths
        layers = space.layers
        last = layers[-1]
        self.stem = build_block(space.stem_block())
        self.layers = nn.ModuleList(MixedLayer([build_block(l.block(op)) for op in space.candidates]) for l in layers)
        self.head = nn.Sequential(*[build_block(s) for s in space.head_blocks(last.cout, last.block("skip").out_resolution)])
        zero_init_residuals(self.layers)  # every candidate starts as the identity (see that function)
        # θ starts at zero: a uniform distribution, as in FBNet.
        self.theta = nn.Parameter(torch.zeros(len(layers), len(space.candidates)))
        self._weights: torch.Tensor | None = None
        self._fixed: tuple[int, ...] | None = None

    # -- parameters -------------------------------------------------------------------
    def weight_parameters(self) -> list[nn.Parameter]:
        return [p for name, p in self.named_parameters() if name != "theta"]

    def arch_parameters(self) -> list[nn.Parameter]:
        return [self.theta]

    # -- forward ----------------------------------------------------------------------
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        if self.training:
            # One Gumbel sample per layer per forward (per batch), as FBNet does.
            hard = self.paths == "sampled"
            weights = F.gumbel_softmax(self.theta, tau=self.tau, hard=hard, dim=-1)
            self._weights = weights
            for layer, w in zip(self.layers, weights):
                x = layer.forward_one(x, w) if hard else layer(x, w)
        else:
            for layer, i in zip(self.layers, self._eval_indices()):
                x = layer.ops[i](x)
        return self.head(x)

    def _eval_indices(self) -> tuple[int, ...]:
        if self._fixed is not None:
            return self._fixed
        return tuple(int(i) for i in self.theta.argmax(dim=1))

    def fix(self, arch: Any | None) -> None:
        self._fixed = None if arch is None else self._indices(arch)

    def expected_latency(self) -> torch.Tensor:
        weights = self._weights if self._weights is not None else F.softmax(self.theta, dim=-1)
        return self.cost.expected(weights)

    # -- architectures ----------------------------------------------------------------
    def _indices(self, arch: Sequence[str]) -> tuple[int, ...]:
        ops = self.space.check_arch(arch)
        return tuple(self.space.candidates.index(op) for op in ops)

    def _ops(self, indices: Sequence[int]) -> tuple[str, ...]:
        return tuple(self.space.candidates[int(i)] for i in indices)

    def last_sample(self) -> tuple[str, ...]:
        """The architecture the last training forward's Gumbel sample favoured (the one it ran, when sampled)."""
        if self._weights is None:
            raise RuntimeError("no training forward yet")
        return self._ops(self._weights.detach().argmax(dim=1).tolist())

    def derive(self) -> tuple[str, ...]:
        return self._ops(self.theta.detach().argmax(dim=1).tolist())

    def sample(self, n: int, generator: torch.Generator) -> list[tuple[str, ...]]:
        probs = F.softmax(self.theta.detach().float(), dim=-1).cpu()
        draws = torch.multinomial(probs, n, replacement=True, generator=generator)  # (layers, n)
        return [self._ops(draws[:, j].tolist()) for j in range(n)]

    def log_prob(self, arch: Sequence[str]) -> float:
        logp = F.log_softmax(self.theta.detach().double(), dim=-1)
        return float(sum(logp[i, j] for i, j in enumerate(self._indices(arch))))

    def distribution(self) -> list[list[float]]:
        probs = F.softmax(self.theta.detach().double(), dim=-1).cpu().numpy()
        return np.round(probs, 5).tolist()

    def predicted_ms(self, arch: Sequence[str]) -> float:
        return self.cost.arch_ms(self._indices(arch))

    def min_latency_ms(self) -> float:
        return self.cost.min_ms()
