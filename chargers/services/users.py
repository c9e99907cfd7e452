"""Staff accounts: create, authenticate, API tokens.

Who commits: `create_user`, `end_sessions`, `issue_token`, `revoke_token` and
`user_for_token` (it stamps the token's last use) commit; `authenticate`, `load_user`
and `get_user` only read."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime

from sqlalchemy import select
from werkzeug.security import check_password_hash, generate_password_hash

from ..extensions import db
from ..models import ApiToken, User, utcnow
from ..models.accounts import ROLES
from .devices.alleys import find_alley
from .errors import Conflict, Forbidden, Invalid, NotFound

MIN_PASSWORD = 8
# werkzeug's scrypt (N=2^15): about 0.15 s of a core per hash, which is its point. The
# tests swap in a cheap method (tests/conftest.py): hashing cost the suite about 50 s
# of CPU. `check_password_hash` reads the method from the stored hash.
HASH_METHOD = "scrypt"
# Hash checked when the user does not exist, so both paths take the same time.
_DUMMY_HASH = generate_password_hash("not-a-real-password", method=HASH_METHOD)


def create_user(name: str, password: str, role: str, alley_slugs: list[str] = ()) -> User:
    """A staff account; the password is stored with HASH_METHOD (scrypt)."""
    name = name.strip()
    if not name:
        raise Invalid("user.name_required")
    if role not in ROLES:
        raise Invalid("user.role_unknown", choices=", ".join(ROLES))
    if len(password) < MIN_PASSWORD:
        raise Invalid("user.password_short", n=MIN_PASSWORD)
    if db.session.scalar(select(User).where(User.name == name)):
        raise Conflict("user.exists", name=name)
    alleys = []
    for slug in alley_slugs:
        alley = find_alley(slug)
        if alley is None:
            raise NotFound("alley.unknown", slug=slug)
        alleys.append(alley)
    user = User(
        name=name,
        password_hash=generate_password_hash(password, method=HASH_METHOD),
        role=role,
        alleys=alleys,
        session_nonce=secrets.token_hex(8),
    )
    db.session.add(user)
    db.session.commit()
    return user


def authenticate(name: str, password: str) -> User | None:
    """The active user with this name and password, else None."""
    user = db.session.scalar(select(User).where(User.name == name.strip()))
    if user is None:
        check_password_hash(_DUMMY_HASH, password)
        return None
    if not check_password_hash(user.password_hash, password) or not user.active:
        return None
    return user


def load_user(session_id: str) -> User | None:
    """Flask-Login loader: "<id>:<nonce>"; a changed nonce means logged out."""
    user_id, _, nonce = session_id.partition(":")
    if not user_id.isdigit():
        return None
    user = db.session.get(User, int(user_id))
    if user is None or not user.active or user.session_nonce != nonce:
        return None
    return user


def end_sessions(user: User) -> None:
    """Invalidate every login session of this user (logout)."""
    user.session_nonce = secrets.token_hex(8)
    db.session.commit()


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_token(user: User) -> str:
    """A new API token for the user; only its hash is kept."""
    token = "chg_" + secrets.token_urlsafe(32)
    db.session.add(ApiToken(user=user, token_hash=_digest(token), prefix=token[:10]))
    db.session.commit()
    return token


def user_for_token(token: str, now: datetime | None = None) -> User | None:
    """The active user owning this unrevoked token, else None."""
    row = db.session.scalar(select(ApiToken).where(ApiToken.token_hash == _digest(token)))
    if row is None or row.revoked_at is not None or not row.user.active:
        return None
    row.last_used_at = now or utcnow()
    db.session.commit()
    return row.user


def revoke_token(user: User, token_id: int, now: datetime | None = None) -> ApiToken:
    """Revoke one of the user's tokens."""
    row = db.session.get(ApiToken, token_id)
    if row is None or row.user_id != user.id:
        raise NotFound("token.not_found")
    row.revoked_at = row.revoked_at or now or utcnow()
    db.session.commit()
    return row


def get_user(name: str) -> User:
    """A user by name."""
    user = db.session.scalar(select(User).where(User.name == name))
    if user is None:
        raise NotFound("user.not_found", name=name)
    return user


# --- accounts in the web: an admin manages staff (each function commits) ------------


def _admin_only(by: User | None) -> None:
    if by is None or not by.is_admin:
        raise Forbidden("account.admin_only")


def list_users(by: User) -> list[User]:
    """Every account, admins first, then by name (admins only)."""
    _admin_only(by)
    return list(db.session.scalars(select(User).order_by(User.role, User.name)))


def get_account(by: User, user_id: int) -> User:
    """One account by id (admins only)."""
    _admin_only(by)
    user = db.session.get(User, user_id)
    if user is None:
        raise NotFound("account.not_found")
    return user


def create_account(by: User, name: str, password: str, role: str,
                   alley_slugs: list[str]) -> User:
    """An admin creates a staff account (or another admin). Commits."""
    _admin_only(by)
    return create_user(name, password, role, alley_slugs)


def update_account(by: User, user_id: int, role: str, alley_slugs: list[str]) -> User:
    """Change an account's role and alleys. An admin cannot demote themself (there
    must always be one who can undo it). Commits."""
    user = get_account(by, user_id)
    if role not in ROLES:
        raise Invalid("account.role", roles=", ".join(ROLES))
    if user.id == by.id and role != "admin":
        raise Conflict("account.self_demote")
    found = []
    for slug in alley_slugs:
        alley = find_alley(slug)
        if alley is None:
            raise NotFound("alley.unknown", slug=slug)
        found.append(alley)
    user.role, user.alleys = role, found
    db.session.commit()
    return user


def _revoke_all_tokens(user: User, now: datetime | None = None) -> int:
    """Revoke every live API token of the user (a credential change or a disabled
    account must not leave a key working). Does not commit."""
    rows = db.session.scalars(select(ApiToken).where(ApiToken.user_id == user.id,
                                                     ApiToken.revoked_at.is_(None))).all()
    for row in rows:
        row.revoked_at = now or utcnow()
    return len(rows)


def reset_password(by: User, user_id: int, password: str, now: datetime | None = None) -> User:
    """Set a new password; the account's open sessions end and its API tokens are
    revoked (whoever knew the old password may have made one). Commits."""
    user = get_account(by, user_id)
    if len(password or "") < MIN_PASSWORD:
        raise Invalid("account.password_short", n=MIN_PASSWORD)
    user.password_hash = generate_password_hash(password, method=HASH_METHOD)
    user.session_nonce = secrets.token_hex(8)
    _revoke_all_tokens(user, now)
    db.session.commit()
    return user


def disable_account(by: User, user_id: int, now: datetime | None = None) -> User:
    """Disable an account: it cannot log in, its sessions end and its API tokens are
    revoked (enabling it again does not bring them back). Disabling a disabled account
    changes nothing. Commits."""
    user = get_account(by, user_id)
    if user.id == by.id:
        raise Conflict("account.self_disable")
    user.active = False
    user.session_nonce = secrets.token_hex(8)
    _revoke_all_tokens(user, now)
    db.session.commit()
    return user


def enable_account(by: User, user_id: int) -> User:
    """Let a disabled account log in again (with new API tokens only). Enabling an
    enabled account changes nothing. Commits."""
    user = get_account(by, user_id)
    user.active = True
    db.session.commit()
    return user


def revoke_account_token(by: User, user_id: int, token_id: int,
                         now: datetime | None = None) -> ApiToken:
    """An admin revokes one of an account's API tokens. Commits."""
    return revoke_token(get_account(by, user_id), token_id, now)
