"""What a fitted model rests on, and warnings when that is little or doubtful.

Why: a model fitted on six settled blocks and a handful of networks predicts
with the same confidence as one fitted on a full table; the user must be told,
in words and in `--json`, before a search trusts it.  Pure: frames in, a dict out.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

__all__ = ["rests_on", "MIN_NETWORKS", "MAX_FLAGGED_SHARE"]

#: Fewer reliable networks than this: the overhead fit is a guess.
MIN_NETWORKS = 10
#: More flagged (never settled, disagreeing or suspect) timings than this share: the table is doubtful.
MAX_FLAGGED_SHARE = 0.05


def _count(frame: pd.DataFrame, col: str) -> int:
    return int(frame[col].astype(bool).sum()) if col in frame.columns and len(frame) else 0


def rests_on(blocks: pd.DataFrame, networks: pd.DataFrame, grid_blocks: int | None = None,
             passes: pd.DataFrame | None = None, left_out_blocks: int = 0, left_out_networks: int = 0) -> dict[str, Any]:
    """Counts of what the fit used and left out, plus one warning line per doubt (empty when none)."""
    n_b, n_n = len(blocks), len(networks)
    info: dict[str, Any] = {
        "blocks": n_b, "blocks_flagged": _count(blocks, "flagged"),
        "blocks_unsettled": n_b - _count(blocks, "settled") if "settled" in blocks.columns else 0,
        "blocks_left_out": int(left_out_blocks), "networks": n_n, "networks_flagged": _count(networks, "flagged"),
        "networks_left_out": int(left_out_networks), "grid_blocks": grid_blocks,
    }
    warnings: list[str] = []
    used_b = n_b - left_out_blocks
    if grid_blocks and used_b < grid_blocks:
        warnings.append(f"the lookup table rests on {used_b} reliable blocks of the space's {grid_blocks}: "
                        f"the rest are regressor guesses")
    if n_b and info["blocks_flagged"] / n_b > MAX_FLAGGED_SHARE:
        warnings.append(f"{info['blocks_flagged']} of {n_b} block timings are flagged (never settled, passes "
                        f"disagreeing, or at odds with the table); re-run hwnas profile --remeasure on a quieter device")
    used_n = n_n - left_out_networks
    if used_n < MIN_NETWORKS:
        warnings.append(f"the network overhead rests on {used_n} reliable network timings (fewer than "
                        f"{MIN_NETWORKS}); profile more with --archs random:N")
    if n_n and info["networks_flagged"] / n_n > MAX_FLAGGED_SHARE:
        warnings.append(f"{info['networks_flagged']} of {n_n} network timings are flagged and left out of the fit")
    if passes is not None:
        accepted = passes[passes["verdict"] != "requeued"] if len(passes) else passes
        per_item = accepted.groupby("item_key")["pass_no"].nunique() if len(accepted) else pd.Series(dtype=int)
        info["single_pass_items"] = int((per_item < 2).sum()) if len(per_item) else None
        info["scaled_passes"] = int((passes["verdict"] == "scaled").sum()) if len(passes) else 0
        info["requeued_passes"] = int((passes["verdict"] == "requeued").sum()) if len(passes) else 0
        if not len(passes):
            warnings.append("these timings were taken in one pass with no reference (a store from before "
                            "passes were kept, or --passes 1 --no-reference): drift would not have been seen")
        elif info["scaled_passes"]:
            warnings.append(f"{info['scaled_passes']} passes were scaled by the device's measured speed ratio "
                            f"(persistent drift during the profile)")
    info["warnings"] = warnings
    return info
