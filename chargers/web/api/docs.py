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
    """The merged document, built once per process."""
    return build_spec()


@bp.get("/openapi.json")
def openapi():
    return jsonify(load_spec())
