"""Data-parallel plumbing for `torchrun`: who am I, and summing gradients over processes.

Hand-written instead of wrapping the model in `DistributedDataParallel`
because the DNAS loop alternates two optimizers over two parameter sets and
accumulates micro-batches; one explicit all-reduce of the gradients before
each optimizer step is simpler to reason about, and gives the same numbers
as DDP's bucketed all-reduce.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

__all__ = ["Dist", "setup", "is_main_process"]


@dataclass(frozen=True)
class Dist:
    rank: int = 0
    world: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def enabled(self) -> bool:
        return self.world > 1

    @property
    def main(self) -> bool:
        return self.rank == 0

    def all_reduce_grads(self, params: list[torch.nn.Parameter]) -> None:
        """Sum gradients over processes (each process already scaled by the global batch)."""
        if not self.enabled:
            return
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
        flat = torch.cat([g.reshape(-1) for g in grads])
        dist.all_reduce(flat, op=dist.ReduceOp.SUM)
        offset = 0
        for p, g in zip(params, grads):
            n = g.numel()
            p.grad = flat[offset:offset + n].view_as(p).clone()
            offset += n

    def all_sum(self, value: float) -> float:
        if not self.enabled:
            return value
        t = torch.tensor([value], dtype=torch.float64, device=self.device)
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
        return float(t.item())

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()


def is_main_process() -> bool:
    """Rank 0 (or not under torchrun): the process that prints and writes files."""
    return int(os.environ.get("RANK", "0")) == 0


def available_cores() -> int:
    """CPU cores this process may run on (its affinity mask, not the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def free_cores() -> int:
    """Cores this process may use that the 1-minute load average leaves idle (at least 1)."""
    cores = available_cores()
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):  # no load average on this platform: assume idle
        load = 0.0
    return max(1, min(cores, int(cores - load + 0.5)))


def set_threads(threads: int | None, world: int = 1) -> int:
    """Set torch's intra-op threads deliberately; returns the number set.

    None: this process's share of the cores that are free now — the cores it
    may use less the 1-minute load average, at least one, divided among the
    torchrun processes.  On a loaded machine more threads than free cores
    collapse: on the shared 2-core VM (load ~11) a search step took 1.9 s at
    one thread and 25.6 s at two (benchmarks/RESULTS.md).
    """
    if threads is not None and threads < 1:
        from hwnas.search.space import InputError

        raise InputError(f"`threads` must be at least 1, got {threads}")
    n = threads if threads is not None else free_cores() // max(1, world) or 1
    torch.set_num_threads(n)
    return n


def setup() -> Dist:
    """Join the process group torchrun describes in the environment (gloo on CPU, NCCL on GPU)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        return Dist(0, 1, device)
    rank = int(os.environ["RANK"])
    if torch.cuda.is_available():
        local = int(os.environ.get("LOCAL_RANK", rank))
        torch.cuda.set_device(local)
        device, backend = torch.device("cuda", local), "nccl"
    else:
        device, backend = torch.device("cpu"), "gloo"
        # One process per core: let each use its share instead of oversubscribing.
        set_threads(None, int(os.environ.get("LOCAL_WORLD_SIZE", world)))
    if not dist.is_initialized():
        dist.init_process_group(backend=backend)
    return Dist(rank, world, device)
