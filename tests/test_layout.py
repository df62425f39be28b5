"""The package's shape: layers that only import downwards, no import loops, a cheap public face."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _import_graph():
    grimp = pytest.importorskip("grimp")
    return grimp.build_graph("camseg", include_external_packages=False)


def _strongly_connected(edges: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components, iteratively."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    for root in sorted(edges):
        if root in index:
            continue
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                comp = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    comp.append(member)
                    if member == node:
                        break
                out.append(sorted(comp))
    return out


def test_strongly_connected_known_answer():
    edges = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    comps = sorted(_strongly_connected(edges))
    assert comps == [["a", "b", "c"], ["d"], ["e"]]


def test_no_two_modules_import_each_other():
    graph = _import_graph()
    edges = {m: set(graph.find_modules_directly_imported_by(m)) for m in graph.modules}
    loops = [c for c in _strongly_connected(edges) if len(c) > 1]
    assert loops == [], f"import loops: {loops}"


def test_the_layers_contract_holds():
    """import-linter's contracts in pyproject.toml: each stage imports only the stages below it."""
    pytest.importorskip("importlinter")
    code = "from importlinter.cli import lint_imports; raise SystemExit(lint_imports())"
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "broken" not in proc.stdout.lower() or " 0 broken" in proc.stdout.lower(), proc.stdout


def test_import_camseg_is_cheap_and_has_a_version():
    code = ("import sys, time; t = time.perf_counter(); import camseg; dt = time.perf_counter() - t; "
            "print(dt, 'torch' in sys.modules, camseg.__version__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out[1] == "False", "import camseg imported torch"
    assert float(out[0]) < 0.5
    assert out[2] == version("camseg")


def test_every_public_name_resolves():
    import camseg

    assert "__version__" in dir(camseg) and "GradCAM" in dir(camseg)
    for name in camseg.__all__:
        assert getattr(camseg, name) is not None, name
    assert camseg.GradCAM.__module__ == "camseg.models.cam"
    with pytest.raises(AttributeError):
        camseg.not_a_name  # noqa: B018


def test_no_private_name_is_imported_across_modules():
    """A name starting with ``_`` stays in its module: nothing in camseg, the tests, the results or the
    benchmarks imports one from camseg."""
    import ast

    found = []
    for folder in ("camseg", "tests", "results", "benchmarks"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("camseg"):
                    found += [f"{path.relative_to(ROOT)}: {node.module}.{a.name}" for a in node.names
                              if a.name.startswith("_") and not a.name.startswith("__")]
    assert found == []
