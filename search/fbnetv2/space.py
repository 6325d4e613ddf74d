"""FBNetV2's channel-and-resolution space (DMaskingNAS), as a `SearchSpace`.

The paper's per-stage table is an image; the channel ranges here are the
ones a public TF reimplementation uses (REFERENCE.md): stem (8,16,4) s2;
block 1 (12,16,4); blocks 2-4 (16,24,4) s2; 5-7 (16,40,8) s2; 8-10 (48,80,8)
s2; 11-13 (72,112,8); 14-17 (112,184,8) s2; head 1984.  Each searchable
layer picks a block type (k3/k5 depthwise, expansion 1..6, with or without
squeeze-excite, or skip) and its number of output filters; the network picks
its input resolution.  Activations follow MobileNetV3/FBNetV2: ReLU in the
early stages, h-swish from the 28x28 stage on.

An architecture of this space is JSON:
``{"resolution": 224, "stem": 16, "layers": [["k3_e1", 16], ["skip", 24], ...]}``.
"""

from __future__ import annotations

import json
import math
import random
from dataclasses import dataclass
from typing import Any, ClassVar, Mapping, Sequence, TypedDict

from hwnas.search.space import (
    ArchParseError,
    InputError,
    BlockSpec,
    InputError,
    Layer,
    SearchSpace,
    register_space,
)

__all__ = ["ChannelSearchSpace", "ChannelArch", "FBNETV2_OPS", "channel_range"]


class ChannelArch(TypedDict):
    """An FBNetV2 architecture: input resolution, stem width, and [op, channels] per layer."""

    resolution: int
    stem: int
    layers: list[list[Any]]

FBNETV2_OPS: tuple[str, ...] = tuple(
    f"k{k}_e{e}{se}" for k in (3, 5) for e in (1, 2, 3, 4, 5, 6) for se in ("", "_se")
) + ("skip",)


def channel_range(lo: int, hi: int, step: int) -> tuple[int, ...]:
    return tuple(range(lo, hi + 1, step))


# (channel range, repeats, first stride, activation) per stage
_STAGES: tuple[tuple[tuple[int, int, int], int, int, str], ...] = (
    ((12, 16, 4), 1, 1, "relu"),
    ((16, 24, 4), 3, 2, "relu"),
    ((16, 40, 8), 3, 2, "relu"),
    ((48, 80, 8), 3, 2, "hswish"),
    ((72, 112, 8), 3, 1, "hswish"),
    ((112, 184, 8), 4, 2, "hswish"),
)


@dataclass(frozen=True)
class ChannelSearchSpace(SearchSpace[ChannelArch]):
    """A space whose layers also choose their width, and whose input size is searched."""

    stage_acts: tuple[str, ...] = ()

    family: ClassVar[str] = "fbnetv2"
    layerwise: ClassVar[bool] = False  # widths and resolution change every block's shape

    @property
    def layers(self) -> tuple[Layer, ...]:
        # Layers at their widest option: the shape the masked supernet computes.
        return tuple(
            Layer(l.index, l.stage, l.cin, l.cout, l.stride, l.resolution, l.candidates, self.stage_acts[l.stage])
            for l in super().layers
        )

    @property
    def size(self) -> int:
        total = len(self.candidates) ** self.num_layers * len(self.stem_channel_options) * len(self.resolutions)
        for opts in self.channel_options:
            total *= len(opts)
        return total

    def scaled(self, width_mult: float) -> "ChannelSearchSpace":
        """Refused: this space's architectures name their widths, so a narrower proxy would change them."""
        if width_mult == 1:
            return self
        raise InputError(f"`width_mult` {width_mult:g}: space {self.name} searches channel widths itself "
                         "(its architectures name them); use width_mult 1")

    # -- architectures ------------------------------------------------------------------
    def parse(self, value: Any) -> ChannelArch:
        """JSON text or an object `{"resolution", "stem", "layers"}`."""
        return self.check_arch(value)

    def format(self, arch: ChannelArch) -> str:
        return json.dumps(self.check_arch(arch), separators=(",", ":"))

    def to_json(self, arch: ChannelArch) -> Any:
        return self.check_arch(arch)

    def sample(self, rng: random.Random) -> ChannelArch:
        ops = [rng.choice(self.candidates) for _ in range(self.num_layers)]
        return {"resolution": rng.choice(self.resolutions), "stem": rng.choice(self.stem_channel_options),
                "layers": [[op, rng.choice(opts)] for op, opts in zip(ops, self.channel_options)]}

    def layer_labels(self, arch: ChannelArch) -> list[str]:
        return [f"{op} x{ch}" for op, ch in self.check_arch(arch)["layers"]]

    def layer_ops(self, arch: ChannelArch) -> list[str]:
        return [op for op, _ in self.check_arch(arch)["layers"]]

    def check_arch(self, arch: Any) -> ChannelArch:
        """Validate a JSON architecture; returns it normalised."""
        if isinstance(arch, str):
            from hwnas.search.space.jsonsafe import loads

            try:
                arch = loads(arch, "FBNetV2 architecture")
            except InputError as exc:
                raise ArchParseError(str(exc)) from None
        if not isinstance(arch, Mapping):
            raise ArchParseError('FBNetV2 architecture must be a JSON object {"resolution", "stem", "layers"}')
        res = arch.get("resolution", self.input_resolution)
        if res not in self.resolutions:
            raise ArchParseError(f"resolution {res!r} not in {list(self.resolutions)}")
        stem = arch.get("stem", max(self.stem_channel_options))
        if stem not in self.stem_channel_options:
            raise ArchParseError(f"stem channels {stem!r} not in {list(self.stem_channel_options)}")
        layers = arch.get("layers")
        if not isinstance(layers, Sequence) or len(layers) != self.num_layers:
            raise ArchParseError(f"'layers' must list {self.num_layers} [op, channels] pairs")
        out = []
        for i, item in enumerate(layers):
            if not (isinstance(item, Sequence) and not isinstance(item, str) and len(item) == 2):
                raise ArchParseError(f"layer {i + 1}: expected [op, channels], got {item!r}")
            op, ch = item
            if op not in self.candidates:
                raise ArchParseError(f"layer {i + 1}: unknown op {op!r}; accepted: {', '.join(self.candidates)}")
            if ch not in self.channel_options[i]:
                raise ArchParseError(f"layer {i + 1}: channels {ch!r} not in {list(self.channel_options[i])}")
            out.append([op, int(ch)])
        return {"resolution": int(res), "stem": int(stem), "layers": out}

    def blocks(self, arch: ChannelArch) -> list[BlockSpec]:
        a = self.check_arch(arch)
        res = a["resolution"]
        stem = self.stem_block(res, a["stem"])
        out = [stem]
        cin, r = a["stem"], stem.out_resolution
        for layer, (op, ch) in zip(self.layers, a["layers"]):
            spec = layer.block(op, cin=cin, cout=ch, resolution=r)
            out.append(spec)
            cin, r = ch, spec.out_resolution
        out += self.head_blocks(cin, r)
        return out

    def widest_arch(self, op: str = "k5_e6_se", resolution: int | None = None) -> dict[str, Any]:
        return {
            "resolution": resolution or max(self.resolutions),
            "stem": max(self.stem_channel_options),
            "layers": [[op, max(opts)] for opts in self.channel_options],
        }

    def fixed_blocks(self) -> list[BlockSpec]:
        last = self.layers[-1]
        return [self.stem_block(), *self.head_blocks(last.cout, last.block("skip").out_resolution)]

    def unique_blocks(self) -> list[BlockSpec]:
        """Every candidate at its layer's widest setting and the default resolution.

        The full channel x resolution grid has ~10^4 blocks per layer; the
        latency regressors cover it from these plus random samples.
        """
        return super().unique_blocks()

    def describe(self) -> dict[str, Any]:
        d = super().describe()
        d.update(
            resolutions=list(self.resolutions),
            stem_channel_options=list(self.stem_channel_options),
            channel_options=[list(o) for o in self.channel_options],
            log10_size_vs_fbnet=round(math.log10(self.size) - 22 * math.log10(9), 2),
        )
        return d


@register_space("fbnetv2")
def _fbnetv2() -> ChannelSearchSpace:
    options: list[tuple[int, ...]] = []
    stages = []
    for (lo, hi, step), repeats, stride, _act in _STAGES:
        options += [channel_range(lo, hi, step)] * repeats
        stages.append((hi, repeats, stride))
    return ChannelSearchSpace(
        name="fbnetv2", input_resolution=224, stem_channels=16, stem_stride=2, stages=tuple(stages),
        head_channels=1984, num_classes=1000, candidates=FBNETV2_OPS, head_act="hswish", pooled_head=True,
        description="FBNetV2 (Wan et al. 2020) DMaskingNAS space: block type, filters per layer, input resolution",
        channel_options=tuple(options), stem_channel_options=channel_range(8, 16, 4),
        resolutions=(128, 160, 192, 224, 256), stage_acts=tuple(a for *_, a in _STAGES),
    )

