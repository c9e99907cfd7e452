"""Hostile values at the web's door (issue 13, items 3, 5, 7), on SQLite and on
PostgreSQL (which refuses NUL in text and integers beyond a column's range): every
one a 4xx, JSON in the contract's shape under /api/, the page's 404 for pages; never
a 500."""

from __future__ import annotations

import pytest

from tests.conftest import PASSWORD, bearer
from tests.pg_schema import on_sqlite_and_postgresql

app_config = on_sqlite_and_postgresql("chargers_door")


def api_error(r, status: int) -> str:
    assert r.status_code == status, (r.status_code, r.get_data(as_text=True)[:300])
    assert r.mimetype == "application/json"
    assert set(r.json) == {"error"} and set(r.json["error"]) == {"code", "message"}
    return r.json["error"]["code"]


@pytest.mark.parametrize("path, status", [
    ("/api/v1/alleys/a%00b", 404),
    ("/api/v1/piles/a%00b", 404),
    ("/api/v1/alerts?pile=a%00b", 400),
    ("/api/v1/alerts?status=%00", 400),
    ("/api/v1/alerts?a%00=1", 400),
    ("/api/v1/sessions?pile=P%00", 400),
    ("/api/v1/alerts/2147483648", 404),
    ("/api/v1/alerts/99999999999999999999999", 404),
    ("/api/v1/alerts?offset=9223372036854775808", 422),
    ("/api/v1/alerts?offset=2147483648", 422),
    ("/api/v1/piles?limit=1&offset=" + "9" * 5000, 422),
    ("/api/v1/rejections?offset=2147483647", 200),
])
def test_hostile_query_and_path_values(client, admin, alley_with_pile, path, status):
    r = client.get(path, headers=bearer(admin[1]))
    if status == 200:
        assert r.status_code == 200 and r.json == []
    else:
        api_error(r, status)


def test_without_login_too(client):
    api_error(client.get("/api/v1/alleys/a%00b"), 404)
    api_error(client.get("/api/v1/alerts/2147483648"), 404)


@pytest.mark.parametrize("body", [
    {"slug": "ok", "name": "a\u0000b"},
    {"slug": "ok", "name": "\ud800"},
    {"slug": "ok", "name": "x", "street": "\udfff"},
    {"slug": "ok", "name": "x", "a\u0000": 1},
])
def test_unstorable_text_in_json_bodies(client, admin, body):
    assert api_error(client.post("/api/v1/alleys", json=body, headers=bearer(admin[1])),
                     400) == "bad_request"


def test_integers_beyond_the_column_range_in_bodies(client, admin, alley_with_pile):
    h = bearer(admin[1])
    r = client.post("/api/v1/piles/P-1/commands", json={"action": "stop", "port": 1,
                                                        "alert": 2**31}, headers=h)
    assert api_error(r, 422) == "invalid"
    r = client.post("/api/v1/piles/P-1/commands", json={"action": "stop", "port": 2**63},
                    headers=h)
    api_error(r, 422)
    api_error(client.post("/api/v1/alleys/lane/contacts", headers=h,
                          json={"name": "n", "channel": "email", "target": "a@b.c",
                                "level": 2**64}), 422)


@pytest.mark.parametrize("raw", [b"[" * 100_000, b'{"a":' * 5_000, b"[" * 33 + b"]" * 33,
                                 b'{"slug": "x", "name": ' + b"[" * 40 + b"]" * 40 + b"}",
                                 b"{not json", b'"\\ud800"'])
def test_deep_or_broken_json_is_400(client, admin, raw):
    r = client.post("/api/v1/alleys", data=raw, content_type="application/json",
                    headers=bearer(admin[1]))
    assert api_error(r, 400) == "bad_request"


def test_body_beyond_max_content_length_is_413_json(app, client, admin):
    big = b'{"slug": "x", "name": "' + b"a" * app.config["MAX_CONTENT_LENGTH"] + b'"}'
    r = client.post("/api/v1/alleys", data=big, content_type="application/json",
                    headers=bearer(admin[1]))
    api_error(r, 413)


def test_405_carries_allow(client):
    r = client.delete("/api/v1/alleys")
    api_error(r, 405)
    assert set(r.headers["Allow"].replace(" ", "").split(",")) >= {"GET", "POST"}
    r = client.put("/a/lane")
    assert r.status_code == 405 and "GET" in r.headers["Allow"]


def test_pages_answer_their_404_or_400(client, alley_with_pile, admin):
    for path in ("/a/a%00b", "/p/P%00", "/staff/alerts/2147483648", "/staff/alleys/a%00b"):
        r = client.get(path)
        assert r.status_code in (404, 302), (path, r.status_code)  # staff: to the login first
        if r.status_code == 404:
            assert r.mimetype == "text/html"
    r = client.get("/a/lane?lang=%00")
    assert r.status_code == 400 and r.mimetype == "text/html"
    # Logged in, the staff pages too.
    page = client.get("/login")
    assert page.status_code == 200
    import re

    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page.text).group(1)
    client.post("/login", data={"csrf_token": token, "name": "root", "password": PASSWORD})
    assert client.get("/staff/alerts/2147483648").status_code == 404
    assert client.get("/staff/alleys/a%00b").status_code == 404
    assert client.get("/staff/alerts?alley=%00").status_code == 400
    r = client.post("/login", data={"csrf_token": token, "name": "ro\x00ot", "password": "x"})
    assert r.status_code == 400
