"""`hwnas demo`: the whole loop on the embedded default — local CPU, scikit-learn's digits.

Profile `fbnet-cifar` on this machine's CPU, fit a latency model, evaluate it
on whole networks, search on digits with that model as the latency loss,
train the found architecture briefly, measure it, and write the report.

The demo stays thin on purpose: every step is the same `hwnas` command a user
would type, run as a subprocess (`python -m hwnas ...`), so the demo shows
the real commands and cannot drift from them.  A rerun into the same
`--out` resumes: the store keeps what was measured.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import typer

from rich.console import Console

from hwnas.output import console, print_json
from hwnas.search.space import InputError

#: The demo's device: ONNX Runtime on one thread, the setting latency tables are made with.
DEMO_DEVICE = "cpu:onnxruntime?threads=1"
SPACE = "fbnet-cifar"
#: The full demo's second device: PyTorch eager on the same core, so the report has a comparison to draw.
COMPARE_DEVICE = "cpu:torch?threads=1"


@dataclass(frozen=True)
class Settings:
    """How much work each step does: the full demo (~3 min on 2 idle cores) or `--quick` (~45 s)."""

    archs: int
    max_seconds: float
    search_epochs: int
    train_epochs: int
    images: int        # digits images used by search and training (--limit): the CPU budget
    candidates: int    # architectures sampled from the final distribution and ranked
    batch: int = 32
    warmup_epochs: int = 1
    compare: tuple[str, ...] = ()  # more devices profiled for the report's device comparison

    @classmethod
    def for_mode(cls, quick: bool) -> "Settings":
        if quick:
            return cls(archs=6, max_seconds=0.1, search_epochs=1, train_epochs=1, images=80, candidates=1, batch=16,
                       warmup_epochs=0)
        return cls(archs=20, max_seconds=0.3, search_epochs=3, train_epochs=8, images=320, candidates=4,
                   compare=(COMPARE_DEVICE,))


@dataclass
class Step:
    """One demo step: a title for the user and the `hwnas` arguments that do it."""

    key: str
    title: str
    args: list[str] | Callable[[], list[str]]
    required: bool = True
    produces: list[Path] = field(default_factory=list)
    command: str = ""  # the hwnas command, where `args` is only known once earlier steps ran
    ok: bool = False   # set once the step succeeded; later steps may depend on it

    @property
    def name(self) -> str:
        return self.command or (self.args[0] if isinstance(self.args, list) else "")

    def argv(self) -> list[str]:
        return list(self.args() if callable(self.args) else self.args)


def device_uri(settings: Settings, base: str = DEMO_DEVICE) -> str:
    """A demo device with the measurement protocol shortened to fit the time budget."""
    return f"{base}&max_seconds={settings.max_seconds:g}"


def _searched_arch(run_dir: Path) -> str:
    """The searched architecture as `hwnas profile --archs` takes it (canonical text)."""
    data = json.loads((run_dir / "arch.json").read_text())
    arch = data["arch"]
    return arch if isinstance(arch, str) else "-".join(arch) if isinstance(arch, list) else json.dumps(arch)


def plan(out: Path, settings: Settings) -> list[Step]:
    """The demo's steps, in order, as the hwnas commands they run."""
    store, model, runs = out / "hwnas.db", out / "cpu.latency.json", out / "runs"
    run_dir, report = runs / "cpu-onnxruntime", out / "report.html"
    dev = device_uri(settings)
    profile = ["profile", "--space", SPACE, "--device", dev, "--store", str(store)]
    compare = [Step(f"compare{i + 1}", f"Profiling the same blocks on {uri}, for the device comparison",
                    ["profile", "--space", SPACE, "--device", device_uri(settings, uri), "--store", str(store)],
                    required=False) for i, uri in enumerate(settings.compare)]

    def report_args() -> list[str]:  # a comparison device whose profile failed is left out, not fatal
        uris = [DEMO_DEVICE, *(uri for uri, step in zip(settings.compare, compare) if step.ok)]
        return ["report", "--store", str(store), *(a for u in uris for a in ("--device", u)),
                "--model", str(model), "--runs", str(runs), "--out", str(report)]

    def search_args() -> list[str]:  # a rerun into the same --out continues the search it finds there
        resume = ["--resume"] if (run_dir / "checkpoint.pt").exists() else []
        return ["search", "--space", SPACE, "--latency", str(model), "--data", "digits",
                "--epochs", str(settings.search_epochs), "--warmup-epochs", str(settings.warmup_epochs),
                "--limit", str(settings.images), "--batch-size", str(settings.batch),
                "--micro-batch", str(settings.batch), "--candidates", str(settings.candidates),
                # a search of a few dozen steps: rates above the paper's, so weights and θ move at all
                "--weight-lr", "0.03", "--arch-lr", "0.1",
                "--out", str(run_dir), *resume]

    return [
        Step("profile", f"Profiling every candidate block of {SPACE} on {DEMO_DEVICE}", profile),
        *compare,
        Step("networks", f"Measuring {settings.archs} random whole networks end to end (to check the predictor)",
             profile + ["--no-blocks", "--archs", f"random:{settings.archs}", "--seed", "0"]),
        Step("fit", "Fitting a latency model (lookup table + per-family regressors + network overhead)",
             ["fit", "--store", str(store), "--device", DEMO_DEVICE, "--space", SPACE, "--out", str(model)],
             produces=[model]),
        Step("evaluate", "Evaluating the model on the measured networks (±10% accuracy, Spearman ρ)",
             # a demo on a busy machine keeps networks whose timing never settled; the report counts them
             ["evaluate", "--model", str(model), "--store", str(store), "--include-flagged"], required=False),
        Step("search", f"Searching {SPACE} on digits with the CPU's predicted latency as loss "
                       f"({settings.search_epochs} epochs)",
             search_args, produces=[run_dir / "arch.json"], command="search"),
        Step("train", f"Training the found architecture from scratch on digits ({settings.train_epochs} epochs)",
             ["train", str(run_dir / "arch.json"), "--data", "digits", "--epochs", str(settings.train_epochs),
              "--limit", str(4 * settings.images)],
             required=False),
        Step("measure", "Measuring the found architecture on the CPU (predicted beside measured)",
             lambda: profile + ["--no-blocks", "--archs", _searched_arch(run_dir)], required=False,
             command="profile"),
        Step("report", "Writing the report",
             report_args, produces=[report], command="report"),
    ]



def run_hwnas(argv: list[str], log: Path, stream=None) -> int:
    """Run `python -m hwnas ARGV`, showing its output live and keeping a copy in the demo log."""
    with log.open("a", encoding="utf-8") as fh:
        fh.write(f"\n$ hwnas {shlex.join(argv)}\n")
        fh.flush()
        proc = subprocess.Popen([sys.executable, "-m", "hwnas", *argv], stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, bufsize=1)
        assert proc.stdout is not None
        for line in proc.stdout:
            (stream or sys.stdout).write(line)
            (stream or sys.stdout).flush()
            fh.write(line)
        return proc.wait()


def demo(
    out: Path = typer.Option(Path("demo-out"), "--out", "-o", help="Folder for the store, model, runs and report (reused: a rerun resumes)."),
    quick: bool = typer.Option(False, "--quick", help="Fewer networks, shorter timing loops and epochs: a quick check of the whole loop."),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON summary of the steps at the end."),
) -> None:
    """Run the whole loop on the embedded default: profile fbnet-cifar on this CPU, fit, evaluate, search
    on scikit-learn's digits, train briefly, and write the report; ends with the report's path."""
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out} exists and is not a folder")
    out.mkdir(parents=True, exist_ok=True)
    log = out / "demo.log"
    settings = Settings.for_mode(quick)
    steps = plan(out, settings)
    summary: list[dict] = []
    start = time.monotonic()
    # with --json, stdout carries only the JSON summary; the running commentary goes to stderr
    say = Console(stderr=True) if as_json else console
    stream = sys.stderr if as_json else sys.stdout
    for i, step in enumerate(steps, 1):
        say.rule(f"[bold]{i}/{len(steps)}[/] {step.title}")
        try:
            argv = step.argv()
        except (OSError, KeyError, ValueError) as exc:
            say.print(f"[yellow]skipped:[/] {exc}", highlight=False)
            summary.append({"step": step.key, "status": "skipped", "reason": str(exc)})
            continue
        say.print(f"[dim]$ hwnas {shlex.join(argv)}[/]", highlight=False)
        t0 = time.monotonic()
        code = run_hwnas(argv, log, stream)
        took = time.monotonic() - t0
        if code != 0 or any(not p.exists() for p in step.produces):
            status = f"failed (exit {code})" if code else "produced nothing"
            summary.append({"step": step.key, "status": status, "seconds": round(took, 1)})
            if step.required:
                say.print(f"[bold red]demo stopped:[/] step {step.key} {status}; see {log}", highlight=False)
                # SystemExit, not typer.Exit: the CLI runs typer with standalone_mode=False, where
                # click returns typer.Exit's code instead of exiting with it
                raise SystemExit(code or 1)
            say.print(f"[yellow]step {step.key} {status}; continuing[/]", highlight=False)
            continue
        step.ok = True
        summary.append({"step": step.key, "status": "ok", "seconds": round(took, 1)})
        say.print(f"[green]done[/] in {took:.0f} s", highlight=False)
    report = steps[-1].produces[0]
    say.rule(f"demo finished in {time.monotonic() - start:.0f} s")
    if as_json:
        print_json({"report": str(report), "out": str(out), "steps": summary})
        return
    console.print(f"report: [bold]{report}[/]", highlight=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
