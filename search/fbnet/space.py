"""FBNet's spaces and published architectures, as data.

`fbnet` is the paper's ImageNet macro-architecture (224x224); `fbnet-cifar`
is HW-NAS-Bench's 32x32 variant.  FBNet-A/B/C are the block lists of
mobile-vision's fbnet_modeldef_cls.py (see REFERENCE.md).
"""

from __future__ import annotations

from typing import Any

from hwnas.search.space.registry import get_space, register_preset, register_space
from hwnas.search.space.spaces import SearchSpace

__all__ = ["PRESETS"]

_FBNET_STAGES = ((16, 1, 1), (24, 4, 2), (32, 4, 2), (64, 4, 2), (112, 4, 1), (184, 4, 2), (352, 1, 1))
_FBNET_CIFAR_STAGES = ((16, 1, 1), (24, 4, 1), (32, 4, 2), (64, 4, 2), (112, 4, 1), (184, 4, 2), (352, 1, 1))

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


def _preset_factory(name: str):
    space_name, ops, options = PRESETS[name]
    return lambda: (get_space(space_name, **options), ops)


for _name in PRESETS:
    register_preset(_name)(_preset_factory(_name))
