"""Pages many phones refresh (issue 12): the alley page and API are served from a view
cached per state version of the alley, with ETag / 304, and a port's change (or a
staff edit) shows at the next request."""

from __future__ import annotations

import pytest

from chargers.extensions import db
from chargers.ingest import handlers
from chargers.models import Alley
from tests.conftest import bearer
from tests.ingest_support import incoming

pytestmark = pytest.mark.usefixtures("alley_with_pile")


def version(app) -> int:
    with app.app_context():
        return db.session.query(Alley.state_version).filter_by(slug="lane").scalar()


def make_online(app):
    with app.app_context():
        handlers.process([incoming("online", payload=b"1"),
                          incoming("status", port=1, status="available")])


@pytest.mark.parametrize("url", ["/a/lane", "/api/v1/alleys/lane"])
def test_etag_304_and_a_port_change_shows_at_once(app, client, url):
    make_online(app)
    first = client.get(url)
    assert first.status_code == 200 and first.headers["ETag"]
    assert first.headers["Cache-Control"] == "no-cache"
    etag = first.headers["ETag"]
    again = client.get(url, headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.data == b""
    # a heartbeat changes nothing residents see: still 304
    v = version(app)
    with app.app_context():
        handlers.process([incoming("heartbeat")])
    assert version(app) == v
    assert client.get(url, headers={"If-None-Match": etag}).status_code == 304
    # a port's change shows at the next request
    with app.app_context():
        handlers.process([incoming("status", port=1, status="charging")])
    assert version(app) > v
    fresh = client.get(url, headers={"If-None-Match": etag})
    assert fresh.status_code == 200 and fresh.headers["ETag"] != etag
    if url.startswith("/api"):
        ports = fresh.json["piles"][0]["ports"]
        assert ports[0]["status"] == "charging" and not ports[0]["free"]
        assert fresh.json["free"] == first.json["free"] - 1
    else:
        assert fresh.data != first.data


def test_staff_edit_and_alerts_bump_the_version(app, client, admin):
    make_online(app)
    etag = client.get("/api/v1/alleys/lane").headers["ETag"]
    v = version(app)
    # a smoke fault on port 1: the port is no longer free
    with app.app_context():
        handlers.process([incoming("fault", port=1, code="smoke", active=True)])
    assert version(app) > v
    r = client.get("/api/v1/alleys/lane", headers={"If-None-Match": etag})
    assert r.status_code == 200 and r.json["piles"][0]["ports"][0]["state"] == "fault"
    etag, v = r.headers["ETag"], version(app)
    r = client.patch("/api/v1/piles/P-1", json={"label": "East gate"},
                     headers=bearer(admin[1]))
    assert r.status_code == 200, r.json
    assert version(app) > v
    r = client.get("/api/v1/alleys/lane", headers={"If-None-Match": etag})
    assert r.status_code == 200 and r.json["piles"][0]["label"] == "East gate"


def test_a_logged_in_page_is_not_served_from_the_cache(app, client, admin):
    from tests.webtools import login

    assert "ETag" in client.get("/a/lane").headers
    login(client, "root")
    r = client.get("/a/lane")
    assert r.status_code == 200 and "ETag" not in r.headers
    assert r.headers["Cache-Control"] == "no-store"
