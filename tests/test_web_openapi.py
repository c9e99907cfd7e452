"""The OpenAPI document: valid as a whole, served by the app, covering the registry
and public calls, and describing what those calls really answer."""

from __future__ import annotations

import re

import pytest
from openapi_schema_validator import OAS31Validator
from openapi_spec_validator import validate

from chargers.web.api import public, registry
from chargers.web.api.docs import load_spec

from .conftest import bearer
from .webtools import set_ports


@pytest.fixture
def spec(app):
    return load_spec()


def test_whole_document_is_valid(client, spec):
    validate(spec)
    served = client.get("/api/v1/openapi.json")
    assert served.status_code == 200
    validate(served.json)


def _rules(app, module) -> set[tuple[str, str]]:
    """(METHOD, /path/{param}) of the API views defined in `module`."""
    out = set()
    for rule in app.url_map.iter_rules():
        view = app.view_functions[rule.endpoint]
        if getattr(view, "__module__", "") != module.__name__:
            continue
        path = re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"{\1}", rule.rule).removeprefix("/api/v1")
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            out.add((method, path))
    return out


def test_registry_and_public_calls_are_documented(app, spec):
    rules = _rules(app, public) | _rules(app, registry)
    assert len(rules) >= 10
    for method, path in sorted(rules):
        assert path in spec["paths"], path
        op = spec["paths"][path].get(method.lower())
        assert op, (method, path)
        assert op.get("summary") and op.get("responses"), (method, path)
        takes_body = method == "PATCH" or (method == "POST" and "{" not in path)
        if takes_body:  # creating (POST to a collection) and changing (PATCH)
            assert "requestBody" in op, (method, path)
        if op.get("security", spec.get("security")) not in (None, []):
            assert "401" in op["responses"], (method, path)


def _check(spec: dict, instance, ref: str) -> None:
    """Validate `instance` against components/schemas/<ref> of the spec."""
    schema = {"$ref": f"#/components/schemas/{ref}", "components": spec["components"]}
    OAS31Validator(schema).validate(instance)


def test_real_answers_match_their_schemas(client, admin, alley_with_pile, spec):
    _, token = admin
    h = bearer(token)
    set_ports("P-1", ["available", "charging", "finishing", "faulted"])
    r = client.get("/api/v1/alleys")
    for item in r.json:
        _check(spec, item, "AlleySummary")
    _check(spec, client.get("/api/v1/alleys/lane").json, "AlleyAvailability")
    r = client.post("/api/v1/alleys", json={"slug": "b", "name": "B"}, headers=h)
    _check(spec, r.json, "Alley")
    r = client.post("/api/v1/piles", json={"id": "P-2", "alley": "b", "ports": 2}, headers=h)
    _check(spec, r.json, "PileWithSecret")
    _check(spec, client.get("/api/v1/piles/P-1", headers=h).json, "Pile")
    for item in client.get("/api/v1/piles", headers=h).json:
        _check(spec, item, "Pile")
    for r in (client.get("/api/v1/alleys/nope"), client.get("/api/v1/piles"),
              client.post("/api/v1/piles", json={"id": "P-3"}, headers=h),
              client.post("/api/v1/alleys", data="x", content_type="application/json", headers=h)):
        assert r.status_code >= 400
        _check(spec, r.json, "Error")
