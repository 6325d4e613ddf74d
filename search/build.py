"""Build the supernet a space's family needs (FBNet's Gumbel mixture, FBNetV2's masks).

A dispatch table on `SearchSpace.family`, so the DNAS loop and the CLI never
ask which kind of space they hold.
"""

from __future__ import annotations

from typing import Any, Callable

from hwnas.search.fbnet.supernet import FBNetSupernet
from hwnas.search.fbnetv2.supernet import build_dmasking
from hwnas.search.space import InputError, SearchSpace
from hwnas.search.supernet import Supernet

__all__ = ["build_supernet", "SUPERNETS"]

#: space family → supernet factory(space, cost, tau=...).
SUPERNETS: dict[str, Callable[..., Supernet]] = {"fbnet": FBNetSupernet, "fbnetv2": build_dmasking}


def build_supernet(space: SearchSpace, cost: Any, tau: float = 5.0) -> Supernet:
    """The supernet for `space`, trained against latency `cost`."""
    try:
        factory = SUPERNETS[space.family]
    except KeyError:
        raise InputError(f"no supernet for space {space.name!r} (family {space.family!r})") from None
    return factory(space, cost, tau=tau)
