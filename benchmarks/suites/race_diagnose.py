"""Why a Fashion-MNIST race (`bench_search_quality --part fashion`) is or is not decisive.

Reads a finished race's work folder (nothing is trained or measured again) and says, per target:

- how much of the spread of the random architectures' mean accuracies is the architectures'
  own and how much is seed noise (`search_fashion.resolution`), and the odds that a network
  truly in the top 0.1% of the matched-latency field beats the best random mean
  (`search_fashion.race_power`): the race's power, whatever the search does;
- whether the search's own accuracy signal ranks the random networks at all: the supernet's
  cross-entropy gradient on θ, weights frozen, averaged over the first `--batches` batches of
  training images, scores each network as the first-order change of the loss were θ moved
  towards its ops (Spearman ρ against the trained accuracy), at the learned θ and at the
  uniform start.

    python -m benchmarks.suites.race_diagnose --work /work/race_c [--tau 1] [--batches 50]
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path
from typing import Any

from benchmarks.suites import race_common, search_fashion

SPACE = search_fashion.SPACE


def _race(work: Path, name: str) -> tuple[dict[str, list[float]], list[str]]:
    accs = json.loads((work / f"fashion-accuracy-{name}.json").read_text())
    randoms = [r["arch"] for r in json.loads((work / f"fashion-random-{name}.json").read_text())]
    return accs, randoms


def theta_gradients(checkpoint: Path, model: Path, settings: dict[str, Any], data: Any, tau: float,
                    batches: int) -> dict[str, Any]:
    """Mean ∂CE/∂θ of a searched supernet at `tau`, weights frozen, on the first training images,
    at the learned θ and at the uniform start (θ = 0)."""
    import torch
    from torch.nn import functional as F

    from hwnas.search.build import build_supernet
    from hwnas.search.data import normalize
    from hwnas.search.dnas import load_checkpoint
    from hwnas.search.space import get_space
    from hwnas.wiring import load_cost

    space = get_space(SPACE)
    net = build_supernet(space.scaled(settings["width_mult"]), load_cost(str(model), space), tau=tau, paths="all")
    net.load_state_dict(load_checkpoint(checkpoint)["model"])
    net.train()
    b = settings["search_batch"]
    out = {}
    for label in ("learned", "uniform"):
        if label == "uniform":
            with torch.no_grad():
                net.theta.zero_()
        torch.manual_seed(0)  # the same Gumbel draws for both
        grad = torch.zeros_like(net.theta)
        for i in range(batches):
            net.theta.grad = None
            x, y = data.train_x[i * b:(i + 1) * b], data.train_y[i * b:(i + 1) * b]
            F.cross_entropy(net(normalize(x)), y).backward()
            grad += net.theta.grad
        out[label] = grad / batches
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    from scipy.stats import spearmanr

    from hwnas.search.data import load_data
    from hwnas.search.space import get_space

    candidates = get_space(SPACE).candidates
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--work", type=Path, required=True, help="a finished race's folder (holds fashion_result.json)")
    ap.add_argument("--tau", type=float, default=1.0, help="Gumbel temperature of the gradient's forwards")
    ap.add_argument("--batches", type=int, default=50, help="weight-split batches the gradient is averaged over")
    args = ap.parse_args(argv)
    result = json.loads((args.work / "fashion_result.json").read_text())
    settings = result["settings"]
    out: dict[str, Any] = {}
    model = args.work / f"{race_common._slug(result['device'])}.latency.json"  # the race's latency model
    data = load_data(settings["data"], get_space(SPACE).input_resolution)  # read once, for every target
    for name in result["targets"]:
        accs, randoms = _race(args.work, name)
        row: dict[str, Any] = search_fashion.race_resolution([accs[a] for a in randoms])
        means = [statistics.fmean(accs[a]) for a in randoms]
        checkpoint = args.work / f"fashion-{settings['paths']}-{name}" / "checkpoint.pt"
        for label, g in theta_gradients(checkpoint, model, settings, data, args.tau, args.batches).items():
            score = [-sum(float(g[l, candidates.index(op)]) for l, op in enumerate(a.split("-"))) for a in randoms]
            row[f"rho_ce_gradient_{label}_theta"] = float(spearmanr(score, means)[0])
        row["rho_skips"] = float(spearmanr([a.split("-").count("skip") for a in randoms], means)[0])
        out[name] = row
        print(f"{name}: architecture sd {_f(row['arch_sd'])}, seed-noise sd of a mean {_f(row['noise_sd'])}, "
              f"odds a top-0.1% network beats the best random {_f(row['power_top_0.1pct'], 2)}; "
              f"Spearman rho against accuracy: CE gradient at the learned theta "
              f"{row['rho_ce_gradient_learned_theta']:+.2f}, at uniform theta {row['rho_ce_gradient_uniform_theta']:+.2f}, "
              f"skip count {row['rho_skips']:+.2f}")
    return out


def _f(x: float | None, digits: int = 4) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


if __name__ == "__main__":
    main()
