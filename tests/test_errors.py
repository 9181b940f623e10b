"""One exception family: every error the project defines is a ``SeedsearchError``, and each
lives in the package that raises it, the indexer never reaching into the service for one."""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
from pathlib import Path

from conftest import ROOT

import indexer
import search_api
from indexer.errors import SeedsearchError


def project_modules() -> list[str]:
    names = []
    for package in (indexer, search_api):
        found = pkgutil.walk_packages(package.__path__, f"{package.__name__}.")
        names += [info.name for info in found if not info.name.endswith(".__main__")]
    return names


def test_every_exception_the_project_defines_is_a_seedsearch_error() -> None:
    defined = [
        cls
        for module in project_modules()
        for _, cls in inspect.getmembers(importlib.import_module(module), inspect.isclass)
        if cls.__module__ == module and issubclass(cls, BaseException)
    ]
    assert len(defined) > 10
    assert [cls for cls in defined if not issubclass(cls, SeedsearchError)] == []


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
    return names


def test_the_indexer_library_never_imports_the_service() -> None:
    # Its command line may wire the two (the build's quality gate scores with a Searcher).
    library = [p for p in (ROOT / "indexer").rglob("*.py") if p.name != "__main__.py"]
    assert len(library) > 10
    reaching = {
        str(path.relative_to(ROOT)): sorted(
            m for m in imported_modules(path) if m.startswith("search_api")
        )
        for path in library
    }
    assert {path: names for path, names in reaching.items() if names} == {}
