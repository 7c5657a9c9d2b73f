"""Media URLs come from a payload's chain of lookups: SAPA downloads only from allowed hosts, and
the bearer token goes nowhere else (no server-side request to an address someone chose)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import flask
import pytest
from werkzeug.serving import make_server

from sapa.adapters.graph_whatsapp import GraphWhatsApp
from sapa.domain.errors import PermanentError

TOKEN = "rahasia-token"


class Graph:
    """A Graph API stand-in whose media metadata points wherever a test says."""

    def __init__(self) -> None:
        self.app = flask.Flask("graph")
        self.media_url = ""
        self.hits: list[tuple[str, str | None]] = []
        app = self.app

        @app.get("/v21.0/<media_id>")
        def meta(media_id: str) -> Any:
            return {
                "url": self.media_url,
                "mime_type": "image/png",
                "id": media_id,
                "messaging_product": "whatsapp",
            }

        @app.get("/files/<name>")
        def files(name: str) -> Any:
            self.hits.append((flask.request.host, flask.request.headers.get("Authorization")))
            if name == "hop":
                return flask.redirect(self.redirect_to, 302)
            return flask.Response(b"\x89PNG\r\n\x1a\nDATA", mimetype="image/png")

        self.redirect_to = ""

    def __enter__(self) -> Graph:
        self.server = make_server("127.0.0.1", 0, self.app, threaded=True)
        self.port = self.server.server_port
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()


@pytest.fixture
def graph() -> Iterator[Graph]:
    with Graph() as g:
        yield g


def client(graph: Graph) -> GraphWhatsApp:
    return GraphWhatsApp(f"http://127.0.0.1:{graph.port}/v21.0", TOKEN, timeout=5)


def test_media_on_the_api_host_is_downloaded(graph: Graph) -> None:
    graph.media_url = f"http://127.0.0.1:{graph.port}/files/ok"
    media = client(graph).fetch_media("m1")
    assert media.data.startswith(b"\x89PNG")


def test_a_media_url_on_another_host_is_refused_and_gets_no_token(graph: Graph) -> None:
    # GIVEN metadata pointing at another host (the same server, reached under another name)
    graph.media_url = f"http://localhost:{graph.port}/files/ok"
    # WHEN SAPA fetches the media
    with pytest.raises(PermanentError, match="tidak diizinkan"):
        client(graph).fetch_media("m1")
    # THEN nothing was requested there, so the token never left for it
    assert graph.hits == []


def test_a_redirect_to_another_host_is_refused_before_it_is_followed(graph: Graph) -> None:
    graph.media_url = f"http://127.0.0.1:{graph.port}/files/hop"
    graph.redirect_to = f"http://localhost:{graph.port}/files/ok"
    with pytest.raises(PermanentError, match="tidak diizinkan"):
        client(graph).fetch_media("m1")
    assert [host.split(":")[0] for host, _ in graph.hits] == ["127.0.0.1"]


def test_plain_http_is_only_for_the_local_simulator() -> None:
    wa = GraphWhatsApp("https://graph.facebook.com/v21.0", TOKEN, media_hosts=(".fbsbx.com",))
    ok = "https://lookaside.fbsbx.com/whatsapp_business/attachments/?mid=1"
    assert wa._media_url(ok) == ok
    assert wa._media_url("http://lookaside.fbsbx.com/x") is None
    assert wa._media_url("https://fbsbx.com.evil.example/x") is None
    assert wa._media_url("https://169.254.169.254/latest/meta-data") is None
    assert wa._media_url("file:///etc/passwd") is None


@pytest.mark.parametrize(
    "url",
    [
        "https://169.254.169.254\\@lookaside.fbsbx.com/",  # requests: host 169.254.169.254
        "https://evil.com\\.fbsbx.com/",  # requests: host evil.com
        "https://user:pw@lookaside.fbsbx.com/x",
        "https://lookaside.fbsbx.com/x y",
        "https://lookaside.fbsbx.com/\x00",
        "https://[::1]/x",
        "ftp://lookaside.fbsbx.com/x",
    ],
)
def test_urls_that_parsers_read_differently_are_refused(url: str) -> None:
    wa = GraphWhatsApp("https://graph.facebook.com/v21.0", TOKEN, media_hosts=(".fbsbx.com",))
    assert wa._media_url(url) is None


def test_a_backslash_trick_reaches_no_other_host_and_leaks_no_token(graph: Graph) -> None:
    # GIVEN metadata whose URL names the allowed host to urlsplit but another to requests
    # (the same server under the name "localhost" stands for an attacker's listener)
    graph.media_url = f"http://localhost:{graph.port}\\@127.0.0.1:{graph.port}/files/ok"
    # WHEN SAPA fetches the media
    with pytest.raises(PermanentError, match="tidak diizinkan"):
        client(graph).fetch_media("m1")
    # THEN nothing was requested anywhere: the token went nowhere
    assert graph.hits == []
