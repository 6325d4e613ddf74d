"""Search spaces: a macro-architecture, its searchable layers, and FBNet architecture strings.

The spaces themselves are data registered in `hwnas.search.fbnet` and
`hwnas.search.fbnetv2`; the registry is `hwnas.search.space.registry`.
"""

from __future__ import annotations

import dataclasses
import math
import random
import re
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, Iterable, Sequence, TypeVar, cast

from hwnas.search.space.spec import FBNET_OPS, ArchParseError, BlockSpec, InputError, op_block

__all__ = ["Layer", "SearchSpace", "OpArch", "parse_arch", "format_arch"]

#: An FBNet architecture: one op name per searchable layer.
OpArch = tuple[str, ...]

#: The architecture type of a space (FBNet: `OpArch`; FBNetV2: `ChannelArch`).
A = TypeVar("A")


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
        return op_block(op, cin or self.cin, cout or self.cout, self.stride, resolution or self.resolution,
                         self.act)


@dataclass(frozen=True)
class SearchSpace(Generic[A]):
    """A macro-architecture: fixed stem and head around searchable layers.

    A space owns its architecture type `A`: it parses (`parse`), validates
    (`check_arch`), formats (`format`), serialises (`to_json`) and samples
    (`sample`) its own architectures, so callers never ask which kind of
    space they hold.  This class is FBNet's (one op per layer from
    `candidates`, `A` = `OpArch`); FBNetV2's `ChannelSearchSpace` also
    chooses widths and the input resolution, and its `A` is a JSON object.
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

    #: which family's supernet and cost serve this space (`fbnet`: one op per layer).
    family: ClassVar[str] = "fbnet"
    #: every architecture is the stem, one block per layer drawn from that layer's candidates at its
    #: fixed shape, and the fixed head: per-(layer, op) tables then describe every network exactly.
    layerwise: ClassVar[bool] = True

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

    def blocks(self, arch: A) -> list[BlockSpec]:
        """Every block of one architecture, stem to classifier, in order."""
        ops = cast(OpArch, self.check_arch(arch))
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

    # -- architectures: the space owns their type ------------------------------------
    def parse(self, value: Any) -> A:
        """An architecture from what a user or a file gives: text, integers, or its JSON form."""
        return cast(A, parse_arch(value, self))

    def format(self, arch: A) -> str:
        """The canonical one-line text of an architecture (op names joined by `-`)."""
        return format_arch(self.check_arch(arch))

    def to_json(self, arch: A) -> Any:
        """The JSON value stored in arch files, stores and models; `parse` reads it back."""
        return self.format(arch)

    def sample(self, rng: random.Random) -> A:
        """One architecture drawn uniformly, layer by layer."""
        return cast(A, tuple(rng.choice(self.candidates) for _ in range(self.num_layers)))

    def layer_labels(self, arch: A) -> list[str]:
        """One short label per searchable layer, for tables and reports."""
        return list(self.check_arch(arch))

    def layer_ops(self, arch: A) -> list[str]:
        """The op chosen at every searchable layer (what a per-layer latency model keys on)."""
        return list(self.check_arch(arch))

    def check_arch(self, arch: Any) -> A:
        """Validate an architecture already in this space's type (or a sequence of op names)."""
        ops = tuple(arch)
        if len(ops) != self.num_layers:
            raise ArchParseError(f"space {self.name} has {self.num_layers} searchable layers, got {len(ops)} ops")
        for i, op in enumerate(ops):
            if op not in self.candidates:
                raise ArchParseError(
                    f"layer {i + 1}: unknown op {op!r}; accepted: {', '.join(self.candidates)}"
                )
        return cast(A, ops)

    def with_options(self, **changes: Any) -> "SearchSpace":
        """A variant of this space (other head width, number of classes, …)."""
        try:
            return dataclasses.replace(self, **changes)
        except TypeError as exc:
            raise InputError(str(exc)) from None

    def scaled(self, width_mult: float) -> "SearchSpace":
        """The same space with every width × `width_mult` (a CPU-budget proxy for search and training).

        Architectures are unchanged (the same op per layer), so one found at the
        proxy is a full-size architecture; latency stays the full-size space's.
        """
        if not (width_mult > 0 and math.isfinite(width_mult)):
            raise InputError(f"`width_mult` must be a positive number, got {width_mult!r}")
        if width_mult == 1:
            return self

        def scale(c: int, what: str) -> int:
            out = int(round(c * width_mult))
            if out < 1:
                raise InputError(f"`width_mult` {width_mult:g} leaves {what} ({c} channels) with no channels")
            return out

        stem = scale(self.stem_channels, "the stem")
        stages = tuple((scale(c, f"stage {i + 1}"), n, st) for i, (c, n, st) in enumerate(self.stages))
        return self.with_options(stem_channels=stem, stages=stages, head_channels=scale(self.head_channels, "the head"))

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


# --------------------------------------------------------------------------- architectures


def parse_arch(text: str | Sequence[str] | Sequence[int], space: SearchSpace) -> OpArch:
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
