"""`hwnas lut export|import`: a device's block latency table out of the store, or someone else's in."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from hwnas.output import clean, console, print_json
from hwnas.search.space import InputError

lut_app = typer.Typer(help="Export a device's lookup table from the store, or import an OFA-style YAML / CSV table.",
                      no_args_is_help=True)


def _pick_device(st, device: Optional[str]) -> str:
    if device:
        return st.resolve_device(device)
    known = st.devices()
    if len(known) == 1:
        return str(known["device"].iloc[0])
    raise InputError(f"store {st.path} holds {len(known)} devices; pick one with --device "
                     f"({', '.join(known['device_uri']) or 'none'})")


@lut_app.command("export")
def lut_export(
    store: Path = typer.Option(Path("hwnas.db"), "--store", help="Measurement store to read."),
    device: Optional[str] = typer.Option(None, "--device", help="Device URI or stored identity (optional when the store holds one device)."),
    fmt: Optional[str] = typer.Option(None, "--format", help="csv, json or parquet (default: from --out's suffix)."),
    out: Path = typer.Option(..., "--out", help="File to write."),
    as_json: bool = typer.Option(False, "--json", help="Print what was written as JSON."),
) -> None:
    """Write the block latency table (ms, one row per block with its spec and statistics) of one device."""
    from hwnas.profiler.lut import FORMATS, guess_format, write_table
    from hwnas.profiler.store import Store

    fmt = fmt or guess_format(out)
    if fmt not in FORMATS:
        raise InputError(f"--format must be one of {', '.join(FORMATS)} (or name --out with that suffix)")
    with Store(store, create=False, readonly=True) as st:
        identity = _pick_device(st, device)
        df = st.blocks(identity)
        uri = str(df["device_uri"].iloc[0]) if len(df) else identity
    if df.empty:
        raise InputError(f"device {identity} has no block measurements in {store}")
    write_table(df, fmt, out, identity, uri)
    info = {"out": str(out), "format": fmt, "device": identity, "blocks": len(df)}
    if as_json:
        print_json(info)
    else:
        console.print(clean(f"wrote {len(df)} blocks of {identity} to {out} ({fmt}, ms)"), highlight=False, markup=False)


@lut_app.command("import")
def lut_import(
    file: Path = typer.Argument(..., help="OFA-style YAML table (key → {count, mean, std} in ms), or a CSV/JSON/Parquet table."),
    store: Path = typer.Option(Path("hwnas.db"), "--store", help="Measurement store to write (created if missing)."),
    device: str = typer.Option(..., "--device", help="Name the imported device is stored under (e.g. pixel1-tflite)."),
    fmt: Optional[str] = typer.Option(None, "--format", help="yaml, csv, json or parquet (default: from the suffix)."),
    as_json: bool = typer.Option(False, "--json", help="Print what was imported as JSON."),
) -> None:
    """Read a latency table measured elsewhere into the store, under a device name of your choice."""
    from hwnas.profiler.lut import read_table
    from hwnas.profiler.store import Store

    if not device.strip():
        raise InputError("--device needs a name")
    rows = read_table(file, fmt)
    with Store(store) as st:
        st.add_device(device, device, {"imported_from": file.name, "runtime": "imported"}, runtime="imported")
        for spec, stats in rows:
            st.put_block(device, spec, stats)
    info = {"store": str(store), "device": device, "blocks": len(rows), "file": str(file)}
    if as_json:
        print_json(info)
    else:
        console.print(clean(f"imported {len(rows)} blocks from {file} as device {device} into {store}"),
                      highlight=False, markup=False)


def register(app: typer.Typer) -> None:
    app.add_typer(lut_app, name="lut")
