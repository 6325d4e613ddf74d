"""The README's own examples: every `hwnas` command line parses against the CLI, the ones that need no
device run, and the Python example runs as written."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import click
import pytest
import typer

from hwnas.cli import app

README = Path(__file__).resolve().parents[1] / "README.md"


def code_blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", README.read_text(), flags=re.S)


def command_lines() -> list[str]:
    """`hwnas ...` lines of the README's shell blocks, continuation lines joined, comments dropped."""
    out = []
    for block in code_blocks("sh"):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split(" # ")[0].split("  #")[0].strip()
            if line.startswith("hwnas ") and "..." not in line:
                out.append(line)
    return out


def _resolve(argv: list[str]) -> tuple[click.Command, list[str], str]:
    cmd: click.Command = typer.main.get_command(app)
    name = "hwnas"
    while isinstance(cmd, click.Group) and argv and argv[0] in cmd.commands:
        name = f"{name} {argv[0]}"
        cmd, argv = cmd.commands[argv[0]], argv[1:]
    return cmd, argv, name


def test_the_readme_shows_commands_of_every_group():
    lines = command_lines()
    assert len(lines) > 25
    for group in ("arch", "space", "devices", "bench", "adb", "profile", "lut", "fit", "predict", "evaluate",
                  "search", "train", "export", "report", "demo"):
        assert any(line.split()[1] == group for line in lines), group


@pytest.mark.parametrize("line", command_lines())
def test_every_readme_command_line_parses(line):
    """Every flag the README shows exists, takes the value shown, and no required option is missing."""
    cmd, args, name = _resolve(shlex.split(line)[1:])
    assert not isinstance(cmd, click.Group), f"{line}: no such command"
    with cmd.make_context(name, list(args)) as ctx:  # raises UsageError on a wrong flag or value
        assert ctx.params is not None


@pytest.mark.parametrize("line", [line for line in command_lines()
                                  if line.split()[1] in ("arch", "space") or line == "hwnas devices"])
def test_readme_commands_that_need_no_device_run(line, cli):
    result = cli(*shlex.split(line)[1:])
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip()


@pytest.mark.slow
@pytest.mark.integration
@pytest.mark.timeout(1600)  # the whole loop (profile ... report); its own subprocess limit of 1500 s governs
def test_the_python_example_runs_as_written(tmp_path):
    (example,) = [b for b in code_blocks("python") if "hwnas.profile(" in b]
    p = subprocess.run([sys.executable, "-c", example], cwd=tmp_path, capture_output=True, text=True, timeout=1500,
                       env={**os.environ, "COLUMNS": "120"})
    assert p.returncode == 0, p.stderr[-3000:]
    assert "predicted_ms" in p.stdout and "fbnet-b" not in p.stderr
    for f in ("hw.db", "runs/a/arch.json", "runs/a/history.json", "runs/a/train.json", "runs/a/model.pt",
              "report.html"):
        assert (tmp_path / f).is_file(), f
    page = (tmp_path / "report.html").read_text()
    assert "<html" in page and "runs/a" not in p.stderr
