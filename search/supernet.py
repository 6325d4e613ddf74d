"""The supernet interface the DNAS loop trains (contract 4).

Every supernet is an
`nn.Module` implementing `Supernet`: the loop in `hwnas.search.dnas` only calls the
methods below, so a new kind of supernet plugs in without a change to the loop.

FBNet's supernet lives in `hwnas.search.fbnet.supernet`, FBNetV2's masked one
in `hwnas.search.fbnetv2.supernet`; `hwnas.search.build.build_supernet` picks
the one a space's family needs.
"""

from __future__ import annotations

import abc
from typing import Any

import torch
from torch import nn

from hwnas.search.space import SearchSpace

__all__ = ["Supernet"]


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

    def arch_to_json(self, arch: Any) -> Any:
        """The JSON form of an architecture: the space's own (text for FBNet, an object for FBNetV2)."""
        return self.space.to_json(arch)

    @abc.abstractmethod
    def predicted_ms(self, arch: Any) -> float:
        """Predicted latency (ms) of one architecture under the search's cost."""

    @abc.abstractmethod
    def min_latency_ms(self) -> float:
        """Predicted latency of the fastest architecture the space allows."""

    def log_prob(self, arch: Any) -> float | None:
        """log Pθ(arch) under softmax(θ); None where a supernet cannot say."""
        return None

    @abc.abstractmethod
    def fix(self, arch: Any | None) -> None:
        """Run `arch` alone in eval-mode forwards (None: the argmax architecture)."""
