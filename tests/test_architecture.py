"""The import rules of docs/design.md, checked on the source: flows -> models -> pipeline -> data_catalogs."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

LAYERS = ("flows", "models", "pipeline", "data_catalogs")
# What each layer must not import (top-level package names).
FORBIDDEN = {
    "data_catalogs": {"flows", "models", "pipeline", "torch", "lightning", "prefect", "h5py", "galsim"},
    "pipeline": {"flows", "models", "prefect", "lightning", "pytorch_lightning", "prefect_dask"},
    "models": {"flows", "prefect", "prefect_dask"},
    "flows": set(),
}
DATA_CATALOGS_ALLOWED = {"numpy", "pandas", "astropy", "data_catalogs", "__future__"}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def _package_files(layer: str) -> list[Path]:
    # Provenance scripts under data_catalogs/samples are not part of the importable package.
    return [p for p in sorted((REPO / layer).rglob("*.py")) if "samples" not in p.relative_to(REPO).parts]


@pytest.mark.parametrize("layer", LAYERS)
def test_layer_imports_only_what_design_allows(layer):
    bad = []
    for path in _package_files(layer):
        imported = _imports(path)
        for name in sorted(imported & FORBIDDEN[layer]):
            bad.append(f"{path.relative_to(REPO)} imports {name}")
        if layer == "data_catalogs":
            third_party = {n for n in imported if n not in sys.stdlib_module_names}
            for name in sorted(third_party - DATA_CATALOGS_ALLOWED):
                bad.append(
                    f"{path.relative_to(REPO)} imports {name} (data_catalogs: numpy, pandas, astropy only)"
                )
    assert not bad, "\n".join(bad)


#: Size limits of the house (issue 17): a module one can read, functions that do one thing.
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 80
SIZED_LAYERS = ("flows", "models", "pipeline", "data_catalogs")


def _oversized(path: Path) -> list[str]:
    source = path.read_text()
    name = path.relative_to(REPO)
    found = []
    if len(source.splitlines()) > MAX_MODULE_LINES:
        found.append(f"{name}: {len(source.splitlines())} lines (at most {MAX_MODULE_LINES})")
    for node in ast.walk(ast.parse(source, filename=str(path))):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            length = node.end_lineno - node.lineno + 1
            if length > MAX_FUNCTION_LINES:
                found.append(
                    f"{name}:{node.lineno} {node.name}: {length} lines (at most {MAX_FUNCTION_LINES})"
                )
    return found


@pytest.mark.parametrize("layer", SIZED_LAYERS)
def test_modules_and_functions_stay_small(layer):
    found = [problem for path in _package_files(layer) for problem in _oversized(path)]
    assert not found, "\n".join(found)


def test_layer_rules_cover_every_package_folder():
    """Every folder of the layers is a package the rules above walk (a new domain folder cannot escape)."""
    for layer in LAYERS:
        for folder in (REPO / layer).rglob("*"):
            if folder.is_dir() and "samples" not in folder.parts and "__pycache__" not in folder.name:
                if any(folder.glob("*.py")):
                    assert (folder / "__init__.py").exists(), f"{folder.relative_to(REPO)} is not a package"
