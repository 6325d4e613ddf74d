"""The house: imports run one way without circles, one installed name, and quick start-up.

The import graph is read from the source (every `import`, lazy ones in
functions included), with the folders mapped to their installed names as
pyproject's `package-dir` maps them.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def package_dirs() -> dict[str, Path]:
    """Installed package name → source folder, from pyproject.toml."""
    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    mapping = cfg["package-dir"]
    out = {}
    for pkg in cfg["packages"]:
        base = next(p for p in sorted(mapping, key=len, reverse=True) if pkg == p or pkg.startswith(p + "."))
        rest = pkg[len(base):].lstrip(".")
        out[pkg] = ROOT / mapping[base] / Path(*rest.split(".")) if rest else ROOT / mapping[base]
    return out


def modules() -> dict[str, Path]:
    """Every installed module name → its file."""
    out: dict[str, Path] = {}
    for pkg, folder in package_dirs().items():
        for f in sorted(folder.glob("*.py")):
            out[pkg if f.stem == "__init__" else f"{pkg}.{f.stem}"] = f
    return out


def _targets(node: ast.AST, module: str, is_pkg: bool, known: set[str]) -> set[str]:
    """Modules of ours that one import statement loads."""
    found: set[str] = set()
    if isinstance(node, ast.Import):
        for alias in node.names:
            name = alias.name
            while name and name not in known:
                name = name.rpartition(".")[0]
            if name:
                found.add(name)
    elif isinstance(node, ast.ImportFrom):
        base = node.module or ""
        if node.level:
            parts = module.split(".") if is_pkg else module.split(".")[:-1]
            parts = parts[: len(parts) - node.level + 1]
            base = ".".join(parts + ([base] if base else []))
        for alias in node.names:
            full = f"{base}.{alias.name}"
            if full in known:
                found.add(full)
            elif base in known:
                found.add(base)
    return found


def import_graph() -> dict[str, set[str]]:
    mods = modules()
    known = set(mods)
    graph: dict[str, set[str]] = {}
    for name, path in mods.items():
        tree = ast.parse(path.read_text(), str(path))
        edges: set[str] = set()
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                edges |= _targets(node, name, path.stem == "__init__", known)
        edges.discard(name)
        graph[name] = edges
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle as a list of modules (first == last), or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


#: part → the parts it may import (DESIGN: hwnas → {report, search, profiler, latency_models} → devices;
#: every part may read hwnas.search.space, the vocabulary).
ROOT_MODULES = ("hwnas", "hwnas.api", "hwnas.cli", "hwnas.wiring", "hwnas.reporting", "hwnas.fitting", "hwnas.output",
                "hwnas.__main__", "hwnas.commands")
ALLOWED = {
    "hwnas.devices": {"hwnas.devices"},
    "hwnas.search": {"hwnas.search", "hwnas.devices"},
    "hwnas.profiler": {"hwnas.profiler", "hwnas.search", "hwnas.devices"},
    "hwnas.latency_models": {"hwnas.latency_models", "hwnas.devices"},
    "hwnas.report": {"hwnas.report", "hwnas.devices"},
}


def part_of(module: str) -> str:
    if module == "hwnas.search.space" or module.startswith("hwnas.search.space."):
        return "vocabulary"
    for part in ALLOWED:
        if module == part or module.startswith(part + "."):
            return part
    return "root"


def wrong_arrows(graph: dict[str, set[str]]) -> list[str]:
    bad = []
    for src, dsts in graph.items():
        part = part_of(src)
        for dst in dsts:
            target = part_of(dst)
            if target == "vocabulary" or part == "root":
                continue
            if part == "vocabulary" and target != "vocabulary":
                bad.append(f"{src} -> {dst}")
            elif part != "vocabulary" and target not in ALLOWED[part]:
                bad.append(f"{src} -> {dst}")
    return sorted(bad)


def test_the_checker_finds_a_circle_and_a_wrong_arrow():
    circle = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert find_cycle(circle) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None
    assert wrong_arrows({"hwnas.search.dnas": {"hwnas.latency_models.io"}}) == [
        "hwnas.search.dnas -> hwnas.latency_models.io"]
    assert wrong_arrows({"hwnas.devices.local": {"hwnas.search.space"}}) == []


def test_no_import_circle_and_no_arrow_against_design():
    graph = import_graph()
    assert len(graph) > 60  # the walk found the whole package, not an empty tree
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph) or [])
    assert wrong_arrows(graph) == []


def test_every_package_folder_is_installed():
    """A folder with an __init__.py that pyproject forgets would be missing from a user's install."""
    dirs = {p.resolve() for p in package_dirs().values()}
    for top in ("hwnas", "search", "devices", "profiler", "latency_models", "benchmarks/report"):
        for init in (ROOT / top).rglob("__init__.py"):
            assert init.parent.resolve() in dirs, f"{init.parent} is not in pyproject's packages"


def test_registries_are_leaves():
    graph = import_graph()
    for registry in ("hwnas.search.space.registry", "hwnas.devices.registry"):
        assert not any(d.startswith(("hwnas.search.fbnet", "hwnas.devices.local", "hwnas.devices.adb"))
                       for d in graph[registry]), graph[registry]


def test_no_source_file_over_the_size_limit():
    long = {str(p.relative_to(ROOT)): n for p in modules().values()
            if (n := len(p.read_text().splitlines())) > 450}
    assert not long


def test_importing_any_part_does_not_load_the_api():
    """`hwnas/__init__` re-exports the API lazily: every part's import runs it first, and an eager
    `import hwnas.api` there closed an import circle (hwnas -> hwnas.api -> hwnas.reporting -> hwnas)."""
    code = ("import sys, hwnas.search.space, hwnas.latency_models.transfer; "
            "assert 'hwnas.api' not in sys.modules and 'hwnas.reporting' not in sys.modules; "
            "import hwnas; assert callable(hwnas.fit) and callable(hwnas.search) and 'hwnas.api' in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_cli_start_up_loads_no_runtime():
    """`hwnas --help` and `hwnas arch info` must not pay for torch, ONNX Runtime or LiteRT."""
    code = ("import sys, runpy; sys.argv = {argv!r}\n"
            "try:\n    runpy.run_module('hwnas', run_name='__main__')\nexcept SystemExit:\n    pass\n"
            "heavy = [m for m in ('torch', 'onnxruntime', 'ai_edge_litert', 'tflite_runtime') if m in sys.modules]\n"
            "print('HEAVY', heavy)")
    for argv in (["hwnas", "--help"], ["hwnas", "arch", "info", "fbnet-b"]):
        p = subprocess.run([sys.executable, "-c", code.format(argv=argv)], capture_output=True, text=True,
                           timeout=120, env={**os.environ, "COLUMNS": "120"})
        assert "HEAVY []" in p.stdout, (argv, p.stdout[-500:], p.stderr[-500:])


@pytest.mark.slow
def test_install_puts_only_hwnas_at_the_top_of_site_packages(tmp_path):
    target = tmp_path / "site"
    p = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                        "--target", str(target), str(ROOT)], capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-2000:]
    top = sorted(e.name for e in target.iterdir() if e.name != "bin")
    assert top[0] == "hwnas" and len(top) == 2 and top[1].startswith("hwnas-") and top[1].endswith(".dist-info")
    installed = target / "hwnas"
    assert (installed / "report" / "templates" / "report.html.j2").is_file()
    assert (installed / "search" / "fbnetv2" / "supernet.py").is_file()
    assert (installed / "devices" / "adbd" / "__main__.py").is_file()
    assert not (installed / "suites").exists() and not list(installed.rglob("bench_*.py"))


@pytest.mark.parametrize("name", ["fbnet-b", "fbnetv2-f1"])
def test_arch_info_counts_agree_with_torch(name):
    """`arch info` uses closed forms (no torch at start-up); they must equal torch's FLOP counter."""
    from hwnas.commands.arch import arch_summary
    from hwnas.search.count import summarize
    from hwnas.search.space import resolve_arch

    space, arch = resolve_arch(name)
    fast, counted = arch_summary(space, arch), summarize(space.blocks(arch))
    assert [(r["macs"], r["params"], r["output_shape"]) for r in fast["layers"]] == \
        [(r["macs"], r["params"], r["output_shape"]) for r in counted["layers"]]
