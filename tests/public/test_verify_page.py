"""The public verification page: rate limited per client, nothing personal shown."""

from __future__ import annotations

from typing import Any

import pytest
from functions_framework import create_app

from sapa.bootstrap import Container
from sapa.ratelimit import RateLimiter
from tests.conftest import ROOT


@pytest.fixture
def client(container: Container) -> Any:
    container.settings = container.settings.model_copy(  # type: ignore[misc]
        update={"verify_rate_per_minute": 5}
    )
    app = create_app(target="verify", source=str(ROOT / "functions" / "main.py"))
    import verify  # importable once main.py has put functions/ on the path

    verify._limiter = None  # a fresh window for this test
    return app.test_client()


def test_one_client_is_limited_and_told_when_to_come_back(client: Any) -> None:
    for _ in range(5):
        assert client.get("/d/unknown", environ_base={"REMOTE_ADDR": "10.0.0.7"}).status_code == 404
    refused = client.get("/d/unknown", environ_base={"REMOTE_ADDR": "10.0.0.7"})
    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) >= 1
    assert "Terlalu banyak" in refused.get_data(as_text=True)
    # another client is not held up by the first
    assert client.get("/d/unknown", environ_base={"REMOTE_ADDR": "10.0.0.8"}).status_code == 404


def test_the_front_ends_address_counts_not_what_the_client_claims(client: Any) -> None:
    for n in range(5):
        client.get("/d/x", headers={"X-Forwarded-For": f"1.2.3.{n}, 203.0.113.9"})
    spoofed = client.get("/d/x", headers={"X-Forwarded-For": "9.9.9.9, 203.0.113.9"})
    assert spoofed.status_code == 429


def test_the_window_slides() -> None:
    now = [0.0]
    rl = RateLimiter(2, 10.0, clock=lambda: now[0])
    assert rl.allow("a") and rl.allow("a") and not rl.allow("a")
    now[0] = 10.5
    assert rl.allow("a")


def test_memory_stays_bounded() -> None:
    rl = RateLimiter(1, 60.0, max_keys=100)
    for n in range(1000):
        rl.allow(f"client-{n}")
    assert len(rl._hits) <= 100
