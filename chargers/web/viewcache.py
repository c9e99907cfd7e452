"""A cached alley view for the pages many phones refresh: the rendered body kept per
(what, alley, language, state version[, minute]), with an ETag so that a phone's
refresh of an unchanged alley is a 304 without a body. The state version is bumped
in the same transaction as any change residents can see (services.availability), so
a port's change shows at the next request. Per process, bounded; anonymous requests
only (a staff member's page carries their own navigation)."""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable

from flask import Response, current_app, request, session

MAX_ENTRIES = 512


class ViewCache:
    def __init__(self, max_entries: int = MAX_ENTRIES):
        self.max_entries = max_entries
        self._data: OrderedDict[tuple, bytes] = OrderedDict()
        self._lock = threading.Lock()

    def get_or_make(self, key: tuple, make: Callable[[], bytes]) -> bytes:
        with self._lock:
            body = self._data.get(key)
            if body is not None:
                self._data.move_to_end(key)
                return body
        body = make()
        with self._lock:
            self._data[key] = body
            while len(self._data) > self.max_entries:
                self._data.popitem(last=False)
        return body

    def clear(self) -> None:
        with self._lock:
            self._data.clear()


def cache() -> ViewCache:
    """The app's (so: the web process's) cache."""
    return current_app.extensions.setdefault("chargers.viewcache", ViewCache())


def cacheable() -> bool:
    """An anonymous request with nothing personal to show (no login, no flashes)."""
    return "_user_id" not in session and not session.get("_flashes")


def etag_for(key: tuple) -> str:
    return hashlib.blake2s(repr(key).encode(), digest_size=12).hexdigest()


def respond(key: tuple, make: Callable[[], bytes], mimetype: str) -> Response:
    """304 when the client holds this version; else the (cached) body with its ETag.
    `Cache-Control: no-cache`: a browser may keep it but asks each time."""
    etag = etag_for(key)
    if request.if_none_match.contains(etag):
        resp = Response(status=304)
    else:
        resp = Response(cache().get_or_make(key, make), mimetype=mimetype)
    resp.set_etag(etag)
    resp.headers["Cache-Control"] = "no-cache"
    resp.vary.add("Cookie")
    return resp
