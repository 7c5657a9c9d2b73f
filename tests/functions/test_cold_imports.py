"""Each entry point imports only what it uses (cold starts are paid per instance)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import ROOT

# (flask brings jinja2 with it, and google-cloud's namespace package is put in place at
# interpreter start by its .pth file: neither is ours to avoid)
# pydantic-settings: ~55 ms of every cold start for what sapa.settings does in a few lines.
HEAVY = (
    "pyhanko",
    "PIL",
    "google.cloud.firestore",
    "google.auth",
    "grpc",
    "cryptography.x509",
    "pydantic_settings",
)
PROBE = """
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("main", sys.argv[1])
main = importlib.util.module_from_spec(spec); spec.loader.exec_module(main)
getattr(main, sys.argv[2])
print(json.dumps(sorted({m for m in sys.modules})))
"""


def loaded_after(entry_point: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", PROBE, str(ROOT / "functions" / "main.py"), entry_point],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    return set(json.loads(out))


def heavy(modules: set[str]) -> list[str]:
    return sorted(h for h in HEAVY if any(m == h or m.startswith(h + ".") for m in modules))


@pytest.mark.parametrize("entry_point", ["wa_webhook", "notify", "command", "precheck"])
def test_the_webhook_and_the_messaging_tasks_load_nothing_heavy(entry_point: str) -> None:
    assert heavy(loaded_after(entry_point)) == []


def test_importing_the_bundle_loads_no_function_module() -> None:
    modules = loaded_after("__name__")
    assert not {"wa_webhook", "staff", "guestbook", "esign_request"} & modules


def test_every_entry_point_resolves() -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location("sapa_main_probe", ROOT / "functions" / "main.py")
    assert spec is not None and spec.loader is not None
    main = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(main)
    for name in main.ENTRY_POINTS:
        assert callable(getattr(main, name)), name
