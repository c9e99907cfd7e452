"""Hostile names show as text on public and staff pages; security headers on every
response (OWASP ASVS 5.3, 14.4)."""

from __future__ import annotations

import re

import pytest

from chargers.extensions import db
from chargers.models import Alley, Pile

from .conftest import bearer
from .webtools import login

SCRIPT = "<script>alert(1)</script>"
ATTR = 'x" onmouseover="alert(2)'
ATTR2 = "y' onfocus='alert(3)"


@pytest.fixture
def hostile(client, admin):
    """An alley and a pile whose names and notes try to inject markup."""
    _, token = admin
    r = client.post("/api/v1/alleys", json={"slug": "evil", "name": SCRIPT, "street": ATTR,
                                            "community": ATTR2, "contacts": SCRIPT},
                    headers=bearer(token))
    assert r.status_code == 201
    r = client.post("/api/v1/piles", json={"id": "E-1", "alley": "evil", "ports": 2,
                                           "label": ATTR, "location_note": SCRIPT},
                    headers=bearer(token))
    assert r.status_code == 201


def assert_escaped(html: str, where: str) -> None:
    assert SCRIPT not in html, where
    assert "<script>alert" not in html, where
    assert 'onmouseover="alert' not in html and "onfocus='alert" not in html, where
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html, where


PUBLIC = ("/", "/a/evil", "/p/E-1")
STAFF = ("/staff/", "/staff/alleys/evil", "/staff/alleys/evil/edit", "/staff/alleys/evil/qr",
         "/staff/piles/E-1/edit", "/staff/piles/E-1/secret")


def test_hostile_names_are_text_on_public_pages(client, hostile):
    for url in PUBLIC:
        r = client.get(url)
        assert r.status_code == 200
        assert_escaped(r.get_data(as_text=True), url)
    html = client.get("/p/E-1").get_data(as_text=True)
    assert "x&#34; onmouseover=&#34;alert(2)" in html  # the label, as text


def test_hostile_names_are_text_on_staff_pages(client, hostile):
    login(client, "root")
    for url in STAFF:
        r = client.get(url)
        assert r.status_code == 200, url
        assert_escaped(r.get_data(as_text=True), url)
    # In attributes (form values) the quotes are escaped, so the value stays one value.
    form = client.get("/staff/piles/E-1/edit").get_data(as_text=True)
    assert re.search(r'name="label" type="text" value="x&#34; onmouseover=&#34;alert\(2\)"', form)
    form = client.get("/staff/alleys/evil/edit").get_data(as_text=True)
    assert "value=\"y&#39; onfocus=&#39;alert(3)\"" in form


def test_names_round_trip_unchanged(app, client, hostile):
    """Escaping is on output only: the stored values are what staff typed."""
    with app.app_context():
        assert db.session.query(Alley).filter_by(slug="evil").one().name == SCRIPT
        assert db.session.get(Pile, "E-1").label == ATTR
    assert client.get("/api/v1/alleys/evil").json["name"] == SCRIPT


def _csp(response) -> dict[str, str]:
    header = response.headers["Content-Security-Policy"]
    return {part.split()[0]: " ".join(part.split()[1:]) for part in header.split("; ")}


@pytest.mark.parametrize("url", ["/", "/a/nope", "/login", "/api/v1/alleys", "/api/v1/nope",
                                 "/static/app.css", "/healthz"])
def test_security_headers_on_every_response(client, app, url):
    r = client.get(url)
    csp = _csp(r)
    assert csp["frame-ancestors"] == "'none'"
    assert csp["default-src"] == "'self'" and csp["object-src"] == "'none'"
    assert csp["style-src"] == "'self'"
    assert "'unsafe-inline'" not in r.headers["Content-Security-Policy"]
    assert "'unsafe-eval'" not in r.headers["Content-Security-Policy"]
    assert re.fullmatch(r"'self' 'nonce-[A-Za-z0-9_-]{16,}'", csp["script-src"])
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert r.headers["Referrer-Policy"] == "same-origin"
    assert r.headers["X-Frame-Options"] == "DENY"


def test_nonce_is_new_for_each_response(client, app):
    a, b = (_csp(client.get("/"))["script-src"] for _ in range(2))
    assert a != b


def test_public_pages_may_be_cached_but_logged_in_pages_not(client, admin):
    assert "no-store" not in client.get("/").headers.get("Cache-Control", "")
    assert client.get("/login").headers["Cache-Control"] == "no-store"
    login(client, "root")
    assert client.get("/").headers["Cache-Control"] == "no-store"
    assert client.get("/staff/").headers["Cache-Control"] == "no-store"


def test_staff_pages_need_login_and_the_api_a_token(client, alley_with_pile):
    for url in ("/staff/", "/staff/alleys/lane", "/staff/alleys/lane/qr", "/staff/piles/P-1/edit"):
        r = client.get(url)
        assert r.status_code == 302 and "/login" in r.headers["Location"], url
    r = client.post("/staff/piles/P-1/secret")
    assert r.status_code in (302, 400)  # never a new secret
    assert client.get("/api/v1/piles").status_code == 401
    assert client.get("/api/v1/piles/P-1", headers=bearer("chg_nope")).status_code == 401


def test_errors_never_show_a_stack_trace(client, app):
    r = client.get("/a/%3Cscript%3Ealert(1)%3C%2Fscript%3E")
    assert r.status_code == 404
    body = r.get_data(as_text=True)
    assert "Traceback" not in body and "<script>alert" not in body


def test_a_login_does_not_leak_into_another_clients_requests(app, client, admin):
    """Each request has its own app context: the user Flask-Login keeps in `g` for
    one client's request is not seen by another client's next request."""
    assert login(client, "root").status_code == 302
    assert client.get("/staff/").status_code == 200
    stranger = app.test_client()
    r = stranger.get("/staff/")
    assert r.status_code == 302 and "/login" in r.headers["Location"]
    assert client.get("/staff/").status_code == 200
