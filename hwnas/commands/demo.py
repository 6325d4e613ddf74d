"""`hwnas demo`: the whole loop on the embedded default — local CPU, Fashion-MNIST (or digits).

Profile `fbnet-cifar` on this machine's CPU, fit a latency model, evaluate it
on whole networks, search with that model as the latency loss, train the
found architecture and a random one of the same predicted latency with the
same recipe, measure the found one, write the report, and end with both test
accuracies side by side.

Data: Fashion-MNIST from Debian's dataset-fashion-mnist where it is installed
(architectures differ there; on digits nearly all score 98-99%), else the
bundled digits, said so.  The search runs at half width (`--width-mult 0.5`,
the CPU proxy; latency in the loss stays the full-size network's) with FBNet's
all-path mixture, which trained better per CPU-second than single-path.

The demo stays thin on purpose: every step is the same `hwnas` command a user
would type, run as a subprocess (`python -m hwnas ...`), so the demo shows
the real commands and cannot drift from them.  A rerun into the same
`--out` resumes: the store keeps what was measured.
"""

from __future__ import annotations

import json
import random
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import typer

from hwnas.output import LineConsole

from hwnas.output import console, print_json
from hwnas.search.space import InputError

#: The demo's device: ONNX Runtime on one thread, the setting latency tables are made with.
DEMO_DEVICE = "cpu:onnxruntime?threads=1"
SPACE = "fbnet-cifar"
#: The full demo's second device: PyTorch eager on the same core, so the report has a comparison to draw.
COMPARE_DEVICE = "cpu:torch?threads=1"


def fashion_available() -> bool:
    """Whether Debian's Fashion-MNIST files are where `--data fashion-mnist` reads them."""
    from hwnas.search.idx import FASHION_DIR, FASHION_FILES

    return all(any((FASHION_DIR / f"{stem}{ext}").is_file() for ext in (".gz", ""))
               for pair in FASHION_FILES.values() for stem in pair)


@dataclass(frozen=True)
class Settings:
    """How much work each step does: the full demo (a few minutes on 2 idle cores) or `--quick` (~1 min)."""

    archs: int
    max_seconds: float
    search_epochs: int
    train_epochs: int
    images: int        # digits images used by search and training (--limit): the CPU budget
    candidates: int    # architectures sampled from the final distribution and ranked
    batch: int = 32
    warmup_epochs: int = 1
    compare: tuple[str, ...] = ()  # more devices profiled for the report's device comparison
    data: str = "digits"
    width_mult: float = 0.5        # search and train at half width (CPU proxy); latency stays full-size
    paths: str = "all"             # FBNet's mixture: trained better per CPU-second than single-path

    @classmethod
    def for_mode(cls, quick: bool, data: str | None = None) -> "Settings":
        """`data` None: Fashion-MNIST where installed, else digits."""
        data = data or ("fashion-mnist" if fashion_available() else "digits")
        if quick:
            return cls(archs=6, max_seconds=0.1, search_epochs=1, train_epochs=1, images=80, candidates=1, batch=16,
                       warmup_epochs=0, data=data)
        # half width halves the all-path step (3.8 CPU s per 32 images, RESULTS.md): 480 images x 3
        # epochs search in about the time the full-width supernet took for 320 x 3
        images = 480
        return cls(archs=20, max_seconds=0.3, search_epochs=3, train_epochs=6, images=images, candidates=4,
                   compare=(COMPARE_DEVICE,), data=data)


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


def random_depth_archs(space: Any, n: int, seed: int = 0) -> list[Any]:
    """`n` random architectures whose share of `skip` layers is itself uniform in [0, 1].

    Uniform per-layer choices skip about one layer in nine, so their latencies bunch in a
    narrow band; a search without a target often lands far below it (the demo's skipped 14
    of 22 layers, 0.30 ms predicted, where the fastest of 300 uniform ones was 0.41 ms).
    Drawing the skip share first spreads random networks over every depth, so one of
    matched latency exists.  Other spaces (FBNetV2's architectures are not one op per layer, or
    no `skip`) get uniform ones.
    """
    from hwnas.profiler.enumerate import random_archs

    if space.family != "fbnet" or "skip" not in space.candidates:
        return random_archs(space, n, seed=seed)
    rng = random.Random(seed)
    others = [c for c in space.candidates if c != "skip"]
    return [tuple("skip" if rng.random() < share else rng.choice(others) for _ in range(space.num_layers))
            for share in (rng.random() for _ in range(n))]


def pick_baseline(run_dir: Path, model: Path, baseline: Path, n: int = 300, seed: int = 0) -> dict:
    """Of `n` random architectures (`random_depth_archs`), the one predicted nearest the searched one's
    latency; written to `baseline`."""
    from hwnas.latency_models.io import load_model
    from hwnas.search.rundir import Run

    space, _ = Run.load_architecture(run_dir)
    target = float(Run(run_dir).result()["predicted_ms"])
    pool = random_depth_archs(space, n, seed=seed)
    pred = load_model(model).predict_networks(space, pool)
    i = min(range(len(pool)), key=lambda j: abs(float(pred[j]) - target))
    record = {"space": space.name, "arch": space.to_json(space.parse(pool[i])), "predicted_ms": float(pred[i]),
              "source": f"random baseline: nearest predicted latency of {n} random architectures, each with a "
                        f"random share of skip layers (seed {seed})"}
    Run(baseline).prepare()
    Run(baseline).write_result(record)
    return record


def plan(out: Path, settings: Settings) -> list[Step]:
    """The demo's steps, in order, as the hwnas commands they run."""
    store, model, runs = out / "hwnas.db", out / "cpu.latency.json", out / "runs"
    run_dir, report, baseline = runs / "cpu-onnxruntime", out / "report.html", out / "baseline"
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
        return ["search", "--space", SPACE, "--latency", str(model), "--data", settings.data,
                "--paths", settings.paths, "--width-mult", f"{settings.width_mult:g}",
                "--epochs", str(settings.search_epochs), "--warmup-epochs", str(settings.warmup_epochs),
                "--limit", str(settings.images), "--batch-size", str(settings.batch),
                "--micro-batch", str(settings.batch), "--candidates", str(settings.candidates),
                # a search of a few dozen steps: rates above the paper's, so weights and θ move at all
                "--weight-lr", "0.03", "--arch-lr", "0.1",
                "--out", str(run_dir), *resume]

    train = ["train", "--data", settings.data, "--epochs", str(settings.train_epochs), "--limit",
             str(2 * settings.images), "--width-mult", f"{settings.width_mult:g}"]

    def baseline_args() -> list[str]:  # picks (and writes) the baseline once the search and the model exist
        pick_baseline(run_dir, model, baseline)
        return train + [str(baseline / "arch.json")]

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
        Step("search", f"Searching {SPACE} on {settings.data} with the CPU's predicted latency as loss "
                       f"({settings.search_epochs} epochs, {settings.paths} paths, width x{settings.width_mult:g})",
             search_args, produces=[run_dir / "arch.json"], command="search"),
        Step("train", f"Training the found architecture from scratch on {settings.data} "
                      f"({settings.train_epochs} epochs, width x{settings.width_mult:g})",
             train + [str(run_dir / "arch.json")], required=False),
        Step("baseline", "Training a random architecture of the same predicted latency with the same recipe",
             baseline_args, required=False, command="train"),
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
    on Fashion-MNIST (Debian's dataset-fashion-mnist; scikit-learn's digits where it is absent, said so),
    train the result and a random architecture of the same predicted latency, and write the report;
    ends with both test accuracies and the report's path."""
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out} exists and is not a folder")
    out.mkdir(parents=True, exist_ok=True)
    log = out / "demo.log"
    settings = Settings.for_mode(quick)
    steps = plan(out, settings)
    say_first = LineConsole(stderr=True) if as_json else console
    if settings.data == "digits":
        say_first.print("[yellow]Fashion-MNIST not found[/] (install Debian's dataset-fashion-mnist): the demo uses "
                        "scikit-learn's digits, on which nearly every architecture scores 98-99%", highlight=False)
    summary: list[dict] = []
    start = time.monotonic()
    # with --json, stdout carries only the JSON summary; the running commentary goes to stderr
    say = LineConsole(stderr=True) if as_json else console
    stream = sys.stderr if as_json else sys.stdout
    for i, step in enumerate(steps, 1):
        say.rule(f"[bold]{i}/{len(steps)}[/] {step.title}")
        try:
            argv = step.argv()
        except (OSError, KeyError, ValueError, InputError) as exc:
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
    versus = accuracy_line(out, settings)
    if as_json:
        print_json({"report": str(report), "out": str(out), "steps": summary, "data": settings.data,
                    "accuracy": versus[1]})
        return
    console.print(f"report: [bold]{report}[/]", highlight=False, soft_wrap=True)
    console.print(versus[0], highlight=False, soft_wrap=True)


def accuracy_line(out: Path, settings: Settings) -> tuple[str, dict]:
    """The demo's last word: the searched architecture's test accuracy beside the random baseline's."""
    from hwnas.search.rundir import Run

    found, base = Run(out / "runs" / "cpu-onnxruntime"), Run(out / "baseline")
    got = {}
    for name, run in (("searched", found), ("random", base)):
        trained = run.training() if run.is_search else None
        if trained is not None:
            got[name] = {"test_acc": trained["test_acc"], "predicted_ms": run.result().get("predicted_ms")}
    if len(got) < 2:
        return f"test accuracy on {settings.data}: not available (a training step failed; see {out / 'demo.log'})", got
    s, r = got["searched"], got["random"]
    return (f"test accuracy on {settings.data} ({settings.train_epochs} epochs, width x{settings.width_mult:g}): "
            f"searched {s['test_acc']:.4f} ({s['predicted_ms']:.3f} ms predicted) vs random baseline "
            f"{r['test_acc']:.4f} ({r['predicted_ms']:.3f} ms predicted)"), got


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
