"""Block specifications: what a device measures and a latency model keys on."""

from __future__ import annotations

import dataclasses
import json
import math
import re
from dataclasses import dataclass
from typing import Any, Mapping

from hwnas.search.space.errors import ArchParseError, InputError  # noqa: F401  (re-exported)
from hwnas.search.space.jsonsafe import loads

__all__ = ["InputError", "ArchParseError", "BlockSpec", "FBNET_OPS", "make_divisible", "op_block"]


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

        return cls.from_dict(loads(text, "block spec"))


# --------------------------------------------------------------------------- FBNet ops

#: FBNet's candidate blocks, in HW-NAS-Bench's integer order 0..8.
FBNET_OPS: tuple[str, ...] = (
    "k3_e1", "k3_e1_g2", "k3_e3", "k3_e6", "k5_e1", "k5_e1_g2", "k5_e3", "k5_e6", "skip",
)

_OP_RE = re.compile(r"^k(?P<k>\d+)_e(?P<e>\d+(?:\.\d+)?)(?:_g(?P<g>\d+))?(?P<se>_se)?(?P<hs>_hs)?$")


def op_block(op: str, cin: int, cout: int, stride: int, resolution: int, act: str = "relu") -> BlockSpec:
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
