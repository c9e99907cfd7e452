"""Outgoing HTTP for the outbox's channels (webhooks in notify, WeChat in wechat): one
opener that follows no redirect, the check that a staff-typed address is public, and
the errors a delivery raises. Imports nothing of the product."""

from __future__ import annotations

import ipaddress
import socket
import urllib.error
import urllib.request
from urllib.parse import urlsplit


class DeliveryError(Exception):
    """The receiver did not take the message; it will be tried again, unless
    `permanent` (e.g. a WeChat user who refused the messages): then it is given up."""

    permanent = False


class PermanentDeliveryError(DeliveryError):
    permanent = True


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A robot answers directly; a redirect could lead past the address check."""

    def redirect_request(self, *args, **kwargs):
        return None  # the 3xx then surfaces as an HTTPError


OPENER = urllib.request.build_opener(_NoRedirect)


def check_public(url: str, allow_private: bool) -> None:
    """Refuse a webhook whose host resolves to a private, loopback, link-local or
    reserved address (staff type these URLs; the worker must not become a way into
    the internal network). WEBHOOK_ALLOW_PRIVATE lifts it (development, tests)."""
    if allow_private:
        return
    parts = urlsplit(url)
    try:
        infos = socket.getaddrinfo(parts.hostname, parts.port or 443, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError) as exc:
        raise DeliveryError(f"unreachable: {exc}") from None
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if not address.is_global:
            raise DeliveryError(f"refused: {parts.hostname} is a non-public address ({address})")


def fetch(req: urllib.request.Request, timeout: float, limit: int = 65536) -> bytes:
    """Send `req` through OPENER and read at most `limit` bytes of the answer; an HTTP
    error status or an unreachable receiver is a DeliveryError."""
    try:
        with OPENER.open(req, timeout=timeout) as resp:
            return resp.read(limit)
    except urllib.error.HTTPError as exc:
        raise DeliveryError(f"HTTP {exc.code}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise DeliveryError(f"unreachable: {getattr(exc, 'reason', exc)}") from None
