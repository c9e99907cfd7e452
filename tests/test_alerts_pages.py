"""Staff alerts pages: list (triage order, filters, live feed), acknowledge and resolve
with CSRF forms, commands from the page, contacts, scope."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from flask import current_app
from sqlalchemy import select

from chargers import settings
from chargers.extensions import db
from chargers.models import Alert, Command, Contact, Pile
from chargers.services.alerts import lifecycle as alerts

from .conftest import PASSWORD, bearer

T0 = datetime.now(UTC) - timedelta(minutes=5)
CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


def csrf(client, path: str) -> str:
    page = client.get(path)
    assert page.status_code == 200, page.status_code
    return CSRF.search(page.get_data(as_text=True)).group(1)


def login(client, name: str) -> None:
    token = csrf(client, "/login?lang=en")  # English words to assert on
    r = client.post("/login", data={"name": name, "password": PASSWORD, "csrf_token": token})
    assert r.status_code == 302, r.get_data(as_text=True)


def fault(app, port, code, active=True, at=T0):
    with app.app_context():
        alerts.on_fault(db.session.get(Pile, "P-1"), port, code, active, None, None, at, at,
                        rules=settings.alerts(current_app.config))
        db.session.commit()


@pytest.fixture
def staff(app, client, admin, make_staff, alley_with_pile):
    _, token = admin
    client.post("/api/v1/alleys", json={"slug": "other", "name": "Other"}, headers=bearer(token))
    make_staff("lane-staff", ["lane"])
    make_staff("other-staff", ["other"])
    fault(app, 1, "over_voltage", at=T0)
    fault(app, 2, "smoke", at=T0 + timedelta(seconds=1))
    fault(app, 3, "overload", at=T0 + timedelta(seconds=2))
    fault(app, 3, "overload", active=False, at=T0 + timedelta(seconds=200))
    with app.app_context():
        return {a.code: a.id for a in db.session.scalars(select(Alert))}


def test_list_triage_order_filters_and_feed(app, client, staff):
    login(client, "lane-staff")
    html = client.get("/staff/alerts").get_data(as_text=True)
    # open alerts only by default, critical on top
    ids = [int(x) for x in re.findall(r'data-id="(\d+)"', html)]
    assert ids == [staff["smoke"], staff["over_voltage"]]
    html = client.get("/staff/alerts?status=cleared").get_data(as_text=True)
    assert [int(x) for x in re.findall(r'data-id="(\d+)"', html)] == [staff["overload"]]
    html = client.get("/staff/alerts?status=all&severity=minor").get_data(as_text=True)
    assert [int(x) for x in re.findall(r'data-id="(\d+)"', html)] == [staff["over_voltage"]]
    assert 'src="/static/alerts.js"' in client.get("/staff/alerts").get_data(as_text=True)

    r = client.get("/staff/alerts/feed?status=open")
    assert r.status_code == 200 and r.json["counts"]["critical"] == 1
    assert [int(x) for x in re.findall(r'data-id="(\d+)"', r.json["html"])] == [
        staff["smoke"], staff["over_voltage"]]
    # a new critical alert shows up in the feed without a reload
    fault(app, 4, "over_temperature", at=T0 + timedelta(seconds=300))
    r = client.get("/staff/alerts/feed?status=open")
    assert r.json["counts"]["critical"] == 2 and r.json["counts"]["unacknowledged"] == 3
    assert "3 unacknowledged" in r.json["counts_html"]
    assert len(re.findall(r'data-id="(\d+)"', r.json["html"])) == 3


def test_acknowledge_and_resolve_from_the_page(app, client, staff):
    login(client, "lane-staff")
    aid = staff["smoke"]
    token = csrf(client, f"/staff/alerts/{aid}")
    # without the CSRF token: refused, nothing changes
    assert client.post(f"/staff/alerts/{aid}/acknowledge", data={}).status_code == 400
    r = client.post(f"/staff/alerts/{aid}/acknowledge", data={"csrf_token": token, "note": "on my way"})
    assert r.status_code == 302
    with app.app_context():
        alert = db.session.get(Alert, aid)
        assert alert.status == "acknowledged"
    r = client.post(f"/staff/alerts/{aid}/resolve", data={"csrf_token": token, "note": ""})
    assert r.status_code == 422
    # The pile has not cleared the smoke: the page asks for an explicit override.
    r = client.post(f"/staff/alerts/{aid}/resolve",
                    data={"csrf_token": token, "note": "melted plug replaced"})
    assert r.status_code == 409 and 'name="override"' in r.get_data(as_text=True)
    r = client.post(f"/staff/alerts/{aid}/resolve",
                    data={"csrf_token": token, "note": "melted plug replaced", "override": "y"})
    assert r.status_code == 302
    html = client.get(f"/staff/alerts/{aid}").get_data(as_text=True)
    assert "melted plug replaced" in html and "on my way" in html and "lane-staff" in html
    for action in ("raised", "cut-off sent", "acknowledged", "resolved anyway (pile still reporting)"):
        assert f"<b>{action}</b>" in html


def test_commands_from_the_page_with_outcome(app, client, staff):
    login(client, "lane-staff")
    token = csrf(client, "/staff/piles/P-1/control")
    r = client.post("/staff/piles/P-1/command",
                    data={"csrf_token": token, "action": "disable", "port": "4"})
    assert r.status_code == 302
    with app.app_context():
        # (the smoke alert's automatic cut-off also stopped port 4: created by nobody)
        cmd = db.session.scalars(select(Command).where(Command.port == 4,
                                                       Command.created_by.is_not(None))).one()
        assert (cmd.action, cmd.status, cmd.created_by is not None) == ("disable", "pending", True)
    r = client.post("/staff/piles/P-1/command", data={"csrf_token": token, "action": "stop"})
    assert r.status_code == 302  # refused (stop needs a port), told in a flash
    with app.app_context():
        assert db.session.query(Command).filter_by(action="stop", port=None).count() == 0
    aid = staff["smoke"]
    r = client.post("/staff/piles/P-1/command", data={"csrf_token": token, "action": "enable",
                                                      "port": "2", "alert_id": str(aid)})
    assert r.headers["Location"].endswith(f"/staff/alerts/{aid}")
    html = client.get(f"/staff/alerts/{aid}").get_data(as_text=True)
    assert "<b>command sent</b>" in html and "waiting to send" in html


def test_contacts_page(app, client, staff):
    login(client, "lane-staff")
    token = csrf(client, "/staff/alleys/lane/contacts")
    r = client.post("/staff/alleys/lane/contacts", data={
        "csrf_token": token, "name": "Wang", "level": "1", "channel": "webhook",
        "target": "https://open.feishu.cn/open-apis/bot/v2/hook/abc", "webhook_format": "auto"})
    assert r.status_code == 302
    with app.app_context():
        [c] = db.session.scalars(select(Contact)).all()
        assert (c.alley.slug, c.level, c.channel) == ("lane", 1, "webhook")
        contact_id = c.id
    r = client.post("/staff/alleys/lane/contacts", data={
        "csrf_token": token, "name": "Bad", "level": "2", "channel": "email", "target": "nope",
        "webhook_format": "auto"})
    with app.app_context():
        assert r.status_code == 200 and db.session.query(Contact).count() == 1
    r = client.post(f"/staff/contacts/{contact_id}/delete", data={"csrf_token": token})
    with app.app_context():
        assert r.status_code == 302 and db.session.query(Contact).count() == 0


def test_other_alley_staff_get_404_on_pages(app, client, staff):
    login(client, "other-staff")
    aid = staff["smoke"]
    html = client.get("/staff/alerts?status=all").get_data(as_text=True)
    assert re.findall(r'data-id="(\d+)"', html) == []
    assert client.get(f"/staff/alerts/{aid}").status_code == 404
    assert client.get("/staff/piles/P-1/control").status_code == 404
    assert client.get("/staff/alleys/lane/contacts").status_code == 404
    token = csrf(client, "/staff/alerts")
    assert client.post(f"/staff/alerts/{aid}/acknowledge",
                       data={"csrf_token": token}).status_code == 404
    assert client.post("/staff/piles/P-1/command", data={
        "csrf_token": token, "action": "disable", "port": "1"}).status_code == 404
    with app.app_context():
        assert db.session.get(Alert, aid).acknowledged_at is None
        assert db.session.query(Command).filter_by(port=1).filter(
            Command.created_by.is_not(None)).count() == 0  # only the smoke's automatic cut-off


def test_pages_need_login(client, staff):
    r = client.get("/staff/alerts")
    assert r.status_code == 302 and "/login" in r.headers["Location"]
