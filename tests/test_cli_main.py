"""The CLI's exit-code contract: command codes pass through, user mistakes exit 2."""

from __future__ import annotations

import pytest
import typer

from hwnas import cli


def test_typer_exit_code_passes_through(monkeypatch):
    sub = typer.Typer()

    @sub.command("fail")
    def fail() -> None:
        raise typer.Exit(3)

    cli.app.add_typer(sub, name="zz-test-exit", hidden=True)
    try:
        with pytest.raises(SystemExit) as exc:
            cli.main(["zz-test-exit", "fail"])
        assert exc.value.code == 3
    finally:
        cli.app.registered_groups = [g for g in cli.app.registered_groups if g.name != "zz-test-exit"]


def test_unknown_command_is_usage_error_exit_2():
    with pytest.raises(SystemExit) as exc:
        cli.main(["no-such-command"])
    assert exc.value.code == 2
