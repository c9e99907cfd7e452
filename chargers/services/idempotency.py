"""Request keys that make a money action happen once: a client sends a key with the
request (API `Idempotency-Key` header, a form's hidden field); the service claims it in
the transaction of the posting, the door records the answer it gave, and a repeat of
the key gets that answer again and posts nothing. Two requests racing with one key:
the unique (scope, key) lets one claim it, the other waits on it and then replays."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from ..extensions import db
from ..models import IdempotencyKey
from .errors import Conflict

MAX_KEY = 128


@dataclass(frozen=True)
class RequestKey:
    """One client's key for one call: `scope` is whose (`user:<id>`), `request` the
    call it was made for (`POST /path`)."""

    scope: str
    key: str
    request: str


def claim(rk: RequestKey, now: datetime) -> None:
    """Take the key in the caller's transaction (a savepoint). Raises Conflict
    `idempotency.replay` when the key was already taken: the caller rolls back and the
    door answers what the first request got (`recall`). Does not commit."""
    try:
        with db.session.begin_nested():
            db.session.add(IdempotencyKey(scope=rk.scope, key=rk.key[:MAX_KEY],
                                          request=rk.request[:200], created_at=now))
    except IntegrityError:
        raise Conflict("idempotency.replay") from None


def recall(rk: RequestKey) -> IdempotencyKey | None:
    """The key's record, when it was claimed (committed) before."""
    return db.session.scalar(select(IdempotencyKey).where(
        IdempotencyKey.scope == rk.scope, IdempotencyKey.key == rk.key[:MAX_KEY]))


def answer(rk: RequestKey, status: int, body: dict) -> None:
    """Record the answer given to the request that claimed the key. Commits."""
    row = recall(rk)
    if row is not None:
        row.status, row.body = status, body
        db.session.commit()
