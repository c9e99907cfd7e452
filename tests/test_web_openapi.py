"""The OpenAPI document: valid as a whole, served by the app, every route of every
API module documented in that module's own fragment (and nothing documented that is
not a route), a merge that refuses a name defined twice, and answers that match
their schemas."""

from __future__ import annotations

import re

import pytest
import yaml
from openapi_schema_validator import OAS31Validator
from openapi_spec_validator import validate

from chargers.web.api import public, registry
from chargers.web.api.docs import (
    METHODS,
    SpecConflict,
    build_spec,
    fragment_path,
    fragments,
    load_spec,
    merge,
)

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


def _api_routes(app) -> dict[str, set[tuple[str, str]]]:
    """{module short name: {(METHOD, /path/{param})}} of every route of the api blueprint."""
    out: dict[str, set[tuple[str, str]]] = {}
    for rule in app.url_map.iter_rules():
        if not rule.endpoint.startswith("api."):
            continue
        module = app.view_functions[rule.endpoint].__module__
        assert module.startswith("chargers.web.api."), (rule.endpoint, module)
        path = re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"{\1}", rule.rule).removeprefix("/api/v1")
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            out.setdefault(module.rsplit(".", 1)[1], set()).add((method, path))
    return out


def _operations(doc: dict) -> set[tuple[str, str]]:
    return {(method.upper(), path) for path, item in (doc.get("paths") or {}).items()
            for method in item if method in METHODS}


def test_every_route_of_every_api_module_is_documented_by_that_module(app, spec):
    routes = _api_routes(app)
    merged = build_spec()  # the fragments merged, before the door's answers are added
    assert {"public", "registry", "alerts", "ingest", "docs"} <= set(routes)
    for module, ops in sorted(routes.items()):
        frag_file = fragment_path(module)
        assert frag_file.is_file(), f"{module}.py has routes but no {frag_file.name}"
        frag = yaml.safe_load(frag_file.read_text(encoding="utf-8"))
        for method, path in sorted(ops):
            op = frag.get("paths", {}).get(path, {}).get(method.lower())
            assert op, f"{method} {path} ({module}.py) is not in {frag_file.name}"
            assert op.get("summary") and op.get("responses"), (method, path)
            assert merged["paths"][path][method.lower()] == op, (method, path)
        # and the fragment documents only this module's routes
        assert _operations(frag) <= ops, (frag_file.name, sorted(_operations(frag) - ops))


def test_every_fragment_belongs_to_an_api_module(app):
    modules = set(_api_routes(app))
    for part in fragments():
        assert part.stem.removeprefix("openapi_") in modules, f"{part.name}: no such API module"


def test_everything_documented_is_a_route(app, spec):
    routes = set().union(*_api_routes(app).values())
    assert _operations(spec) == routes


def test_merge_refuses_a_name_defined_twice(spec):
    def fresh():
        return build_spec()

    schema = {"components": {"schemas": {"Pile": {"type": "object"}}}}
    with pytest.raises(SpecConflict, match="schemas.Pile"):
        merge(fresh(), schema, "x.yaml")
    with pytest.raises(SpecConflict, match="Limit"):
        merge(fresh(), {"components": {"parameters": {"Limit": {}}}}, "x.yaml")
    with pytest.raises(SpecConflict, match="tag 'alerts'"):
        merge(fresh(), {"tags": [{"name": "alerts"}]}, "x.yaml")
    with pytest.raises(SpecConflict, match="GET /alleys"):
        merge(fresh(), {"paths": {"/alleys": {"get": {"responses": {}}}}}, "x.yaml")
    with pytest.raises(SpecConflict, match="parameters"):
        merge(fresh(), {"paths": {"/alleys/{slug}": {"parameters": [], "put": {}}}}, "x.yaml")
    with pytest.raises(SpecConflict, match="only"):
        merge(fresh(), {"info": {}}, "x.yaml")
    # a new method on a known path, a new tag and a new schema are fine
    merged = merge(fresh(), {"tags": [{"name": "new"}],
                             "components": {"schemas": {"New": {"type": "object"}}},
                             "paths": {"/alleys": {"put": {"responses": {}}}}}, "x.yaml")
    assert "put" in merged["paths"]["/alleys"] and "get" in merged["paths"]["/alleys"]
    assert "New" in merged["components"]["schemas"] and "New" not in spec["components"]["schemas"]


def test_a_fragment_defining_a_known_schema_again_is_refused(tmp_path):
    dup = tmp_path / "openapi_dup.yaml"
    dup.write_text("components:\n  schemas:\n    Alley: {type: object}\n", encoding="utf-8")
    with pytest.raises(SpecConflict, match="Alley"):
        build_spec(parts=[*fragments(), dup])


def _check(spec: dict, instance, ref: str) -> None:
    """Validate `instance` against components/schemas/<ref> of the spec."""
    schema = {"$ref": f"#/components/schemas/{ref}", "components": spec["components"]}
    OAS31Validator(schema).validate(instance)


def test_real_answers_match_their_schemas(app, client, admin, alley_with_pile, spec):
    _, token = admin
    h = bearer(token)
    with app.app_context():
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
