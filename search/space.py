"""The shared vocabulary: block specifications, search spaces and architectures.

Every part of hwnas may import this module (and only this one from `search`):
the profiler enumerates a space's blocks, the latency models key their tables
by `BlockSpec.key`, the devices build what a spec describes, and the search
trains over a space's layers.  Nothing here imports torch, so reading the
vocabulary stays cheap.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping, Sequence

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


class InputError(ValueError):
    """A mistake in what a user handed us (a name, a file, an option).

    The CLI turns it into one line on stderr and exit code 2; every part of
    hwnas raises a subclass of it for bad input, never for its own bugs.
    """


class ArchParseError(InputError):
    """An architecture string that does not describe an architecture of the space."""


def make_divisible(value: float, divisor: int = 8, min_value: int | None = None) -> int:
    """Round channels to a multiple of `divisor`, never more than 10% down.

    The rule MobileNet/FBNetV2 use for hidden widths, kept identical so that
    fractional expansion ratios give the channel counts the papers report.
    """
    min_value = divisor if min_value is None else min_value
    rounded = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return int(rounded)


# --------------------------------------------------------------------------- blocks

_OPS = ("ir", "skip", "conv", "fc", "pool_conv")
_ACTS = ("relu", "hswish", "none")


@dataclass(frozen=True)
class BlockSpec:
    """One block as a device must measure it: frozen, hashable, JSON round-trippable.

    op families:
      ``ir``        inverted residual: 1x1 (group) conv → dw k×k → [SE] → 1x1 (group) conv
      ``skip``      identity, or 1x1 conv + BN + ReLU when the shape changes
      ``conv``      plain k×k conv + BN + act (stems, 1x1 heads)
      ``fc``        global average pool + linear classifier (`cout` = classes)
      ``pool_conv`` global average pool + 1x1 conv + act (FBNetV2's pooled head)
    `resolution` is the square input size, `expansion` the hidden/in ratio.
    """

    op: str
    cin: int
    cout: int
    resolution: int
    stride: int = 1
    kernel: int = 1
    expansion: float = 1.0
    groups: int = 1
    act: str = "relu"
    se: bool = False
    shuffle: bool = False

    def __post_init__(self) -> None:
        if self.op not in _OPS:
            raise InputError(f"unknown block op {self.op!r}; expected one of {', '.join(_OPS)}")
        if self.act not in _ACTS:
            raise InputError(f"unknown activation {self.act!r}; expected one of {', '.join(_ACTS)}")
        for name in ("cin", "cout", "resolution", "stride", "kernel", "groups"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise InputError(f"block field {name} must be a positive integer, got {value!r}")
        if not (self.expansion > 0 and math.isfinite(self.expansion)):
            raise InputError(f"block expansion must be a positive number, got {self.expansion!r}")
        if self.op == "ir":
            if self.kernel % 2 == 0:
                raise InputError(f"depthwise kernel must be odd, got {self.kernel}")
            if self.cin % self.groups or self.cout % self.groups or self.hidden % self.groups:
                raise InputError(
                    f"groups={self.groups} must divide cin={self.cin}, hidden={self.hidden} and cout={self.cout}"
                )

    @property
    def hidden(self) -> int:
        """Hidden (expanded) channels of an `ir` block: cin·e rounded to a multiple of 8."""
        exact = self.cin * self.expansion
        if float(exact).is_integer():
            return int(exact)
        return make_divisible(exact, 8)

    @property
    def out_resolution(self) -> int:
        if self.op in ("fc", "pool_conv"):
            return 1
        return (self.resolution - 1) // self.stride + 1

    @property
    def residual(self) -> bool:
        return self.op == "ir" and self.stride == 1 and self.cin == self.cout

    @property
    def family(self) -> str:
        """The block family a per-family regressor is fitted for."""
        if self.op == "skip":
            return "skip" if (self.cin == self.cout and self.stride == 1) else "skip_proj"
        if self.op == "ir":
            return f"ir_k{self.kernel}" + ("_g" if self.groups > 1 else "") + ("_se" if self.se else "")
        return self.op

    @property
    def label(self) -> str:
        """Short human name: `k5_e6`, `k3_e1_g2`, `skip`, `conv3x3`, `fc`."""
        if self.op == "ir":
            e = f"{self.expansion:g}"
            return (f"k{self.kernel}_e{e}" + (f"_g{self.groups}" if self.groups > 1 else "")
                    + ("_se" if self.se else "") + ("_hs" if self.act == "hswish" else ""))
        if self.op == "conv":
            return f"conv{self.kernel}x{self.kernel}"
        return self.op

    @property
    def key(self) -> str:
        """Stable text key: equal specs give equal keys across runs and versions."""
        e = f"{self.expansion:.4f}".rstrip("0").rstrip(".")
        return (
            f"{self.op}_r{self.resolution}_i{self.cin}_o{self.cout}_k{self.kernel}_e{e}"
            f"_s{self.stride}_g{self.groups}_{self.act}_se{int(self.se)}_sh{int(self.shuffle)}"
        )

    @property
    def input_shape(self) -> tuple[int, int, int, int]:
        """NCHW shape of the block's input at batch 1."""
        return (1, self.cin, self.resolution, self.resolution)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "BlockSpec":
        if not isinstance(data, Mapping):
            raise InputError(f"a block spec must be a JSON object, got {type(data).__name__}")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - names
        if unknown:
            raise InputError(f"unknown block spec field(s): {', '.join(sorted(unknown))}")
        missing = {"op", "cin", "cout", "resolution"} - set(data)
        if missing:
            raise InputError(f"block spec lacks field(s): {', '.join(sorted(missing))}")
        values = dict(data)
        if "expansion" in values:
            values["expansion"] = float(values["expansion"])
        return cls(**values)

    @classmethod
    def from_json(cls, text: str) -> "BlockSpec":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError(f"block spec is not valid JSON: {exc.msg} at position {exc.pos}") from None
        return cls.from_dict(data)


# --------------------------------------------------------------------------- FBNet ops

#: FBNet's candidate blocks, in HW-NAS-Bench's integer order 0..8.
FBNET_OPS: tuple[str, ...] = (
    "k3_e1", "k3_e1_g2", "k3_e3", "k3_e6", "k5_e1", "k5_e1_g2", "k5_e3", "k5_e6", "skip",
)

_OP_RE = re.compile(r"^k(?P<k>\d+)_e(?P<e>\d+(?:\.\d+)?)(?:_g(?P<g>\d+))?(?P<se>_se)?(?P<hs>_hs)?$")


def _op_block(op: str, cin: int, cout: int, stride: int, resolution: int, act: str = "relu") -> BlockSpec:
    """The BlockSpec of a candidate op name (`k5_e6`, `k3_e1_g2`, `k3_e4_se_hs`, `skip`).

    `act` is the layer's activation; an `_hs` suffix asks for h-swish regardless.
    """
    if op == "skip":
        return BlockSpec("skip", cin, cout, resolution, stride=stride)
    m = _OP_RE.match(op)
    if not m:
        raise InputError(f"unknown op name {op!r}")
    groups = int(m["g"] or 1)
    return BlockSpec(
        "ir", cin, cout, resolution, stride=stride, kernel=int(m["k"]), expansion=float(m["e"]),
        groups=groups, act="hswish" if m["hs"] else act, se=bool(m["se"]), shuffle=groups > 1,
    )


# --------------------------------------------------------------------------- spaces


@dataclass(frozen=True)
class Layer:
    """One searchable layer: where it sits and which candidates it may take."""

    index: int
    stage: int
    cin: int
    cout: int
    stride: int
    resolution: int
    candidates: tuple[str, ...]
    act: str = "relu"

    def block(self, op: str, cin: int | None = None, cout: int | None = None,
              resolution: int | None = None) -> BlockSpec:
        """The block of candidate `op` here; channel-search spaces pass the chosen widths."""
        return _op_block(op, cin or self.cin, cout or self.cout, self.stride, resolution or self.resolution,
                         self.act)


@dataclass(frozen=True)
class SearchSpace:
    """A macro-architecture: fixed stem and head around searchable layers.

    FBNet-style spaces choose one op per layer from `candidates`.  FBNetV2's
    space additionally lists per-layer channel options and input resolutions
    (`channel_options`, `resolutions`); an architecture of it is JSON.
    """

    name: str
    input_resolution: int
    stem_channels: int
    stem_stride: int
    stages: tuple[tuple[int, int, int], ...]  # (cout, repeats, first stride) per stage
    head_channels: int
    num_classes: int
    candidates: tuple[str, ...] = FBNET_OPS
    in_channels: int = 3
    stem_kernel: int = 3
    head_act: str = "relu"
    pooled_head: bool = False
    description: str = ""
    channel_options: tuple[tuple[int, ...], ...] = ()
    stem_channel_options: tuple[int, ...] = ()
    resolutions: tuple[int, ...] = ()
    extra: tuple[tuple[str, Any], ...] = field(default=())

    # -- structure -------------------------------------------------------------------
    @property
    def layers(self) -> tuple[Layer, ...]:
        return _layers(self)

    @property
    def num_layers(self) -> int:
        return sum(n for _, n, _ in self.stages)

    @property
    def size(self) -> int:
        """Number of distinct architectures (ops per layer, times channel and resolution options)."""
        total = len(self.candidates) ** self.num_layers
        for opts in self.channel_options:
            total *= max(1, len(opts))
        total *= max(1, len(self.stem_channel_options))
        total *= max(1, len(self.resolutions))
        return total

    def stem_block(self, resolution: int | None = None, cout: int | None = None) -> BlockSpec:
        return BlockSpec(
            "conv", self.in_channels, cout or self.stem_channels, resolution or self.input_resolution,
            stride=self.stem_stride, kernel=self.stem_kernel, act=self.head_act if self.pooled_head else "relu",
        )

    def head_blocks(self, cin: int, resolution: int) -> tuple[BlockSpec, ...]:
        """The fixed blocks after the last searchable layer: head conv, pool, classifier."""
        if self.pooled_head:
            return (
                BlockSpec("pool_conv", cin, self.head_channels, resolution, act=self.head_act),
                BlockSpec("fc", self.head_channels, self.num_classes, 1, act="none"),
            )
        return (
            BlockSpec("conv", cin, self.head_channels, resolution, kernel=1, act=self.head_act),
            BlockSpec("fc", self.head_channels, self.num_classes, resolution, act="none"),
        )

    def blocks(self, arch: Sequence[str]) -> list[BlockSpec]:
        """Every block of one architecture, stem to classifier, in order."""
        ops = self.check_arch(arch)
        layers = self.layers
        out = [self.stem_block()]
        out += [layer.block(op) for layer, op in zip(layers, ops)]
        out += self.head_blocks(layers[-1].cout, layers[-1].block("skip").out_resolution)
        return out

    def fixed_blocks(self) -> list[BlockSpec]:
        last = self.layers[-1]
        return [self.stem_block(), *self.head_blocks(last.cout, last.block("skip").out_resolution)]

    def unique_blocks(self) -> list[BlockSpec]:
        """Every distinct block a device must measure for this space (stem and head included)."""
        seen: dict[str, BlockSpec] = {}
        for spec in self.fixed_blocks():
            seen.setdefault(spec.key, spec)
        for layer in self.layers:
            for op in self.candidates:
                spec = layer.block(op)
                seen.setdefault(spec.key, spec)
        return list(seen.values())

    def check_arch(self, arch: Sequence[str]) -> tuple[str, ...]:
        ops = tuple(arch)
        if len(ops) != self.num_layers:
            raise ArchParseError(f"space {self.name} has {self.num_layers} searchable layers, got {len(ops)} ops")
        for i, op in enumerate(ops):
            if op not in self.candidates:
                raise ArchParseError(
                    f"layer {i + 1}: unknown op {op!r}; accepted: {', '.join(self.candidates)}"
                )
        return ops

    def with_options(self, **changes: Any) -> "SearchSpace":
        """A variant of this space (other head width, number of classes, …)."""
        try:
            return dataclasses.replace(self, **changes)
        except TypeError as exc:
            raise InputError(str(exc)) from None

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "input_resolution": self.input_resolution,
            "num_layers": self.num_layers,
            "candidates": list(self.candidates),
            "head_channels": self.head_channels,
            "num_classes": self.num_classes,
            "size": self.size,
            "log10_size": round(math.log10(self.size), 2),
            "unique_blocks": len(self.unique_blocks()),
        }


_LAYER_CACHE: dict[SearchSpace, tuple[Layer, ...]] = {}


def _layers(space: SearchSpace) -> tuple[Layer, ...]:
    cached = _LAYER_CACHE.get(space)
    if cached is not None:
        return cached
    res = (space.input_resolution - 1) // space.stem_stride + 1
    cin = space.stem_channels
    layers: list[Layer] = []
    for stage, (cout, repeats, first_stride) in enumerate(space.stages):
        for r in range(repeats):
            stride = first_stride if r == 0 else 1
            layers.append(Layer(len(layers), stage, cin, cout, stride, res, space.candidates))
            res = (res - 1) // stride + 1
            cin = cout
    _LAYER_CACHE[space] = out = tuple(layers)
    return out


_FBNET_STAGES = ((16, 1, 1), (24, 4, 2), (32, 4, 2), (64, 4, 2), (112, 4, 1), (184, 4, 2), (352, 1, 1))
_FBNET_CIFAR_STAGES = ((16, 1, 1), (24, 4, 1), (32, 4, 2), (64, 4, 2), (112, 4, 1), (184, 4, 2), (352, 1, 1))

_SPACES: dict[str, Callable[[], SearchSpace]] = {}


def register_space(name: str) -> Callable[[Callable[[], SearchSpace]], Callable[[], SearchSpace]]:
    """Register a space factory under `name` (timm-style registry)."""

    def deco(fn: Callable[[], SearchSpace]) -> Callable[[], SearchSpace]:
        _SPACES[name] = fn
        return fn

    return deco


@register_space("fbnet")
def _fbnet() -> SearchSpace:
    return SearchSpace(
        name="fbnet", input_resolution=224, stem_channels=16, stem_stride=2, stages=_FBNET_STAGES,
        head_channels=1984, num_classes=1000,
        description="FBNet (Wu et al. 2019) ImageNet macro-architecture, 22 layers x 9 candidates",
    )


@register_space("fbnet-cifar")
def _fbnet_cifar() -> SearchSpace:
    return SearchSpace(
        name="fbnet-cifar", input_resolution=32, stem_channels=16, stem_stride=1, stages=_FBNET_CIFAR_STAGES,
        head_channels=1504, num_classes=10,
        description="FBNet macro-architecture for 32x32 inputs as HW-NAS-Bench uses it for CIFAR",
    )


def list_spaces() -> list[str]:
    _load_extensions()
    return sorted(_SPACES)


def get_space(name: str, **options: Any) -> SearchSpace:
    """The space registered under `name`, optionally varied (`num_classes=100`, …)."""
    _load_extensions()
    try:
        factory = _SPACES[name]
    except KeyError:
        raise InputError(f"unknown search space {name!r}; known: {', '.join(sorted(_SPACES))}") from None
    space = factory()
    return space.with_options(**options) if options else space


def _load_extensions() -> None:
    # Spaces defined in sibling modules register themselves on import.
    from search import fbnetv2_space  # noqa: F401
    from search import fbnetv2_small  # noqa: F401
    from search import fbnetv2_presets  # noqa: F401


# --------------------------------------------------------------------------- architectures


def parse_arch(text: str | Sequence[str] | Sequence[int], space: SearchSpace) -> tuple[str, ...]:
    """Parse op names joined by `-` or `,` (or whitespace), or HW-NAS-Bench integers.

    The error names the first bad position and the accepted values, so a user
    can fix a 22-item string without counting by hand.
    """
    if isinstance(text, str):
        items = [t for t in re.split(r"[\s,\-]+", text.strip().strip("[]()")) if t]
    else:
        items = [str(t) for t in text]
    if not items:
        raise ArchParseError("empty architecture string")
    n = space.num_layers
    numeric = all(re.fullmatch(r"\d+", t) for t in items)
    if len(items) != n:
        form = "integers" if numeric else "op names"
        raise ArchParseError(
            f"architecture for space {space.name} needs {n} {form}, got {len(items)}"
            f" (separate op names with '-' or ',')"
        )
    if numeric:
        ops = []
        for i, t in enumerate(items):
            v = int(t)
            if v >= len(space.candidates):
                raise ArchParseError(
                    f"position {i + 1}: integer {v} out of range; accepted: 0..{len(space.candidates) - 1}"
                    f" ({', '.join(f'{j}={op}' for j, op in enumerate(space.candidates))})"
                )
            ops.append(space.candidates[v])
        return tuple(ops)
    for i, t in enumerate(items):
        if t not in space.candidates:
            raise ArchParseError(
                f"position {i + 1}: unknown op {t!r}; accepted: {', '.join(space.candidates)} (or integers 0..{len(space.candidates) - 1})"
            )
    return tuple(items)


def format_arch(ops: Iterable[str]) -> str:
    """The canonical text form: op names joined by `-`."""
    return "-".join(ops)


# --------------------------------------------------------------------------- presets

#: name → (space, ops, space options).  Block lists from mobile-vision's
#: fbnet_modeldef_cls.py (see REFERENCE.md); FBNet-A uses a 1504-wide head.
PRESETS: dict[str, tuple[str, tuple[str, ...], dict[str, Any]]] = {
    "fbnet-a": ("fbnet", (
        "skip", "k3_e3", "k3_e1", "skip", "skip", "k5_e6", "k3_e3", "k5_e1", "k3_e3", "k5_e6", "k5_e3",
        "k5_e1_g2", "k5_e6", "k3_e6", "k5_e1_g2", "k5_e3", "k3_e1_g2", "k5_e6", "k5_e6", "k5_e3", "k5_e6",
        "k5_e6"), {"head_channels": 1504}),
    "fbnet-b": ("fbnet", (
        "k3_e1", "k3_e6", "k5_e1", "k3_e1", "k3_e1", "k5_e6", "k5_e3", "k3_e6", "k5_e6", "k5_e6", "k5_e1",
        "skip", "k5_e3", "k5_e6", "k3_e1", "k5_e1", "k5_e3", "k5_e6", "k5_e1", "k5_e6", "k5_e6", "k3_e6"),
        {"head_channels": 1984}),
    "fbnet-c": ("fbnet", (
        "k3_e1", "k3_e6", "skip", "k3_e1", "k3_e1", "k5_e6", "k5_e3", "k5_e6", "k3_e6", "k5_e6", "k5_e3",
        "k5_e6", "k5_e6", "k5_e6", "k5_e6", "k5_e6", "k5_e3", "k5_e6", "k5_e6", "k5_e6", "k5_e6", "k3_e6"),
        {"head_channels": 1984}),
}


#: name → factory of (space, arch) for presets that are not op tuples of a registered space
#: (FBNetV2's published models are fixed block lists); extension modules register them.
PRESET_FACTORIES: dict[str, Callable[[], tuple[SearchSpace, Any]]] = {}


def register_preset(name: str) -> Callable[[Callable[[], tuple[SearchSpace, Any]]], Callable[[], tuple[SearchSpace, Any]]]:
    """Register a preset whose factory returns its own (space, arch)."""

    def deco(fn: Callable[[], tuple[SearchSpace, Any]]) -> Callable[[], tuple[SearchSpace, Any]]:
        PRESET_FACTORIES[name] = fn
        return fn

    return deco


def get_preset(name: str) -> tuple[SearchSpace, tuple[str, ...]]:
    _load_extensions()
    if name in PRESET_FACTORIES:
        return PRESET_FACTORIES[name]()
    try:
        space_name, ops, options = PRESETS[name]
    except KeyError:
        raise InputError(f"unknown preset {name!r}; known: {', '.join(sorted({*PRESETS, *PRESET_FACTORIES}))}") from None
    return get_space(space_name, **options), ops


def resolve_arch(text: str, space_name: str | None = None) -> tuple[SearchSpace, tuple[str, ...]]:
    """A preset name, a file holding an architecture, or an architecture string.

    A preset brings its own space unless `space_name` names another (then its
    ops are placed in that macro-architecture, e.g. FBNet-B at 32x32).
    """
    text = text.strip()
    _load_extensions()
    if text.lower() in PRESET_FACTORIES:
        return get_preset(text.lower())
    if text.lower() in PRESETS:
        space, ops = get_preset(text.lower())
        if space_name and space_name != space.name:
            space = get_space(space_name)
        return space, ops
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
    from pathlib import Path

    path = Path(path)
    if path.is_dir():
        path = path / "arch.json"
    if not path.is_file():
        raise InputError(f"architecture file not found: {path} (a finished `hwnas search` writes one)")
    try:
        record = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"architecture file {path} is not valid JSON: {exc}") from None
    if not isinstance(record, dict) or "arch" not in record:
        raise InputError(f"architecture file {path} has no 'arch' field")
    options = record.get("space_options") or {}
    if not isinstance(options, dict):
        raise InputError(f"architecture file {path}: 'space_options' must be an object")
    space = get_space(space_name or record.get("space", "fbnet"), **options)
    if space.channel_options:  # FBNetV2-style spaces: the architecture is a JSON object
        return space, space.check_arch(record["arch"]), record
    return space, parse_arch(record["arch"], space), record
