"""`hwnas report`: compare devices in one self-contained HTML (or Markdown) page.

The command parses options and prints; `hwnas.reporting` reads the inputs and
`hwnas.report.render` draws and renders.  The page is written atomically: a
failure leaves no half-written file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from hwnas.output import console, print_json


def report(
    store: Path = typer.Option(Path("hwnas.db"), "--store", help="Measurement store written by `hwnas profile`."),
    device: list[str] = typer.Option([], "--device", "-d",
                                     help="Device URI or stored identity; repeat to compare. Default: every device in the store. The first is the reference for ratios."),
    model: list[Path] = typer.Option([], "--model", "-m", help="Latency model file (`hwnas fit`); repeat. Adds predictor accuracy."),
    runs: list[Path] = typer.Option([], "--runs", help="A search run directory or a folder of them; repeat. Adds search results."),
    out: Path = typer.Option(Path("report.html"), "--out", "-o", help="Where to write the report."),
    fmt: Optional[str] = typer.Option(None, "--format", "-f", help="html or md (default: from --out's suffix, else html)."),
    space: Optional[str] = typer.Option(None, "--space", help="Space whose layers the heatmaps follow (default: the one the store covers)."),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON summary of what was written."),
) -> None:
    """Write a self-contained report comparing devices: block latency per layer (heatmaps), which blocks
    are relatively cheap where, measurement noise, predictor accuracy and search results."""
    from hwnas.reporting import check_output, collect, write

    fmt = check_output(out, fmt)
    with console.status("reading store, models and runs…", spinner="dots"):
        data, warnings = collect(store, device, model, runs, space)
    for w in warnings:
        console.print(f"[yellow]warning:[/] {w}", highlight=False)
    with console.status(f"drawing figures and rendering {fmt}…", spinner="dots"):
        path = write(data, out, fmt)
    summary = {"out": str(path), "format": fmt, "devices": data.device_order(),
               "space": data.space.name if data.space else None, "models": [str(m) for m in model],
               "runs": [r.name for r in data.runs], "bytes": path.stat().st_size, "warnings": warnings}
    if as_json:
        print_json(summary)
    else:
        console.print(f"report written: [bold]{path}[/]", highlight=False)


def register(app: typer.Typer) -> None:
    app.command("report")(report)
