"""Production code never imports the development tools (sapa.dev: the local server, the
WhatsApp simulator, the demo, the seed): the deploy bundle leaves that package out, so such an
import would fail in the cloud only, and maybe only on the one path that reaches it. Imports
inside functions and under TYPE_CHECKING count too, and so does importlib by name."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "shared" / "sapa"
DEV = PACKAGE / "dev"
FUNCTIONS = REPO / "functions"


def _is_dev(module: str) -> bool:
    return module == "sapa.dev" or module.startswith("sapa.dev.")


def _package_of(path: Path) -> str | None:
    """The dotted package a module of shared/sapa lives in (for relative imports)."""
    if not path.is_relative_to(PACKAGE):
        return None
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts if parts[-1] == "__init__" else parts[:-1]).removesuffix(".__init__")


def dev_imports(source: str, package: str | None = None) -> list[tuple[int, str]]:
    """(line, module) of every import of sapa.dev in `source`, anywhere in its body."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if _is_dev(a.name)]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                if package is None:
                    continue
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, *([base] if base else [])])
            names = [base, *(f"{base}.{a.name}" for a in node.names)]
            found += [(node.lineno, n) for n in names if _is_dev(n)][:1]
        elif isinstance(node, ast.Call) and node.args:
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            first = node.args[0]
            if (
                name in ("import_module", "__import__")
                and isinstance(first, ast.Constant)
                and isinstance(first.value, str)
                and _is_dev(first.value)
            ):
                found.append((node.lineno, first.value))
    return sorted(found)


def production_modules() -> Iterator[Path]:
    """Every module the Cloud Functions may run: functions/ and shared/sapa outside dev/."""
    yield from sorted(FUNCTIONS.rglob("*.py"))
    yield from sorted(p for p in PACKAGE.rglob("*.py") if not p.is_relative_to(DEV))


def test_no_production_module_imports_the_development_tools() -> None:
    modules = list(production_modules())
    assert len(modules) > 50, "the scan finds the modules"
    assert (DEV / "localserver.py").is_file(), "the development package is where it is expected"
    offenders = [
        f"{path.relative_to(REPO)}:{line}: {module}"
        for path in modules
        for line, module in dev_imports(path.read_text("utf-8"), _package_of(path))
    ]
    assert offenders == [], "production code imports sapa.dev (left out of the bundle)"


def test_the_scan_finds_every_kind_of_import() -> None:
    source = """
import sapa.dev.seed
from sapa import dev
from sapa.dev.simulator import create_simulator_app
from sapa import settings, dev as tools
from ..dev import localserver
from . import demo
from .simulator import app
import importlib

def later():
    from sapa.dev import seed
    return importlib.import_module("sapa.dev.demo")

if TYPE_CHECKING:
    from sapa.dev.localserver import LocalStack
"""
    found = dev_imports(source, package="sapa.dev")
    assert [line for line, _ in found] == [2, 3, 4, 5, 6, 7, 8, 12, 13, 16]
    # relative to another package, only the import that climbs into sapa.dev is one
    elsewhere = dev_imports(source, package="sapa.services")
    assert [line for line, _ in elsewhere] == [2, 3, 4, 5, 6, 12, 13, 16]
    harmless = 'import sapa.devices\nfrom sapa import development\n"sapa.dev in a docstring"\n'
    assert dev_imports(harmless) == []


def test_package_of_a_module() -> None:
    assert _package_of(PACKAGE / "services" / "messaging.py") == "sapa.services"
    assert _package_of(PACKAGE / "services" / "__init__.py") == "sapa.services"
    assert _package_of(PACKAGE / "settings.py") == "sapa"
    assert _package_of(FUNCTIONS / "main.py") is None
