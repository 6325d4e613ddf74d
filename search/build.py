"""Build the supernet and latency cost a space's family needs (FBNet's Gumbel mixture, FBNetV2's masks).

A dispatch table on `SearchSpace.family`, so the DNAS loop and the CLI never
ask which kind of space they hold.
"""

from __future__ import annotations

from typing import Any, Callable

from hwnas.search.fbnet.cost import LayerCost
from hwnas.search.fbnet.supernet import FBNetSupernet
from hwnas.search.fbnetv2.cost import ChannelCost
from hwnas.search.fbnetv2.supernet import build_dmasking
from hwnas.search.space import InputError, SearchSpace
from hwnas.search.supernet import Supernet

__all__ = ["build_supernet", "build_cost", "default_paths", "SUPERNETS", "COSTS"]

#: space family → supernet factory(space, cost, tau=...).
SUPERNETS: dict[str, Callable[..., Supernet]] = {"fbnet": FBNetSupernet, "fbnetv2": build_dmasking}


#: space family → the supernet forward a search uses unless told (`paths`).  For FBNet's op
#: choice a sampled step costs a ninth of an all-path one, but at equal CPU time the all-path
#: supernet trained far better (0.94 vs 0.72 accuracy, RESULTS.md), and a short sampled search on
#: Fashion-MNIST stayed at chance: the mixture stays the default until a benchmark says otherwise.
DEFAULT_PATHS: dict[str, str] = {"fbnet": "all", "fbnetv2": "all"}


def default_paths(space: SearchSpace) -> str:
    """The supernet forward mode a search of `space` uses by default."""
    return DEFAULT_PATHS.get(space.family, "all")


def build_supernet(space: SearchSpace, cost: Any, tau: float = 5.0, paths: str = "all") -> Supernet:
    """The supernet for `space`, trained against latency `cost`.

    `paths="sampled"` (single-path, one candidate per layer and step) exists for
    FBNet's op choice; FBNetV2's masked supernet already runs one network-sized pass.
    """
    try:
        factory = SUPERNETS[space.family]
    except KeyError:
        raise InputError(f"no supernet for space {space.name!r} (family {space.family!r})") from None
    if paths == "all":
        return factory(space, cost, tau=tau)
    if space.family != "fbnet":
        raise InputError(f"`paths` {paths!r} is for FBNet-family spaces; {space.name} ({space.family}) masks "
                         "channels in one pass already: use paths='all'")
    return factory(space, cost, tau=tau, paths=paths)


def _layer_cost(space: SearchSpace, table: Any) -> LayerCost:
    cost = LayerCost(table.table_ms, table.fixed_ms, tuple(table.candidates), table.space, device=table.device)
    cost.check_space(space)
    return cost


#: space family → cost factory(space, table) from a latency model's exported table.
COSTS: dict[str, Callable[[SearchSpace, Any], Any]] = {"fbnet": _layer_cost, "fbnetv2": lambda space, table:
                                                        ChannelCost.from_table(table, space)}


def build_cost(space: SearchSpace, table: Any) -> Any:
    """The differentiable latency cost of `space` from a latency table (`latency_models.export.cost_table`)."""
    try:
        factory = COSTS[space.family]
    except KeyError:
        raise InputError(f"no latency cost for space {space.name!r} (family {space.family!r})") from None
    return factory(space, table)
