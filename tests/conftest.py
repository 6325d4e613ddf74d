"""Shared test configuration: run the CLI in-process, and keep caches inside tmp dirs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Export caches and stores go to a per-session tmp dir, never the user's home."""
    cache = tmp_path_factory.getbasetemp() / "hwnas-cache"
    monkeypatch.setenv("HWNAS_CACHE_DIR", str(cache))


def run_cli(*args: str, check: bool = False, timeout: float = 600, env: dict | None = None,
            cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run `python -m hwnas ARGS` as a user would, capturing output."""
    full_env = {**os.environ, **(env or {})}
    proc = subprocess.run([sys.executable, "-m", "hwnas", *args], capture_output=True, text=True,
                          timeout=timeout, env=full_env, cwd=cwd or ROOT)
    if check and proc.returncode != 0:
        raise AssertionError(f"hwnas {' '.join(args)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
    return proc


@pytest.fixture
def cli():
    return run_cli
