"""Latency models from the store or from network timings: what `hwnas fit` and `hwnas.fit` run.

The glue between the parts (composition root), as `reporting` is for reports: the store
(profiler) becomes plain DataFrames for `latency_models`, and what the fit rests on is
recorded beside its metrics.  `hwnas.api` re-exports these functions.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence, Union

from hwnas.search.space import InputError, get_space, infer_space

if TYPE_CHECKING:
    import pandas as pd

    from hwnas.latency_models.network import LatencyModel
    from hwnas.search.space import SearchSpace

__all__ = ["fit", "fit_networks", "fit_store_networks", "parse_archs", "fingerprints", "in_fit"]

PathLike = Union[str, Path]


def _space_of(block_keys: set[str], networks: "pd.DataFrame") -> str:
    """The space a device's networks were measured in, else the one whose grid its blocks cover."""
    spaces = sorted(set(networks["space"])) if len(networks) else []
    if len(spaces) == 1:
        return spaces[0]
    found = infer_space(block_keys)
    if found is None:
        raise InputError("cannot tell which search space the stored blocks belong to; give `space`")
    return found.name


def _stored(store: Path, device: str | None) -> tuple[str, "pd.DataFrame", "pd.DataFrame", "pd.DataFrame"]:
    """(identity, blocks, networks, passes) of one device of a store (`device` None: its only one)."""
    from hwnas.profiler.history import passes as stored_passes
    from hwnas.profiler.store import Store

    if not store.is_file():
        raise InputError(f"store not found: {store}")
    with Store(store, create=False, readonly=True) as st:
        if device is None:
            known = st.devices()
            if len(known) != 1:
                raise InputError(f"store {store} holds {len(known)} devices; pick one with `device` "
                                 f"({', '.join(known['device_uri']) or 'none'})")
            device = str(known["device"].iloc[0])
        identity = st.resolve_device(device)
        return identity, st.blocks(identity), st.networks(identity), stored_passes(st, identity)


def fit(store: PathLike, device: str | None = None, space: str | None = None, *, kind: str = "et",
        folds: int = 5, on_step: Callable[[str], None] | None = None) -> "LatencyModel":
    """Fit a device's latency model from the store: LUT + per-family regressors + network overhead.

    A device with network timings but no blocks (`profile --no-blocks`) gets `fit_store_networks`'s
    model from those alone.

    The model's `metrics` hold its cross-validated accuracy (blocks and networks held out), and what it
    rests on (`rests_on`, `warnings`: few networks, flagged blocks, an uncovered grid, single-pass timings).
    """
    from hwnas.latency_models.network import block_frame_fields, fit_latency_model, reliable
    from hwnas.latency_models.trust import rests_on
    from hwnas.latency_models.validation import cv_blocks, cv_networks

    if folds < 2:
        raise InputError(f"`folds` must be at least 2, got {folds}")
    from hwnas.latency_models.regressors import PRESETS

    if kind not in PRESETS:
        raise InputError(f"`kind` must be one of {', '.join(PRESETS)}, got {kind!r}")
    store = Path(store)
    identity, blocks, nets, passes = _stored(store, device)
    if blocks.empty and len(nets):  # a --no-blocks profile: a model from its network timings alone
        return _fit_stored_networks(store, identity, nets, passes, space, None)
    if blocks.empty:
        raise InputError(f"device {identity} has no block measurements in {store}; profile it first")
    name = space or _space_of(set(blocks["block_key"]), nets)
    sp = get_space(name)
    all_nets = nets[nets["space"] == name]
    nets = reliable(all_nets)
    fields, ms = block_frame_fields(reliable(blocks))
    grid = {s.key for s in sp.unique_blocks()}
    trust = rests_on(blocks, all_nets, len(grid), passes, left_out_blocks=len(blocks) - len(ms),
                     left_out_networks=len(all_nets) - len(nets))
    trust["grid_blocks_measured"] = int(blocks["block_key"].isin(grid).sum())
    step = on_step or (lambda what: None)
    step("fitting block regressors")
    model = fit_latency_model(blocks, nets, name, identity, device_uri=str(blocks["device_uri"].iloc[0]),
                               **PRESETS[kind])
    metrics: dict[str, Any] = {"n_blocks": int(len(blocks)), "n_networks": int(len(nets)), "rests_on": trust,
                               "warnings": trust["warnings"]}
    if len(ms) >= folds:
        step("cross-validating blocks")
        metrics["blocks_cv"] = cv_blocks(fields, ms, folds, kind)
    step("cross-validating networks")
    net_cv = cv_networks(model, sp, nets, folds)
    if net_cv:
        metrics["networks_cv"] = net_cv
    model.metrics.update(metrics)
    return model


def fit_networks(timings: "pd.DataFrame", space: str | None = None,
                 prior: "LatencyModel | PathLike | Sequence[LatencyModel | PathLike] | None" = None,
                 device: str | None = None, name: str | None = None) -> "LatencyModel":
    """A model from whole-network timings alone (columns `arch`, `latency_ms`), optionally adapting priors.

    `prior` is one model of an already profiled device or several (they combine into the best predictor
    for the new one); `device` is the target's URI when known, `name` labels the model otherwise.
    """
    from hwnas.latency_models.transfer import fit_from_networks, fit_transfer

    given, priors = _priors(prior)
    space = space or (priors[0].space if priors else None)
    if space is None:
        raise InputError("network timings need `space` (or a `prior` model, whose space is used)")
    for p, m in zip(given, priors):
        if m.space != space:
            raise InputError(f"`prior` model {p if isinstance(p, (str, Path)) else m.device} is for space "
                             f"{m.space!r}, not {space!r}")
    sp = get_space(space)
    archs = parse_archs(sp, list(timings["arch"]))
    target = device or name or "networks"
    if priors:
        model = fit_transfer(priors, sp, archs, timings["latency_ms"], target, device)
    else:
        model = fit_from_networks(sp, archs, timings["latency_ms"], target, device)
    # Which networks the fit saw, so that `evaluate` can say when it scores them in-sample.
    model.metrics["networks_fit"]["fitted_on"] = fingerprints(sp, archs)
    return model


def _priors(prior: Any) -> tuple[list[Any], list["LatencyModel"]]:
    """(as given, as models): one prior or several, files read once."""
    from hwnas.latency_models.io import load_model

    given = [] if prior is None else list(prior) if isinstance(prior, (list, tuple)) else [prior]
    return given, [load_model(p) if isinstance(p, (str, Path)) else p for p in given]


def fingerprints(space: "SearchSpace", archs: Sequence[Any]) -> list[str]:
    """A short hash of each architecture's canonical text: what a model file keeps of its fit's networks.

    Hashes, not texts: a thousand fbnet-cifar architectures are ~100 KB of text, 15 KB of hashes.
    """
    import hashlib

    return [hashlib.sha1(space.format(a).encode()).hexdigest()[:12] for a in archs]


def in_fit(model: "LatencyModel", space: "SearchSpace", archs: Sequence[Any]) -> int:
    """How many of `archs` (parsed) are networks the model was fitted on (0 for a model that keeps none)."""
    seen = set(model.metrics.get("networks_fit", {}).get("fitted_on", ()))
    return sum(f in seen for f in fingerprints(space, archs)) if seen else 0


def fit_store_networks(store: PathLike, device: str | None = None, space: str | None = None,
                       prior: "LatencyModel | PathLike | Sequence[LatencyModel | PathLike] | None" = None
                       ) -> "LatencyModel":
    """`fit_networks` on a device's whole-network timings in the store (the flagged ones left out).

    The step after `profile --no-blocks --archs suggest:N --prior P`: the store holds the new
    device's network timings, and P adapts to them.  Its `metrics` say what the fit rests on, as
    `fit`'s do.
    """
    store = Path(store)
    identity, blocks, nets, passes = _stored(store, device)
    model = _fit_stored_networks(store, identity, nets, passes, space, prior)
    if len(blocks):  # a transfer reads whole networks only: say what it left aside
        model.metrics["note_blocks"] = (f"the store also holds {len(blocks)} block timings of this device, which a "
                                        f"transfer does not use; `hwnas fit` without --prior builds a lookup table "
                                        f"from them")
    return model


def _fit_stored_networks(store: Path, identity: str, nets: "pd.DataFrame", passes: "pd.DataFrame",
                         space: str | None, prior: Any) -> "LatencyModel":
    import pandas as pd

    from hwnas.latency_models.network import reliable
    from hwnas.latency_models.trust import rests_on

    _, models = _priors(prior)  # read once: the fit below gets the models
    if space is None and models:  # the prior's space: the timings that can adapt it
        space = models[0].space
    if space is None:
        spaces = sorted(set(nets["space"]))
        if len(spaces) > 1:
            raise InputError(f"device {identity} has networks of {', '.join(spaces)} in {store}; pick one with `space`")
        space = spaces[0] if spaces else None
    all_nets = nets[nets["space"] == space] if space is not None else nets.iloc[:0]
    if all_nets.empty:
        raise InputError(f"device {identity} has no whole-network timings{f' of space {space}' if space else ''} "
                         f"in {store}; profile some with --archs suggest:N --prior MODEL (or random:N)")
    used = reliable(all_nets)
    timings = pd.DataFrame({"arch": used["arch"].astype(str), "latency_ms": used["median_ms"].astype(float)})
    model = fit_networks(timings, space, models or None, device=str(all_nets["device_uri"].iloc[0]))
    model.device = identity
    trust = rests_on(pd.DataFrame(), all_nets, None, passes, left_out_networks=len(all_nets) - len(used))
    model.metrics.update({"n_networks": int(len(used)), "rests_on": trust, "warnings": trust["warnings"]})
    return model


def parse_archs(space: "SearchSpace", texts: Sequence[Any]) -> list[Any]:
    """Each item as the space's own architecture (parsed once); an error names the item's position."""
    out = []
    for i, text in enumerate(texts):
        try:
            out.append(space.parse(text) if isinstance(text, str) else space.check_arch(text))
        except InputError as exc:
            raise InputError(f"architecture {i + 1}: {exc}") from None
    return out
