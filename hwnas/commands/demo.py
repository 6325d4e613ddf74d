"""`hwnas demo`: the whole loop on the embedded default (local CPU, digits)."""

from __future__ import annotations

import typer

from hwnas.output import console


def demo() -> None:
    """Run the main job on the embedded default: local CPU, scikit-learn's digits."""
    from hwnas.commands.arch import arch_info

    console.rule("FBNet-B, layer by layer")
    arch_info("fbnet-b", None, False)


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
