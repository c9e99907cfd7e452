"""A cached alley view for the pages many phones refresh: the rendered body kept per
(what, alley, language, state version[, minute]), with an ETag so that a phone's
refresh of an unchanged alley is a 304 without a body. The state version is bumped
in the same transaction as any change residents can see (services.charging.availability), so
a port's change shows at the next request. Per process, bounded; anonymous requests
only (a staff member's page carries their own navigation)."""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from flask import Response, current_app, request, session

log = logging.getLogger(__name__)
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


class VersionWatcher:
    """The alleys' state versions as PostgreSQL announces them (LISTEN; the ingest's
    bump NOTIFYs at commit), so that a request for an unchanged alley costs no
    database round trip. While not listening (starting, connection lost) it knows
    nothing and every request asks the database, as without it."""

    def __init__(self, url: str):
        self.url = url
        self.ok = threading.Event()
        self._lock = threading.Lock()
        self._versions: dict[int, int] = {}
        self._slugs: dict[str, int] = {}
        # +1 whenever what it knew is forgotten: a version read from the database
        # before then may have missed a notification, and is not kept.
        self.generation = 0
        self.schema: str | None = None  # the database schema it listens for
        self._thread = threading.Thread(target=self._run, name="alley-versions", daemon=True)
        self._thread.start()

    def _forget(self) -> None:
        with self._lock:
            self.generation += 1
            self._versions.clear()
            self._slugs.clear()

    def _run(self) -> None:
        import psycopg

        from ..services.charging.availability import NOTIFY_CHANNEL

        while True:
            try:
                with psycopg.connect(self.url, autocommit=True, connect_timeout=5) as conn:
                    conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
                    self.schema = conn.execute("SELECT current_schema()").fetchone()[0]
                    self._forget()
                    self.ok.set()
                    for note in conn.notifies():
                        self._note(note.payload)
            except Exception:  # noqa: BLE001 - any failure: know nothing, try again
                log.warning("alley version listener lost its connection; retrying",
                            exc_info=True)
            self.ok.clear()
            self._forget()
            time.sleep(1)

    def _note(self, payload: str) -> None:
        """`schema|id:version,…`: only this database schema's alleys (ids repeat across
        schemas; the channel is the whole database's)."""
        where, _, payload = payload.rpartition("|")
        if self.schema is not None and where != self.schema:
            return
        with self._lock:
            for part in payload.split(","):
                alley_id, _, version = part.partition(":")
                if alley_id.isdigit() and version.isdigit():
                    a, v = int(alley_id), int(version)
                    self._versions[a] = max(v, self._versions.get(a, -1))

    def lookup(self, slug: str) -> tuple[int, int] | None:
        if not self.ok.is_set():
            return None
        with self._lock:
            alley_id = self._slugs.get(slug)
            if alley_id is None or alley_id not in self._versions:
                return None
            return alley_id, self._versions[alley_id]

    def remember(self, slug: str, state: tuple[int, int], generation: int) -> None:
        """A version read from the database (after `generation` was read); a newer one
        announced meanwhile wins."""
        if not self.ok.is_set():
            return
        with self._lock:
            if generation != self.generation:
                return
            self._slugs[slug] = state[0]
            self._versions[state[0]] = max(state[1], self._versions.get(state[0], -1))


def _watcher() -> VersionWatcher | None:
    """This process's watcher (PostgreSQL only; started on first use, after a fork)."""
    ext = current_app.extensions
    if "chargers.version_watcher" not in ext:
        from sqlalchemy.engine import make_url

        from ..extensions import db

        url = db.engine.url
        ext["chargers.version_watcher"] = (
            VersionWatcher(make_url(url).set(drivername="postgresql")
                           .render_as_string(hide_password=False))
            if url.get_backend_name() == "postgresql" and not current_app.testing else None)
    return ext["chargers.version_watcher"]


def alley_state(slug: str) -> tuple[int, int] | None:
    """(alley id, state version): from the watcher when it knows, else the database."""
    from ..services.charging import availability

    watcher = _watcher()
    generation = None
    if watcher is not None:
        generation = watcher.generation
        known = watcher.lookup(slug)
        if known is not None:
            return known
    state = availability.alley_state(slug)
    if watcher is not None and state is not None:
        watcher.remember(slug, state, generation)
    return state


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
