"""FBNetV2's DMaskingNAS supernet: channel, block-type and input-resolution search by masking.

Per searchable layer there is ONE convolution stack per kernel size, built at
the layer's widest width; the layer's output is multiplied by Σ_i g_i·mask_i,
where mask_i keeps the first c_i channels and g are Gumbel-softmax weights of
the layer's channel parameters (Wan et al. 2020).  So memory and compute stay
those of the widest option however many width options there are.

Block types (k3/k5, expansion, SE, skip: the space's candidates) are mixed as
in FBNet, by Gumbel weights over the candidates, with two simplifications
that keep one stack per kernel size: the expansion ratio is searched by
masking the hidden channels too (hidden mask = Σ_e g_e·mask_e over the ops of
that kernel), and "with/without squeeze-excite" is a weighted blend of the
dw output with and without the SE gate.  These are linear mixes taken before
the projection instead of after it, the same approximation the paper makes
for widths.

Input resolution: the input comes at the largest resolution; for each
candidate r the input is subsampled (nearest neighbour, evenly spaced rows and
columns), the shared layers run on the small map, and the final feature map is
put back at the large size by interspersed zero padding (values at the spaced
positions, zeros between), scaled so the pooled head sees that branch's own
mean; branches are summed with the resolution's Gumbel weights.  Padding only
after the shared layers keeps their receptive fields those of the small input.

The expected latency (`expected_latency`) is `hwnas.search.fbnetv2.cost`'s exact
expectation over (op, cin option, cout option, resolution), from the weights
the last forward sampled: effective shapes propagate through the chain.
"""

from __future__ import annotations

import re
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from hwnas.search.blocks import ConvBNAct, SqueezeExcite, build_block
from hwnas.search.fbnetv2.cost import ChannelCost
from hwnas.search.fbnetv2.space import ChannelSearchSpace
from hwnas.search.space import InputError, Layer
from hwnas.search.supernet import Supernet

__all__ = ["DMaskingSupernet", "build_dmasking", "prefix_masks", "spaced_indices", "subsample", "intersperse"]

_OP = re.compile(r"^k(?P<k>\d+)_e(?P<e>\d+(?:\.\d+)?)(?P<se>_se)?$")


def prefix_masks(options: Sequence[int], width: int) -> torch.Tensor:
    """(K, width) float masks: row i keeps the first options[i] channels."""
    masks = torch.zeros(len(options), width)
    for i, c in enumerate(options):
        masks[i, : min(int(c), width)] = 1.0
    return masks


def spaced_indices(small: int, large: int) -> torch.Tensor:
    """Evenly spaced positions of a `small` grid inside a `large` one (nearest neighbour)."""
    return torch.div(torch.arange(small) * large, small, rounding_mode="floor")


def subsample(x: torch.Tensor, size: int) -> torch.Tensor:
    """Nearest-neighbour subsampling of an NCHW map to size x size, by spaced rows and columns."""
    if x.shape[-1] == size and x.shape[-2] == size:
        return x
    idx = spaced_indices(size, x.shape[-1]).to(x.device)
    return x.index_select(-2, idx).index_select(-1, idx)


def intersperse(x: torch.Tensor, size: int) -> torch.Tensor:
    """Place a small map at the spaced positions of a size x size zero map (inverse of `subsample`)."""
    small = x.shape[-1]
    if small == size:
        return x
    idx = spaced_indices(small, size).to(x.device)
    out = x.new_zeros(*x.shape[:-2], size, size)
    out[..., idx[:, None], idx[None, :]] = x
    return out


class MaskedInvertedResidual(nn.Module):
    """One kernel size's inverted residual at the widest hidden width; hidden width masked, SE blended."""

    def __init__(self, cin: int, cout: int, stride: int, kernel: int, act: str,
                 expansions: Sequence[float], with_se: bool) -> None:
        super().__init__()
        widths = [max(1, round(cin * e)) for e in expansions]
        hidden = max(widths)
        self.pw = ConvBNAct(cin, hidden, 1, 1, 1, act)
        self.dw = ConvBNAct(hidden, hidden, kernel, stride, hidden, act)
        self.se = SqueezeExcite(hidden) if with_se else None
        self.pwl = ConvBNAct(hidden, cout, 1, 1, 1, "none")
        self.register_buffer("hidden_masks", prefix_masks(widths, hidden), persistent=False)

    def forward(self, x: torch.Tensor, w_plain: torch.Tensor, w_se: torch.Tensor) -> torch.Tensor | None:
        """w_plain / w_se: weights of this kernel's ops per expansion, without / with SE."""
        total = w_plain.sum() + w_se.sum()
        if float(total.detach()) == 0.0:  # not chosen (eval) or underflowed at a low temperature: contributes 0
            return None
        h = self.dw(self.pw(x))
        if self.se is not None:
            share = w_se.sum() / total
            h = h + share * (self.se(h) - h)
        mask = ((w_plain + w_se) / total) @ self.hidden_masks
        return total * self.pwl(h * mask.view(1, -1, 1, 1))


class MaskedLayer(nn.Module):
    """A searchable layer: every candidate op at the widest width, output masked by width weights."""

    def __init__(self, layer: Layer, ops: Sequence[str], out_options: Sequence[int]) -> None:
        super().__init__()
        self.residual = layer.stride == 1 and layer.cin == layer.cout
        kernels: dict[int, list[float]] = {}
        self.plan: list[tuple[int, int, bool]] = []  # per op: (kernel, expansion index, se); skip → (0, 0, False)
        self.skip_index = -1
        for i, op in enumerate(ops):
            if op == "skip":
                self.skip_index = i
                self.plan.append((0, 0, False))
                continue
            m = _OP.match(op)
            if not m:
                raise InputError(f"the masked supernet cannot mix op {op!r}; it takes k<K>_e<E>[_se] and skip")
            k, e = int(m["k"]), float(m["e"])
            exps = kernels.setdefault(k, [])
            if e not in exps:
                exps.append(e)
            self.plan.append((k, exps.index(e), bool(m["se"])))
        self.kernels = sorted(kernels)
        self.blocks = nn.ModuleList(
            MaskedInvertedResidual(layer.cin, layer.cout, layer.stride, k, layer.act, kernels[k],
                                   any(se for kk, _, se in self.plan if kk == k))
            for k in self.kernels)
        for j, k in enumerate(self.kernels):  # op indices per (kernel, expansion), plain and SE
            n = len(kernels[k])
            plain = [[i for i, (kk, e, se) in enumerate(self.plan) if kk == k and e == x and not se] for x in range(n)]
            with_se = [[i for i, (kk, e, se) in enumerate(self.plan) if kk == k and e == x and se] for x in range(n)]
            self.register_buffer(f"sel_plain_{j}", _selector(plain, len(ops)), persistent=False)
            self.register_buffer(f"sel_se_{j}", _selector(with_se, len(ops)), persistent=False)
        needs_proj = self.skip_index >= 0 and not self.residual
        self.proj = ConvBNAct(layer.cin, layer.cout, 1, layer.stride, 1, "relu") if needs_proj else None
        self.register_buffer("out_masks", prefix_masks(out_options, layer.cout), persistent=False)

    def forward(self, x: torch.Tensor, op_w: torch.Tensor, ch_w: torch.Tensor) -> torch.Tensor:
        y: torch.Tensor | None = None
        for j, block in enumerate(self.blocks):
            w_plain = getattr(self, f"sel_plain_{j}") @ op_w
            w_se = getattr(self, f"sel_se_{j}") @ op_w
            out = block(x, w_plain, w_se)
            if out is not None:
                y = out if y is None else y + out
        if self.residual:
            # Σ_o w_o (x + f_o(x)) + w_skip·x = x + Σ_o w_o f_o(x), the weights summing to 1.
            y = x if y is None else x + y
        elif self.proj is not None and float(op_w[self.skip_index].detach()) != 0.0:
            skip = op_w[self.skip_index] * self.proj(x)
            y = skip if y is None else y + skip
        if y is None:
            raise ValueError("all op weights of a layer are zero")
        return y * (ch_w @ self.out_masks).view(1, -1, 1, 1)


def _selector(groups: list[list[int]], n_ops: int) -> torch.Tensor:
    """(n_groups, n_ops) 0/1 matrix summing op weights into per-expansion weights."""
    sel = torch.zeros(len(groups), n_ops)
    for g, idx in enumerate(groups):
        sel[g, idx] = 1.0
    return sel


class DMaskingSupernet(Supernet):
    """The masked supernet of a channel-search space (contract 4's supernet interface).

    `cost` is optional only for training without a latency loss (the memory
    benchmark); `expected_latency` needs it.
    """

    def __init__(self, space: ChannelSearchSpace, cost: ChannelCost | None = None, tau: float = 5.0) -> None:
        super().__init__()
        if not isinstance(space, ChannelSearchSpace):
            raise InputError(f"space {space.name} has no channel options; DMaskingNAS needs an fbnetv2 space")
        if cost is not None:
            cost.check_space(space)
        self.space, self.cost, self.tau = space, cost, float(tau)
        self.ops = tuple(space.candidates)
        self.resolutions = tuple(sorted(space.resolutions))
        stem_max = max(space.stem_channel_options)
        self.stem = build_block(space.stem_block(max(self.resolutions), stem_max))
        layers = space.layers
        self.layers = nn.ModuleList(MaskedLayer(l, self.ops, opts) for l, opts in zip(layers, space.channel_options))
        last = layers[-1]
        self.head = nn.Sequential(*[build_block(s) for s in space.head_blocks(last.cout, 1)])
        self.register_buffer("stem_masks", prefix_masks(space.stem_channel_options, stem_max), persistent=False)
        self.theta_res = nn.Parameter(torch.zeros(len(self.resolutions)))
        self.theta_stem = nn.Parameter(torch.zeros(len(space.stem_channel_options)))
        self.theta_ops = nn.ParameterList(nn.Parameter(torch.zeros(len(self.ops))) for _ in layers)
        self.theta_ch = nn.ParameterList(nn.Parameter(torch.zeros(len(o))) for o in space.channel_options)
        self._weights: dict[str, Any] | None = None
        self._fixed: dict[str, Any] | None = None

    # -- parameters ------------------------------------------------------------------------
    def arch_parameters(self) -> list[nn.Parameter]:
        return [self.theta_res, self.theta_stem, *self.theta_ops, *self.theta_ch]

    def weight_parameters(self) -> list[nn.Parameter]:
        arch = {id(p) for p in self.arch_parameters()}
        return [p for p in self.parameters() if id(p) not in arch]

    # -- forward ------------------------------------------------------------------------------
    def _sample_weights(self) -> dict[str, Any]:
        """Gumbel-softmax weights at the current temperature (training)."""
        def draw(t: torch.Tensor) -> torch.Tensor:
            return F.gumbel_softmax(t, tau=self.tau, hard=False, dim=-1)

        return {"res": draw(self.theta_res), "stem": draw(self.theta_stem),
                "ops": [draw(t) for t in self.theta_ops], "ch": [draw(t) for t in self.theta_ch]}

    def _one_hot(self, arch: dict[str, Any]) -> dict[str, Any]:
        """Weights that select exactly `arch`: the masked supernet then computes that network."""
        sp = self.space

        def hot(n: int, i: int) -> torch.Tensor:
            return F.one_hot(torch.tensor(i), n).float().to(self.theta_res.device)

        return {"res": hot(len(self.resolutions), self.resolutions.index(arch["resolution"])),
                "stem": hot(len(sp.stem_channel_options), sp.stem_channel_options.index(arch["stem"])),
                "ops": [hot(len(self.ops), self.ops.index(op)) for op, _ in arch["layers"]],
                "ch": [hot(len(o), o.index(c)) for o, (_, c) in zip(sp.channel_options, arch["layers"])]}

    def fix(self, arch: Any | None) -> None:
        """Eval-mode forwards run `arch` alone (None: the argmax architecture)."""
        self._fixed = None if arch is None else self.space.check_arch(arch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = max(self.resolutions)
        if x.shape[-1] != size or x.shape[-2] != size:
            raise InputError(f"space {self.space.name} expects {size}x{size} inputs, got {tuple(x.shape[-2:])}")
        if self.training:
            w = self._weights = self._sample_weights()
        else:
            w = self._one_hot(self._fixed if self._fixed is not None else self.derive())
        stem_mask = (w["stem"] @ self.stem_masks).view(1, -1, 1, 1)
        merged: torch.Tensor | None = None
        final = None
        for r, g in zip(self.resolutions[::-1], w["res"].flip(0)):  # largest first: it sets the final size
            if float(g.detach()) == 0.0:
                continue
            h = self.stem(subsample(x, r)) * stem_mask
            for layer, op_w, ch_w in zip(self.layers, w["ops"], w["ch"]):
                h = layer(h, op_w, ch_w)
            final = final or h.shape[-1]
            scale = (final / h.shape[-1]) ** 2
            h = intersperse(h, final) * (g * scale)
            merged = h if merged is None else merged + h
        assert merged is not None
        return self.head(merged)

    # -- latency ------------------------------------------------------------------------------
    def _current(self) -> dict[str, Any]:
        if self._weights is not None:
            return self._weights
        soft = lambda t: F.softmax(t, dim=-1)  # noqa: E731
        return {"res": soft(self.theta_res), "stem": soft(self.theta_stem),
                "ops": [soft(t) for t in self.theta_ops], "ch": [soft(t) for t in self.theta_ch]}

    def expected_latency(self) -> torch.Tensor:
        """Expected ms under the last forward's weights (softmax(θ) before any forward)."""
        if self.cost is None:
            raise InputError("this supernet was built without a latency table")
        w = self._current()
        res_w = w["res"] if self.resolutions == tuple(self.cost.resolutions) else _reorder(
            w["res"], self.resolutions, self.cost.resolutions)
        return self.cost.expected_ms(res_w, w["stem"], w["ops"], w["ch"])

    def effective_channels(self) -> list[float]:
        """Σ g_i·c_i per layer under the current weights: the propagated effective widths."""
        w = self._current()
        return [float(ch.detach() @ torch.tensor(opts, dtype=ch.dtype))
                for ch, opts in zip(w["ch"], self.space.channel_options)]

    # -- architectures ------------------------------------------------------------------------
    def derive(self) -> dict[str, Any]:
        """The most likely architecture (argmax of every θ)."""
        return self._arch(int(self.theta_res.argmax()), int(self.theta_stem.argmax()),
                          [int(t.argmax()) for t in self.theta_ops], [int(t.argmax()) for t in self.theta_ch])

    def sample(self, n: int, generator: torch.Generator | None = None) -> list[dict[str, Any]]:
        """n architectures drawn from softmax(θ), independently per choice."""
        def draw(t: torch.Tensor) -> list[int]:
            p = F.softmax(t.detach().float(), dim=-1)
            return torch.multinomial(p, n, replacement=True, generator=generator).tolist()

        res, stem = draw(self.theta_res), draw(self.theta_stem)
        ops = [draw(t) for t in self.theta_ops]
        ch = [draw(t) for t in self.theta_ch]
        return [self._arch(res[j], stem[j], [o[j] for o in ops], [c[j] for c in ch]) for j in range(n)]

    def _arch(self, res: int, stem: int, ops: list[int], ch: list[int]) -> dict[str, Any]:
        sp = self.space
        return {"resolution": self.resolutions[res], "stem": sp.stem_channel_options[stem],
                "layers": [[self.ops[o], sp.channel_options[i][c]] for i, (o, c) in enumerate(zip(ops, ch))]}

    def distribution(self) -> list[list[float]]:
        """Per-layer op probabilities softmax(θ) (the block-type choice), for logging."""
        return [F.softmax(t.detach(), dim=-1).tolist() for t in self.theta_ops]

    def channel_distribution(self) -> list[list[float]]:
        return [F.softmax(t.detach(), dim=-1).tolist() for t in self.theta_ch]

    def resolution_distribution(self) -> dict[int, float]:
        return dict(zip(self.resolutions, F.softmax(self.theta_res.detach(), dim=-1).tolist()))

    def predicted_ms(self, arch: Any) -> float:
        """Latency of one discrete architecture from the cost table."""
        if self.cost is None:
            raise InputError("this supernet was built without a latency table")
        return self.cost.arch_ms(self.space.check_arch(arch))

    def min_latency_ms(self) -> float:
        """The fastest architecture's latency (exact, by dynamic programming over widths)."""
        if self.cost is None:
            raise InputError("this supernet was built without a latency table")
        return self.cost.fastest()[0]


def build_dmasking(space: ChannelSearchSpace, cost: ChannelCost, tau: float = 5.0) -> DMaskingSupernet:
    """Registry entry: FBNetV2's channel-search spaces train the masked supernet."""
    return DMaskingSupernet(space, cost, tau=tau)


def _reorder(w: torch.Tensor, have: Sequence[int], want: Sequence[int]) -> torch.Tensor:
    return w[torch.tensor([list(have).index(r) for r in want])]
