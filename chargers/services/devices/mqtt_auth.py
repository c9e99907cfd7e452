"""Broker credentials and access rules for production (Mosquitto).

One rule set, two enforcers: `write_mosquitto_files` renders it as a Mosquitto
password file, ACL and configuration snippet, and the embedded broker
(chargers/broker/amqtt_broker.py) asks `allowed()` and `is_backend()` directly.
The rule (device protocol, "client id == username == pile id"): a pile publishes
only under `{prefix}/<its id>/` and reads only `{prefix}/<its id>/cmd`; the backend
reads `{prefix}/#` and writes `{prefix}/+/cmd`.

Client ids are bound to logins (Mosquitto: `use_username_as_clientid true`), so no
login can take over, or wipe, another's session: a pile always has its own id, and
each backend process logs in under its own client id (`mqtt_settings.login_name`),
the backend's username or `<username>-<suffix>` (the worker's `chargers-backend`,
`jobs run`'s `chargers-backend-jobs`), all with the backend's password.

Nothing here writes to the database; `write_mosquitto_files` writes files.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from sqlalchemy import select

from ...extensions import db
from ...models import Pile
from ...mqtt_settings import login_name
from ..errors import Invalid
from .secrets import hash_secret, verify_secret

PUBLISH, SUBSCRIBE, RECEIVE = "publish", "subscribe", "receive"


@dataclass(frozen=True)
class BackendCredentials:
    """The backend's own MQTT login (user of the worker and the web's commands):
    `username`, and the login names of its processes (`login_names`)."""

    username: str
    password: str
    client_ids: tuple[str, ...] = field(default=())

    @cached_property
    def hashed_password(self) -> str:
        """The password's `$7$` hash, once (so the password file is stable)."""
        return hash_secret(self.password)

    @property
    def login_names(self) -> list[str]:
        """`username`, then the name each of `client_ids` logs in under."""
        return backend_login_names(self.username, self.client_ids)


def is_backend(username: str | None, backend_user: str) -> bool:
    """Whether `username` is one of the backend's logins: `backend_user` itself or
    `<backend_user>-<suffix>` (one per backend process)."""
    return bool(username) and (username == backend_user or username.startswith(f"{backend_user}-"))


def backend_login_names(backend_user: str, client_ids: Iterable[str]) -> list[str]:
    """The backend's username, then the login names of `client_ids`, once each."""
    names = [backend_user]
    for client_id in client_ids:
        name = login_name(backend_user, client_id)
        if name not in names:
            names.append(name)
    return names


def pile_may_connect(pile: Pile | None) -> bool:
    """Whether a pile gets broker access: every registered pile, enabled or not.

    "Disabled" means out of service for residents, not silenced: a disabled pile must
    still report smoke and receive the `enable` that brings it back. To lock a pile
    out, issue it a new secret.
    """
    return pile is not None


def check_pile_secret(pile_id: str, secret: str) -> bool:
    """True when `pile_id` is a pile allowed on the broker and `secret` is its secret."""
    pile = db.session.get(Pile, pile_id)
    return pile_may_connect(pile) and verify_secret(secret, pile.secret_hash)


def _covered(requested: str, grant: str) -> bool:
    """Whether every topic matched by `requested` (a topic or a filter) is matched by
    `grant`: a subscription to `a/#` needs a grant of `a/#`, not just `a/b`."""
    r, g = requested.split("/"), grant.split("/")
    for i, part in enumerate(g):
        if part == "#":
            return True
        if i >= len(r):
            return False
        if part == "+":
            if r[i] == "#":
                return False
            continue
        if r[i] != part:
            return False
    return len(r) == len(g)


def allowed(username: str | None, topic: str, action: str, *, prefix: str, backend_user: str) -> bool:
    """The access rule for one user, topic (or filter for SUBSCRIBE) and action."""
    if not username or not topic:
        return False
    if action != PUBLISH and topic.startswith("$share/"):
        # A shared subscription (several named workers): the rule is the filter's,
        # as Mosquitto checks it, without `$share/<group>/`.
        parts = topic.split("/", 2)
        if len(parts) < 3 or not parts[1] or any(c in parts[1] for c in "+#"):
            return False
        topic = parts[2]
    if is_backend(username, backend_user):
        if action == PUBLISH:
            return _covered(topic, f"{prefix}/+/cmd")
        return _covered(topic, f"{prefix}/#")
    if any(c in username for c in "+#/"):
        return False
    if action == PUBLISH:
        return _covered(topic, f"{prefix}/{username}/#")
    return _covered(topic, f"{prefix}/{username}/cmd")


def acl_text(prefix: str, backend_users: str | Iterable[str]) -> str:
    """A Mosquitto ACL file for the rule above."""
    if isinstance(backend_users, str):
        backend_users = [backend_users]
    backend = "".join(f"user {user}\ntopic read {prefix}/#\ntopic write {prefix}/+/cmd\n"
                      for user in backend_users)
    return (
        "# Generated by `flask --app wsgi mqtt-auth`; regenerate, do not edit.\n"
        "# The backend (one login per process) reads every pile's messages and sends commands.\n"
        f"{backend}"
        "\n"
        "# Every pile logs in with its id as username (client id == username == pile id).\n"
        "# %u is the authenticated username, so a pile can speak only for itself;\n"
        "# %c (the client id) is chosen by the client and proves nothing.\n"
        f"pattern write {prefix}/%u/#\n"
        f"pattern read {prefix}/%u/cmd\n"
    )


def conf_text(passwd: Path, acl: Path, max_payload: int | None = None) -> str:
    """The Mosquitto settings that use the two files and bind client ids to logins;
    with `max_payload` (MAX_PAYLOAD_BYTES), the broker drops larger payloads too."""
    limit = ("# Payloads larger than the backend's MAX_PAYLOAD_BYTES are dropped by the broker.\n"
             f"message_size_limit {int(max_payload)}\n") if max_payload else ""
    return limit + (
        "# Generated by `flask --app wsgi mqtt-auth`; regenerate, do not edit.\n"
        "allow_anonymous false\n"
        f"password_file {passwd.resolve()}\n"
        f"acl_file {acl.resolve()}\n"
        "# A client's id is its username: a login cannot take over (or wipe) another's\n"
        "# session, and the backend's sessions belong to the backend's logins.\n"
        "use_username_as_clientid true\n"
    )


def passwd_lines(backend: BackendCredentials) -> list[str]:
    """`user:$7$...` lines: the backend's logins, then every pile allowed on the
    broker. Pile hashes come straight from the database (already Mosquitto's format)."""
    lines = [f"{name}:{backend.hashed_password}" for name in backend.login_names]
    for pile in db.session.scalars(select(Pile).order_by(Pile.id)):
        if is_backend(pile.id, backend.username):
            raise Invalid("mqtt.pile_id_is_backend", pile=pile.id)
        if pile_may_connect(pile):
            lines.append(f"{pile.id}:{pile.secret_hash}")
    return lines


def _write_private(path: Path, text: str) -> None:
    """Write atomically with mode 600 (the password file holds secret hashes)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_mosquitto_files(out_dir: Path, backend: BackendCredentials, prefix: str,
                          max_payload: int | None = None) -> dict:
    """Write `out_dir/passwd`, `out_dir/acl` and `out_dir/mosquitto-auth.conf` (the
    settings that use them); returns {"passwd", "acl", "conf", "piles"}."""
    if not backend.username or ":" in backend.username or any(c in backend.username for c in "+#/"):
        raise Invalid("mqtt.backend_username_format")
    if not backend.password:
        raise Invalid("mqtt.backend_password_required")
    out_dir.mkdir(parents=True, exist_ok=True)
    if any(":" in name or any(c in name for c in "+#/") for name in backend.login_names):
        raise Invalid("mqtt.backend_client_id_format")
    lines = passwd_lines(backend)
    passwd, acl, conf = out_dir / "passwd", out_dir / "acl", out_dir / "mosquitto-auth.conf"
    _write_private(passwd, "\n".join(lines) + "\n")
    _write_private(acl, acl_text(prefix, backend.login_names))
    _write_private(conf, conf_text(passwd, acl, max_payload))
    return {"passwd": passwd, "acl": acl, "conf": conf, "piles": len(lines) - len(backend.login_names)}
