"""Choosing the final architecture: the argmax, and N samples from the learned distribution.

Each distinct candidate gets its predicted latency and a short evaluation
(accuracy of the supernet's shared weights with that architecture fixed, on
a slice of the test split).  They are ranked by accuracy, then latency; with
a target, those predicted within ±5% of it come first, the more accurate ahead,
and the rest follow closest first (so a search that met no target ships the
nearest miss, not the most accurate one far from it).
"""

from __future__ import annotations

from typing import Any, Callable

import torch

from hwnas.search.supernet import Supernet

__all__ = ["rank_candidates"]


def rank_candidates(net: Supernet, cfg: Any, evaluate: Callable[..., float]) -> list[dict[str, Any]]:
    """Argmax plus `cfg.candidates` sampled architectures, deduplicated and ranked."""
    gen = torch.Generator().manual_seed(cfg.seed + 7919)
    archs = [("argmax", net.derive())] + [("sample", a) for a in net.sample(cfg.candidates, gen)]
    seen: dict[str, dict[str, Any]] = {}
    for source, arch in archs:
        text = net.arch_to_json(arch)
        key = text if isinstance(text, str) else repr(text)
        if key in seen:
            seen[key]["count"] += 1
            continue
        seen[key] = {
            "arch": text,
            "source": source,
            "count": 1,
            "predicted_ms": net.predicted_ms(arch),
            "short_eval_acc": evaluate(arch, limit=cfg.eval_images),
        }
    target = getattr(cfg, "target_ms", None)

    def order(row: dict[str, Any]) -> tuple:
        if target is None:
            return (False, -round(row["short_eval_acc"], 3), row["predicted_ms"])
        miss = abs(row["predicted_ms"] - target)
        if miss > 0.05 * target:  # none of these meets the target: the closest is the best of them
            return (True, miss, -row["short_eval_acc"])
        return (False, -round(row["short_eval_acc"], 3), miss)

    ranked = sorted(seen.values(), key=order)
    for i, row in enumerate(ranked, 1):
        row["rank"] = i
    return ranked
