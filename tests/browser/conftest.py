"""Real-browser fixtures: Debian's Chromium driven by Python Playwright, and a LocalStack.

The whole directory is skipped (with the reason) when Chromium or Playwright is missing. We never
run `playwright install`: the browser is the distribution's package, found on PATH.

    apt-get install -y chromium          # Debian 12 (as root)
    .venv/bin/pip install playwright     # or: pip install -e '.[dev]'
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from typing import Any

import pytest

from sapa.dev.localserver import LocalStack
from sapa.settings import load_settings

from .support import DESKTOP, PHONE, fresh_wa_id, greet_over_http

CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "browser: drives the web pages in a real headless Chromium (Playwright)"
    )


@pytest.fixture(scope="package")
def browser() -> Iterator[Any]:
    """One headless Chromium for all browser tests; skips them all when it cannot start.

    Scoped to this package, not the session: Playwright's sync API keeps an asyncio loop
    running in the main thread while it is open, and any later test that calls asyncio.run()
    (pyHanko signing does) would fail with "cannot be called from a running event loop"."""
    chromium = shutil.which("chromium")
    # CI sets SAPA_REQUIRE_BROWSER=1: there a missing browser is a failure, never a skip.
    skip = pytest.fail if os.environ.get("SAPA_REQUIRE_BROWSER") == "1" else pytest.skip
    if chromium is None:
        skip(
            reason="Chromium not found on PATH: install it with `apt-get install -y chromium` "
            "(Debian 12, as root); `playwright install` is not used"
        )
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        skip(
            reason="Python Playwright is not importable: install it with "
            "`.venv/bin/pip install playwright` (or `pip install -e '.[dev]'`)"
        )
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    """The whole embedded stack on a random port, on its own data directory, per module."""
    s = LocalStack(load_settings(sapa_data_dir=tmp_path_factory.mktemp("sapa") / "var"))
    s.start()
    yield s
    s.stop()


def _context(browser: Any, viewport: dict[str, int], **options: Any) -> Any:
    ctx = browser.new_context(
        viewport=viewport, locale="id-ID", timezone_id="Asia/Makassar", **options
    )
    ctx.set_default_timeout(10_000)
    return ctx


@pytest.fixture
def context(browser: Any) -> Iterator[Any]:
    """A fresh phone-sized browser profile (cookies, localStorage) per test."""
    ctx = _context(browser, PHONE)
    yield ctx
    ctx.close()


@pytest.fixture
def page(context: Any) -> Any:
    return context.new_page()


@pytest.fixture
def no_js_page(browser: Any) -> Iterator[Any]:
    """A phone with JavaScript switched off: the pages must work without it."""
    ctx = _context(browser, PHONE, java_script_enabled=False)
    yield ctx.new_page()
    ctx.close()


@pytest.fixture
def desk(browser: Any) -> Iterator[Any]:
    """A page on an office desktop screen."""
    ctx = _context(browser, DESKTOP)
    yield ctx.new_page()
    ctx.close()


@pytest.fixture
def guestbook_link(stack: LocalStack) -> str:
    """A fresh resident's guest-book link (greeted over HTTP, the link sent by SAPA)."""
    return greet_over_http(stack.base_url, fresh_wa_id())
