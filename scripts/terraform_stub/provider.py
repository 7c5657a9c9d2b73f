"""A terraform provider plugin that knows its schema and nothing else: it answers
GetProviderSchema with a pre-encoded response and every Validate* call with no diagnostics, so
`terraform validate` checks a configuration against the real provider's schema (terraform
itself refuses unknown arguments, missing required ones and wrong types) without the provider.

Terraform starts it as `terraform-provider-<name>` (scripts/terraform_check.py installs a
wrapper in a filesystem mirror) and speaks hashicorp/go-plugin's protocol to it:

- the magic cookie TF_PLUGIN_MAGIC_COOKIE must be set, or this is not a plugin start;
- PLUGIN_PROTOCOL_VERSIONS lists the versions terraform speaks; the stub speaks 6;
- with PLUGIN_CLIENT_CERT (terraform's AutoMTLS, on unless TF_DISABLE_PLUGIN_TLS) the server
  speaks TLS with a fresh certificate, self-signed for "localhost", sent as base64 (raw,
  unpadded) DER in the handshake. It asks for terraform's client certificate but cannot insist:
  required, the handshake fails (PEER_DID_NOT_RETURN_A_CERTIFICATE: terraform's certificate is
  go-plugin's P-521 key, which grpcio's BoringSSL seems not to offer to sign with). Little is
  lost: the stub listens on 127.0.0.1 for the seconds of a `validate`, holds no secret and can
  do nothing but describe a public schema;
- the handshake is one line on stdout: `1|6|tcp|127.0.0.1:PORT|grpc|CERT`
  (core protocol 1, app protocol 6, network, address, protocol, certificate);
- plugin.GRPCController/Shutdown ends the process (else terraform waits 2 s, then kills it).

Methods it does not register (ApplyResourceChange, ...) answer UNIMPLEMENTED: it can validate,
never plan or apply. It needs only grpcio (already a runtime dependency, through the Firestore
and Cloud Tasks clients) and, for TLS, cryptography (through pyhanko)."""

from __future__ import annotations

import argparse
import base64
import datetime
import os
import signal
import sys
import threading
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc

MAGIC_COOKIE_KEY = "TF_PLUGIN_MAGIC_COOKIE"
MAGIC_COOKIE_VALUE = "d602bf8f470bc67ca7faa0386276bbdd4330efaf76d1a219cb4d6991ca9872b2"
CORE_PROTOCOL = 1
APP_PROTOCOL = 6

# tfplugin6.Provider methods answered with an empty response (no diagnostics).
_EMPTY_ANSWERS = (
    "ValidateProviderConfig",
    "ValidateResourceConfig",
    "ValidateDataResourceConfig",
    "ValidateEphemeralResourceConfig",
    "ValidateListResourceConfig",
    "ValidateActionConfig",
    "ConfigureProvider",
    "StopProvider",
)


def _unary(answer: Any) -> grpc.RpcMethodHandler:
    # No (de)serializers: requests arrive and answers leave as raw protobuf bytes.
    return grpc.unary_unary_rpc_method_handler(answer)


def _server_credentials(client_cert_pem: bytes) -> tuple[grpc.ServerCredentials, str]:
    """TLS as go-plugin's AutoMTLS expects: a fresh self-signed certificate for "localhost",
    terraform's own trusted if it is presented; returns it as the handshake encodes it."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    credentials = grpc.ssl_server_credentials(
        [(key_pem, cert_pem)], root_certificates=client_cert_pem, require_client_auth=False
    )
    der = cert.public_bytes(serialization.Encoding.DER)
    return credentials, base64.b64encode(der).decode().rstrip("=")


def serve(schema_response: bytes) -> int:
    if os.environ.get(MAGIC_COOKIE_KEY) != MAGIC_COOKIE_VALUE:
        print(
            "This is a terraform provider plugin (a schema-only stub for `terraform validate`);"
            " terraform starts it, not you.",
            file=sys.stderr,
        )
        return 1
    offered = os.environ.get("PLUGIN_PROTOCOL_VERSIONS", str(APP_PROTOCOL)).split(",")
    if str(APP_PROTOCOL) not in offered:
        print(
            f"the stub speaks protocol {APP_PROTOCOL}, terraform offers {offered}", file=sys.stderr
        )
        return 1

    done = threading.Event()

    def schema(request: bytes, context: grpc.ServicerContext) -> bytes:
        return schema_response

    def empty(request: bytes, context: grpc.ServicerContext) -> bytes:
        return b""

    def shutdown(request: bytes, context: grpc.ServicerContext) -> bytes:
        done.set()
        return b""

    def health(request: bytes, context: grpc.ServicerContext) -> bytes:
        return b"\x08\x01"  # HealthCheckResponse{status: SERVING}

    provider = {"GetProviderSchema": _unary(schema)}
    provider.update({name: _unary(empty) for name in _EMPTY_ANSWERS})
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=4),
        options=[("grpc.max_send_message_length", -1), ("grpc.max_receive_message_length", -1)],
    )
    server.add_generic_rpc_handlers(
        (
            grpc.method_handlers_generic_handler("tfplugin6.Provider", provider),
            grpc.method_handlers_generic_handler(
                "plugin.GRPCController", {"Shutdown": _unary(shutdown)}
            ),
            grpc.method_handlers_generic_handler(
                "grpc.health.v1.Health", {"Check": _unary(health)}
            ),
        )
    )
    client_cert = os.environ.get("PLUGIN_CLIENT_CERT", "")
    if client_cert:
        credentials, server_cert = _server_credentials(client_cert.encode())
        port = server.add_secure_port("127.0.0.1:0", credentials)
    else:
        server_cert = ""
        port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    print(
        f"{CORE_PROTOCOL}|{APP_PROTOCOL}|tcp|127.0.0.1:{port}|grpc|{server_cert}",
        flush=True,
    )
    # terraform passes Ctrl-C on to its plugins and then shuts them down itself.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    done.wait()
    server.stop(grace=0.5)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--schema",
        type=Path,
        required=True,
        help="GetProviderSchema.Response, encoded (scripts/terraform_check.py writes it)",
    )
    args = parser.parse_args(argv)
    return serve(args.schema.read_bytes())


if __name__ == "__main__":
    raise SystemExit(main())
