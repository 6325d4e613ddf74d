"""Shared by the search tests: a tiny FBNet-style space (8x8 input, digits' own size) and a runner.

Also run as a script under torchrun by tests/test_search_dnas.py:
``torchrun --nproc_per_node N tests/search_helpers.py OUT.json [all|sampled]``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hwnas.search.fbnet.cost import mac_cost  # noqa: E402
from hwnas.search.space import SearchSpace  # noqa: E402

TINY = SearchSpace(name="tiny-test", input_resolution=8, stem_channels=8, stem_stride=1,
                   stages=((8, 1, 1), (16, 2, 2)), head_channels=32, num_classes=10,
                   description="3 searchable layers for fast tests")


def tiny_search(out: Path, epochs: int = 2, stop_after: int | None = None, resume: bool = False,
                target_ms: float | None = None, limit: int = 160, seed: int = 0, paths: str = "all",
                finalists: int = 0):
    """A short search on the tiny space; returns (result, supernet)."""
    from hwnas.search.data import load_data
    from hwnas.search.distributed import setup
    from hwnas.search.dnas import SearchConfig, run_search, seed_everything
    from hwnas.search.build import build_supernet

    import torch

    torch.set_num_threads(1)  # tiny convs: more threads only contend on a shared 2-core VM
    dist = setup()
    cfg = SearchConfig(epochs=epochs, warmup_epochs=1, batch_size=32, micro_batch=16, seed=seed,
                       target_ms=target_ms, candidates=4, eval_images=64, paths=paths, finalists=finalists,
                       finalist_epochs=1)
    cost = mac_cost(TINY)  # before seeding: counting MACs builds modules, which draws random numbers
    seed_everything(seed)
    net = build_supernet(TINY, cost, paths=paths)
    data = load_data("digits", 8).limited(limit)
    result = run_search(net, data, cfg, out, dist=dist, resume=resume, stop_after=stop_after,
                        meta={"processes": dist.world})
    return result, net


if __name__ == "__main__":
    import torch

    paths = sys.argv[2] if len(sys.argv) > 2 else "all"
    result, net = tiny_search(Path(sys.argv[1]).parent / "run", epochs=2, paths=paths)
    if int(__import__("os").environ.get("RANK", "0")) == 0:
        Path(sys.argv[1]).write_text(json.dumps({"arch": result["arch"],
                                                 "theta": net.theta.detach().tolist()}))
    if torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()
