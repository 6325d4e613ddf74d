"""The shared vocabulary: block specifications, search spaces and architectures.

Every part of hwnas may import this module (and only this one from `search`):
the profiler enumerates a space's blocks, the latency models key their tables
by `BlockSpec.key`, the devices build what a spec describes, and the search
trains over a space's layers.  Nothing here imports torch, so reading the
vocabulary stays cheap.

Split in three modules by job (block specs, spaces, named/stored
architectures); import from `hwnas.search.space`, which re-exports all of them.
"""

from hwnas.search.space.archs import infer_space, load_arch_file, resolve_arch
from hwnas.search.space.registry import (get_preset, get_space, list_presets, list_spaces, register_preset,
                                         register_space)
from hwnas.search.space.spaces import Layer, OpArch, SearchSpace, format_arch, parse_arch
from hwnas.search.space.spec import FBNET_OPS, ArchParseError, BlockSpec, InputError, make_divisible

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
    "infer_space",
    "OpArch",
    "get_preset",
    "list_presets",
    "resolve_arch",
    "load_arch_file",
    "register_preset",
]
