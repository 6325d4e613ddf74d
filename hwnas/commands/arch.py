"""`hwnas arch info` and `hwnas space blocks|info|list`: the vocabulary, printed."""

from __future__ import annotations

from typing import Any, Optional

import typer

from hwnas.output import console, print_json, safe, table
from hwnas.search.space import SearchSpace, get_space, list_spaces, resolve_arch

arch_app = typer.Typer(help="Inspect architectures: layer tables, MACs, parameters.", no_args_is_help=True)
space_app = typer.Typer(help="Inspect search spaces and the blocks a device must measure.", no_args_is_help=True)


def _shape(s: list[int]) -> str:
    return "x".join(str(v) for v in s[1:])


def arch_summary(space: SearchSpace, arch: Any) -> dict[str, Any]:
    """Layer table and totals of an architecture, from the closed-form counts (no torch to load).

    `latency_models.features` computes MACs and parameters exactly as torch's FLOP
    counter does on the very modules the profiler measures (tested on random blocks
    against `hwnas.search.count`), so `arch info` answers in a fraction of a second.
    """
    from hwnas.latency_models.features import FEATURE_NAMES, block_features

    specs = space.blocks(arch)
    feats = block_features(specs)
    macs, params = feats[:, FEATURE_NAMES.index("macs")], feats[:, FEATURE_NAMES.index("params")]
    rows = []
    for i, (spec, m, p) in enumerate(zip(specs, macs, params)):
        out_shape = [1, spec.cout] if spec.op == "fc" else [1, spec.cout, spec.out_resolution, spec.out_resolution]
        rows.append({"index": i, "block": spec.label, "key": spec.key, "op": spec.op, "family": spec.family,
                     "input_shape": list(spec.input_shape), "output_shape": out_shape, "macs": int(m),
                     "params": int(p)})
    return {"layers": rows, "total_macs": sum(r["macs"] for r in rows), "total_params": sum(r["params"] for r in rows),
            "space": space.name, "arch": space.to_json(arch)}


@arch_app.command("info")
def arch_info(
    arch: str = typer.Argument(..., help="Preset (fbnet-a|b|c), 'k3_e1-skip-...', 22 integers 0..8, or an arch .json file."),
    space: Optional[str] = typer.Option(None, "--space", help="Macro-architecture (fbnet, fbnet-cifar, fbnetv2)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """Print the layer-by-layer table of an architecture: blocks, shapes, MACs, params."""
    sp, ops = resolve_arch(arch, space)
    info = arch_summary(sp, ops)
    if as_json:
        print_json(info)
        return
    rows = [(r["index"], r["block"], _shape(r["input_shape"]), _shape(r["output_shape"]),
             f"{r['macs'] / 1e6:.2f}", f"{r['params'] / 1e3:.1f}") for r in info["layers"]]
    console.print(table(f"{sp.name}: {info['arch']}", ["#", "block", "input", "output", "MMACs", "kParams"],
                        rows, right=("#", "MMACs", "kParams")))
    console.print(f"total: [bold]{info['total_macs'] / 1e6:.1f} MMACs[/], "
                  f"[bold]{info['total_params'] / 1e6:.3f} M params[/]")


@space_app.command("list")
def space_list(as_json: bool = typer.Option(False, "--json")) -> None:
    """List the registered search spaces."""
    infos = [get_space(n).describe() for n in list_spaces()]
    if as_json:
        print_json(infos)
        return
    console.print(table(None, ["space", "layers", "input", "log10 size", "description"],
                        [(i["name"], i["num_layers"], i["input_resolution"], i["log10_size"], i["description"])
                         for i in infos]))


@space_app.command("info")
def space_info(name: str = typer.Argument(..., help="Space name."),
               as_json: bool = typer.Option(False, "--json")) -> None:
    """Describe a space: layers, candidates, and its size (compared with FBNet's 9^22)."""
    info = get_space(name).describe()
    if as_json:
        print_json(info)
        return
    for k, v in info.items():
        if k != "channel_options":
            console.print(f"[bold]{k}[/]: {safe(v)}", highlight=False)
    fb = 22 * 0.9542425094393249
    console.print(f"[bold]size vs FBNet (9^22)[/]: 10^{info['log10_size'] - fb:.2f} times", highlight=False)


@space_app.command("blocks")
def space_blocks(name: str = typer.Argument(..., help="Space name."),
                 as_json: bool = typer.Option(False, "--json")) -> None:
    """List the unique blocks a device must measure for a space, each with its key."""
    specs = get_space(name).unique_blocks()
    if as_json:
        print_json([{"key": s.key, **s.to_dict()} for s in specs])
        return
    console.print(table(f"{name}: {len(specs)} unique blocks", ["key", "op", "cin", "cout", "res", "k", "e", "s", "g"],
                        [(s.key, s.op, s.cin, s.cout, s.resolution, s.kernel, f"{s.expansion:g}", s.stride, s.groups)
                         for s in specs]))


def register(app: typer.Typer) -> None:
    app.add_typer(arch_app, name="arch")
    app.add_typer(space_app, name="space")
