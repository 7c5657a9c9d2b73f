"""Google's public-key endpoints for signed tokens, played on 127.0.0.1: IAP's
(`/iap/verify/public_key`) and OAuth2's (`/oauth2/v1/certs`) both answer a JSON map
{kid: PEM}; the tests sign tokens with the private halves (google-auth's own signers)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes


def pem_private(key: PrivateKeyTypes) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


@dataclass
class KeyServer:
    """What the endpoint serves (replaceable while it runs), its URL, and the paths it was
    asked for."""

    keys: dict[str, str]
    url: str = ""
    hits: list[str] = field(default_factory=list)


@contextmanager
def serving_keys(
    keys: dict[str, str], path: str, headers: dict[str, str] | None = None
) -> Iterator[KeyServer]:
    served = KeyServer(keys)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            served.hits.append(self.path)
            body = json.dumps(served.keys).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    served.url = f"http://127.0.0.1:{server.server_address[1]}{path}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield served
    finally:
        server.shutdown()
        server.server_close()
