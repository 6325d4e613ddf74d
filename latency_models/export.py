"""Latency tables the differentiable search consumes as plain arrays.

`layer_table` gives FBNet's (layers x candidates) table and the fixed cost;
`channel_table` gives FBNetV2's per-layer (op, cin option, cout option,
resolution) tensors.  Both predict every entry in one vectorised batch: the
FBNetV2 grid has ~10^5 blocks, built here as field rows without
constructing a BlockSpec per entry.  The search never imports this package:
glue in `hwnas/` turns these arrays into its cost objects.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hwnas.latency_models.features import ACTS, OPS, spec_fields
from hwnas.latency_models.network import LatencyModel
from hwnas.search.space import InputError, SearchSpace

__all__ = ["LayerTable", "ChannelTable", "layer_table", "channel_table", "cost_table", "TABLES"]


@dataclass(frozen=True)
class LayerTable:
    """table_ms[l, c]: predicted ms of candidate c at layer l; fixed_ms: stem + head + classifier + overhead."""

    table_ms: np.ndarray
    fixed_ms: float
    candidates: tuple[str, ...]
    space: str
    device: str

    def expected_ms(self, weights: np.ndarray) -> float:
        """Expected network latency of a (layers x candidates) distribution."""
        return float(self.fixed_ms + (np.asarray(weights) * self.table_ms).sum())


@dataclass(frozen=True)
class ChannelTable:
    """FBNetV2's tables: layers[i] has shape (ops, n_cin_i, n_cout_i, n_res)."""

    layers: list[np.ndarray]
    stem_ms: np.ndarray
    head_ms: np.ndarray
    overhead_ms: float
    resolutions: list[int]
    cin_options: list[list[int]]
    cout_options: list[list[int]]
    ops: tuple[str, ...]
    space: str
    device: str


def _check_space(model: LatencyModel, space: SearchSpace) -> None:
    if model.space != space.name:
        raise InputError(f"latency model is for space {model.space!r}, not {space.name!r}")


def layer_table(model: LatencyModel, space: SearchSpace) -> LayerTable:
    """Per-(layer, candidate) predicted ms, and the fixed cost of everything else."""
    _check_space(model, space)
    layers = space.layers
    specs = [layer.block(op) for layer in layers for op in space.candidates]
    table = model.predict_blocks(specs).reshape(len(layers), len(space.candidates))
    fixed = float(model.predict_blocks(space.fixed_blocks()).sum() + model.overhead_ms)
    return LayerTable(table, fixed, tuple(space.candidates), space.name, model.device)


def _op_rows(space: SearchSpace, layer_index: int) -> np.ndarray:
    """Spec fields of every candidate op at one layer (widths filled in later)."""
    layer = space.layers[layer_index]
    return spec_fields([layer.block(op) for op in space.candidates])


def channel_table(model: LatencyModel, space: SearchSpace) -> ChannelTable:
    """Per-layer (op, cin, cout, resolution) predicted ms for a channel-search space."""
    _check_space(model, space)
    if not space.channel_options:
        raise InputError(f"space {space.name} searches no channels; use layer_table")
    resolutions = [int(r) for r in space.resolutions] or [space.input_resolution]
    stem_opts = list(space.stem_channel_options) or [space.stem_channels]
    cout_opts = [list(o) for o in space.channel_options]
    cin_opts = [stem_opts] + cout_opts[:-1]
    # input resolution of every layer for every network resolution
    res_in = np.zeros((len(space.layers), len(resolutions)), dtype=np.int64)
    stem_rows = []
    for j, r in enumerate(resolutions):
        cur = space.stem_block(r).out_resolution
        for i, layer in enumerate(space.layers):
            res_in[i, j] = cur
            cur = (cur - 1) // layer.stride + 1
        stem_rows += [space.stem_block(r, c) for c in stem_opts]
    last_res = [int((res_in[-1, j] - 1) // space.layers[-1].stride + 1) for j in range(len(resolutions))]

    blocks, shapes = [], []
    for i in range(len(space.layers)):
        base = _op_rows(space, i)  # (ops, 11)
        n_op, n_ci, n_co, n_r = len(base), len(cin_opts[i]), len(cout_opts[i]), len(resolutions)
        grid = np.broadcast_to(base[:, None, None, None, :], (n_op, n_ci, n_co, n_r, base.shape[1])).copy()
        grid[..., 1] = np.asarray(cin_opts[i])[None, :, None, None]
        grid[..., 2] = np.asarray(cout_opts[i])[None, None, :, None]
        grid[..., 3] = res_in[i][None, None, None, :]
        blocks.append(grid.reshape(-1, base.shape[1]))
        shapes.append((n_op, n_ci, n_co, n_r))
    _check_grid(np.concatenate(blocks))
    preds = model.predict_fields(np.concatenate(blocks))
    layers_ms, offset = [], 0
    for shape in shapes:
        n = int(np.prod(shape))
        layers_ms.append(preds[offset: offset + n].reshape(shape))
        offset += n
    stem_ms = model.predict_blocks(stem_rows).reshape(len(resolutions), len(stem_opts)).T
    head_specs = [b for c in cout_opts[-1] for r in last_res for b in space.head_blocks(c, r)]
    per_head = len(space.head_blocks(cout_opts[-1][0], last_res[0]))
    head_ms = model.predict_blocks(head_specs).reshape(len(cout_opts[-1]), len(resolutions), per_head).sum(-1)
    return ChannelTable(layers_ms, stem_ms, head_ms, float(model.overhead_ms), resolutions, cin_opts, cout_opts,
                        tuple(space.candidates), space.name, model.device)


def _check_grid(fields: np.ndarray) -> None:
    """Grid rows bypass BlockSpec's checks: keep the invariants predictions rely on."""
    ir = fields[:, 0] == OPS.index("ir")
    groups = fields[ir, 7]
    if (fields[ir, 1] % groups).any() or (fields[ir, 2] % groups).any():
        raise InputError("a channel option is not divisible by its layer's groups")
    if not np.isin(fields[:, 8], np.arange(len(ACTS))).all():
        raise InputError("bad activation code in the channel grid")


#: space family → the table its search cost is built from.
TABLES = {"fbnet": layer_table, "fbnetv2": channel_table}


def cost_table(model: LatencyModel, space: SearchSpace) -> LayerTable | ChannelTable:
    """The latency table a search over `space` needs (per-layer ops, or channel/resolution grids)."""
    try:
        return TABLES[space.family](model, space)
    except KeyError:
        raise InputError(f"no latency table for space {space.name!r} (family {space.family!r})") from None
