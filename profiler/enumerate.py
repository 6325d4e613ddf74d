"""What to measure: a space's unique blocks, random extra blocks, random whole networks.

The space's grid alone is what a lookup table needs; a regressor that must
predict widths and resolutions the grid never visits needs samples around it
(nn-Meter and HELP sample the same way), hence `sample_blocks`.  Whole random
architectures are measured end to end so the additive block model can be
checked against reality.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from typing import Any

from hwnas.search.space import BlockSpec, InputError, SearchSpace, resolve_arch

__all__ = ["Item", "block_items", "sample_blocks", "random_archs", "arch_items", "arch_text", "parse_archs"]


@dataclass(frozen=True)
class Item:
    """One thing to measure: a block (`spec`) or a whole network (`space` + `arch`).

    Plain data (picklable) so it can travel to a Ray actor on another host.
    """

    kind: str  # "block" | "network"
    key: str
    family: str
    spec: BlockSpec | None = None
    space: str = ""
    arch: Any = None
    arch_text: str = ""

    @property
    def label(self) -> str:
        if self.spec is not None:
            s = self.spec
            return f"{s.label} {s.cin}->{s.cout} @{s.resolution} s{s.stride}"
        text = self.arch_text
        return f"{self.space} net {text[:40]}{'...' if len(text) > 40 else ''}"


def block_items(specs: list[BlockSpec]) -> list[Item]:
    """Items for blocks, deduplicated by key, first occurrence kept."""
    seen: dict[str, Item] = {}
    for s in specs:
        seen.setdefault(s.key, Item("block", s.key, s.family, spec=s))
    return list(seen.values())


# --------------------------------------------------------------------------- random blocks


def _ir_choices(space: SearchSpace) -> tuple[list[int], list[float], list[int], bool]:
    """Kernels, expansions, groups and SE the space's candidates use (its op vocabulary)."""
    kernels, expansions, groups, se = set(), set(), {1}, False
    for op in space.candidates:
        m = re.match(r"^k(\d+)_e(\d+(?:\.\d+)?)(?:_g(\d+))?(_se)?", op)
        if m:
            kernels.add(int(m[1]))
            expansions.add(float(m[2]))
            groups.add(int(m[3] or 1))
            se = se or bool(m[4])
    return sorted(kernels) or [3], sorted(expansions) or [1.0], sorted(groups), se


def _resolutions(space: SearchSpace) -> list[int]:
    """Every feature-map size a layer of the space sees, at each input resolution it allows."""
    inputs = list(space.resolutions) or [space.input_resolution]
    out: set[int] = set()
    for r0 in inputs:
        r = (r0 - 1) // space.stem_stride + 1
        out.add(r)
        for layer in space.layers:
            r = (r - 1) // layer.stride + 1
            out.add(r)
    return sorted(out)


def _channels(rng: random.Random, hi: int) -> int:
    """A width that is a multiple of 8 in [8, hi] (group convs and rounding stay valid)."""
    return 8 * rng.randint(1, max(1, hi // 8))


def sample_blocks(space: SearchSpace, n: int, seed: int = 0) -> list[BlockSpec]:
    """`n` distinct random blocks around the space's grid, for every op family it uses.

    Widths are multiples of 8 in [8, 2 x the widest layer], resolutions are the
    space's own feature-map sizes, kernels/expansions/groups/SE/activation come
    from its candidates.  Deterministic for a seed.
    """
    if n < 0:
        raise InputError(f"`samples` must be >= 0, got {n}")
    rng = random.Random(seed)
    kernels, expansions, groups, se_ok = _ir_choices(space)
    resolutions = _resolutions(space)
    acts = sorted({layer.act for layer in space.layers})
    max_c = 2 * max(max(layer.cout for layer in space.layers), space.stem_channels)
    head_c = [space.head_channels, space.head_channels // 2]
    families = ["ir"] * 14 + ["skip"] * 2 + ["conv"] * 2 + ["fc", "pool_conv" if space.pooled_head else "head"]
    out: dict[str, BlockSpec] = {}
    tries = 0
    while len(out) < n and tries < 50 * n + 100:
        tries += 1
        fam = rng.choice(families)
        res = rng.choice(resolutions)
        cin, cout = _channels(rng, max_c), _channels(rng, max_c)
        stride = rng.choice((1, 1, 2)) if res > 1 else 1
        if fam == "ir":
            spec = BlockSpec("ir", cin, cout, res, stride=stride, kernel=rng.choice(kernels),
                             expansion=rng.choice(expansions), groups=(g := rng.choice(groups)),
                             act=rng.choice(acts), se=se_ok and rng.random() < 0.5, shuffle=g > 1)
        elif fam == "skip":
            spec = BlockSpec("skip", cin, cout, res, stride=stride)
        elif fam == "conv":
            k = rng.choice((1, 3))
            c_in = space.in_channels if k == 3 and rng.random() < 0.5 else cin
            spec = BlockSpec("conv", c_in, cout, res, stride=stride, kernel=k, act=rng.choice(acts))
        elif fam == "head":
            spec = BlockSpec("conv", cin, rng.choice(head_c), res, kernel=1, act=space.head_act)
        elif fam == "pool_conv":
            spec = BlockSpec("pool_conv", cin, rng.choice(head_c), res, act=space.head_act)
        else:
            spec = BlockSpec("fc", rng.choice(head_c), space.num_classes, 1 if space.pooled_head else res, act="none")
        out.setdefault(spec.key, spec)
    return list(out.values())


# --------------------------------------------------------------------------- whole networks


def arch_text(space: SearchSpace, arch: Any) -> str:
    """Canonical text of an architecture: `k3_e1-skip-...`, or compact JSON for channel spaces."""
    return space.format(arch)


def random_archs(space: SearchSpace, n: int, seed: int = 0) -> list[Any]:
    """`n` distinct random architectures of the space (uniform per-layer choices)."""
    rng = random.Random(seed)
    out: dict[str, Any] = {}
    tries = 0
    while len(out) < n and tries < 20 * n + 20:
        tries += 1
        arch = space.sample(rng)
        out.setdefault(arch_text(space, arch), arch)
    return list(out.values())


def parse_archs(spec: str, space: SearchSpace, seed: int = 0) -> list[Any]:
    """`random:N`, or presets / architecture strings / arch .json files separated by `;`."""
    spec = spec.strip()
    m = re.fullmatch(r"random:(\d+)", spec)
    if m:
        return random_archs(space, int(m[1]), seed)
    if spec.startswith("random"):
        raise InputError(f"`archs` {spec!r}: expected random:N with N a whole number")
    archs = []
    for part in filter(None, (p.strip() for p in spec.split(";"))):
        _, ops = resolve_arch(part, space.name)
        archs.append(ops)
    return archs


def arch_items(space: SearchSpace, archs: list[Any]) -> list[Item]:
    out: dict[str, Item] = {}
    for arch in archs:
        text = arch_text(space, arch)
        key = f"{space.name}:{text}"
        norm = space.check_arch(arch)
        out.setdefault(key, Item("network", key, "network", space=space.name, arch=norm, arch_text=text))
    return list(out.values())
