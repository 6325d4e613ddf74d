"""The report opens in a real browser: headless Chromium loads it offline and shows the figures."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import matplotlib.image as mpimg
import numpy as np
import pytest

from hwnas.report.render import render_report, write_atomic
from hwnas.report.sample import sample_data

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (Debian: apt-get install chromium; "
                                                "`make test` installs it where apt-get is usable)"),
]

_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
          "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
          "--disable-extensions", "--enable-logging=stderr", "--v=0"]


def chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    """Run headless Chromium with a throwaway profile; the page needs no network at all."""
    return subprocess.run([CHROMIUM, *_FLAGS, f"--user-data-dir={tmp_path / 'profile'}", *args],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)


def render_page(path: Path, evil: bool = False) -> Path:
    data = sample_data(names=("<script>document.title='pwned'</script>", "cpu-b")) if evil else sample_data()
    return write_atomic(render_report(data, "html"), path)


def test_report_loads_in_chromium_and_shows_every_figure(tmp_path):
    page = render_page(tmp_path / "report.html", evil=True)
    proc = chromium(tmp_path, "--dump-dom", page.as_uri())
    assert proc.returncode == 0, proc.stderr[-2000:]
    dom = proc.stdout
    assert "<h1>hwnas device comparison</h1>" in dom
    # no script ran: the injected one stayed text, and the page title is untouched
    assert "<title>hwnas device comparison</title>" in dom and "pwned</title>" not in dom
    assert "<script" not in dom.lower()
    imgs = re.findall(r'<img src="(data:image/png;base64,[^"]+)" alt="([^"]*)"', dom)
    assert len(imgs) == 6
    alts = " ".join(alt for _, alt in imgs)
    assert "heatmap" in alts and "accuracy against latency" in alts
    # Chromium reports page errors (blocked loads, JS errors) on its console log
    console = [line for line in proc.stderr.splitlines() if "CONSOLE" in line or "Refused to" in line]
    assert console == []


def test_screenshot_shows_the_heatmap_and_plots(tmp_path):
    page = render_page(tmp_path / "report.html")
    shot = tmp_path / "shot.png"
    proc = chromium(tmp_path, f"--screenshot={shot}", "--window-size=1280,4000", "--hide-scrollbars", page.as_uri())
    assert proc.returncode == 0 and shot.is_file(), proc.stderr[-2000:]
    pixels = mpimg.imread(shot)[..., :3]
    assert pixels.shape[:2] == (4000, 1280)
    # the heatmaps sit in the top third: viridis has saturated colours no text or table has
    top = pixels[: pixels.shape[0] // 3]
    saturation = top.max(axis=2) - top.min(axis=2)
    assert (saturation > 0.4).mean() > 0.05
    # the whole page is far from blank: rows of pixels that are not plain white are most of it
    busy_rows = (np.abs(pixels - 1.0).sum(axis=2) > 0.3).any(axis=1).mean()
    assert busy_rows > 0.5
