"""The supernet interface the DNAS loop trains, and FBNet's supernet.

Every supernet (FBNet's here, FBNetV2's masked one in its own module) is an
`nn.Module` implementing `Supernet`: the loop in `search.dnas` only calls the
methods below, so a new kind of supernet plugs in with one `register_supernet`
line and no change to the loop.

FBNet's supernet holds, for every searchable layer, all candidate blocks
built with `search.blocks.build_block` (the very modules the profiler
measures), and mixes their outputs with Gumbel-softmax weights
``m = softmax((θ + g) / τ)`` drawn once per forward and per layer, as in the
paper.  The expected latency under those weights is differentiable in θ.
"""

from __future__ import annotations

import abc
import importlib
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from search.blocks import build_block
from search.space import InputError, SearchSpace, format_arch

__all__ = ["Supernet", "FBNetSupernet", "register_supernet", "build_supernet", "SUPERNETS"]


class Supernet(nn.Module, abc.ABC):
    """What the DNAS loop needs from a supernet (contract 4).

    `forward(x)` in training mode samples Gumbel-softmax weights at `self.tau`
    and keeps them, so `expected_latency()` afterwards is the expected latency
    (ms) of that sample, differentiable in the architecture parameters.  In
    eval mode `forward` runs the architecture fixed by `fix(arch)`, or the
    argmax architecture when none is fixed.
    """

    space: SearchSpace
    tau: float
    _weights: Any  # the last training forward's Gumbel weights; None → softmax(θ)

    @abc.abstractmethod
    def weight_parameters(self) -> list[nn.Parameter]:
        """Ordinary network weights (trained by SGD on the weight split)."""

    @abc.abstractmethod
    def arch_parameters(self) -> list[nn.Parameter]:
        """Architecture parameters θ (trained by Adam on the θ split)."""

    @abc.abstractmethod
    def expected_latency(self) -> torch.Tensor:
        """Expected latency in ms under the weights of the last forward; differentiable in θ."""

    def distribution_latency(self) -> torch.Tensor:
        """Expected latency (ms) under Pθ = softmax(θ): the distribution final architectures are drawn from."""
        saved, self._weights = self._weights, None
        try:
            return self.expected_latency()
        finally:
            self._weights = saved

    @abc.abstractmethod
    def derive(self) -> Any:
        """The most likely architecture (argmax of θ per decision)."""

    @abc.abstractmethod
    def sample(self, n: int, generator: torch.Generator) -> list[Any]:
        """`n` architectures drawn from the learned distribution softmax(θ)."""

    @abc.abstractmethod
    def distribution(self) -> list[list[float]]:
        """Per-layer probabilities, for logging."""

    @abc.abstractmethod
    def arch_to_json(self, arch: Any) -> Any:
        """The JSON form of an architecture (text for FBNet, an object for FBNetV2)."""

    @abc.abstractmethod
    def predicted_ms(self, arch: Any) -> float:
        """Predicted latency (ms) of one architecture under the search's cost."""

    @abc.abstractmethod
    def min_latency_ms(self) -> float:
        """Predicted latency of the fastest architecture the space allows."""

    @abc.abstractmethod
    def fix(self, arch: Any | None) -> None:
        """Run `arch` alone in eval-mode forwards (None: the argmax architecture)."""


class MixedLayer(nn.Module):
    """One searchable layer: every candidate block, summed with the given weights."""

    def __init__(self, blocks: Sequence[nn.Module]) -> None:
        super().__init__()
        self.ops = nn.ModuleList(blocks)

    def forward(self, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        return sum(w * op(x) for w, op in zip(weights, self.ops))  # type: ignore[return-value]


class FBNetSupernet(Supernet):
    """FBNet's supernet over any space whose layers choose one op from `space.candidates`."""

    def __init__(self, space: SearchSpace, cost: Any, tau: float = 5.0) -> None:
        super().__init__()
        cost.check_space(space)
        self.space, self.cost, self.tau = space, cost, tau
        layers = space.layers
        last = layers[-1]
        self.stem = build_block(space.stem_block())
        self.layers = nn.ModuleList(MixedLayer([build_block(l.block(op)) for op in space.candidates]) for l in layers)
        self.head = nn.Sequential(*[build_block(s) for s in space.head_blocks(last.cout, last.block("skip").out_resolution)])
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
            weights = F.gumbel_softmax(self.theta, tau=self.tau, hard=False, dim=-1)
            self._weights = weights
            for layer, w in zip(self.layers, weights):
                x = layer(x, w)
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

    def derive(self) -> tuple[str, ...]:
        return self._ops(self.theta.detach().argmax(dim=1).tolist())

    def sample(self, n: int, generator: torch.Generator) -> list[tuple[str, ...]]:
        probs = F.softmax(self.theta.detach().float(), dim=-1).cpu()
        draws = torch.multinomial(probs, n, replacement=True, generator=generator)  # (layers, n)
        return [self._ops(draws[:, j].tolist()) for j in range(n)]

    def distribution(self) -> list[list[float]]:
        probs = F.softmax(self.theta.detach().double(), dim=-1).cpu().numpy()
        return np.round(probs, 5).tolist()

    def arch_to_json(self, arch: Sequence[str]) -> str:
        return format_arch(arch)

    def predicted_ms(self, arch: Sequence[str]) -> float:
        return self.cost.arch_ms(self._indices(arch))

    def min_latency_ms(self) -> float:
        return self.cost.min_ms()


# --------------------------------------------------------------------------- registry

#: space name → supernet factory(space, cost).  Spaces not listed use FBNet's supernet.
SUPERNETS: dict[str, Callable[[SearchSpace, Any], Supernet]] = {}

#: modules that register further supernets on import (FBNetV2's masked supernet).
_EXTENSIONS = ("search.fbnetv2_supernet",)


def register_supernet(space_name: str) -> Callable[[Callable[..., Supernet]], Callable[..., Supernet]]:
    """Register the supernet factory for a space: one line per new kind."""

    def deco(factory: Callable[..., Supernet]) -> Callable[..., Supernet]:
        SUPERNETS[space_name] = factory
        return factory

    return deco


def _load_extensions() -> Iterator[str]:
    for name in _EXTENSIONS:
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:  # the module exists but something it imports is missing
                raise
            continue
        yield name


def build_supernet(space: SearchSpace, cost: Any, tau: float = 5.0) -> Supernet:
    """The supernet for `space`, trained against latency `cost`."""
    list(_load_extensions())
    factory = SUPERNETS.get(space.name)
    if factory is not None:
        return factory(space, cost, tau=tau)
    if space.channel_options:
        raise InputError(f"no supernet registered for channel-search space {space.name!r}")
    return FBNetSupernet(space, cost, tau=tau)
