"""`fbnetv2-cifar`: FBNetV2's channel-and-resolution space at 32x32 input.

The 224-px `fbnetv2` space is too heavy to search on a 2-core CPU; this
variant keeps the same channel ranges, block types and stage depths, with a
stride-1 stem, a stride-1 first downsampling stage (as FBNet's CIFAR variant
does), input resolutions (24, 28, 32) and a 1504-wide pooled head for 10
classes.  Small inputs (scikit-learn digits) are upsampled to 32x32.
"""

from __future__ import annotations

from hwnas.search.fbnetv2.space import _STAGES, FBNETV2_OPS, ChannelSearchSpace, channel_range
from hwnas.search.space import register_space

__all__ = ["CIFAR_RESOLUTIONS"]

#: input resolutions searched at 32x32; subsampled from the largest one.
CIFAR_RESOLUTIONS: tuple[int, ...] = (24, 28, 32)

# FBNet-cifar keeps full resolution through the second stage; so does this one.
_CIFAR_STRIDES: tuple[int, ...] = (1, 1, 2, 2, 1, 2)


@register_space("fbnetv2-cifar")
def _fbnetv2_cifar() -> ChannelSearchSpace:
    options: list[tuple[int, ...]] = []
    stages = []
    for ((lo, hi, step), repeats, _stride, _act), stride in zip(_STAGES, _CIFAR_STRIDES):
        options += [channel_range(lo, hi, step)] * repeats
        stages.append((hi, repeats, stride))
    stem_options = channel_range(8, 16, 4)
    return ChannelSearchSpace(
        name="fbnetv2-cifar", input_resolution=max(CIFAR_RESOLUTIONS), stem_channels=max(stem_options),
        stem_stride=1, stages=tuple(stages), head_channels=1504, num_classes=10, candidates=FBNETV2_OPS,
        head_act="hswish", pooled_head=True,
        description="FBNetV2 DMaskingNAS space at 32x32 (stride-1 stem, resolutions 24/28/32) for CPU searches",
        channel_options=tuple(options), stem_channel_options=stem_options, resolutions=CIFAR_RESOLUTIONS,
        stage_acts=tuple(a for *_, a in _STAGES),
    )
