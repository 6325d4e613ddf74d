"""Named and stored architectures: presets, architecture files, and resolving what a user typed.

`resolve_arch` is the one entry point for an architecture argument: a preset
name (FBNet-A/B/C, FBNetV2's models), an arch .json file written by `hwnas
search`, or an architecture string of a space.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from hwnas.search.space.registry import get_preset, get_space, list_presets, list_spaces
from hwnas.search.space.spaces import SearchSpace
from hwnas.search.space.spec import InputError

__all__ = ["resolve_arch", "load_arch_file", "infer_space"]


def resolve_arch(text: str, space_name: str | None = None) -> tuple[SearchSpace, Any]:
    """A preset name, a file holding an architecture, or an architecture string.

    A preset brings its own space unless `space_name` names another (then its
    ops are placed in that macro-architecture, e.g. FBNet-B at 32x32).
    """
    text = text.strip()
    if text.lower() in list_presets():
        space, arch = get_preset(text.lower())
        if space_name and space_name != space.name:
            space = get_space(space_name)
            arch = space.check_arch(arch)
        return space, arch
    if text.endswith(".json"):
        space, arch, _ = load_arch_file(text, space_name)
        return space, arch
    space = get_space(space_name or "fbnet")
    return space, space.parse(text)


def load_arch_file(path: Any, space_name: str | None = None) -> tuple[SearchSpace, Any, dict[str, Any]]:
    """Space, architecture and raw record of an architecture file (or a run directory's arch.json).

    The one reader of `{"space", "arch", "space_options"}` files, shared by
    `arch info`, `predict`, `train` and `export`; `space_name` overrides the
    file's space (e.g. FBNet ops placed at 32x32).
    """
    path = Path(path)
    if path.is_dir():
        path = path / "arch.json"
    if not path.is_file():
        raise InputError(f"architecture file not found: {path} (a finished `hwnas search` writes one)")
    from hwnas.search.space.jsonsafe import loads

    try:
        record = loads(path.read_bytes(), f"architecture file {path}")
    except OSError as exc:
        raise InputError(f"cannot read architecture file {path}: {exc.strerror}") from None
    if not isinstance(record, dict) or "arch" not in record:
        raise InputError(f"architecture file {path} has no 'arch' field")
    options = record.get("space_options") or {}
    if not isinstance(options, dict):
        raise InputError(f"architecture file {path}: 'space_options' must be an object")
    name = space_name or record.get("space", "fbnet")
    if not isinstance(name, str) or not isinstance(record["arch"], (str, list, dict)):
        raise InputError(f"architecture file {path}: 'space' must be a name and 'arch' a string, list or object")
    try:  # a file's values reach constructors: any type they refuse is the file's fault, said in one line
        space = get_space(name, **options)
        return space, space.parse(record["arch"]), record
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        if isinstance(exc, InputError):
            raise
        raise InputError(f"architecture file {path} does not describe an architecture ({type(exc).__name__}: "
                         f"{str(exc)[:80]})") from None


def infer_space(block_keys: set[str], spaces: Sequence[SearchSpace] | None = None) -> SearchSpace | None:
    """The space whose candidate blocks the given block keys cover best (at least half), else None.

    Stores hold blocks, not space names: `fit` and `report` use this to find
    the space a device's blocks were profiled for.  `spaces` defaults to every
    registered space.
    """
    if spaces is None:
        spaces = [get_space(name) for name in list_spaces()]
    best, best_cover = None, 0.5
    for space in spaces:
        keys = {layer.block(op).key for layer in space.layers for op in space.candidates}
        cover = len(keys & block_keys) / max(1, len(keys))
        if cover >= best_cover:
            best, best_cover = space, cover
    return best
