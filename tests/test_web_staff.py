"""Staff registry pages: add and edit alleys and piles, a new secret shown once, the
QR sheet, and scoping (another alley's pages answer 404)."""

from __future__ import annotations

import re

import pytest

from chargers.extensions import db
from chargers.models import Alley, Pile
from chargers.services.devices import qrcodes
from chargers.services.devices.secrets import verify_secret

from .conftest import bearer
from .webtools import csrf_from, login, post_form


@pytest.fixture
def two_alleys(client, admin, alley_with_pile):
    """`lane` (pile P-1) and `other` (pile O-1)."""
    _, token = admin
    client.post("/api/v1/alleys", json={"slug": "other", "name": "Other"}, headers=bearer(token))
    r = client.post("/api/v1/piles", json={"id": "O-1", "alley": "other", "ports": 2},
                    headers=bearer(token))
    assert r.status_code == 201


def test_staff_of_another_alley_get_404_on_every_page(app, client, make_staff, two_alleys):
    make_staff("li", ["other"])
    login(client, "li")
    assert client.get("/staff/alleys/other").status_code == 200
    own_page = client.get("/staff/alleys/other").get_data(as_text=True)
    for url in ("/staff/alleys/lane", "/staff/alleys/lane/edit", "/staff/alleys/lane/piles/new",
                "/staff/alleys/lane/qr", "/staff/piles/P-1/edit", "/staff/piles/P-1/secret"):
        assert client.get(url).status_code == 404, url
    with app.app_context():
        old = db.session.get(Pile, "P-1").secret_hash
    token = csrf_from(own_page)
    for url, data in (("/staff/piles/P-1/secret", {}),
                      ("/staff/piles/P-1/edit", {"label": "mine", "ports": "2"}),
                      ("/staff/alleys/lane/edit", {"name": "Mine"}),
                      ("/staff/alleys/lane/piles/new", {"id": "X-1", "ports": "2"})):
        assert client.post(url, data={**data, "csrf_token": token}).status_code == 404, url
    with app.app_context():
        assert db.session.get(Pile, "P-1").secret_hash == old
        assert db.session.get(Pile, "P-1").label == "P-1"
        assert db.session.query(Alley).filter_by(slug="lane").one().name == "Lane"
        assert db.session.get(Pile, "X-1") is None
    # The dashboard lists only their alley; adding alleys is for admins.
    dash = client.get("/staff/").get_data(as_text=True)
    assert 'href="/staff/alleys/other"' in dash and 'href="/staff/alleys/lane"' not in dash
    assert client.get("/staff/alleys/new").status_code == 403


def test_admin_adds_and_edits_an_alley(app, client, admin):
    login(client, "root")
    r = post_form(client, "/staff/alleys/new", {
        "slug": "jiuru", "name": "九如巷", "street": "双塔街道", "community": "九如社区",
        "tariff_per_kwh": "1.20", "auto_cutoff": "y"})
    assert r.status_code == 302 and r.headers["Location"] == "/staff/alleys/jiuru"
    with app.app_context():
        alley = db.session.query(Alley).filter_by(slug="jiuru").one()
        assert (alley.name, alley.street, alley.tariff_cents_per_kwh, alley.timezone) == (
            "九如巷", "双塔街道", 120, "Asia/Shanghai")
    r = post_form(client, "/staff/alleys/jiuru/edit", {
        "name": "九如巷（东段）", "contacts": "网格员 138…", "tariff_per_kwh": "1"})
    assert r.status_code == 302
    with app.app_context():
        alley = db.session.query(Alley).filter_by(slug="jiuru").one()
        assert alley.name == "九如巷（东段）" and alley.contacts == "网格员 138…"
        assert alley.auto_cutoff is False  # an unticked box is a "no"
    page = client.get("/staff/alleys/jiuru").get_data(as_text=True)
    assert "九如巷（东段）" in page and "网格员 138…" in page
    form = client.get("/staff/alleys/jiuru/edit").get_data(as_text=True)
    assert re.search(r'name="tariff_per_kwh"[^>]*value="1.00"', form)  # its price, in yuan


def test_invalid_alley_form_shows_errors_and_creates_nothing(app, client, admin):
    login(client, "root")
    r = post_form(client, "/staff/alleys/new", {"slug": "Bad Slug!", "name": ""})
    assert r.status_code == 200
    assert 'class="error"' in r.get_data(as_text=True)
    with app.app_context():
        assert db.session.query(Alley).count() == 0
    r = post_form(client, "/staff/alleys/new", {"slug": "ok", "name": "OK", "timezone": "Mars/Base"})
    assert "未知时区 Mars/Base" in r.get_data(as_text=True)  # the service's refusal, in Chinese
    with app.app_context():
        assert db.session.query(Alley).count() == 0


def test_add_pile_shows_secret_once_and_stores_only_its_hash(app, client, admin, alley_with_pile):
    login(client, "root")
    r = post_form(client, "/staff/alleys/lane/piles/new", {
        "id": "JRX-001", "label": "1号桩", "ports": "10", "location_note": "巷口", "enabled": "y"})
    # Post/redirect/get: the secret shows on the next page, once; a reload cannot repeat it.
    assert r.status_code == 302 and r.headers["Location"] == "/staff/piles/JRX-001/secret"
    r = client.get(r.headers["Location"])
    assert r.headers["Cache-Control"] == "no-store"
    secret = re.search(r'<code class="secret"[^>]*>([^<]+)</code>', r.get_data(as_text=True)).group(1)
    assert "data-copy=" in r.get_data(as_text=True) and "mqtt-auth" in r.get_data(as_text=True)
    again = client.get("/staff/piles/JRX-001/secret").get_data(as_text=True)
    assert secret not in again and 'class="secret"' not in again
    with app.app_context():
        pile = db.session.get(Pile, "JRX-001")
        assert pile.label == "1号桩" and len(pile.ports) == 10 and pile.location_note == "巷口"
        assert secret not in pile.secret_hash and verify_secret(secret, pile.secret_hash)
    for url in ("/staff/alleys/lane", "/staff/piles/JRX-001/edit", "/staff/alleys/lane/qr"):
        assert secret not in client.get(url).get_data(as_text=True)
    # The same serial again: a message, no second pile.
    r = post_form(client, "/staff/alleys/lane/piles/new", {"id": "JRX-001", "ports": "2"})
    assert r.status_code == 200 and "充电桩 JRX-001 已存在。" in r.get_data(as_text=True)


def test_edit_pile_and_take_it_out_of_service(app, client, admin, alley_with_pile):
    login(client, "root")
    r = post_form(client, "/staff/piles/P-1/edit", {"label": "东口", "ports": "6",
                                                    "location_note": "车棚"})
    assert r.status_code == 302
    with app.app_context():
        pile = db.session.get(Pile, "P-1")
        assert (pile.label, pile.port_count, len(pile.ports), pile.enabled) == ("东口", 6, 6, False)
    html = client.get("/a/lane?lang=en").get_data(as_text=True)
    assert html.count('data-state="out_of_service"') == 6


def test_new_secret_asks_first_then_shows_it_once(app, client, admin, alley_with_pile):
    login(client, "root")
    with app.app_context():
        old = db.session.get(Pile, "P-1").secret_hash
    page = client.get("/staff/piles/P-1/secret")
    assert page.status_code == 200
    with app.app_context():
        assert db.session.get(Pile, "P-1").secret_hash == old  # asking changes nothing
    r = client.post("/staff/piles/P-1/secret", data={"csrf_token": csrf_from(page.get_data(as_text=True))})
    assert r.status_code == 302
    r = client.get(r.headers["Location"])
    assert r.status_code == 200 and r.headers["Cache-Control"] == "no-store"
    secret = re.search(r'<code class="secret"[^>]*>([^<]+)</code>', r.get_data(as_text=True)).group(1)
    with app.app_context():
        new = db.session.get(Pile, "P-1").secret_hash
    assert new != old and verify_secret(secret, new)


def test_qr_sheet_has_one_code_per_pile_opening_its_page(app, client, admin, alley_with_pile):
    _, token = admin
    for pid in ("P-2", "P-3"):
        client.post("/api/v1/piles", json={"id": pid, "alley": "lane", "ports": 2},
                    headers=bearer(token))
    login(client, "root")
    html = client.get("/staff/alleys/lane/qr").get_data(as_text=True)
    assert html.count("<svg") == 3
    assert re.findall(r'<figure class="qr" data-pile="([^"]+)">', html) == ["P-1", "P-2", "P-3"]
    base = app.config["PUBLIC_BASE_URL"]
    with app.app_context():
        svgs = {pid: qrcodes.pile_qr_svg(pid, base) for pid in ("P-1", "P-2", "P-3")}
    for pid in ("P-1", "P-2", "P-3"):
        assert svgs[pid] in html  # the code of exactly this address
        assert f"{base}/p/{pid}" in html
        assert client.get(f"/p/{pid}").status_code == 200
    # The local default address would print useless codes: the sheet warns.
    assert 'class="warn-box"' in html and "PUBLIC_BASE_URL" in html
    app.config["PUBLIC_BASE_URL"] = "https://chargers.example.cn"
    assert 'class="warn-box"' not in client.get("/staff/alleys/lane/qr").get_data(as_text=True)


def test_staff_pages_render_for_a_phone(client, admin, alley_with_pile):
    login(client, "root")
    for url in ("/staff/", "/staff/alleys/lane", "/staff/alleys/lane/edit",
                "/staff/alleys/lane/piles/new", "/staff/piles/P-1/edit", "/staff/alleys/new",
                "/staff/alleys/lane/qr", "/staff/piles/P-1/secret", "/staff/alerts",
                "/staff/piles/P-1/control", "/staff/alleys/lane/contacts", "/staff/ingest"):
        r = client.get(url)
        assert r.status_code == 200, url
        html = r.get_data(as_text=True)
        assert 'name="viewport" content="width=device-width, initial-scale=1"' in html
        assert " style=" not in html, url
        assert re.findall(r"<script(?![^>]*\bsrc=)[^>]*>", html) == [], url
        assert r.headers["Cache-Control"] == "no-store"


def test_alley_page_shows_every_port_state_including_finished(app, client, admin,
                                                             alley_with_pile):
    """The port cells of the staff alley page are the residents' cells, with what they
    need (a finished port once answered 500: the cell read `pile.id` of no pile)."""
    from datetime import UTC, datetime, timedelta

    from chargers.models import Overstay

    from .webtools import set_ports

    with app.app_context():
        set_ports("P-1", ["available", "charging", "finishing", "faulted"], minutes_ago=45)
        db.session.add(Overstay(pile_id="P-1", port=3,
                                finished_at=datetime.now(UTC) - timedelta(minutes=45),
                                noticed_at=datetime.now(UTC)))
        db.session.commit()
    login(client, "root")
    r = client.get("/staff/alleys/lane?lang=en")
    assert r.status_code == 200
    html = r.get_data(as_text=True)
    assert re.findall(r'<li class="cell st \w+" data-state="(\w+)"', html) == [
        "free", "in_use", "finished", "fault"]
    assert "Port 3: Finished" in html and "please move your bike" in html
    # The pile's own rows still link to its pages (the port loop does not shadow them).
    assert 'href="/staff/piles/P-1/control"' in html
