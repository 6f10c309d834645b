"""The packages' order: foundation at the bottom, entry points on top, no import running upward.

Read from the source with ``ast``, imports inside functions included. A package imports only
packages of lower layers (so none in a circle), and from another package only what its
``__init__`` exports in ``__all__`` (benchmarks, which time internals, are exempt from that).
"""

from __future__ import annotations

import ast
import importlib
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Lowest first. Packages in one layer do not import each other.
LAYERS: list[tuple[str, ...]] = [
    ("cluster",),  # foundation: settings, envs, errors, ids and paths, records, crypto, registries, Ray
    ("memory", "actors", "synthetic"),  # the memory pipeline and search; the control plane; test data
    ("training",),  # fine-tuning: the recipe, the fine-tuner actor
    ("serving",),  # the Serve application
    ("engram",),  # entry points: the CLI, the demo, `ray job submit` jobs
    ("bench",),  # benchmarks
]
RANK = {package: rank for rank, layer in enumerate(LAYERS) for package in layer}


def packages(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir() if (p / "__init__.py").is_file() and p.name != "tests")


def imports(root: Path, package: str) -> Iterator[tuple[str, int, str, list[str]]]:
    """``(file, line, imported module, names)`` of every absolute import in ``package``, in
    functions too; ``names`` is empty for ``import x.y``."""
    for path in sorted((root / package).rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        where = str(path.relative_to(root))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    yield where, node.lineno, alias.name, []
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                yield where, node.lineno, node.module, [alias.name for alias in node.names]


def upward_imports(root: Path, rank: dict[str, int]) -> list[str]:
    """Every import of a package of the same or a higher layer than the importing one."""
    found = []
    for package in packages(root):
        for where, line, module, _ in imports(root, package):
            target = module.split(".")[0]
            if target in rank and target != package and rank[target] >= rank[package]:
                found.append(
                    f"{where}:{line}: {package} (layer {rank[package]}) imports {module} "
                    f"(layer {rank[target]})"
                )
    return found


def test_every_package_has_a_layer() -> None:
    assert sorted(RANK) == packages(ROOT), "place the new package in LAYERS"


def test_no_package_imports_one_of_its_own_layer_or_above() -> None:
    assert upward_imports(ROOT, RANK) == []


def test_an_upward_import_inside_a_function_is_found(tmp_path: Path) -> None:
    for name, body in {
        "low": "def f():\n    from high.app import start\n    return start\n",
        "high": "from low import f\n",
    }.items():
        (tmp_path / name).mkdir()
        (tmp_path / name / "__init__.py").write_text(body)
    assert upward_imports(tmp_path, {"low": 0, "high": 1}) == [
        "low/__init__.py:2: low (layer 0) imports high.app (layer 1)"
    ]


@pytest.mark.parametrize("package", [p for p in RANK if p != "bench"])
def test_the_public_face_is_what_init_exports(package: str) -> None:
    module = importlib.import_module(package)
    exported = getattr(module, "__all__", None)
    assert exported is not None, f"{package}/__init__.py declares no __all__"
    assert [name for name in exported if not hasattr(module, name)] == []


def test_other_packages_use_the_public_face() -> None:
    faces = {p: set(importlib.import_module(p).__all__) for p in RANK if p != "bench"}
    found = []
    for package in packages(ROOT):
        if package == "bench":
            continue
        for where, line, module, names in imports(ROOT, package):
            target = module.split(".")[0]
            if target not in faces or target == package:
                continue
            private = [n for n in names if n not in faces[target]]
            if module != target or private or not names:
                found.append(f"{where}:{line}: {module} {private or names}")
    assert found == []
