"""The report builder: what a reader sees, escaping, formats, and the pure numbers behind it."""

from __future__ import annotations

import base64
import io
import json
import os
import re

import matplotlib.image as mpimg
import numpy as np
import pandas as pd
import pytest

from hwnas.report.render import build_context, history_curves, md_escape, render_report, write_atomic
from hwnas.report.data import noise_table, prediction_metrics, relative_ratio, throttled
from hwnas.search.space import infer_space
from hwnas.report.sample import block_frame, sample_data
from hwnas.search.space import InputError, get_space

EVIL = "<script>alert('x')</script>"


@pytest.fixture(scope="module")
def html_report() -> str:
    return render_report(sample_data(), "html")


def _images(page: str) -> list[bytes]:
    return [base64.b64decode(m) for m in re.findall(r'<img src="data:image/png;base64,([^"]+)"', page)]


def test_html_has_every_section_and_decodable_figures(html_report):
    for heading in ("Devices", "Block latency per layer", "Which blocks are relatively cheap where",
                    "Measurement noise", "Predictor accuracy", "Search results", "Chosen blocks per layer"):
        assert heading in html_report
    images = _images(html_report)
    # heatmaps, ratio, noise, one scatter per model, accuracy-latency, training curves
    assert len(images) == 6
    for png in images:
        pixels = mpimg.imread(io.BytesIO(png), format="png")
        assert pixels.shape[0] > 100 and pixels.shape[1] > 100
        assert pixels[..., :3].std() > 0.05  # a drawing, not a blank canvas
    assert "http://" not in html_report.replace("http://www.w3.org", "") and "https://" not in html_report
    assert "Content-Security-Policy" in html_report


def test_ratio_section_names_the_blocks_relatively_cheap_on_each_device(html_report):
    # device b runs k5 blocks 1.8x slower relative to everything else: k3 is its cheap side
    cheap = html_report.split("Relatively cheapest on")[1].split("</table>")[0]
    dear = html_report.split("Relatively dearest on")[1].split("</table>")[0]
    assert "k5_" not in cheap and "k3_" in cheap
    assert "k5_" in dear


def test_device_names_and_block_keys_are_escaped_in_html_and_markdown():
    data = sample_data(names=(EVIL, "b&<i>"))
    data.blocks.loc[0, "block_key"] = "key" + EVIL
    data.runs[0].name = EVIL
    data.sources = {"store": EVIL}
    page = render_report(data, "html")
    assert "<script" not in page.lower()
    assert "&lt;script&gt;" in page
    assert "<i>" not in page and "b&amp;&lt;i&gt;" in page
    md = render_report(data, "md")
    assert "<script" not in md.lower() and "<i>" not in md
    assert "&lt;script&gt;" in md


def test_markdown_has_tables_and_embedded_figures():
    md = render_report(sample_data(with_runs=False), "md")
    assert md.startswith("# hwnas device comparison")
    assert "| device | blocks | median rel. CI (%)" in md
    assert md.count("](data:image/png;base64,") == 4
    assert "_No search runs given._" in md
    # every table row has as many cells as its header
    lines = [line for line in md.splitlines() if line.startswith("| model |")]
    assert lines and lines[0].count("|") == 10


def test_report_without_model_or_runs_says_so():
    page = render_report(sample_data(with_model=False, with_runs=False), "html")
    assert "No latency model given" in page and "No search runs given" in page
    assert len(_images(page)) == 3


def test_single_device_report_has_no_ratio_section():
    data = sample_data(with_runs=False)
    data.devices = data.devices.iloc[:1]
    page = render_report(data, "html")
    assert "Which blocks are relatively cheap where" not in page
    assert "Block latency per layer" in page


def test_device_without_measurements_is_refused():
    data = sample_data()
    data.blocks = data.blocks[data.blocks["device"] != "cpu-b"]
    with pytest.raises(InputError, match="no measurements: cpu-b"):
        build_context(data)


def test_device_timed_by_whole_networks_only_is_reported_beside_the_others():
    """A phone profiled with --no-blocks --archs suggest:N: its networks show, the block sections skip it."""
    data = sample_data(with_runs=False)
    data.blocks = data.blocks[data.blocks["device"] != "cpu-b"]
    data.networks = pd.concat([data.networks, data.networks.assign(device="cpu-b")], ignore_index=True)
    ctx = build_context(data)
    assert [row[0] for row in ctx["networks"]] == ["cpu-a:onnxruntime?threads=1", "cpu-b:onnxruntime?threads=1"]
    assert ctx["blocks"]["heatmap"] and ctx["blocks"]["ratios"] == []  # cpu-a's panel only, nothing to compare
    assert [row[0] for row in ctx["noise"]["rows"]] == ["cpu-a:onnxruntime?threads=1"]
    only = sample_data(with_runs=False, with_model=False)
    only.devices = only.devices.iloc[:1]
    only.blocks = only.blocks.iloc[:0]
    page = render_report(only, "md")
    assert "_No block measurements to draw._" in page and "_No block timings._" in page
    assert "Whole networks measured" in page


def test_unknown_format_is_refused():
    with pytest.raises(InputError, match="unknown report format"):
        render_report(sample_data(), "pdf")


def test_blocks_outside_any_space_are_grouped_by_layer_shape():
    data = sample_data(with_model=False, with_runs=False)
    data.space = None
    ctx = build_context(data)
    assert ctx["blocks"]["grid_kind"] == "shape" and ctx["blocks"]["heatmap"]
    assert ctx["blocks"]["ratios"][0]["cheap"][0][0].count("→") == 1


def test_infer_space_picks_the_space_the_store_covers():
    keys = set(block_frame("d", "cpu", 1.0, 1.0)["block_key"])
    spaces = [get_space("fbnet"), get_space("fbnet-cifar")]
    assert infer_space(keys, spaces).name == "fbnet-cifar"
    assert infer_space({"nothing"}, spaces) is None


def test_relative_ratio_divides_out_the_typical_speed_difference():
    ref = pd.DataFrame({"k3": [1.0, 2.0], "k5": [2.0, 4.0]}, index=["l1", "l2"])
    other = pd.DataFrame({"k3": [0.5, 1.0], "k5": [2.0, 4.0]}, index=["l1", "l2"])
    rel, geo = relative_ratio(other, ref)
    assert geo == pytest.approx(np.sqrt(0.5))
    assert rel.loc["l1", "k3"] == pytest.approx(0.5 / np.sqrt(0.5))
    assert rel.loc["l1", "k5"] == pytest.approx(1 / np.sqrt(0.5))
    assert rel.loc["l1", "k3"] < 1 < rel.loc["l2", "k5"]


def test_noise_table_counts_flagged_and_throttled_blocks():
    blocks = block_frame("d", "cpu", 1.0, 1.0)
    blocks.loc[:2, "flagged"] = True
    blocks.loc[:4, "settled"] = False
    blocks["thermal_after"] = [{"throttled": True}] * 3 + [json.dumps({"throttled": False})] * (len(blocks) - 3)
    row = noise_table(blocks, ["d"]).iloc[0]
    assert row["flagged"] == 3 and row["throttled"] == 3
    assert row["settled_pct"] == pytest.approx(100 * (len(blocks) - 5) / len(blocks))
    expected = (blocks["ci_halfwidth_ms"] / blocks["median_ms"]).median() * 100
    assert row["median_rel_ci_pct"] == pytest.approx(expected)
    assert not throttled("not json") and throttled('{"throttled": true}')


def test_prediction_metrics_follow_the_peers_definitions():
    pred = pd.DataFrame({"model": "m", "device": "d", "level": "network", "key": list("abcd"),
                         "measured_ms": [10.0, 10.0, 10.0, 10.0], "predicted_ms": [10.4, 10.9, 11.5, 8.0]})
    row = prediction_metrics(pred).iloc[0]
    assert row["within5_pct"] == 25 and row["within10_pct"] == 50
    assert row["mape_pct"] == pytest.approx((4 + 9 + 15 + 20) / 4)


def test_history_curves_accept_fractions_and_percentages():
    curves = history_curves([{"val_acc": 50.0, "expected_ms": 3.0}, {"accuracy": 0.75, "latency_ms": 2.5},
                             {"loss": 1.0}, "junk"])
    assert curves == {"accuracy": [0.5, 0.75], "latency": [3.0, 2.5]}


def test_md_escape_neutralises_markup_and_table_breaks():
    assert md_escape("a|b <b>x</b> [l](u) *e*") == r"a\|b &lt;b&gt;x&lt;/b&gt; \[l\](u) \*e\*"
    assert md_escape("two\nlines") == "two lines"


def test_write_atomic_replaces_whole_file_and_leaves_nothing_on_failure(tmp_path, monkeypatch):
    out = tmp_path / "r.html"
    out.write_text("old")
    write_atomic("new", out)
    assert out.read_text() == "new"

    def boom(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr("os.replace", boom)
    with pytest.raises(OSError):
        write_atomic("half", out)
    assert out.read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.html"]


def test_write_atomic_refuses_missing_directory(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        write_atomic("x", tmp_path / "nope" / "r.html")


def test_write_atomic_gives_a_shareable_mode(tmp_path):
    """A new report gets 0666 less the umask (not mkstemp's 0600); a replaced one keeps its mode."""
    old = os.umask(0o022)
    try:
        fresh = write_atomic("x", tmp_path / "new.html")
    finally:
        os.umask(old)
    assert fresh.stat().st_mode & 0o777 == 0o644
    kept = tmp_path / "kept.html"
    kept.write_text("old")
    kept.chmod(0o640)
    write_atomic("new", kept)
    assert kept.stat().st_mode & 0o777 == 0o640
