"""Alert lifecycle through the services the ingest calls, and the staff API:
raise, repeat, cut-off, acknowledge, resolve, device clear, flap, offline, scope."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

import pytest
from flask import current_app
from sqlalchemy import event, select

from chargers import settings
from chargers.extensions import db
from chargers.models import Alert, Alley, Command, Contact, Notification, Pile, User
from chargers.services.alerts import lifecycle as alerts

from .conftest import bearer

T0 = datetime(2026, 11, 27, 1, 0, tzinfo=UTC)


def s(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def pile() -> Pile:
    return db.session.get(Pile, "P-1")


def fault(port, code, active=True, at=T0, now=None, value=None):
    """What the ingest does for one fault message: call, then commit the batch."""
    alerts.on_fault(pile(), port, code, active, value, None, at, now or at, rules=rules())
    db.session.commit()


def rules() -> settings.AlertRules:
    """The alert rules of the app's config, as the doors build them."""
    return settings.alerts(current_app.config)


def all_alerts() -> list[Alert]:
    return list(db.session.scalars(select(Alert).order_by(Alert.id)))


def actions(alert: Alert) -> list[str]:
    db.session.refresh(alert)
    return [e.action for e in alert.events]


@pytest.fixture
def contacts(app, alley_with_pile):
    with app.app_context():
        alley = db.session.scalar(select(Alley).where(Alley.slug == "lane"))
        db.session.add_all([
            Contact(alley_id=alley.id, name="Wang", level=1, channel="webhook",
                    target="https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=x"),
            Contact(alley_id=alley.id, name="Li", level=2, channel="email", target="li@example.org"),
        ])
        db.session.commit()


def test_smoke_raises_one_critical_alert_cuts_off_and_pages_at_once(contacts, app_ctx):
    fault(3, "smoke", value=0.8)
    [alert] = all_alerts()
    assert (alert.pile_id, alert.port, alert.code) == ("P-1", 3, "smoke")
    assert alert.severity == "critical" and alert.status == "active" and alert.count == 1
    assert alert.cutoff == "pending"  # asked; confirmed only by the pile (test_cutoff.py)
    # Fire first: smoke on port 3 cuts off the whole pile, not just the port.
    cmds = db.session.scalars(select(Command)).all()
    assert sorted((c.action, c.port or 0, c.status, c.alert_id) for c in cmds) == [
        ("disable", 0, "pending", alert.id), *(("stop", n, "pending", alert.id)
                                                 for n in (1, 2, 3, 4))]
    # Critical: level 1 paged when raised, level 2 not yet.
    [n] = db.session.scalars(select(Notification)).all()
    assert n.channel == "webhook" and n.payload["msgtype"] == "text"
    assert "smoke" in n.payload["text"]["content"] and "烟雾" in n.body
    assert actions(alert) == ["raised", "cutoff_sent", "notified"]


def test_repeat_bumps_count_and_last_seen(contacts, app_ctx):
    fault(3, "smoke", at=s(0))
    fault(3, "smoke", at=s(30), value=1.2)
    [alert] = all_alerts()
    assert alert.count == 2 and alert.last_seen_at == s(30) and alert.value == 1.2
    assert alert.raised_at == s(0)
    # no second cut-off, no second page
    assert db.session.query(Command).count() == 5
    assert db.session.query(Notification).count() == 1
    assert actions(alert)[-1] == "repeated"


def test_whole_pile_fault_stops_every_port_and_disables_the_pile(alley_with_pile, app_ctx):
    fault(None, "over_temperature")
    cmds = db.session.scalars(select(Command)).all()
    assert sorted((c.action, c.port or 0) for c in cmds) == [
        ("disable", 0), ("stop", 1), ("stop", 2), ("stop", 3), ("stop", 4)]


def test_auto_cutoff_switched_off_per_alley(alley_with_pile, app_ctx):
    pile().alley.auto_cutoff = False
    db.session.commit()
    fault(2, "smoke")
    [alert] = all_alerts()
    assert alert.severity == "critical" and alert.cutoff == "none"
    assert db.session.query(Command).count() == 0


def test_severity_mapping_can_be_changed_per_deployment(app, alley_with_pile, app_ctx):
    app.config["ALERT_SEVERITY"] = {"communication": "major"}
    fault(None, "communication")
    fault(1, "meter_failure")
    assert [(a.code, a.severity) for a in all_alerts()] == [
        ("communication", "major"), ("meter_failure", "minor")]


def test_acknowledge_resolve_and_device_clear_with_audit_trail(app, client, admin, contacts):
    user, token = admin
    with app.app_context():
        fault(3, "smoke", at=s(0))
        fault(1, "over_current", at=s(5))
        smoke, current = all_alerts()

    r = client.post(f"/api/v1/alerts/{smoke.id}/acknowledge", headers=bearer(token))
    assert r.status_code == 200 and r.json["status"] == "acknowledged"
    assert r.json["acknowledged_by"] == "root"
    # twice is harmless
    assert client.post(f"/api/v1/alerts/{smoke.id}/acknowledge",
                       headers=bearer(token)).json["status"] == "acknowledged"

    r = client.post(f"/api/v1/alerts/{smoke.id}/resolve", json={"note": ""}, headers=bearer(token))
    assert r.status_code == 422
    # The pile still reports the smoke: resolving needs an explicit override.
    r = client.post(f"/api/v1/alerts/{smoke.id}/resolve",
                    json={"note": "burnt plug replaced"}, headers=bearer(token))
    assert r.status_code == 409 and "still reports" in r.json["error"]["message"]
    r = client.post(f"/api/v1/alerts/{smoke.id}/resolve",
                    json={"note": "burnt plug replaced", "override": True}, headers=bearer(token))
    assert r.status_code == 200 and r.json["status"] == "cleared"
    assert client.post(f"/api/v1/alerts/{smoke.id}/resolve", json={"note": "again"},
                       headers=bearer(token)).status_code == 409

    r = client.get(f"/api/v1/alerts/{smoke.id}", headers=bearer(token))
    hist = [(h["action"], h["by"]) for h in r.json["history"]]
    assert hist == [("raised", None), ("cutoff_sent", None), ("notified", None),
                    ("acknowledged", "root"), ("resolved_override", "root")]
    assert r.json["history"][-1]["note"] == "burnt plug replaced"
    assert {c["action"] for c in r.json["commands"]} == {"stop", "disable"}

    # the pile clears the other one itself
    with app.app_context():
        fault(1, "over_current", active=False, at=s(200))
    r = client.get(f"/api/v1/alerts/{current.id}", headers=bearer(token))
    assert r.json["status"] == "cleared" and r.json["cleared_at"] == "2026-11-27T01:03:20Z"
    assert [h["action"] for h in r.json["history"]] == ["raised", "cleared_by_device"]
    assert r.json["flapped"] is False


def test_a_new_raise_after_a_clear_opens_a_new_alert(alley_with_pile, app_ctx):
    fault(2, "overload", at=s(0))
    fault(2, "overload", active=False, at=s(100))
    fault(2, "overload", at=s(300))
    assert [(a.status, a.count) for a in all_alerts()] == [("cleared", 1), ("active", 1)]


def test_late_messages_do_not_undo_newer_state(alley_with_pile, app_ctx):
    fault(2, "overload", at=s(0))
    fault(2, "overload", at=s(90))
    fault(2, "overload", active=False, at=s(60))  # an old clear, overtaken
    [alert] = all_alerts()
    assert alert.status == "active" and "stale_clear_ignored" in actions(alert)
    fault(2, "overload", active=False, at=s(120))
    fault(2, "overload", at=s(100))  # an old raise arriving after the clear
    [alert] = all_alerts()
    assert alert.status == "cleared" and "stale_raise_ignored" in actions(alert)


def test_flap_is_kept_but_pages_nobody(contacts, app_ctx):
    fault(2, "over_voltage", at=s(0))
    fault(2, "over_voltage", active=False, at=s(20))
    [flap] = all_alerts()
    assert flap.flapped and flap.status == "cleared"
    assert actions(flap) == ["raised", "cleared_by_device", "flap"]
    assert alerts.notify_debounced(s(500), rules()) == 0

    # one that stays open past the debounce pages once, after the debounce
    fault(2, "over_voltage", at=s(600))
    assert alerts.notify_debounced(s(630), rules()) == 0
    assert alerts.notify_debounced(s(661), rules()) == 1
    assert alerts.notify_debounced(s(700), rules()) == 0
    [n] = db.session.scalars(select(Notification)).all()
    assert n.reason == "new" and "over_voltage" in n.body
    stayed = all_alerts()[1]
    fault(2, "over_voltage", active=False, at=s(800))
    assert not stayed.flapped and actions(stayed)[-1] == "cleared_by_device"


def test_offline_alert_after_grace_and_cleared_on_return(app, alley_with_pile, app_ctx):
    p = pile()
    p.online, p.last_seen_at = False, s(0)
    db.session.commit()
    alerts.on_pile_offline(pile(), s(0))
    db.session.commit()
    assert alerts.raise_offline_alerts(s(200), rules()) == 0  # within OFFLINE_GRACE_S (300)
    assert alerts.raise_offline_alerts(s(301), rules()) == 1
    assert alerts.raise_offline_alerts(s(400), rules()) == 0  # one is enough
    [alert] = all_alerts()
    assert (alert.code, alert.port, alert.severity, alert.status) == ("offline", None, "major", "active")
    assert alerts.notify_debounced(s(400), rules()) == 1

    p = pile()
    p.online = True
    alerts.on_pile_online(p, s(900), rules=rules())
    db.session.commit()
    db.session.refresh(alert)
    assert alert.status == "cleared" and actions(alert)[-1] == "cleared_online"


def test_offline_grace_counts_from_going_offline(alley_with_pile, app_ctx):
    p = pile()
    # heard at 0, its last will made it offline at 50
    p.online, p.last_seen_at, p.online_since = False, s(0), s(50)
    db.session.commit()
    assert alerts.raise_offline_alerts(s(320), rules()) == 0
    assert alerts.raise_offline_alerts(s(351), rules()) == 1


def test_offline_that_comes_back_quickly_is_a_flap(alley_with_pile, app_ctx):
    p = pile()
    p.online, p.last_seen_at = False, s(0)
    db.session.commit()
    alerts.raise_offline_alerts(s(301), rules())
    alerts.on_pile_online(pile(), s(320), rules=rules())
    db.session.commit()
    [alert] = all_alerts()
    assert alert.flapped and alerts.notify_debounced(s(1000), rules()) == 0


def test_list_api_contract_filters_and_order(app, client, admin, alley_with_pile):
    _, token = admin
    with app.app_context():
        fault(1, "over_voltage", at=s(0))
        fault(2, "smoke", at=s(10))
        fault(3, "overload", at=s(20))
        fault(3, "overload", active=False, at=s(200))
    r = client.get("/api/v1/alerts?status=active", headers=bearer(token))
    assert r.status_code == 200
    assert [a["code"] for a in r.json] == ["smoke", "over_voltage"]
    assert set(r.json[0]) >= {"id", "pile", "port", "code", "severity", "status",
                              "raised_at", "count"}
    assert r.json[0]["pile"] == "P-1" and r.json[0]["raised_at"] == "2026-11-27T01:00:10Z"
    r = client.get("/api/v1/alerts?status=cleared", headers=bearer(token))
    assert [a["code"] for a in r.json] == ["overload"]
    r = client.get("/api/v1/alerts", headers=bearer(token))
    assert [a["code"] for a in r.json] == ["overload", "smoke", "over_voltage"]
    r = client.get("/api/v1/alerts?limit=1&offset=1", headers=bearer(token))
    assert [a["code"] for a in r.json] == ["smoke"]
    r = client.get("/api/v1/alerts?severity=critical", headers=bearer(token))
    assert [a["code"] for a in r.json] == ["smoke"]
    r = client.get("/api/v1/alerts?status=bogus", headers=bearer(token))
    assert r.status_code == 422 and r.json["error"]["code"] == "invalid"
    assert client.get("/api/v1/alerts").status_code == 401


def test_staff_of_another_alley_get_404(app, client, admin, make_staff, alley_with_pile):
    _, token = admin
    client.post("/api/v1/alleys", json={"slug": "other", "name": "Other"}, headers=bearer(token))
    _, mine = make_staff("lane-staff", ["lane"])
    _, theirs = make_staff("other-staff", ["other"])
    with app.app_context():
        fault(3, "smoke")
        [alert] = all_alerts()
        cmd = db.session.scalars(select(Command)).first()
    for path, method, body in [
        (f"/api/v1/alerts/{alert.id}", "get", None),
        (f"/api/v1/alerts/{alert.id}/acknowledge", "post", None),
        (f"/api/v1/alerts/{alert.id}/resolve", "post", {"note": "x"}),
        ("/api/v1/piles/P-1/commands", "post", {"action": "stop", "port": 1}),
        (f"/api/v1/commands/{cmd.id}", "get", None),
    ]:
        r = getattr(client, method)(path, json=body, headers=bearer(theirs))
        assert r.status_code == 404, path
    assert client.get("/api/v1/alerts", headers=bearer(theirs)).json == []
    with app.app_context():
        alert = db.session.get(Alert, alert.id)
        assert alert.status == "active" and alert.acknowledged_at is None
        assert db.session.query(Command).count() == 5  # only the whole-pile cut-off
    r = client.post(f"/api/v1/alerts/{alert.id}/acknowledge", headers=bearer(mine))
    assert r.status_code == 200 and r.json["acknowledged_by"] == "lane-staff"


def test_openapi_documents_the_alert_calls(client):
    spec = client.get("/api/v1/openapi.json").json
    for path in ("/alerts", "/alerts/{alert_id}", "/alerts/{alert_id}/acknowledge",
                 "/alerts/{alert_id}/resolve", "/piles/{pile_id}/commands",
                 "/commands/{command_id}", "/alleys/{slug}/contacts"):
        assert path in spec["paths"], path
    assert "get" in spec["paths"]["/alleys/{slug}"]  # the base document is still whole
    # every reference resolves
    for ref in set(re.findall(r'"#/components/(\w+)/(\w+)"', json.dumps(spec))):
        assert ref[1] in spec["components"][ref[0]], ref


def test_a_raise_after_a_staff_resolve_is_never_ignored(admin, alley_with_pile, app_ctx):
    user = db.session.get(User, admin[0].id)
    fault(2, "smoke", at=s(0))
    [first] = all_alerts()
    alerts.resolve(user, first.id, "checked, reset the sensor", now=s(600), override=True)
    # the pile's clock is 3 minutes slow: its new report looks older than the resolve
    fault(2, "smoke", at=s(600 + 60 - 180), now=s(660))
    assert [a.status for a in all_alerts()] == ["cleared", "active"]


def test_alert_list_loads_its_users_without_a_query_per_alert(app, client, admin, make_staff,
                                                                alley_with_pile):
    """Who acknowledged and who cleared each alert come with the list, not one query
    per alert: the number of statements does not grow with the alerts listed."""
    _, token = admin
    with app.app_context():
        for port, code in ((1, "over_voltage"), (2, "smoke"), (3, "overload"), (4, "smoke")):
            fault(port, code, at=s(port))
        ids = [a.id for a in all_alerts()]
    for i, aid in enumerate(ids):  # each by another staff member, half of them resolved
        _, staff_token = make_staff(f"staff-{i}", ["lane"])
        client.post(f"/api/v1/alerts/{aid}/acknowledge", headers=bearer(staff_token))
        if i % 2:
            # (the pile still reports these faults: closing them needs the override)
            client.post(f"/api/v1/alerts/{aid}/resolve", json={"note": "done", "override": True},
                        headers=bearer(staff_token))

    def statements(limit: int) -> tuple[int, list]:
        seen = []
        with app.app_context():
            engine = db.engine

        def count(*args):
            seen.append(args[2])

        event.listen(engine, "before_cursor_execute", count)
        try:
            r = client.get(f"/api/v1/alerts?limit={limit}", headers=bearer(token))
        finally:
            event.remove(engine, "before_cursor_execute", count)
        assert r.status_code == 200 and len(r.json) == limit
        return len(seen), r.json

    one, _ = statements(1)
    four, rows = statements(4)
    assert four == one
    assert {a["acknowledged_by"] for a in rows} == {f"staff-{i}" for i in range(4)}
    assert sorted(a["cleared_by"] or "" for a in rows) == ["", "", "staff-1", "staff-3"]


def test_smoke_and_a_port_stopping_in_one_batch_leave_the_cutoff_pending(contacts, app_ctx):
    """The cut-off's check (read without an autoflush) finds the alert its batch has
    just made when a port of the pile stops in the same batch, and a disable the pile
    accepted earlier, which is not this alert's, does not confirm its cut-off."""
    from chargers.constants import CommandAction, CommandStatus
    from chargers.ingest import handlers
    from chargers.services.devices import commands
    from tests.ingest_support import body, incoming, ts

    handlers.process([incoming("status", body("status", ts=ts(T0), port=1, status="charging"),
                               arrived_at=T0)], now=T0)
    # An earlier disable of the whole pile that no alert made (maintenance, say), which
    # the pile accepted: not this alert's, so it must not confirm its cut-off.
    other = commands.create(pile(), None, CommandAction.DISABLE, T0)
    other.status = CommandStatus.ACCEPTED
    db.session.commit()
    out = handlers.process([
        incoming("fault", body("fault", ts=ts(s(1)), code="smoke", active=True, port=3),
                 arrived_at=s(1)),
        incoming("status", body("status", ts=ts(s(2)), port=1, status="available"),
                 arrived_at=s(2))], now=s(2))
    assert all(o.startswith("accepted") for o in out), out
    [alert] = all_alerts()
    assert alert.code == "smoke" and alert.cutoff == "pending"
    assert {c.alert_id for c in db.session.scalars(select(Command))} == {alert.id, None}


def test_a_batchs_stops_read_the_tracked_cutoffs_once(contacts, app_ctx):
    """Every port that stops charging asks for its pile's tracked cut-offs: within a
    batch they come from one query at its start (and what the batch requested), not
    one query per stop; a cut-off stored before the batch is still confirmed by it."""
    from chargers.constants import CommandAction, CommandStatus
    from chargers.ingest import handlers
    from tests.ingest_support import body, incoming, ts

    handlers.process([incoming("status", body("status", ts=ts(s(p)), port=p, status="charging"),
                               arrived_at=s(p)) for p in (1, 2, 3)], now=s(3))
    handlers.process([incoming("fault", body("fault", ts=ts(s(4)), code="smoke", active=True,
                                             port=3), arrived_at=s(4))], now=s(4))
    [alert] = all_alerts()
    assert alert.cutoff == "pending"
    for c in db.session.scalars(select(Command).where(Command.alert_id == alert.id)):
        if c.action == CommandAction.DISABLE:
            c.status = CommandStatus.ACCEPTED  # the pile accepted it; its ports still charge
    db.session.commit()
    seen = []

    def count(conn, cursor, statement, *args):
        seen.append(statement)

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        out = handlers.process([
            incoming("status", body("status", ts=ts(s(10 + p)), port=p, status="available"),
                     arrived_at=s(10 + p)) for p in (1, 2, 3)], now=s(13))
    finally:
        event.remove(db.engine, "before_cursor_execute", count)
    assert all(o.startswith("accepted") for o in out), out
    assert sum(" FROM alerts " in " ".join(st.split()) + " " for st in seen) == 1, seen
    db.session.expire_all()
    assert all_alerts()[0].cutoff == "confirmed"
