"""The OpenAPI document of this API: openapi.yaml (shared parts) merged with one
fragment per API module, `openapi_<module>.yaml` beside `<module>.py`.

A fragment holds `tags`, `components` and `paths`. Names are global in the merged
document, so the merge refuses (SpecConflict) a tag, a component (schema, parameter,
response, ...) or an operation (path + method) defined twice. Two fragments may
document different methods of one path (GET /alleys is public, POST /alleys is the
registry's); their path-level `parameters` must then be the same.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import yaml
from flask import jsonify

from . import bp

HERE = Path(__file__).parent
BASE = HERE / "openapi.yaml"
FRAGMENT_KEYS = {"tags", "components", "paths"}
# Keys of a path item that are operations (the rest, e.g. `parameters`, are shared).
METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


class SpecConflict(ValueError):
    """Two documents define the same name."""


def fragment_path(module: str) -> Path:
    """The fragment that documents the API module `module` (e.g. "registry")."""
    return HERE / f"openapi_{module}.yaml"


def fragments() -> list[Path]:
    """Every fragment beside this file, by name."""
    return sorted(HERE.glob("openapi_*.yaml"))


def _read(path: Path) -> dict:
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(data, dict):
        raise SpecConflict(f"{path.name}: not a mapping")
    return data


def merge(spec: dict, frag: dict, source: str) -> dict:
    """Merge the fragment `frag` (read from `source`) into `spec`, in place.
    Raises SpecConflict on a name defined twice or a key a fragment may not hold."""
    extra = set(frag) - FRAGMENT_KEYS
    if extra:
        raise SpecConflict(f"{source}: a fragment holds only {sorted(FRAGMENT_KEYS)}, "
                           f"not {sorted(extra)}")
    tags = spec.setdefault("tags", [])
    known = {t["name"] for t in tags}
    for tag in frag.get("tags", []):
        if tag["name"] in known:
            raise SpecConflict(f"{source}: tag {tag['name']!r} is defined twice")
        known.add(tag["name"])
        tags.append(tag)
    components = spec.setdefault("components", {})
    for kind, items in (frag.get("components") or {}).items():
        have = components.setdefault(kind, {})
        for name, value in (items or {}).items():
            if name in have:
                raise SpecConflict(f"{source}: components.{kind}.{name} is defined twice")
            have[name] = value
    paths = spec.setdefault("paths", {})
    for path, item in (frag.get("paths") or {}).items():
        have = paths.setdefault(path, {})
        for key, value in item.items():
            if key not in have:
                have[key] = value
            elif key in METHODS:
                raise SpecConflict(f"{source}: {key.upper()} {path} is defined twice")
            elif have[key] != value:
                raise SpecConflict(f"{source}: {path} has a different {key!r} elsewhere")
    return spec


def build_spec(base: Path = BASE, parts: list[Path] | None = None) -> dict:
    """The base document with every fragment merged in."""
    spec = _read(base)
    for part in fragments() if parts is None else parts:
        merge(spec, _read(part), part.name)
    return spec


@lru_cache(maxsize=1)
def load_spec() -> dict:
    """The merged document, built once per process, with what the door answers."""
    spec = build_spec()
    _add_door_answers(spec)
    return spec


METHODS = ("get", "put", "post", "patch", "delete")


def _add_door_answers(spec: dict) -> None:
    """What the web's door (chargers.web.validation, MAX_CONTENT_LENGTH) answers before any
    view runs, stated once here for every operation rather than in each path:
    400 for a NUL (or lone surrogate) in a query value, or a body that is not JSON,
    nested too deep or carries one in a string; 413 for a body beyond the size limit;
    integer path parameters stop at the INTEGER columns' range (beyond it: 404)."""
    from ..validation import DB_INT_MAX

    responses = spec.setdefault("components", {}).setdefault("responses", {})
    responses.setdefault("PayloadTooLarge", {
        "description": "The body is larger than the server's limit (MAX_CONTENT_LENGTH).",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}})
    for item in spec.get("paths", {}).values():
        for param in item.get("parameters", []):
            _bound_int(param, DB_INT_MAX)
        for method in METHODS:
            op = item.get(method)
            if op is None:
                continue
            for param in op.get("parameters", []):
                _bound_int(param, DB_INT_MAX)
            answers = op.setdefault("responses", {})
            answers.setdefault("400", {"$ref": "#/components/responses/BadRequest"})
            if "requestBody" in op:
                answers.setdefault("413", {"$ref": "#/components/responses/PayloadTooLarge"})


def _bound_int(param: dict, top: int) -> None:
    """An integer path parameter names a row: 0 to the column's maximum."""
    schema = param.get("schema") or {}
    if param.get("in") == "path" and schema.get("type") == "integer":
        schema.setdefault("minimum", 0)
        schema.setdefault("maximum", top)


@bp.get("/openapi.json")
def openapi():
    return jsonify(load_spec())
