"""The domain is pure: no cloud SDK, web framework, HTTP client or database in it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import sapa.domain

DOMAIN = Path(sapa.domain.__file__).parent
FORBIDDEN = {
    "google",
    "flask",
    "functions_framework",
    "boto3",
    "werkzeug",
    "requests",
    "sqlite3",
}


def imported_modules(tree: ast.AST) -> set[str]:
    """Top-level package names imported anywhere in the module (also inside functions)."""
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute | ast.Name)
            and getattr(node.func, "attr", getattr(node.func, "id", "")) == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            found.add(node.args[0].value.split(".")[0])
    return found


MODULES = sorted(DOMAIN.glob("*.py"))


def test_the_domain_package_has_its_modules() -> None:
    names = {p.stem for p in MODULES}
    assert {"sop", "case", "sla", "values", "reference", "errors", "texts"} <= names


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.name)
def test_given_a_domain_module_then_it_imports_no_infrastructure(path: Path) -> None:
    tree = ast.parse(path.read_text("utf-8"), filename=str(path))
    bad = imported_modules(tree) & FORBIDDEN
    assert not bad, f"{path.name} imports {sorted(bad)}: the domain must stay pure"


@pytest.mark.parametrize(
    "source",
    [
        "import google.cloud.firestore",
        "from flask import Flask",
        "import requests as r",
        "def f():\n    import sqlite3",
        "from werkzeug.exceptions import NotFound",
        "import importlib\nimportlib.import_module('boto3')",
    ],
)
def test_given_an_impure_module_then_the_check_catches_it(source: str) -> None:
    assert imported_modules(ast.parse(source)) & FORBIDDEN
