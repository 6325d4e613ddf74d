"""`hwnas search`, `hwnas train`, `hwnas export`: find, train and ship an architecture.

`hwnas search` runs FBNet's DNAS (or FBNetV2's DMaskingNAS for its spaces)
with a fitted latency model of one device as its loss; it also runs under
`torchrun --nproc_per_node N -m hwnas search ...` (data-parallel, gloo on
CPU, NCCL on GPU), where only rank 0 writes files or prints.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from hwnas.output import console, print_json
from hwnas.search.space import InputError

DATA_HELP = "digits (bundled, no download) | imagefolder:PATH | cifar10:PATH | cifar100:PATH (binary batches)"


def _bar(enabled: bool) -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    TextColumn("{task.fields[info]}"), console=console, disable=not enabled, transient=False)


def search_cmd(
    space: str = typer.Option("fbnet-cifar", "--space", help="Search space (fbnet-cifar, fbnet, fbnetv2, ...)."),
    latency: Path = typer.Option(..., "--latency", help="Fitted latency model (JSON from `hwnas fit`) for this space."),
    data: str = typer.Option("digits", "--data", help=DATA_HELP),
    epochs: int = typer.Option(10, "--epochs", help="Total epochs, warm-up included."),
    out: Path = typer.Option(..., "--out", help="Run directory: arch.json, history.json, checkpoint.pt, candidates.json."),
    target_ms: Optional[float] = typer.Option(None, "--target-ms", help="Search towards this predicted latency (ms)."),
    alpha: float = typer.Option(0.2, "--alpha", help="α of the loss CE·α·log(LAT)^β (paper: 0.2)."),
    beta: float = typer.Option(0.6, "--beta", help="β of the loss (paper: 0.6)."),
    weight_lr: Optional[float] = typer.Option(None, "--weight-lr", help="SGD learning rate of the weights "
                                              "(default: FBNet's 0.1 scaled by batch/256, e.g. 0.0125 at 32)."),
    arch_lr: float = typer.Option(0.01, "--arch-lr", help="Adam learning rate of the architecture logits θ (paper: 0.01); "
                                  "raise it for short searches, whose few θ steps barely move θ at 0.01."),
    warmup_epochs: int = typer.Option(2, "--warmup-epochs", help="Epochs training only the weights."),
    seed: int = typer.Option(0, "--seed", help="One seed fixes the whole search."),
    batch_size: int = typer.Option(32, "--batch-size", help="Global batch (split over processes)."),
    micro_batch: int = typer.Option(16, "--micro-batch", help="BatchNorm group / per-forward images; batch must split evenly over processes."),
    limit: Optional[int] = typer.Option(None, "--limit", help="Use only the first N training (and test) images: quick runs."),
    candidates: int = typer.Option(8, "--candidates", help="Architectures sampled from the final distribution and ranked."),
    resume: bool = typer.Option(False, "--resume", help="Continue the stopped search in --out bit-for-bit."),
    stop_after: Optional[int] = typer.Option(None, "--stop-after", hidden=True, help="Stop after this many epochs (to resume later)."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Search an architecture with a device's predicted latency in the loss: CE·α·log(LAT)^β."""
    from hwnas.wiring import load_cost
    from hwnas.search.data import load_data
    from hwnas.search.distributed import setup
    from hwnas.search.dnas import SearchConfig, run_search, seed_everything
    from hwnas.search.space import get_space
    from hwnas.search.build import build_supernet

    if limit is not None and limit < 1:
        raise InputError("--limit must be positive")
    cfg = SearchConfig(epochs=epochs, warmup_epochs=warmup_epochs, batch_size=batch_size, micro_batch=micro_batch,
                       alpha=alpha, beta=beta, target_ms=target_ms, seed=seed, candidates=candidates,
                       a_lr=arch_lr, w_lr=weight_lr)
    sp = get_space(space)
    cost = load_cost(latency, sp)
    dataset = load_data(data, sp.input_resolution).limited(limit)
    options: dict[str, Any] = {}
    if dataset.num_classes != sp.num_classes:
        options["num_classes"] = dataset.num_classes
        sp = sp.with_options(num_classes=dataset.num_classes)
    dist = setup()
    cfg.check(dist.world)
    seed_everything(seed)
    net = build_supernet(sp, cost, tau=cfg.tau0)
    meta = {"device": getattr(cost, "device", None), "latency_model": str(latency), "data": data,
            "space_options": options, "processes": dist.world}
    show = dist.main and not as_json
    with _bar(show) as bar:
        task = bar.add_task("search", total=None, info="")

        def progress(ev: dict[str, Any]) -> None:
            bar.update(task, completed=ev["step"], total=ev["steps"],
                       description=f"epoch {ev['epoch'] + 1}/{epochs} {ev['phase']}",
                       info=f"ce {ev['ce']:.3f}  E[lat] {ev['lat']:.3f} ms")

        result = run_search(net, dataset, cfg, out, dist=dist, resume=resume, stop_after=stop_after,
                            progress=progress, meta=meta)
    if not dist.main:
        return
    if as_json:
        print_json(result)
        return
    if not result["complete"]:
        console.print(f"stopped after epoch {result['epochs_done']}/{epochs}; continue with --resume", highlight=False)
        return
    arch = result["arch"] if isinstance(result["arch"], str) else json.dumps(result["arch"])
    console.print(f"[bold]architecture[/]: {arch}", highlight=False, markup=True)
    target = f" (target {target_ms:g} ms)" if target_ms else ""
    console.print(f"predicted latency on {result['device']}: [bold]{result['predicted_ms']:.4g} ms[/]{target}; "
                  f"fastest possible {result['min_ms']:.4g} ms; val acc {result['val_acc']:.3f}", highlight=False)
    console.print(f"wrote {out}/arch.json, history.json, candidates.json, checkpoint.pt", highlight=False)


def train_cmd(
    arch_file: Path = typer.Argument(..., help="arch.json written by `hwnas search` (or its run directory)."),
    data: str = typer.Option("digits", "--data", help=DATA_HELP),
    epochs: int = typer.Option(30, "--epochs", help="Training epochs."),
    batch_size: int = typer.Option(64, "--batch-size"),
    lr: float = typer.Option(0.05, "--lr", help="SGD learning rate (cosine schedule)."),
    seed: int = typer.Option(0, "--seed"),
    limit: Optional[int] = typer.Option(None, "--limit", help="Use only the first N training (and test) images."),
    out: Optional[Path] = typer.Option(None, "--out", help="Directory for model.pt and train.json (default: the arch file's directory)."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Train a searched architecture from scratch and report its test accuracy."""
    from hwnas.search.data import load_data
    from hwnas.search.export_model import read_arch_file
    from hwnas.search.train import train_network

    import torch

    space, arch, record = read_arch_file(arch_file)
    dataset = load_data(data, space.input_resolution).limited(limit)
    out_dir = out or (arch_file if arch_file.is_dir() else arch_file.parent)
    with _bar(not as_json) as bar:
        task = bar.add_task("train", total=None, info="")

        def progress(ev: dict[str, Any]) -> None:
            bar.update(task, completed=ev["step"], total=ev["steps"], description=f"epoch {ev['epoch'] + 1}/{epochs}",
                       info=f"loss {ev['loss']:.3f}")

        net, result = train_network(space, arch, dataset, epochs=epochs, batch_size=batch_size, lr=lr, seed=seed,
                                    progress=progress)
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.save(net.state_dict(), out_dir / "model.pt")
    result = {"space": space.name, "arch": record["arch"], "data": data, "seed": seed,
              "model": str(out_dir / "model.pt"), **result}
    (out_dir / "train.json").write_text(json.dumps(result, indent=2))
    if as_json:
        print_json(result)
        return
    console.print(f"test accuracy after {epochs} epochs: [bold]{result['test_acc']:.4f}[/] "
                  f"(best {result['best_test_acc']:.4f}); weights in {out_dir / 'model.pt'}", highlight=False)


def export_cmd(
    run: Path = typer.Argument(..., help="Run directory (or its arch.json); trained weights come from model.pt there."),
    fmt: str = typer.Option("onnx", "--format", help="onnx or tflite (channels-last I/O)."),
    out: Optional[Path] = typer.Option(None, "--out", help="Output file (default: RUN/model.onnx|tflite)."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Export the searched network (with its trained weights when present) to ONNX or TFLite."""
    from hwnas.output import default_mode
    from hwnas.search.export_model import export_run

    if out is not None and not out.expanduser().parent.is_dir():  # as every other command: no directory made
        raise InputError(f"output directory does not exist: {out.expanduser().parent}")
    result = export_run(run, fmt, out)
    default_mode(result["path"])
    if as_json:
        print_json(result)
        return
    note = "trained weights" if result["trained"] else "untrained weights (run `hwnas train` first for a useful model)"
    console.print(f"wrote {result['path']} ({result['bytes']} bytes, {note})", highlight=False)


def register(app: typer.Typer) -> None:
    app.command("search")(search_cmd)
    app.command("train")(train_cmd)
    app.command("export")(export_cmd)
