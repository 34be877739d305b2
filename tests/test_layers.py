"""The package's layers import one way, function-local imports included, and nothing imports in a
circle: the core <- data/ <- evaluation <- book/ (README, "Layout")."""

import ast
import graphlib
import re
from pathlib import Path

import pytest

import vaegan_lite

PKG = Path(vaegan_lite.__file__).parent
ROOT = PKG.parent

# Each module's layer; a module may import only from its own layer and those below it.
CORE = {"config", "nets", "losses", "models", "optim", "train", "checkpoint", "distributed",
        "files", "images", "errors"}  # fmt: skip
EVALUATION = {"metrics", "classifier", "attributes", "shipped", "bench", "cli"}
LAYERS = ("core", "data", "evaluation", "book")
FACADES = {"vaegan_lite", "vaegan_lite.__main__"}  # the top level re-exports; nothing imports it


def layer(module: str) -> str:
    part = module.split(".")[1]
    if part in ("data", "book"):
        return part
    if part in ("_version", "_progress"):
        return "core"  # they import nothing of the package: every layer may use them
    if part in CORE:
        return "core"
    if part in EVALUATION:
        return "evaluation"
    raise AssertionError(f"{module}: give it a layer in tests/test_layers.py")


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = list(path.with_suffix("").relative_to(root).parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(pkg: Path = PKG) -> dict[str, set[str]]:
    """module -> the package's modules it imports anywhere in its file (ast, not import time)."""
    modules = {module_name(p, pkg.parent): p for p in pkg.rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        found = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom):
                base = package.split(".")[: len(package.split(".")) - max(node.level - 1, 0)]
                target = (".".join(base + [node.module] if node.module else base)
                          if node.level else node.module or "")  # fmt: skip
                for alias in node.names:
                    sub = f"{target}.{alias.name}"
                    found.add(sub if sub in modules else target)
            elif isinstance(node, ast.Import):
                found |= {alias.name for alias in node.names}
        graph[name] = {m for m in found if m.split(".")[0] == pkg.name and m != name}
    return graph


GRAPH = imports()


def test_the_scan_sees_function_local_imports_and_every_module(tmp_path):
    assert "vaegan_lite.book.runs" in GRAPH and "vaegan_lite.data.sets" in GRAPH
    assert "vaegan_lite.train" in GRAPH["vaegan_lite.book.runs"]
    pkg = tmp_path / "vaegan_lite"  # a package whose only upward import hides in a function
    (pkg / "data").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "data" / "__init__.py").write_text("")
    (pkg / "data" / "sets.py").write_text("import torch\n")
    (pkg / "models").mkdir()
    (pkg / "models" / "__init__.py").write_text("")
    local = "def f():\n    from ..data import sets\n    from . import x\n"
    (pkg / "models" / "fast.py").write_text(local)
    found = imports(pkg)["vaegan_lite.models.fast"]
    assert found == {"vaegan_lite.data.sets", "vaegan_lite.models"}


@pytest.mark.parametrize("module", sorted(set(GRAPH) - FACADES))
def test_a_module_imports_only_its_layer_and_those_below(module):
    mine = LAYERS.index(layer(module))
    upward = [m for m in GRAPH[module] if m in FACADES or LAYERS.index(layer(m)) > mine]
    assert not upward, f"{module} ({layer(module)}) imports from above: {sorted(upward)}"


def test_no_module_imports_in_a_circle():
    graphlib.TopologicalSorter(GRAPH).prepare()  # raises CycleError with the circle


def test_the_package_says_the_version_pyproject_gives():
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert re.search(r'^version = "(.+)"$', pyproject, re.M)[1] == vaegan_lite.__version__
