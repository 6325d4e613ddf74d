"""The latency cost of FBNetV2's masked supernet, from plain ChannelTable arrays.

`search` never imports `latency_models` (DESIGN.md): the glue in `hwnas`
turns a fitted model's ChannelTable (contract 3) into the arrays taken here.
Each searchable layer's latency depends on its block type, its input width
(the previous layer's output option), its output width and the network's
input resolution, so the cost is a chain: the expectation under independent
per-layer distributions is exact as

    E[LAT] = overhead + Σ_r P(r) · ( Σ_s P(stem=s)·stem[s,r]
             + Σ_i Σ_{o,a,b} P_i(op=o)·P_{i-1}(c=a)·P_i(c=b)·T_i[o,a,b,r]
             + Σ_a P_last(c=a)·head[a,r] ),

multilinear (hence differentiable) in every op, channel and resolution weight.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch

from hwnas.search.space import InputError

__all__ = ["ChannelCost", "mac_channel_cost"]


def _array(name: str, value: Any, ndim: int) -> np.ndarray:
    arr = np.asarray(value, dtype=np.float64)
    if arr.ndim != ndim:
        raise InputError(f"channel table: {name} must have {ndim} dimensions, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)) or np.any(arr < 0):
        raise InputError(f"channel table: {name} holds negative or non-finite latencies")
    return arr


@dataclass(frozen=True)
class ChannelCost:
    """Latency (ms) per (layer, op, cin option, cout option, resolution), with stem and head.

    Tensors are float64 for the exact discrete figures; `expected_ms` casts the
    weights it is handed, so it works with float32 supernets.
    """

    layers: tuple[torch.Tensor, ...]
    stem_ms: torch.Tensor
    head_ms: torch.Tensor
    overhead_ms: float
    resolutions: tuple[int, ...]
    stem_options: tuple[int, ...]
    cout_options: tuple[tuple[int, ...], ...]
    ops: tuple[str, ...]
    space: str = ""
    device: str = ""

    # -- construction ---------------------------------------------------------------------
    @classmethod
    def from_arrays(cls, layers: Sequence[Any], stem_ms: Any, head_ms: Any, overhead_ms: float,
                    resolutions: Sequence[int], cin_options: Sequence[Sequence[int]],
                    cout_options: Sequence[Sequence[int]], ops: Sequence[str], space: str = "",
                    device: str = "") -> "ChannelCost":
        """Check the arrays' shapes against each other (InputError naming the first mismatch)."""
        ops, res = tuple(ops), tuple(int(r) for r in resolutions)
        cin = [tuple(int(c) for c in o) for o in cin_options]
        cout = [tuple(int(c) for c in o) for o in cout_options]
        if not (len(layers) == len(cin) == len(cout)) or not layers:
            raise InputError(f"channel table: {len(layers)} layer tables, {len(cin)} cin and {len(cout)} cout"
                             " option lists; they must agree")
        stem = _array("stem_ms", stem_ms, 2)
        head = _array("head_ms", head_ms, 2)
        if stem.shape != (len(cin[0]), len(res)):
            raise InputError(f"channel table: stem_ms shape {stem.shape} != ({len(cin[0])}, {len(res)})")
        if head.shape != (len(cout[-1]), len(res)):
            raise InputError(f"channel table: head_ms shape {head.shape} != ({len(cout[-1])}, {len(res)})")
        tables = []
        for i, t in enumerate(layers):
            arr = _array(f"layer {i} table", t, 4)
            want = (len(ops), len(cin[i]), len(cout[i]), len(res))
            if arr.shape != want:
                raise InputError(f"channel table: layer {i} shape {arr.shape} != (ops, cin, cout, res) {want}")
            if i and cin[i] != cout[i - 1]:
                raise InputError(f"channel table: layer {i} cin options {list(cin[i])} are not layer {i - 1}'s"
                                 f" cout options {list(cout[i - 1])}")
            tables.append(torch.from_numpy(arr))
        if not np.isfinite(overhead_ms) or overhead_ms < 0:
            raise InputError(f"channel table: overhead_ms must be a non-negative number, got {overhead_ms!r}")
        return cls(tuple(tables), torch.from_numpy(stem), torch.from_numpy(head), float(overhead_ms), res,
                   cin[0], tuple(cout), ops, space, device)

    @classmethod
    def from_table(cls, table: Any, space: Any | None = None) -> "ChannelCost":
        """From any object with ChannelTable's attributes (contract 3), checked against `space`."""
        try:
            cost = cls.from_arrays(
                list(table.layers), table.stem_ms, table.head_ms, table.overhead_ms, table.resolutions,
                table.cin_options, table.cout_options, table.ops, getattr(table, "space", ""),
                getattr(table, "device", ""))
        except AttributeError as exc:
            raise InputError(f"not a channel table: {exc}") from None
        if space is not None:
            cost.check_space(space)
        return cost

    def check_space(self, space: Any) -> None:
        """InputError when these arrays do not describe `space` (another space, other options)."""
        if self.space and self.space != space.name:
            raise InputError(f"latency table is for space {self.space!r}, not {space.name!r}")
        if self.ops != tuple(space.candidates):
            raise InputError(f"latency table ops {list(self.ops)} differ from space {space.name}'s candidates")
        if len(self.layers) != space.num_layers:
            raise InputError(f"latency table has {len(self.layers)} layers, space {space.name} has {space.num_layers}")
        if self.resolutions != tuple(space.resolutions):
            raise InputError(f"latency table resolutions {list(self.resolutions)} != {list(space.resolutions)}")
        if self.stem_options != tuple(space.stem_channel_options):
            raise InputError(f"latency table stem options {list(self.stem_options)} != "
                             f"{list(space.stem_channel_options)}")
        for i, (a, b) in enumerate(zip(self.cout_options, space.channel_options)):
            if tuple(a) != tuple(b):
                raise InputError(f"latency table layer {i} channel options {list(a)} != {list(b)}")

    # -- expectation ----------------------------------------------------------------------
    def expected_ms(self, res_w: torch.Tensor, stem_w: torch.Tensor, op_ws: Sequence[torch.Tensor],
                    ch_ws: Sequence[torch.Tensor]) -> torch.Tensor:
        """Expected latency under independent weights (each a probability vector); differentiable in all."""
        dtype = res_w.dtype
        per_res = stem_w @ self.stem_ms.to(dtype)
        p_in = stem_w
        for table, p_op, p_out in zip(self.layers, op_ws, ch_ws):
            per_res = per_res + torch.einsum("o,a,b,oabr->r", p_op, p_in, p_out, table.to(dtype))
            p_in = p_out
        per_res = per_res + p_in @ self.head_ms.to(dtype)
        return res_w @ per_res + self.overhead_ms

    def effective_channels(self, ch_ws: Sequence[torch.Tensor]) -> list[float]:
        """Σ_i g_i·c_i per layer: the effective widths the paper propagates (for logging)."""
        return [float(w.detach().double() @ torch.tensor(opts, dtype=torch.float64))
                for w, opts in zip(ch_ws, self.cout_options)]

    # -- discrete architectures -------------------------------------------------------------
    def indices(self, arch: dict[str, Any]) -> tuple[int, int, list[tuple[int, int]]]:
        """(resolution, stem, [(op, cout)]) indices of a checked architecture dict."""
        try:
            r = self.resolutions.index(arch["resolution"])
            s = self.stem_options.index(arch["stem"])
            layers = [(self.ops.index(op), self.cout_options[i].index(ch)) for i, (op, ch) in enumerate(arch["layers"])]
        except (ValueError, KeyError, TypeError) as exc:
            raise InputError(f"architecture does not fit the latency table: {exc}") from None
        if len(layers) != len(self.layers):
            raise InputError(f"architecture has {len(layers)} layers, the latency table {len(self.layers)}")
        return r, s, layers

    def arch_ms(self, arch: dict[str, Any]) -> float:
        """Predicted latency of one architecture (ms): stem + layers + head + overhead."""
        r, s, layers = self.indices(arch)
        total = float(self.stem_ms[s, r])
        a = s
        for table, (o, b) in zip(self.layers, layers):
            total += float(table[o, a, b, r])
            a = b
        return total + float(self.head_ms[a, r]) + self.overhead_ms

    def fastest(self) -> tuple[float, dict[str, Any]]:
        """The fastest architecture and its latency, by dynamic programming over the width chain.

        The chain has ~10^35 members; the per-layer cost depends only on the
        neighbouring widths, so a Viterbi pass finds the minimum exactly.
        """
        best: tuple[float, dict[str, Any]] | None = None
        for r, res in enumerate(self.resolutions):
            cost = self.stem_ms[:, r].clone()
            back = []
            for table in self.layers:
                step, op_idx = table[..., r].min(dim=0)           # (cin, cout)
                total, prev = (cost[:, None] + step).min(dim=0)   # (cout,)
                back.append((prev, op_idx))
                cost = total
            cost = cost + self.head_ms[:, r]
            ms, b = cost.min(dim=0)
            b = int(b)
            layers = []
            for prev, op_idx in reversed(back):
                a = int(prev[b])
                layers.append((int(op_idx[a, b]), b))
                b = a
            layers.reverse()
            arch = {"resolution": res, "stem": self.stem_options[b],
                    "layers": [[self.ops[o], self.cout_options[i][c]] for i, (o, c) in enumerate(layers)]}
            total_ms = float(ms) + self.overhead_ms
            if best is None or total_ms < best[0]:
                best = (total_ms, arch)
        assert best is not None
        return best


def _mmacs_ir(cin: np.ndarray, cout: np.ndarray, res: np.ndarray, stride: int, kernel: int,
              expansion: float, se: bool) -> np.ndarray:
    """MMACs of `hwnas.search.blocks.InvertedResidual` (groups 1) on broadcast (cin, cout, res) grids."""
    from hwnas.search.space import make_divisible

    exact = cin * expansion
    hidden = np.where(np.equal(np.mod(exact, 1), 0), exact,
                      np.vectorize(lambda v: make_divisible(float(v), 8))(exact))
    out = (res - 1) // stride + 1
    macs = cin * hidden * res**2 + hidden * kernel**2 * out**2 + hidden * cout * out**2
    if se:
        mid = np.vectorize(lambda v: make_divisible(float(v) / 4, 8))(hidden)
        macs = macs + 2 * hidden * mid
    return macs / 1e6


def mac_channel_cost(space: Any, ms_per_mmac: float = 0.01, overhead_ms: float = 0.0) -> ChannelCost:
    """A MACs-proportional ChannelCost for a channel-search space: tests, benchmarks, demos.

    Not a latency model.  The grid has ~10^4 blocks per layer, too many to
    build as torch modules for `hwnas.search.count`, so the standard inverted-
    residual MAC formula is evaluated on it with numpy (a test checks it
    against `hwnas.search.count` on sampled blocks).
    """
    res_opts = np.array(space.resolutions, dtype=np.float64)
    stem_res = (res_opts - 1) // space.stem_stride + 1
    stem_opts = np.array(space.stem_channel_options, dtype=np.float64)
    stem_ms = space.in_channels * space.stem_kernel**2 * stem_opts[:, None] * stem_res[None, :] ** 2 / 1e6
    tables, cin_opts, res = [], [list(space.stem_channel_options)], stem_res
    a = stem_opts[:, None, None]
    for layer, opts in zip(space.layers, space.channel_options):
        b = np.array(opts, dtype=np.float64)[None, :, None]
        r = res[None, None, :]
        per_op = []
        for op in space.candidates:
            spec = layer.block(op)  # the op's kernel, expansion and SE; widths come from the grid
            if spec.op == "skip":
                same = (a == b) & (layer.stride == 1)
                out = (r - 1) // layer.stride + 1
                per_op.append(np.where(same, 0.0, a * b * out**2 / 1e6) + 0 * r)
            else:
                per_op.append(_mmacs_ir(a, b, r, layer.stride, spec.kernel, spec.expansion, spec.se))
        tables.append(np.stack([np.broadcast_to(t, (len(a), b.shape[1], len(res))) for t in per_op]) * ms_per_mmac)
        cin_opts.append(list(opts))
        res = (res - 1) // layer.stride + 1
        a = np.array(opts, dtype=np.float64)[:, None, None]
    last = np.array(space.channel_options[-1], dtype=np.float64)
    head = (last * space.head_channels + space.head_channels * space.num_classes) / 1e6
    head_ms = np.repeat(head[:, None], len(res_opts), axis=1) * ms_per_mmac
    return ChannelCost.from_arrays(tables, stem_ms * ms_per_mmac, head_ms, overhead_ms, space.resolutions,
                                   cin_opts[:-1], space.channel_options, space.candidates, space.name,
                                   device="macs-proxy")
