"""Security headers on every response: a strict Content-Security-Policy and friends.

Scripts and styles come only from our own origin (static/); a template that truly
needs an inline <script> writes `<script nonce="{{ csp_nonce() }}">`. Staff pages and
anything behind a login are never cached (a pile's secret is shown on one of them).
"""

from __future__ import annotations

import secrets

from flask import Flask, Response, g, request, session

# No inline script (nonce only), no inline style, nothing framed, forms post home.
CSP = (
    "default-src 'self'; "
    "script-src 'self' 'nonce-{nonce}'; "
    "style-src 'self'; "
    "img-src 'self' data:; "
    "font-src 'self'; "
    "connect-src 'self'; "
    "object-src 'none'; "
    "base-uri 'none'; "
    "form-action 'self'; "
    "frame-ancestors 'none'"
)

HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",  # for browsers older than frame-ancestors
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=()",
}


def csp_nonce() -> str:
    """This request's CSP nonce (made on first use)."""
    if "csp_nonce" not in g:
        g.csp_nonce = secrets.token_urlsafe(16)
    return g.csp_nonce


def _private() -> bool:
    """Pages that must not be stored by a browser or a proxy: staff pages, login, and
    anything answered to a logged-in session (checked without loading the user)."""
    return request.blueprint in ("staff", "auth") or "_user_id" in session


def set_headers(resp: Response) -> Response:
    """after_request: add the headers (never overriding a view's own choice)."""
    resp.headers.setdefault("Content-Security-Policy", CSP.format(nonce=csp_nonce()))
    for name, value in HEADERS.items():
        resp.headers.setdefault(name, value)
    if request.is_secure:
        resp.headers.setdefault("Strict-Transport-Security", "max-age=31536000")
    if _private():
        resp.headers["Cache-Control"] = "no-store"
    return resp


def init_app(app: Flask) -> None:
    """Register the header hook and the `csp_nonce()` template global."""
    app.after_request(set_headers)
    app.jinja_env.globals["csp_nonce"] = csp_nonce
