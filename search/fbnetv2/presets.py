"""FBNetV2's published family (F1…F4, L1, L2) as presets: fixed block lists.

Transcribed from facebookresearch/mobile-vision,
`mobile_cv/arch/fbnet_v2/fbnet_modeldef_cls_fbnetv2.py` (`FBNetV2_F1` …
`FBNetV2_L2`), into `BlockSpec`s: `ir_k5_sehsig_hs` is an inverted residual
with a 5x5 depthwise conv, squeeze-excite with a hard-sigmoid gate and h-swish;
`_ex(5.4566)` a fractional expansion whose hidden width is rounded to a
multiple of 8; `skip` a 1x1 conv projection where the width changes; the
`ir_pool_hs` head a 1x1 expansion conv (x6, h-swish), global pool, a 1x1 conv
with bias to 1600/1984 channels (h-swish), then the classifier.  These
networks lie outside the searchable `fbnetv2` space (fractional expansions,
deeper stages), so each preset is its own fixed "space" holding one network;
a test checks their MACs against the paper's table (REFERENCE.md).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, ClassVar

from hwnas.search.space import ArchParseError, BlockSpec, SearchSpace, make_divisible, register_preset

__all__ = ["FixedSpace", "FBNETV2_PUBLISHED", "fbnetv2_blocks"]

#: name → (input size, MMACs, M params, top-1) as mobile-vision's file and REFERENCE.md give them.
FBNETV2_PUBLISHED: dict[str, tuple[int, float, float, str]] = {
    "fbnetv2-f1": (128, 56.4, 6.00, "68.3%"),
    "fbnetv2-f2": (160, 85.4, 6.00, "71.1%"),
    "fbnetv2-f3": (192, 121.8, 6.90, "73.1%"),
    "fbnetv2-f4": (224, 238.4, 6.99, "75.8%"),
    "fbnetv2-l1": (224, 326.0, 8.5, "77.0-77.2%"),
    "fbnetv2-l2": (256, 423.9, 8.50, "78.2%"),
}

# Block lists, mobile-vision's [op, channels, stride, expansion] per block, stem to last
# searchable block; heads are (channels of the pooled 1x1 conv).  "-" marks skip's unused e.
_F123 = (
    ("conv_k3_hs", 8, 2, 1),
    ("ir_k5", 8, 1, 1),
    ("ir_k5", 24, 2, 5.4566), ("ir_k5", 24, 1, 4.7912),
    ("ir_k5_sehsig", 32, 2, 5.3501), ("ir_k5_sehsig", 24, 1, 4.5379),
    ("ir_k5_hs", 56, 2, 5.7133), ("ir_k3_hs", 56, 1, 4.1212), ("ir_k3_sehsig_hs", 56, 1, 5.1246),
    ("skip", 80, 1, 1), ("ir_k5_sehsig_hs", 80, 1, 4.5070), ("ir_k5_sehsig_hs", 80, 1, 1.7712),
    ("ir_k3_sehsig_hs", 144, 2, 4.5685), ("ir_k5_sehsig_hs", 144, 1, 5.8400),
    ("ir_k5_sehsig_hs", 144, 1, 6.8754), ("skip", 224, 1, 1),
)
_F4 = (
    ("conv_k3_hs", 16, 2, 1),
    ("ir_k3_hs", 16, 1, 1),
    ("ir_k5_hs", 24, 2, 5.4566), ("ir_k5_hs", 24, 1, 1.7912), ("ir_k5_hs", 24, 1, 1.7912),
    ("ir_k5_sehsig", 32, 2, 5.3501), ("ir_k5_sehsig", 32, 1, 3.5379), ("ir_k5_sehsig", 32, 1, 4.5379),
    ("ir_k5_sehsig", 32, 1, 4.5379),
    ("ir_k5_hs", 64, 2, 5.7133), ("ir_k3_hs", 64, 1, 2.1212), ("skip", 64, 1, 1), ("ir_k3_hs", 104, 1, 5.0333),
    ("ir_k5_sehsig_hs", 104, 1, 2.5070), ("ir_k5_sehsig_hs", 104, 1, 1.7712), ("ir_k5_sehsig_hs", 112, 1, 3.7712),
    ("ir_k3_sehsig_hs", 184, 2, 5.5685), ("ir_k5_sehsig_hs", 184, 1, 2.8400), ("ir_k5_sehsig_hs", 184, 1, 4.8754),
    ("skip", 224, 1, 1),
)
_L = (
    ("conv_k3_hs", 16, 2, 1),
    ("ir_k3_hs", 16, 1, 1),
    ("ir_k5_hs", 24, 2, 5.4566), ("ir_k5_hs", 24, 1, 1.7912), ("ir_k3_hs", 24, 1, 1.7912),
    ("ir_k5_hs", 24, 1, 1.7912),
    ("ir_k5_sehsig_hs", 40, 2, 5.3501), ("ir_k5_sehsig_hs", 32, 1, 3.5379), ("ir_k5_sehsig_hs", 32, 1, 4.5379),
    ("ir_k5_sehsig_hs", 32, 1, 4.5379),
    ("ir_k5_hs", 64, 2, 5.7133), ("ir_k3_hs", 64, 1, 2.1212), ("skip", 64, 1, 1), ("ir_k3_hs", 64, 1, 3.1246),
    ("ir_k3_hs", 112, 1, 5.0333), ("ir_k5_sehsig_hs", 112, 1, 2.5070), ("ir_k5_sehsig_hs", 112, 1, 1.7712),
    ("ir_k5_sehsig_hs", 112, 1, 2.7712), ("ir_k5_sehsig_hs", 112, 1, 3.7712), ("ir_k5_sehsig_hs", 112, 1, 3.7712),
    ("ir_k3_sehsig_hs", 184, 2, 5.5685), ("ir_k5_sehsig_hs", 184, 1, 2.8400), ("ir_k5_sehsig_hs", 184, 1, 2.8400),
    ("ir_k5_sehsig_hs", 184, 1, 4.8754), ("ir_k5_sehsig_hs", 184, 1, 4.8754), ("skip", 224, 1, 1),
)
_DEFS: dict[str, tuple[tuple[tuple[str, int, int, float], ...], int]] = {
    "fbnetv2-f1": (_F123, 1600), "fbnetv2-f2": (_F123, 1600), "fbnetv2-f3": (_F123, 1984),
    "fbnetv2-f4": (_F4, 1984), "fbnetv2-l1": (_L, 1984), "fbnetv2-l2": (_L, 1984),
}


def _block(name: str, cin: int, cout: int, stride: int, e: float, res: int) -> BlockSpec:
    """One mobile-vision block name (`ir_k5_sehsig_hs`, `skip`, `conv_k3_hs`) as a BlockSpec."""
    act = "hswish" if name.endswith("_hs") else "relu"
    if name == "skip":
        return BlockSpec("skip", cin, cout, res, stride=stride)
    kernel = int(name.split("_k")[1][0])
    if name.startswith("conv"):
        return BlockSpec("conv", cin, cout, res, stride=stride, kernel=kernel, act=act)
    return BlockSpec("ir", cin, cout, res, stride=stride, kernel=kernel, expansion=float(e), act=act,
                     se="sehsig" in name)


def fbnetv2_blocks(name: str, num_classes: int = 1000) -> list[BlockSpec]:
    """The blocks of a published FBNetV2 model, stem to classifier, at its own input size."""
    layers, head = _DEFS[name]
    res, cin = FBNETV2_PUBLISHED[name][0], 3
    out: list[BlockSpec] = []
    for op, cout, stride, e in layers:
        spec = _block(op, cin, cout, stride, e, res)
        out.append(spec)
        cin, res = cout, spec.out_resolution
    hidden = make_divisible(cin * 6, 8)  # ir_pool_hs, e6: 1x1 expansion before the pool
    out += [BlockSpec("conv", cin, hidden, res, kernel=1, act="hswish"),
            BlockSpec("pool_conv", hidden, head, res, act="hswish"),
            BlockSpec("fc", head, num_classes, 1, act="none")]
    return out


@dataclass(frozen=True)
class FixedSpace(SearchSpace[str]):
    """A "space" of exactly one network, given as its block list (a published model).

    Its one architecture is its name: FBNetV2's published models use block
    settings (expansions, SE placement) outside the searchable grid.
    """

    fixed: tuple[BlockSpec, ...] = ()

    layerwise: ClassVar[bool] = False

    def check_arch(self, arch: Any) -> str:
        if arch not in (None, "", self.name):
            raise ArchParseError(f"{self.name} is a fixed network; it has no architecture choices")
        return self.name

    def parse(self, value: Any) -> str:
        return self.check_arch(value)

    def format(self, arch: str) -> str:
        return self.check_arch(arch)

    def sample(self, rng: random.Random) -> str:
        return self.name

    def layer_labels(self, arch: str) -> list[str]:
        return [spec.label for spec in self.fixed[1:-3]]  # between the stem and the 3-block head

    def layer_ops(self, arch: str) -> list[str]:
        return self.layer_labels(arch)

    def blocks(self, arch: Any = None) -> list[BlockSpec]:
        self.check_arch(arch)
        return list(self.fixed)

    def fixed_blocks(self) -> list[BlockSpec]:
        return list(self.fixed)

    def unique_blocks(self) -> list[BlockSpec]:
        return list(dict((s.key, s) for s in self.fixed).values())


def _fixed_space(name: str) -> FixedSpace:
    blocks = fbnetv2_blocks(name)
    size, mmacs, params, top1 = FBNETV2_PUBLISHED[name]
    return FixedSpace(
        name=name, input_resolution=size, stem_channels=blocks[0].cout, stem_stride=blocks[0].stride, stages=(),
        head_channels=blocks[-1].cin, num_classes=1000, candidates=(), head_act="hswish", pooled_head=True,
        description=f"FBNetV2 published model ({mmacs} MMACs, {params}M params, top-1 {top1}; mobile-vision)",
        fixed=tuple(blocks),
    )


for _name in FBNETV2_PUBLISHED:
    register_preset(_name)(lambda n=_name: (_fixed_space(n), n))
