"""Block models and the whole-network model: Σ predicted blocks + a learned per-network overhead.

A `LatencyModel` wraps one block model — `LutFallback` (exact where measured,
regressor elsewhere), `LinearBlocks` (fitted from whole-network timings
alone) or `ScaledBlocks` (a prior device's model rescaled per family, see
`transfer`) — and a network-level `scale · Σ blocks + overhead_ms`, fitted on
the networks measured on the device: the runtime's per-graph cost and the
fusion across block boundaries that per-block timings cannot see.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
from scipy.optimize import lsq_linear

from hwnas.latency_models.features import features, family_names, spec_fields
from hwnas.latency_models.lut import LookupTable
from hwnas.latency_models.regressors import CHUNK, BlockRegressor
from hwnas.search.space import BlockSpec, InputError, SearchSpace, get_space

__all__ = ["LutFallback", "LinearBlocks", "ScaledBlocks", "LatencyModel", "arch_fields", "networks_fields",
           "fit_overhead", "fit_block_model", "reliable", "unreliable_mask", "fit_latency_model", "block_frame_fields", "BLOCK_MODELS"]


class LutFallback:
    """Exact LUT median where the block was measured, the per-family regressor elsewhere."""

    type = "lut_fallback"

    def __init__(self, lut: LookupTable, regressor: BlockRegressor) -> None:
        self.lut, self.regressor = lut, regressor

    def predict_fields(self, fields: np.ndarray) -> np.ndarray:
        if len(fields) > CHUNK:  # cache-sized batches: the numpy chain is memory-bound
            return np.concatenate([self.predict_fields(fields[i:i + CHUNK]) for i in range(0, len(fields), CHUNK)])
        out = self.lut.predict(fields) if len(self.lut) else np.full(len(fields), np.nan)
        miss = np.isnan(out)
        if miss.any():
            out[miss] = self.regressor.predict(fields[miss])
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, "lut": self.lut.to_dict(), "regressor": self.regressor.to_dict()}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "LutFallback":
        return cls(LookupTable.from_dict(d["lut"]), BlockRegressor.from_dict(d["regressor"]))


class LinearBlocks:
    """Block ms = a·MMACs + b·MB moved + c, per op family group (fitted from networks alone)."""

    type = "linear"

    def __init__(self, groups: Sequence[str], coef: np.ndarray, shared: np.ndarray) -> None:
        self.groups = list(groups)
        self.coef = np.asarray(coef, dtype=np.float64).reshape(len(self.groups), 3)
        self.shared = np.asarray(shared, dtype=np.float64).reshape(3)

    @staticmethod
    def design(fields: np.ndarray) -> np.ndarray:
        """Per-block [MMACs, MB moved, 1]: the quantities the coefficients multiply."""
        f = features(fields)
        return np.column_stack([f[:, 12] / 1e6, f[:, 14] / 1e6, np.ones(len(f))])

    @staticmethod
    def group_of(fields: np.ndarray) -> np.ndarray:
        return family_names(fields)

    def predict_fields(self, fields: np.ndarray) -> np.ndarray:
        D, fam = self.design(fields), self.group_of(fields)
        coef = np.tile(self.shared, (len(fields), 1))
        for i, g in enumerate(self.groups):
            coef[fam == g] = self.coef[i]
        return (D * coef).sum(axis=1)

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, "groups": self.groups, "coef": self.coef.tolist(), "shared": self.shared.tolist()}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "LinearBlocks":
        return cls(d["groups"], d["coef"], d["shared"])


class ScaledBlocks:
    """A prior model's block predictions times a per-family scale, plus a small linear correction
    on [MMACs, MB moved, 1] (the transfer model)."""

    type = "scaled"

    def __init__(self, prior: "LatencyModel", families: Sequence[str], scales: np.ndarray, default: float,
                 linear: Sequence[float] | None = None) -> None:
        self.prior, self.families = prior, list(families)
        self.scales, self.default = np.asarray(scales, dtype=np.float64), float(default)
        self.linear = np.zeros(3) if linear is None else np.asarray(linear, dtype=np.float64).reshape(3)

    def predict_fields(self, fields: np.ndarray) -> np.ndarray:
        base = self.prior.block_model.predict_fields(fields)
        fam = family_names(fields)
        s = np.full(len(fields), self.default)
        for f, v in zip(self.families, self.scales):
            s[fam == f] = v
        return base * s + LinearBlocks.design(fields) @ self.linear

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, "prior": self.prior.to_dict(), "families": self.families,
                "scales": self.scales.tolist(), "default": self.default, "linear": self.linear.tolist()}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "ScaledBlocks":
        return cls(LatencyModel.from_dict(d["prior"]), d["families"], d["scales"], d["default"], d.get("linear"))


BLOCK_MODELS = {c.type: c for c in (LutFallback, LinearBlocks, ScaledBlocks)}


class LatencyModel:
    """What a device's fitted model predicts: blocks (ms) and whole networks (ms incl. overhead)."""

    units = "ms"

    def __init__(self, block_model: Any, space: str, device: str, scale: float = 1.0, overhead_ms: float = 0.0,
                 metrics: dict[str, Any] | None = None, device_uri: str | None = None) -> None:
        self.block_model, self.space, self.device = block_model, space, device
        self.scale, self.overhead_ms = float(scale), float(overhead_ms)
        self.metrics = dict(metrics or {})
        self.device_uri = device_uri

    @property
    def kind(self) -> str:
        return self.block_model.type

    def predict_fields(self, fields: np.ndarray) -> np.ndarray:
        """Per-block ms (network scale applied) from `features.spec_fields` rows."""
        return self.scale * self.block_model.predict_fields(np.asarray(fields, dtype=np.float64))

    def predict_blocks(self, specs: Sequence[BlockSpec]) -> np.ndarray:
        return self.predict_fields(spec_fields(list(specs)))

    def predict_network(self, space: SearchSpace, arch: Any) -> tuple[float, np.ndarray]:
        """(total ms incl. per-network overhead, per-block ms from stem to classifier)."""
        per = self.predict_blocks(space.blocks(arch))
        return float(per.sum() + self.overhead_ms), per

    def predict(self, archs: Sequence[Any]) -> pd.DataFrame:
        """Predicted ms of many architectures of the model's space, as a DataFrame (`arch`, `predicted_ms`).

        An item may be a preset name, architecture text, an arch .json file, or
        a value of the space's architecture type.
        """
        from hwnas.search.space import resolve_arch

        if isinstance(archs, (str, bytes)) or not isinstance(archs, Sequence):
            raise InputError("`archs` must be a list of architectures")
        space = get_space(self.space)
        parsed = [resolve_arch(a, space.name)[1] if isinstance(a, str) else space.check_arch(a) for a in archs]
        return pd.DataFrame({"arch": [space.format(a) for a in parsed],
                             "predicted_ms": self.predict_networks(space, parsed)})

    def predict_networks(self, space: SearchSpace, archs: Sequence[Any]) -> np.ndarray:
        fields, index = networks_fields(space, archs)
        per = self.predict_fields(fields)
        return np.bincount(index, weights=per, minlength=len(archs)) + self.overhead_ms

    def to_dict(self) -> dict[str, Any]:
        return {"space": self.space, "device": self.device, "device_uri": self.device_uri, "units": self.units,
                "scale": self.scale, "overhead_ms": self.overhead_ms, "metrics": self.metrics,
                "block_model": self.block_model.to_dict()}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "LatencyModel":
        bm = d["block_model"]
        kind = bm.get("type") if isinstance(bm, Mapping) else None
        if kind not in BLOCK_MODELS:
            raise InputError(f"unknown block model type {kind!r} in latency model")
        return cls(BLOCK_MODELS[kind].from_dict(bm), d["space"], d["device"], d.get("scale", 1.0),
                   d.get("overhead_ms", 0.0), d.get("metrics"), d.get("device_uri"))


# --------------------------------------------------------------------------- data plumbing


def arch_fields(space: SearchSpace, arch: Any) -> np.ndarray:
    """Spec fields of every block of `arch` (text, op tuple, or FBNetV2 JSON)."""
    if isinstance(arch, str):
        arch = space.parse(arch)
    return spec_fields(space.blocks(arch))


def networks_fields(space: SearchSpace, archs: Sequence[Any]) -> tuple[np.ndarray, np.ndarray]:
    """All blocks of many networks stacked, and the network index of each row."""
    parts = [arch_fields(space, a) for a in archs]
    if not parts:
        return np.zeros((0, 11)), np.zeros(0, dtype=np.int64)
    index = np.repeat(np.arange(len(parts)), [len(p) for p in parts])
    return np.concatenate(parts), index


def block_frame_fields(blocks: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Spec fields and median ms of a `Store.blocks()` frame (its `block_json` column)."""
    for col in ("block_json", "median_ms"):
        if col not in blocks.columns:
            raise InputError(f"block measurements lack the column {col!r}")
    specs = [BlockSpec.from_json(t) for t in blocks["block_json"]]
    return spec_fields(specs), blocks["median_ms"].to_numpy(dtype=np.float64)


# --------------------------------------------------------------------------- fitting


def fit_overhead(block_sums: np.ndarray, measured: np.ndarray) -> tuple[float, float]:
    """(scale, overhead_ms) minimising the relative error of scale·Σblocks + overhead.

    One network fixes only the overhead (scale 1); none leaves the block sum as is.  The overhead is a
    fixed cost per network (launch, I/O), never negative: fitted freely under a drifting host it went
    below zero and predicted negative latencies for the smallest networks.
    """
    s, y = np.asarray(block_sums, dtype=np.float64), np.asarray(measured, dtype=np.float64)
    if len(y) == 0:
        return 1.0, 0.0
    if len(y) == 1 or np.ptp(s) == 0:
        return 1.0, max(0.0, float(np.median(y - s)))
    w = 1.0 / y
    res = lsq_linear(np.column_stack([s, np.ones_like(s)]) * w[:, None], y * w,
                     bounds=([0.0, 0.0], [np.inf, np.inf]))
    return float(res.x[0]), float(res.x[1])


def fit_block_model(fields: np.ndarray, ms: np.ndarray, **regressor_params: Any) -> LutFallback:
    """LUT of every measured block plus per-family regressors for the rest."""
    return LutFallback(LookupTable().fit(fields, ms), BlockRegressor(**regressor_params).fit(fields, ms))


def fit_latency_model(blocks: pd.DataFrame, networks: pd.DataFrame | None, space: str, device: str,
                      device_uri: str | None = None, **regressor_params: Any) -> LatencyModel:
    """The whole-network model from a device's block (and optional network) measurements."""
    sp = get_space(space)
    fields, ms = block_frame_fields(reliable(blocks))
    bm = fit_block_model(fields, ms, **regressor_params)
    model = LatencyModel(bm, space, device, device_uri=device_uri)
    nets = _space_networks(networks, space)
    if len(nets):
        sums = model.predict_networks(sp, list(nets["arch"]))
        model.scale, model.overhead_ms = fit_overhead(sums, nets["median_ms"].to_numpy(dtype=np.float64))
    return model


def _space_networks(networks: pd.DataFrame | None, space: str) -> pd.DataFrame:
    if networks is None or len(networks) == 0:
        return pd.DataFrame(columns=["space", "arch", "median_ms"])
    return reliable(networks[networks["space"] == space])


#: A timing whose median exceeds its own fastest run by this factor was slowed by other work
#: (a quiet CPU run has median/min ~1.0-1.1); it says nothing reliable about the model.
CONTAMINATED_RATIO = 1.5


def unreliable_mask(frame: pd.DataFrame) -> np.ndarray:
    """Rows the profiler flagged (never settled) or whose median is >1.5x their own minimum."""
    bad = np.zeros(len(frame), dtype=bool)
    if "flagged" in frame.columns:
        bad |= frame["flagged"].astype(bool).to_numpy()
    if "min_ms" in frame.columns and "median_ms" in frame.columns:
        med = frame["median_ms"].to_numpy(dtype=float)
        low = frame["min_ms"].to_numpy(dtype=float)
        bad |= np.nan_to_num(med / low, nan=1.0) > CONTAMINATED_RATIO
    return bad


def reliable(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows that are neither flagged nor contaminated (see `unreliable_mask`).

    A timing taken under foreign load can read several times the true latency; fitting the
    overhead on it would shift every prediction.  All rows are kept when none is reliable.
    """
    if len(frame) == 0:
        return frame
    keep = ~unreliable_mask(frame)
    return frame[keep] if keep.any() else frame
