"""Named and stored architectures: presets, architecture files, and resolving what a user typed.

`resolve_arch` is the one entry point for an architecture argument: a preset
name (FBNet-A/B/C, FBNetV2's models), an arch .json file written by `hwnas
search`, or an architecture string of a space.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hwnas.search.space.registry import get_preset, get_space, list_presets
from hwnas.search.space.spaces import SearchSpace, parse_arch
from hwnas.search.space.spec import InputError

__all__ = ["resolve_arch", "load_arch_file"]


def resolve_arch(text: str, space_name: str | None = None) -> tuple[SearchSpace, tuple[str, ...]]:
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
    if space.channel_options:
        return space, space.check_arch(text)
    return space, parse_arch(text, space)


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
        if space.channel_options:  # FBNetV2-style spaces: the architecture is a JSON object
            return space, space.check_arch(record["arch"]), record
        return space, parse_arch(record["arch"], space), record
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        if isinstance(exc, InputError):
            raise
        raise InputError(f"architecture file {path} does not describe an architecture ({type(exc).__name__}: "
                         f"{str(exc)[:80]})") from None
