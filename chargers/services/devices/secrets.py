"""Pile MQTT secrets: generated here, stored only as a hash.

The hash is Mosquitto's own `$7$` format (PBKDF2-SHA512), so `flask mqtt-auth`
can write a Mosquitto password file straight from the database and the embedded
broker can check the same value. Secrets are 32 random bytes, so the KDF's work
factor matters less than for human passwords.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets as _random

PBKDF2_ITERATIONS = 1000
SALT_BYTES = 12


def new_secret() -> str:
    """A fresh random secret for a pile (URL-safe, 43 chars)."""
    return _random.token_urlsafe(32)


def hash_secret(secret: str, *, iterations: int = PBKDF2_ITERATIONS, salt: bytes | None = None) -> str:
    """Mosquitto `$7$iterations$salt$hash` (base64) of `secret`."""
    salt = salt if salt is not None else _random.token_bytes(SALT_BYTES)
    digest = hashlib.pbkdf2_hmac("sha512", secret.encode(), salt, iterations)
    return f"$7${iterations}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def verify_secret(secret: str, stored: str) -> bool:
    """True when `secret` matches a `$7$` hash; False for anything malformed."""
    try:
        _, kind, iterations, salt_b64, hash_b64 = stored.split("$")
        if kind != "7":
            return False
        salt = base64.b64decode(salt_b64)
        expected = base64.b64decode(hash_b64)
        digest = hashlib.pbkdf2_hmac("sha512", secret.encode(), salt, int(iterations))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(digest, expected)
