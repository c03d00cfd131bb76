"""The layers of pyproject.toml's import contract (``lint-imports``, run by make test) cover
every module, and no module imports itself round a circle (docs/development.md, "Layers")."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parent.parent
# What plugin packages import (``from bookwise.plugins import Channel, hookimpl``): a facade
# over several layers, which Bookwise's own modules never import.
FACADES = {"bookwise.plugins"}


def layer_modules() -> list[str]:
    """The modules named by the layers contract, in its order."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    (layers,) = (c for c in config["tool"]["importlinter"]["contracts"] if c["id"] == "layers")
    names: list[str] = []
    for layer in layers["layers"]:
        names.extend(n.strip() for part in layer.split("|") for n in part.split(":"))
    return [n for n in names if n]


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    return grimp.build_graph("bookwise", cache_dir=None, exclude_type_checking_imports=True)


def test_every_module_has_one_layer(graph: grimp.ImportGraph) -> None:
    named = layer_modules()
    assert len(named) == len(set(named)), "a module is named twice"

    def layers_of(module: str) -> list[str]:
        return [n for n in named if module == n or module.startswith(n + ".")]

    # A package's __init__ that only holds its docstring needs no layer; a module does.
    missing = [
        m
        for m in sorted(graph.modules)
        if not layers_of(m)
        and graph.find_modules_directly_imported_by(m)
        and m not in {"bookwise", *FACADES}
    ]
    twice = [m for m in sorted(graph.modules) if len(layers_of(m)) > 1]
    assert missing == [], "give these modules a layer in pyproject.toml [tool.importlinter]"
    assert twice == []
    assert [m for f in FACADES for m in graph.find_modules_that_directly_import(f)] == []


def test_no_import_circle(graph: grimp.ImportGraph) -> None:
    circles = [
        (module, imported)
        for module in sorted(graph.modules)
        for imported in graph.find_modules_directly_imported_by(module)
        if graph.chain_exists(importer=imported, imported=module)
    ]
    assert circles == []


def test_the_import_contract_holds() -> None:
    result = subprocess.run(
        [str(Path(sys.executable).with_name("lint-imports")), "--no-cache"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:]
