"""`hwnas arch info` and `hwnas space ...` as a user runs them."""

from __future__ import annotations

import json

import pytest

from hwnas.search.space import FBNET_OPS, format_arch, get_preset


@pytest.mark.parametrize("name, paper", [("fbnet-a", 249e6), ("fbnet-b", 295e6), ("fbnet-c", 375e6)])
def test_arch_info_json_reports_macs_within_3_percent(cli, name, paper):
    proc = cli("arch", "info", name, "--json", check=True)
    data = json.loads(proc.stdout)
    assert abs(data["total_macs"] / paper - 1) <= 0.03
    assert len(data["layers"]) == 25  # stem + 22 + head conv + fc


def test_arch_info_table_and_integer_form(cli):
    _, ops = get_preset("fbnet-b")
    ints = ",".join(str(FBNET_OPS.index(o)) for o in ops)
    by_name = json.loads(cli("arch", "info", format_arch(ops), "--json", "--space", "fbnet-cifar", check=True).stdout)
    by_int = json.loads(cli("arch", "info", ints, "--json", "--space", "fbnet-cifar", check=True).stdout)
    assert by_name["total_macs"] == by_int["total_macs"]
    table = cli("arch", "info", "fbnet-b", check=True).stdout
    assert "total:" in table and "MMACs" in table


def test_malformed_arch_is_one_line_and_exit_2(cli):
    proc = cli("arch", "info", "-".join(["k3_e1"] * 5 + ["k9_e1"] + ["k3_e1"] * 16))
    assert proc.returncode == 2
    assert "position 6" in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_space_blocks_json_unique(cli):
    blocks = json.loads(cli("space", "blocks", "fbnet-cifar", "--json", check=True).stdout)
    keys = [b["key"] for b in blocks]
    assert len(keys) == len(set(keys)) > 100


def test_unknown_space_exit_2(cli):
    proc = cli("space", "blocks", "nope")
    assert proc.returncode == 2 and "unknown search space" in proc.stderr


def test_help_explains(cli):
    out = cli("--help", check=True).stdout
    assert "arch" in out and "space" in out


def test_help_paragraphs_wrap_as_paragraphs(cli):
    """A docstring's own line breaks do not survive into --help (they left ragged half-empty lines)."""
    lines = [ln.strip(" │") for ln in cli("fit", "--help", check=True, env={"COLUMNS": "80"}).stdout.splitlines()]
    body = lines[lines.index("Fit a latency model and print its cross-validated accuracy."):]
    # Every wrapped line of a paragraph but its last runs close to the width (no line ends after a few words).
    para = body[2:body.index("", 2)]
    assert len(para) >= 2 and all(len(ln) >= 60 for ln in para[:-1])
