"""The import rules of DESIGN.md, checked on the source: flows -> models -> pipeline -> data_catalogs."""

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
