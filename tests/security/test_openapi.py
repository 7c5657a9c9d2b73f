"""docs/openapi.yaml is a valid OpenAPI 3.1 document and names exactly the routes the code has."""

from __future__ import annotations

import importlib
import re
from typing import Any

import pytest
import yaml
from openapi_spec_validator import validate

from sapa.dev import localserver
from sapa.domain.texts import ACTION_LABELS
from tests.conftest import ROOT

SPEC_PATH = ROOT / "docs" / "openapi.yaml"
METHODS = {"get", "post", "put", "patch", "delete"}

# Functions that route by hand (no werkzeug Map to read): their paths under the mount, with
# methods. Keep in step with the function modules; the staff workspace and the root app are
# read from their Maps below.
MANUAL: dict[str, dict[str, set[str]]] = {
    "/wa/webhook": {"": {"get", "post"}},
    "/guestbook": {
        "/f/{token}": {"get", "post"},
        "/f/{token}/draft": {"post"},
        "/f/{token}/doc/{requirement}": {"post"},
        "/s/{token}": {"get", "post"},
        "/s/{token}/aduan": {"post"},
    },
    "/verify": {"/d/{document_id}": {"get", "post"}, "/ikm": {"get"}},
    "/esign/callback": {"": {"post"}},
    "/approval": {"/{case_id}": {"get", "post"}},
    "/jobs/retention": {"": {"post"}},
    "/jobs/sla": {"": {"post"}},
}


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    loaded = yaml.safe_load(SPEC_PATH.read_text("utf-8"))
    assert isinstance(loaded, dict)
    return loaded


def _operations(spec: dict[str, Any]) -> dict[str, set[str]]:
    return {path: {m for m in item if m in METHODS} for path, item in spec["paths"].items()}


def _rule_path(rule: str) -> str:
    return re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", r"{\1}", rule)


def _map_routes(url_map: Any, prefix: str) -> dict[str, set[str]]:
    routes: dict[str, set[str]] = {}
    for rule in url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        path = (prefix + _rule_path(rule.rule)).rstrip("/") or "/"
        methods = {m.lower() for m in rule.methods or {"GET"}} & METHODS
        routes.setdefault(path, set()).update(methods)
    return routes


def code_routes() -> dict[str, set[str]]:
    """Every (path, methods) the local server serves, from its mounts and the Maps."""
    from tests.functions.conftest import app_for

    app_for("staff")  # loads functions/main.py, which puts functions/ on the import path
    staff = importlib.import_module("staff")
    routes = _map_routes(localserver.root_app(None).url_map, "")  # type: ignore[arg-type]
    routes.update(_map_routes(staff._routes, "/staff"))
    for mount, paths in MANUAL.items():
        assert mount in localserver.HTTP_MOUNTS, f"{mount} is no longer mounted"
        for sub, methods in paths.items():
            routes[mount + sub] = methods
    assert set(localserver.HTTP_MOUNTS) == set(MANUAL) | {"/staff"}, "a new mount: add it"
    routes["/tasks/{kind}"] = {"post"}
    return routes


def test_the_spec_is_valid_openapi_3_1(spec: dict[str, Any]) -> None:
    assert spec["openapi"].startswith("3.1")
    validate(spec)


def test_every_route_is_in_the_spec_and_nothing_else(spec: dict[str, Any]) -> None:
    assert _operations(spec) == code_routes()


def test_enumerations_match_the_code(spec: dict[str, Any]) -> None:
    kinds = spec["paths"]["/tasks/{kind}"]["parameters"][0]["schema"]["enum"]
    assert kinds == list(localserver.TASK_KINDS)
    action = spec["paths"]["/staff/cases/{case_id}/{action}"]["parameters"][1]
    assert set(action["schema"]["enum"]) == set(ACTION_LABELS)


def test_every_operation_documents_its_errors_with_the_error_body(spec: dict[str, Any]) -> None:
    error = "#/components/schemas/Error"
    text = SPEC_PATH.read_text("utf-8")
    assert text.count(error) > 5
    for path, item in spec["paths"].items():
        for method, op in item.items():
            if method not in METHODS:
                continue
            assert op.get("operationId"), (path, method)
            assert op["responses"], (path, method)
    # the body every function's errors use (functions/_edge.py error_body)
    props = spec["components"]["schemas"]["Error"]["properties"]
    assert {"error", "message", "fields", "case_id", "state", "event", "actor"} <= set(props)
