"""Choosing the final architecture: the argmax, and N samples from the learned distribution.

Each distinct candidate gets its predicted latency, its log-probability under
Pθ, and a short evaluation (accuracy of the supernet's shared weights with that
architecture fixed, on a slice of the test split).  The score that ranks them
depends on how the supernet was trained:

- single-path (`paths="sampled"`): the shared weights were trained one path at
  a time, so one path's short evaluation means something: rank by it;
- FBNet's mixture (`paths="all"`): one path alone of a mixture-trained supernet
  scores near chance even with its BatchNorm statistics re-estimated (measured
  on Fashion-MNIST: 0.09-0.15 for the argmax and six samples, against 0.73 for
  the mixture), so its short evaluation is noise; rank by log Pθ, what θ learned.

With a target, those predicted within ±5% of it come first, the best-scored
ahead, and the rest follow closest first (so a search that met no target ships
the nearest miss, not the best-scored one far from it).

Finalists (`cfg.finalists` = K > 0): FBNet's own last step trains samples of Pθ
from scratch and keeps the best.  The first K candidates of that order (those
that meet the target, when one is set) are each trained from scratch by `train`,
which scores them on data the search holds out from the weights (never the test
set), and they are ranked by that score ahead of the rest.
"""

from __future__ import annotations

from typing import Any, Callable

import torch

from hwnas.search.supernet import Supernet

__all__ = ["rank_candidates", "TOLERANCE"]

#: a candidate predicted within this fraction of the target meets it.
TOLERANCE = 0.05


def rank_candidates(net: Supernet, cfg: Any, evaluate: Callable[..., float],
                    train: Callable[[Any, int, int], float] | None = None) -> list[dict[str, Any]]:
    """Argmax plus `cfg.candidates` sampled architectures, deduplicated and ranked.

    `train(arch, i, k)` scores finalist i of k by a training from scratch (see module doc).
    """
    gen = torch.Generator().manual_seed(cfg.seed + 7919)
    archs = [("argmax", net.derive())] + [("sample", a) for a in net.sample(cfg.candidates, gen)]
    seen: dict[str, dict[str, Any]] = {}
    objects: dict[str, Any] = {}  # the architectures themselves, for training finalists
    for source, arch in archs:
        text = net.arch_to_json(arch)
        key = text if isinstance(text, str) else repr(text)
        if key in seen:
            seen[key]["count"] += 1
            continue
        objects[key] = arch
        seen[key] = {
            "arch": text,
            "source": source,
            "count": 1,
            "predicted_ms": net.predicted_ms(arch),
            "short_eval_acc": evaluate(arch, limit=cfg.eval_images),
            "log_prob": net.log_prob(arch),
        }
    target = getattr(cfg, "target_ms", None)
    by_prob = getattr(cfg, "paths", "all") == "all" and all(r["log_prob"] is not None for r in seen.values())
    for row in seen.values():
        row["ranked_by"] = "log_prob" if by_prob else "short_eval_acc"

    def score(row: dict[str, Any]) -> float:
        return -row["log_prob"] if by_prob else -round(row["short_eval_acc"], 3)

    def meets(row: dict[str, Any]) -> bool:
        return target is None or abs(row["predicted_ms"] - target) <= TOLERANCE * target

    def order(key: str) -> tuple:
        row = seen[key]
        if target is None:
            return (False, score(row), row["predicted_ms"])
        miss = abs(row["predicted_ms"] - target)
        if not meets(row):  # none of these meets the target: the closest is the best of them
            return (True, miss, score(row))
        return (False, score(row), miss)

    keys = sorted(seen, key=order)
    k = int(getattr(cfg, "finalists", 0) or 0)
    if k > 0 and train is not None:
        # none meets the target: only the nearest miss is worth training
        finalists = ([key for key in keys if meets(seen[key])] or keys[:1])[:k]
        for i, key in enumerate(finalists, 1):
            seen[key]["finalist_acc"] = float(train(objects[key], i, len(finalists)))
            seen[key]["ranked_by"] = "finalist_acc"
        finalists.sort(key=lambda key: -seen[key]["finalist_acc"])  # stable: ties keep the order above
        keys = finalists + [key for key in keys if key not in finalists]
    ranked = [seen[key] for key in keys]
    for i, row in enumerate(ranked, 1):
        row["rank"] = i
    return ranked
