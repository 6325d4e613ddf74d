"""`hwnas profile`: measure every block of a space (and whole networks) on devices, into the store."""

from __future__ import annotations

import shlex

import threading
from pathlib import Path
from typing import List, Optional

import typer
from hwnas.output import LineConsole
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn,
                           TimeRemainingColumn)

from hwnas.output import clean, console, print_json, safe


_HELP = (
    "Measure every unique block of a search space on one or more devices, into a resumable SQLite store.\n\n"
    "Interrupted runs (Ctrl-C, kill -9, a dropped phone) continue where they stopped when the same command runs "
    "again: nothing measured is lost or measured twice (--remeasure forces it), but for an item caught between its "
    "passes whose earlier passes disagree with the new run's: it is measured afresh.\n\n"
    "Several --device flags run one worker per device; --ray runs one Ray actor per device (a farm host that "
    "advertises a Ray resource named after a device URI, e.g. ray start --resources '{\"adb://R58M123\": 1}', "
    "gets that device's actor).\n\n"
    "A device that reports throttling is paused until cool; a block that never settles is re-measured in a later "
    "round and flagged if it still does not.\n\n"
    "Timings that hold on a busy or throttling device (each on by default): every item is measured in --passes "
    "shuffled passes (blocks and networks mixed), combined by the fastest (load only slows), with another pass for items whose "
    "two fastest passes disagree by more than --agree (5%); a reference block is timed every --reference-every items (the "
    "device's speed curve): what was measured while it left its --band (±12%) is re-queued (one timing off band holds its batch until the next says whether it was a transient), and a drift that persists is waited out "
    "(phones, throttled devices) or scaled by the measured speed ratio (--drift). Off switches: "
    "--passes 1, --no-reference, --no-selfcheck (all three: the plain loop). Every pass and reference timing is kept in the store.\n\n"
    "Example: hwnas profile --space fbnet-cifar --device 'cpu:onnxruntime?threads=1' --store hwnas.db"
)






class _Display:
    """A rich progress bar per device: blocks done, ETA, current block, temperature where known."""

    def __init__(self, out: LineConsole) -> None:
        self.progress = Progress(
            TextColumn("[bold]{task.fields[device]}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
            TimeElapsedColumn(), TextColumn("{task.fields[temp]}"), TextColumn("[dim]{task.fields[current]}"),
            console=out, transient=False)
        self.tasks: dict[str, TaskID] = {}
        self.notes: dict[str, str] = {}
        self.lock = threading.Lock()

    def __call__(self, p) -> None:
        with self.lock:
            if p.device not in self.tasks:
                self.tasks[p.device] = self.progress.add_task("", total=p.total, device=safe(p.device), temp="",
                                                              current="", completed=p.done)
            temp = f"{p.temp_c:.0f}°C" if p.temp_c is not None else ""
            current = {"cooling": f"cooling before {p.current}",
                       "failed": f"FAILED at {p.current}" if p.current else "FAILED",  # lost between items
                       "done": "done", "stopped": "stopped: rerun to resume"}.get(p.state, p.current)
            if p.round > 1 and p.state == "measuring":
                current += f" (round {p.round})"
            note = getattr(p, "note", "")
            if note and note != self.notes.get(p.device):
                self.notes[p.device] = note
                if note.startswith("drift"):  # a drift line stays in the output, above the bars
                    self.progress.console.print(f"{p.device}: {note}", markup=False, highlight=False)
            self.progress.update(self.tasks[p.device], completed=p.done, total=p.total, temp=temp,
                                 current=safe(current))


def _summary_lines(space: str, store: Path, summaries) -> list[str]:
    """One line per device: plain text reads at any terminal width and greps well."""
    lines = [f"profile of {space} into {store}:"]
    for s in summaries:
        status = "failed" if s.failed else ("stopped" if s.skipped + s.measured < s.total else "complete")
        lines.append(f"  {s.device}: {status} - {s.total} items, {s.skipped} already stored, {s.measured} measured, "
                     f"{s.retried} timings taken again, {len(s.flagged)} flagged (fits leave them out), {s.wall_s:.1f} s")
        if s.steady:
            d = s.steady
            curve = [p["ratio"] for p in d.get("curve", []) if p.get("ratio") is not None]
            lines.append(f"    steady: {d.get('passes', 0)} passes, {d.get('requeued', 0)} re-queued on drift, "
                         f"{d.get('scaled', 0)} scaled, {d.get('waited_s', 0.0):.0f} s cooling, "
                         f"{d.get('extra_pass_items', 0)} extra passes for disagreeing items; reference "
                         + (f"{d['baseline_ms']:.3f} ms, speed {min(curve):.2f}x..{max(curve):.2f}x"
                            if d.get("baseline_ms") and curve else "off"))
            if d.get("selfcheck_suspects"):
                kept, flagged = len(d.get("selfcheck_reproduced", [])), len(d.get("selfcheck_confirmed", []))
                lines.append(f"    self-check: {len(d['selfcheck_suspects'])} items far from the rest of the table measured "
                             f"again; {kept} kept, as the new timing reproduced the first; {flagged} flagged")
            if d.get("resumed_passes"):
                lines.append(f"    resumed {d['resumed_passes']} passes of an interrupted run"
                             + (f"; {d['resumed_dropped']} item{'s' if d['resumed_dropped'] != 1 else ''} measured afresh, as their earlier passes "
                                "disagreed with this run's" if d.get("resumed_dropped") else ""))
    return lines


def profile(
    space: str = typer.Option(..., "--space", help="Search space whose unique blocks are measured (fbnet-cifar, fbnet, fbnetv2)."),
    device: List[str] = typer.Option(..., "--device", help="Device URI, e.g. 'cpu:onnxruntime?threads=1' or adb://SERIAL; repeat for several devices."),
    store: Path = typer.Option(Path("hwnas.db"), "--store", help="SQLite measurement store (created if missing)."),
    samples: int = typer.Option(0, "--samples", help="Also measure N random blocks around the space's grid (regressor training data)."),
    seed: int = typer.Option(0, "--seed", help="Seed for --samples and --archs random:N."),
    archs: Optional[str] = typer.Option(None, "--archs", help="Whole networks measured end to end: random:N, suggest:N (the N that teach a transfer from --prior most; beside the device's other networks in the store), or presets/arch strings separated by ';'."),
    prior: Optional[List[Path]] = typer.Option(None, "--prior", help="With --archs suggest:N: latency model(s) of other devices the new device's model will be transferred from."),
    blocks: bool = typer.Option(True, "--blocks/--no-blocks", help="Measure the space's blocks (--no-blocks: only --archs/--samples)."),
    limit: Optional[int] = typer.Option(None, "--limit", help="Measure only the first N items (a quick trial)."),
    remeasure: bool = typer.Option(False, "--remeasure", help="Measure again what the store already holds."),
    retries: int = typer.Option(1, "--retries", help="Later rounds for a block whose spread stays above the bound; flagged if it never settles."),
    ray: Optional[str] = typer.Option(None, "--ray", help="Run one Ray actor per device: 'auto' (join or start a cluster) or a cluster ADDRESS."),
    passes: int = typer.Option(2, "--passes", help="Shuffled passes per item; the fastest is stored, once another confirms it (1: one pass, no agreement check)."),
    reference: bool = typer.Option(True, "--reference/--no-reference", help="Time a reference block every few items and re-queue what was measured while the device's speed drifted."),
    selfcheck: bool = typer.Option(True, "--selfcheck/--no-selfcheck", help="After the passes, measure again the blocks and networks that disagree with the rest of the table."),
    reference_every: int = typer.Option(10, "--reference-every", help="Items between two timings of the reference block (fewer: drift caught sooner, more reference timings)."),
    band: float = typer.Option(12.0, "--band", help="Percent the reference may move from its baseline before a batch counts as timed during a drift."),
    agree: float = typer.Option(5.0, "--agree", help="Percent two passes of an item may differ before it gets another pass."),
    drift: str = typer.Option("auto", "--drift", help="On persistent drift: wait (cool down), scale (by the speed ratio), or auto (wait on a phone or a device that reports throttling, else scale; only slowdowns are scaled)."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON (progress goes to stderr)."),
) -> None:
    from hwnas import api

    options = dict(archs=archs, blocks=blocks, samples=samples, seed=seed, limit=limit, priors=prior or [])
    knobs = dict(interval=reference_every, agree=agree / 100.0, band=band / 100.0)
    api.steadiness(passes, reference, drift, retries, selfcheck, **knobs)  # bad values fail before any work
    out = LineConsole(stderr=True) if as_json else console
    if (archs or "").strip().startswith("suggest"):  # another suggest:N complements what is stored
        options["measured"] = api.stored_archs(store, space, list(device))
    items = api.plan(space, **options)  # bad input fails here, before a device is opened
    measured = set(options.get("measured", ()))
    if measured and not measured <= {i.arch_text for i in items if i.kind == "network"}:
        out.print(f"suggest: picking beside the {len(measured)} networks already timed in {safe(str(store))}",
                  highlight=False)
    display = _Display(out)
    with display.progress:
        summaries = api.profile_devices(space, list(device), store, remeasure=remeasure, retries=retries, ray=ray,
                                        passes=passes, reference=reference, drift=drift, selfcheck=selfcheck,
                                        **knobs, items=items, on_progress=display)
    result = {"space": space, "store": str(store), "items": len(items),
              "devices": [s.to_dict() for s in summaries]}
    if as_json:
        print_json(result)
    else:
        for line in _summary_lines(space, store, summaries):
            console.print(clean(line), markup=False, highlight=False)
        if prior and not blocks and not any(s.failed for s in summaries):  # the new-device loop's next step
            priors = " ".join(f"--prior {shlex.quote(str(p))}" for p in prior)
            for s in summaries:
                console.print(clean(f"next: hwnas fit --store {shlex.quote(str(store))} --device "
                                    f"{shlex.quote(s.device)} {priors} --out NEW.latency.json"),
                              markup=False, highlight=False, soft_wrap=True)  # one line, to copy
    failed = [s for s in summaries if s.failed]
    if failed:
        from hwnas.devices.base import DeviceError

        raise DeviceError("; ".join(f"{s.device}: {s.failed}" for s in failed)
                          + f" — measured blocks are kept in {store}; run the same command again to resume")


def register(app: typer.Typer) -> None:
    app.command("profile", help=_HELP)(profile)
