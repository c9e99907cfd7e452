"""Staff: the desk (per alley, most urgent first) and accounts managed in the pages."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from chargers import settings
from chargers.extensions import db
from chargers.models import ApiToken, Pile, User
from chargers.services import users
from chargers.services.alerts import lifecycle as alerts

from .conftest import PASSWORD, bearer
from .webtools import csrf_from, login, post_form, set_ports


def test_desk_puts_the_most_urgent_alley_first(app, client, admin, alley_with_pile):
    _, token = admin
    for slug, name in (("calm", "A Calm Lane"), ("busy", "B Busy Lane")):
        client.post("/api/v1/alleys", json={"slug": slug, "name": name}, headers=bearer(token))
    client.post("/api/v1/piles", json={"id": "B-1", "alley": "busy", "ports": 2},
                headers=bearer(token))
    client.post("/api/v1/piles", json={"id": "B-2", "alley": "busy", "ports": 2},
                headers=bearer(token))
    with app.app_context():
        set_ports("P-1", ["available"] * 4)
        set_ports("B-1", ["available", "unavailable"])
        set_ports("B-2", ["available", "available"], online=False)
        now = datetime.now(UTC)
        alerts.on_fault(db.session.get(Pile, "B-1"), 1, "over_current", True, None, None, now, now,
                        rules=settings.alerts(app.config))
        alerts.on_fault(db.session.get(Pile, "P-1"), 2, "smoke", True, None, None, now, now,
                        rules=settings.alerts(app.config))
        db.session.commit()
    login(client, "root")
    html = client.get("/staff/?lang=en").get_data(as_text=True)
    names = re.findall(r'<a class="title" href="/staff/alleys/(\w+)">', html)
    assert names == ["lane", "busy", "calm"]  # the fire first, the calm one last
    lane, busy, calm = re.split(r'<li class="desk-row', html)[1:4]
    assert "Fire alarm" in lane and 'href="/staff/alerts?alley=lane&amp;severity=critical"' in lane
    assert "Major <b>1</b>" in busy and "Offline</b>: B-2" in busy
    assert "Out of service</b>: B-1 #2" in busy
    assert "All well" in calm


def test_admin_manages_accounts_in_the_pages(app, client, admin, alley_with_pile, make_staff):
    login(client, "root")
    r = post_form(client, "/staff/accounts/new", {
        "name": "wang", "role": "staff", "alleys": ["lane"], "password": "long-enough-pw"})
    assert r.status_code == 302
    with app.app_context():
        wang = db.session.query(User).filter_by(name="wang").one()
        uid = wang.id
        users.issue_token(wang)
        assert [a.slug for a in wang.alleys] == ["lane"]
    page = client.get(f"/staff/accounts/{uid}?lang=en").get_data(as_text=True)
    assert "API tokens" in page and "Revoke" in page
    # reset the password: the old one stops working
    assert post_form(client, f"/staff/accounts/{uid}/password", {"password": "another-pw-123"},
                     form_url=f"/staff/accounts/{uid}").status_code == 302
    other = app.test_client()
    assert login(other, "wang", "long-enough-pw").status_code != 302
    assert login(other, "wang", "another-pw-123").status_code == 302
    # revoke the token
    with app.app_context():
        tid = db.session.query(ApiToken).filter_by(user_id=uid).one().id
    token = csrf_from(client.get(f"/staff/accounts/{uid}").get_data(as_text=True))
    client.post(f"/staff/accounts/{uid}/tokens/{tid}/revoke", data={"csrf_token": token})
    with app.app_context():
        assert db.session.get(ApiToken, tid).revoked_at is not None
    # disable: logged out at once, cannot log in
    client.post(f"/staff/accounts/{uid}/disable", data={"csrf_token": token})
    assert other.get("/staff/").status_code == 302
    assert login(app.test_client(), "wang", "another-pw-123").status_code != 302
    # an admin cannot disable or demote themself
    with app.app_context():
        root_id = db.session.query(User).filter_by(name="root").one().id
    client.post(f"/staff/accounts/{root_id}/disable", data={"csrf_token": token})
    with app.app_context():
        assert db.session.get(User, root_id).active


def test_staff_cannot_manage_accounts(app, client, make_staff, alley_with_pile):
    with app.app_context():
        make_staff("li", ["lane"])
    login(client, "li", PASSWORD)
    assert client.get("/staff/accounts").status_code == 403
    assert client.get("/staff/accounts/new").status_code == 403
    assert 'href="/staff/accounts"' not in client.get("/staff/").get_data(as_text=True)
