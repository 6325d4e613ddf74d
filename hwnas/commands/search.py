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
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from hwnas.output import console, print_json
from hwnas.search.space import InputError

DATA_HELP = ("digits (bundled, no download) | fashion-mnist (Debian's dataset-fashion-mnist) | fashion-mnist:DIR "
             "(its four idx files) | imagefolder:PATH | cifar10:PATH | cifar100:PATH (binary batches)")
WIDTH_HELP = ("Train at every width × this (a CPU-budget proxy, e.g. 0.5); the latency in the loss stays the "
              "full-size network's, and the architecture found is a full-size one.")
THREADS_HELP = "torch intra-op threads (default: the cores this process may use; 1 keeps a loaded machine steady)."


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
    paths: Optional[str] = typer.Option(None, "--paths", help="sampled: one candidate per layer and step (single-path, "
                                        "straight-through θ gradient; ~1 network per step, ~1/9 of the memory); all (default): "
                                        "FBNet's soft mixture of every candidate, which trained better per CPU-second."),
    width_mult: float = typer.Option(1.0, "--width-mult", help=WIDTH_HELP),
    threads: Optional[int] = typer.Option(None, "--threads", help=THREADS_HELP),
    finalists: int = typer.Option(0, "--finalists", help="Train the K best candidates that meet the target from "
                                  "scratch (--finalist-epochs, on the search's own 80/20 split, never the test set) and "
                                  "ship the most accurate, as FBNet trains samples of Pθ. Resume a complete search "
                                  "with a new K to re-rank it."),
    finalist_epochs: int = typer.Option(2, "--finalist-epochs", help="Epochs of each finalist's training."),
    stop_after: Optional[int] = typer.Option(None, "--stop-after", hidden=True, help="Stop after this many epochs (to resume later)."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Search an architecture with a device's predicted latency in the loss: CE·α·log(LAT)^β."""
    from hwnas import api
    from hwnas.search.distributed import is_main_process

    show = is_main_process() and not as_json
    with _bar(show) as bar:
        task = bar.add_task("search", total=None, info="")

        def progress(ev: dict[str, Any]) -> None:
            bar.update(task, completed=ev["step"], total=ev["steps"],
                       description=f"epoch {ev['epoch'] + 1}/{epochs} {ev['phase']}",
                       info=f"ce {ev['ce']:.3f}  E[lat] {ev['lat']:.3f} ms")

        _, result = api.search_run(space, latency, data, out, epochs=epochs, target_ms=target_ms, alpha=alpha,
                                     beta=beta, weight_lr=weight_lr, arch_lr=arch_lr, warmup_epochs=warmup_epochs,
                                     seed=seed, batch_size=batch_size, micro_batch=micro_batch, limit=limit,
                                     candidates=candidates, resume=resume, stop_after=stop_after, paths=paths,
                                     width_mult=width_mult, threads=threads, finalists=finalists,
                                     finalist_epochs=finalist_epochs, on_progress=progress)
    if not result.pop("main_process"):
        return
    if as_json:
        print_json(result)
        return
    if not result["complete"]:
        console.print(f"stopped after epoch {result['epochs_done']}/{epochs}; continue with --resume", highlight=False)
        return
    arch = result["arch"] if isinstance(result["arch"], str) else json.dumps(result["arch"])
    console.print(f"[bold]architecture[/]: {escape(arch)}", highlight=False, markup=True)
    target = f" (target {target_ms:g} ms)" if target_ms else ""
    console.print(f"predicted latency on {result['device']}: [bold]{result['predicted_ms']:.4g} ms[/]{target}; "
                  f"fastest possible {result['min_ms']:.4g} ms; val acc {result['val_acc']:.3f}", highlight=False)
    if "finalist_acc" in result:
        console.print(f"finalists trained from scratch: the shipped one scored {result['finalist_acc']:.3f} on the "
                      "search's held-out split", highlight=False)
    proxy = f", searched at width x{result['width_mult']:g}" if result.get("width_mult", 1) != 1 else ""
    console.print(f"{result.get('paths', 'all')} paths{proxy}, {result.get('threads') or 'default'} threads; "
                  f"wrote {out}/arch.json, history.json, candidates.json, checkpoint.pt", highlight=False)


def train_cmd(
    arch_file: Path = typer.Argument(..., help="arch.json written by `hwnas search` (or its run directory)."),
    data: str = typer.Option("digits", "--data", help=DATA_HELP),
    epochs: int = typer.Option(30, "--epochs", help="Training epochs."),
    batch_size: int = typer.Option(64, "--batch-size"),
    lr: float = typer.Option(0.05, "--lr", help="SGD learning rate (cosine schedule)."),
    seed: int = typer.Option(0, "--seed"),
    limit: Optional[int] = typer.Option(None, "--limit", help="Use only the first N training (and test) images."),
    out: Optional[Path] = typer.Option(None, "--out", help="Directory for model.pt and train.json (default: the arch file's directory)."),
    width_mult: float = typer.Option(1.0, "--width-mult", help=WIDTH_HELP),
    threads: Optional[int] = typer.Option(None, "--threads", help=THREADS_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Train a searched architecture from scratch and report its test accuracy."""
    from hwnas import api

    with _bar(not as_json) as bar:
        task = bar.add_task("train", total=None, info="")

        def progress(ev: dict[str, Any]) -> None:
            bar.update(task, completed=ev["step"], total=ev["steps"], description=f"epoch {ev['epoch'] + 1}/{epochs}",
                       info=f"loss {ev['loss']:.3f}")

        result = api.train(arch_file, data, epochs=epochs, batch_size=batch_size, lr=lr, seed=seed, limit=limit,
                           out=out, width_mult=width_mult, threads=threads, on_progress=progress)
    if as_json:
        print_json(result)
        return
    console.print(f"test accuracy after {epochs} epochs: [bold]{result['test_acc']:.4f}[/] "
                  f"(best {result['best_test_acc']:.4f}); weights in {result['model']}", highlight=False)


def export_cmd(
    run: Path = typer.Argument(..., help="Run directory (or its arch.json); trained weights come from model.pt there."),
    fmt: str = typer.Option("onnx", "--format", help="onnx or tflite (channels-last I/O)."),
    out: Optional[Path] = typer.Option(None, "--out", help="Output file (default: RUN/model.onnx|tflite)."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Export the searched network (with its trained weights when present) to ONNX or TFLite."""
    from hwnas import api

    result = api.export(run, fmt, out)
    if as_json:
        print_json(result)
        return
    note = "trained weights" if result["trained"] else "untrained weights (run `hwnas train` first for a useful model)"
    console.print(f"wrote {result['path']} ({result['bytes']} bytes, {note})", highlight=False)


def register(app: typer.Typer) -> None:
    app.command("search")(search_cmd)
    app.command("train")(train_cmd)
    app.command("export")(export_cmd)
