"""The shared vocabulary: block specifications, search spaces and architectures.

Every part of hwnas may import this module (and only this one from `search`):
the profiler enumerates a space's blocks, the latency models key their tables
by `BlockSpec.key`, the devices build what a spec describes, and the search
trains over a space's layers.  Nothing here imports torch, so reading the
vocabulary stays cheap.

Split in three modules by job (block specs, spaces, named/stored
architectures); import from `search.space`, which re-exports all of them.
"""

from search.space.archs import PRESET_FACTORIES, PRESETS, get_preset, load_arch_file, register_preset, resolve_arch
from search.space.spaces import (
    Layer,
    SearchSpace,
    format_arch,
    get_space,
    list_spaces,
    parse_arch,
    register_space,
)
from search.space.spec import FBNET_OPS, ArchParseError, BlockSpec, InputError, make_divisible

__all__ = [
    "InputError",
    "ArchParseError",
    "BlockSpec",
    "Layer",
    "SearchSpace",
    "FBNET_OPS",
    "make_divisible",
    "get_space",
    "list_spaces",
    "register_space",
    "parse_arch",
    "format_arch",
    "PRESETS",
    "get_preset",
    "resolve_arch",
    "load_arch_file",
    "PRESET_FACTORIES",
    "register_preset",
]
