"""The registry of search spaces and named architectures: a leaf that imports none of them.

Spaces and presets are data defined in `hwnas.search.fbnet` and
`hwnas.search.fbnetv2` (timm-style: `register_space` puts a factory in a
dict); `hwnas.search`'s `__init__` imports those definitions, so every space
is registered before anyone can ask for one.
"""

from __future__ import annotations

from typing import Any, Callable

from hwnas.search.space.spaces import SearchSpace
from hwnas.search.space.spec import InputError

__all__ = ["register_space", "list_spaces", "get_space", "register_preset", "get_preset", "list_presets"]

_SPACES: dict[str, Callable[[], SearchSpace]] = {}


def register_space(name: str) -> Callable[[Callable[[], SearchSpace]], Callable[[], SearchSpace]]:
    """Register a space factory under `name` (timm-style registry)."""

    def deco(fn: Callable[[], SearchSpace]) -> Callable[[], SearchSpace]:
        _SPACES[name] = fn
        return fn

    return deco


def list_spaces() -> list[str]:
    return sorted(_SPACES)


def get_space(name: str, **options: Any) -> SearchSpace:
    """The space registered under `name`, optionally varied (`num_classes=100`, …)."""
    try:
        factory = _SPACES[name]
    except KeyError:
        raise InputError(f"unknown search space {name!r}; known: {', '.join(sorted(_SPACES))}") from None
    space = factory()
    return space.with_options(**options) if options else space


#: preset name → factory of (space, architecture).
_PRESETS: dict[str, Callable[[], tuple[SearchSpace, Any]]] = {}


def register_preset(name: str) -> Callable[[Callable[[], tuple[SearchSpace, Any]]], Callable[[], tuple[SearchSpace, Any]]]:
    """Register a published architecture: a factory returning its (space, architecture)."""

    def deco(fn: Callable[[], tuple[SearchSpace, Any]]) -> Callable[[], tuple[SearchSpace, Any]]:
        _PRESETS[name] = fn
        return fn

    return deco


def list_presets() -> list[str]:
    return sorted(_PRESETS)


def get_preset(name: str) -> tuple[SearchSpace, Any]:
    """The (space, architecture) of a published model (`fbnet-b`, `fbnetv2-f1`, ...)."""
    try:
        factory = _PRESETS[name.lower()]
    except KeyError:
        raise InputError(f"unknown preset {name!r}; known: {', '.join(sorted(_PRESETS))}") from None
    return factory()
