"""Numeric features of blocks: the inputs every latency regressor sees.

Features are computed from the spec fields with one vectorised pure function
so that a million blocks featurise in well under a second (the search exports
and batched predictions need that).  MACs and parameters mirror
`hwnas.search.count.count_block` (torch's FLOP counter over the very modules the
devices measure); `tests/test_latency_features.py` checks them against it on
every unique block of fbnet-cifar and fbnetv2 plus random samples, so these
closed forms cannot drift from the counter unnoticed.  `hwnas.search.count` itself
is not imported here: it builds a torch module per block (milliseconds each),
and latency_models may import only `hwnas.search.space`.
"""

from __future__ import annotations

from typing import Any, Iterable, Sequence

import numpy as np

from hwnas.search.space import BlockSpec

__all__ = ["OPS", "ACTS", "FIELD_NAMES", "FEATURE_NAMES", "KERNELS", "spec_fields", "features", "block_features",
           "kernel_design", "family_names", "family_codes", "family_name"]

OPS: tuple[str, ...] = ("ir", "skip", "conv", "fc", "pool_conv")
ACTS: tuple[str, ...] = ("relu", "hswish", "none")

#: Raw spec fields, in column order of `spec_fields`.
FIELD_NAMES: tuple[str, ...] = ("op", "cin", "cout", "resolution", "stride", "kernel", "expansion", "groups",
                                "act", "se", "shuffle")

#: Feature columns of `features`, in order.
FEATURE_NAMES: tuple[str, ...] = (
    "op", "kernel", "stride", "expansion", "groups", "cin", "cout", "hidden", "resolution", "out_resolution",
    "act", "se", "macs", "params", "bytes", "dw_macs",
)


def spec_fields(specs: Sequence[BlockSpec]) -> np.ndarray:
    """A (n, 11) float array of the spec fields (op/act as codes): the one Python loop."""
    op_code = {o: i for i, o in enumerate(OPS)}
    act_code = {a: i for i, a in enumerate(ACTS)}
    rows = [(op_code[s.op], s.cin, s.cout, s.resolution, s.stride, s.kernel, s.expansion, s.groups,
             act_code[s.act], float(s.se), float(s.shuffle)) for s in specs]
    return np.asarray(rows, dtype=np.float64).reshape(len(rows), len(FIELD_NAMES))


def _make_divisible(v: np.ndarray, divisor: int = 8) -> np.ndarray:
    """Vectorised `hwnas.search.space.make_divisible` (same rounding rule)."""
    rounded = np.maximum(divisor, np.floor((v + divisor / 2) / divisor) * divisor)
    return np.where(rounded < 0.9 * v, rounded + divisor, rounded)


def features(fields: np.ndarray) -> np.ndarray:
    """Features (n, len(FEATURE_NAMES)) from `spec_fields` output, fully vectorised."""
    # Column-major throughout: every field and feature is one contiguous row, so each vector op
    # streams memory instead of striding over 11-16 wide records (~2x faster in bulk).
    f = np.ascontiguousarray(np.asarray(fields, dtype=np.float64).T)
    op, cin, cout, res, stride, k, e, g, act, se = f[:10]
    is_ir, is_skip, is_conv, is_fc, is_pool = (op == i for i in range(5))
    exact = cin * e
    hidden = np.where(exact == np.floor(exact), exact, _make_divisible(exact))
    hidden = np.where(is_ir, hidden, cin)
    out_res = np.where(is_fc | is_pool, 1.0, np.floor((res - 1) / stride) + 1)
    conv_res = np.floor((res - 1) / stride) + 1
    hw_in, hw_out = res * res, conv_res * conv_res
    mid = _make_divisible(hidden / 4)
    se_on = is_ir & (se > 0)
    proj = is_skip & ~((cin == cout) & (stride == 1))

    macs = np.zeros(f.shape[1])
    params = np.zeros(f.shape[1])
    # inverted residual: 1x1 group conv, depthwise kxk (strided), [SE at 1x1], 1x1 group conv
    ir_macs = hidden * cin / g * hw_in + hidden * k * k * hw_out + cout * hidden / g * hw_out
    ir_macs += np.where(se_on, 2 * hidden * mid, 0.0)
    ir_params = hidden * cin / g + 2 * hidden + hidden * k * k + 2 * hidden + cout * hidden / g + 2 * cout
    ir_params += np.where(se_on, 2 * hidden * mid + mid + hidden, 0.0)
    macs = np.where(is_ir, ir_macs, macs)
    params = np.where(is_ir, ir_params, params)
    # skip: identity, or strided 1x1 conv + BN projection
    macs = np.where(proj, cout * cin * hw_out, macs)
    params = np.where(proj, cout * cin + 2 * cout, params)
    # plain conv + BN
    macs = np.where(is_conv, cout * cin / g * k * k * hw_out, macs)
    params = np.where(is_conv, cout * cin / g * k * k + 2 * cout, params)
    # pooled linear / pooled 1x1 conv with bias
    macs = np.where(is_fc | is_pool, cin * cout, macs)
    params = np.where(is_fc | is_pool, cin * cout + cout, params)

    # bytes moved at float32: input, output, the hidden maps an ir block writes and reads, weights
    acts_in, acts_out = cin * hw_in, cout * out_res * out_res
    hidden_maps = np.where(is_ir, 2 * hidden * hw_in + 2 * hidden * hw_out, 0.0)
    identity = is_skip & ~proj
    moved = 4.0 * (acts_in + np.where(identity, 0.0, acts_out) + hidden_maps + params)
    # depthwise MACs run memory-bound, far slower per MAC than dense convs: the cost model separates them
    dw_macs = np.where(is_ir, hidden * k * k * hw_out, 0.0)
    out = np.empty((len(FEATURE_NAMES), f.shape[1]))
    for i, col in enumerate((op, k, stride, e, g, cin, cout, hidden, res, out_res, act, se, macs, params, moved,
                             dw_macs)):
        out[i] = col
    return out.T  # (n, features) view of column-major storage


#: The runtime kernels a block decomposes into (nn-Meter's kernel-level view; BN is folded and
#: ReLU fused by every runtime here, hard-swish runs as its own elementwise kernel).
KERNELS: tuple[str, ...] = ("pw", "pw_g", "dw3", "dw5", "dw7", "conv_k", "se", "shuffle", "add", "hswish",
                            "pool", "fc")


def kernel_design(fields: np.ndarray, f: np.ndarray | None = None) -> np.ndarray:
    """Per block: [1] + for each of KERNELS [launches, MMACs, MB moved] (n, 1 + 3·len(KERNELS)).

    A block's latency as a sum over its kernels of a fixed cost, a cost per MAC and a cost per
    byte, with one set of coefficients for every family that runs the kernel: an expansion 1x1
    costs per MAC what a projecting skip's or a 1x1 conv's does.  Learned from a few hundred
    blocks of a grid, this extrapolates to widths and mixes the grid never had, where a
    per-family fit (each family seeing only its own grid points) does not.  ONNX Runtime on this
    VM, off-grid blocks within ±10% (RESULTS): from the grid alone 26-40% -> 40-47%; with 20
    off-grid samples 62-71% -> 76-78%; with ~210-240, 88-92% -> 88-94%.
    """
    fields = np.asarray(fields, dtype=np.float64)
    f = features(fields) if f is None else f
    ft, raw = f.T, fields.T
    op, cin, cout, res, stride, k, g, act, se, shuf = raw[0], raw[1], raw[2], raw[3], raw[4], raw[5], raw[7], \
        raw[8], raw[9], raw[10]
    hidden, out_res = ft[7], ft[9]
    conv_res = np.floor((res - 1) / stride) + 1
    hw_in, hw_out = res * res, conv_res * conv_res
    n = len(op)
    # Column-major like `features`: each column one contiguous row while it is summed up.
    D = np.zeros((1 + 3 * len(KERNELS), n))
    D[0] = 1.0
    col = {name: 1 + 3 * i for i, name in enumerate(KERNELS)}

    def add(mask: np.ndarray, name: str, macs: Any, floats: Any) -> None:
        i = col[name]
        on = mask.astype(np.float64)
        D[i] += on
        D[i + 1] += on * (np.asarray(macs) * 1e-6)
        D[i + 2] += on * (np.asarray(floats) * 4e-6)

    ir, dense = op == 0, g <= 1
    mid = _make_divisible(hidden / 4)
    for name, on in (("pw", ir & dense), ("pw_g", ir & ~dense)):
        add(on, name, hidden * cin / g * hw_in, (cin + hidden) * hw_in + hidden * cin / g)
        add(on, name, cout * hidden / g * hw_out, (hidden + cout) * hw_out + cout * hidden / g)
    kk = np.where(k <= 3, 3, np.where(k <= 5, 5, 7))
    for size in (3, 5, 7):
        add(ir & (kk == size), f"dw{size}", hidden * k * k * hw_out, hidden * (hw_in + hw_out + k * k))
    add(ir & (se > 0), "se", 2 * hidden * mid, 2 * hidden * hw_out + 2 * hidden * mid)
    add(ir & (shuf > 0) & ~dense, "shuffle", 0.0, 2 * hidden * hw_in)
    add(ir & (cin == cout) & (stride == 1), "add", 0.0, 3 * cout * hw_out)
    hs = act == 1
    add(ir & hs, "hswish", 0.0, 2 * hidden * (hw_in + hw_out))
    proj = (op == 1) & ~((cin == cout) & (stride == 1))
    add(proj, "pw", cout * cin * hw_out, cin * hw_in + cout * hw_out + cout * cin)
    conv = op == 2
    one = conv & (k == 1)
    add(one & (g <= 1), "pw", cout * cin * hw_out, cin * hw_in + cout * hw_out + cout * cin)
    add(one & (g > 1), "pw_g", cout * cin / g * hw_out, cin * hw_in + cout * hw_out + cout * cin / g)
    add(conv & (k > 1), "conv_k", cout * cin / g * k * k * hw_out, cin * hw_in + cout * hw_out + cout * cin / g * k * k)
    add(conv & hs, "hswish", 0.0, 2 * cout * hw_out)
    head = (op == 3) | (op == 4)
    add(head & (res > 1), "pool", 0.0, cin * hw_in)
    add(head, "fc", cin * cout, cin * cout + cin + cout)
    add(head & hs, "hswish", 0.0, 2 * cout * out_res * out_res)
    return D.T


def block_features(specs: Iterable[BlockSpec]) -> np.ndarray:
    """Features of BlockSpecs (convenience: `features(spec_fields(specs))`)."""
    return features(spec_fields(list(specs)))


def family_codes(fields: np.ndarray) -> np.ndarray:
    """An integer per `BlockSpec.family` (cheap to compare in bulk); names via `family_name`."""
    f = np.asarray(fields, dtype=np.float64)
    op, cin, cout, stride, k, g, se = f[:, 0], f[:, 1], f[:, 2], f[:, 4], f[:, 5], f[:, 7], f[:, 9]
    identity = (cin == cout) & (stride == 1)
    other = np.where(op == 1, np.where(identity, 1, 2), op + 1)  # skip 1, skip_proj 2, conv 3, fc 4, pool_conv 5
    ir = 1000 + k * 10 + 2 * (g > 1) + (se > 0)
    return np.where(op == 0, ir, other).astype(np.int64)


def family_name(code: int) -> str:
    code = int(code)
    if code >= 1000:
        k, rest = divmod(code - 1000, 10)
        return f"ir_k{k}" + ("_g" if rest & 2 else "") + ("_se" if rest & 1 else "")
    return ("", "skip", "skip_proj", "conv", "fc", "pool_conv")[code]


def family_names(fields: np.ndarray) -> np.ndarray:
    """`BlockSpec.family` for every row of `spec_fields` output (object array)."""
    codes = family_codes(fields)
    uniq, inverse = np.unique(codes, return_inverse=True)
    names = np.array([family_name(c) for c in uniq], dtype=object)
    return names[inverse.reshape(-1)] if len(codes) else np.empty(0, dtype=object)
