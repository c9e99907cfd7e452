"""Commands to piles: issue (API), dispatch on the cmd topic (job), ack, timeout, and
Port/Pile.enabled kept in step. The broker round trip is in test_alerts_e2e.py."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from flask import current_app
from sqlalchemy import select

from chargers import settings
from chargers.extensions import db
from chargers.jobs import all_jobs
from chargers.models import Alert, Command, Pile
from chargers.services.alerts import lifecycle as alerts
from chargers.services.devices import commands

from .conftest import bearer

T0 = datetime(2026, 11, 27, 1, 0, tzinfo=UTC)


class Ctx:
    """The job context: records what a job publishes (the broker path is tested e2e)."""

    def __init__(self, fail: bool = False):
        self.sent: list[tuple[str, dict]] = []
        self.fail = fail

    def publish(self, topic: str, payload: dict) -> None:
        if self.fail:
            raise ConnectionError("broker away")
        self.sent.append((topic, payload))


def rules() -> settings.CommandRules:
    """The command rules of the app's config, as the doors build them."""
    return settings.commands(current_app.config)

def pile() -> Pile:
    return db.session.get(Pile, "P-1")


def ack(cmd_id, result="accepted", detail=None, at=T0, pile_id="P-1"):
    commands.on_ack(db.session.get(Pile, pile_id), cmd_id, result, detail, at)
    db.session.commit()


def test_api_issues_a_pending_command(app, client, admin, alley_with_pile):
    _, token = admin
    r = client.post("/api/v1/piles/P-1/commands", json={"action": "disable", "port": 2},
                    headers=bearer(token))
    assert r.status_code == 202
    assert (r.json["action"], r.json["port"], r.json["status"]) == ("disable", 2, "pending")
    r = client.get(f"/api/v1/commands/{r.json['id']}", headers=bearer(token))
    assert r.status_code == 200 and r.json["pile"] == "P-1"
    for body in ({"action": "explode"}, {"action": "stop"}, {"action": "stop", "port": 9},
                 {"action": "reset", "port": 1}, {"action": "disable", "port": "2"}):
        r = client.post("/api/v1/piles/P-1/commands", json=body, headers=bearer(token))
        assert r.status_code == 422, body
    r = client.post("/api/v1/piles/NOPE/commands", json={"action": "reset"}, headers=bearer(token))
    assert r.status_code == 404
    with app.app_context():
        assert db.session.query(Command).count() == 1


def test_dispatch_publishes_contract_payload_then_ack_updates_port(app, alley_with_pile, app_ctx):
    cmd = commands.create(pile(), 3, "disable", T0)
    db.session.commit()
    ctx = Ctx()
    job = all_jobs()["commands-dispatch"]
    assert job.func(T0, ctx) == "1 command(s) sent"
    [(topic, payload)] = ctx.sent
    assert topic == "chargers/v1/P-1/cmd"
    assert payload == {"id": cmd.id, "ts": "2026-11-27T09:00:00+08:00", "action": "disable",
                       "port": 3}
    db.session.refresh(cmd)
    assert cmd.status == "sent" and cmd.sent_at == T0
    assert job.func(T0, ctx) is None and len(ctx.sent) == 1  # sent once

    ack(cmd.id, "accepted", at=T0 + timedelta(seconds=2))
    db.session.refresh(cmd)
    assert cmd.status == "accepted" and pile().ports[2].enabled is False
    ack(cmd.id, "rejected")  # a repeated/odd ack changes nothing
    db.session.refresh(cmd)
    assert cmd.status == "accepted"


def test_whole_pile_enable_disable_and_rejection(alley_with_pile, app_ctx):
    off = commands.create(pile(), None, "disable", T0)
    on = commands.create(pile(), None, "enable", T0)
    stop = commands.create(pile(), 1, "stop", T0)
    db.session.commit()
    commands.dispatch_pending(Ctx().publish, T0, rules())
    ack(off.id)
    assert pile().enabled is False
    ack(stop.id, "rejected", "no session on port 1")
    db.session.refresh(stop)
    assert stop.status == "rejected" and stop.detail == "no session on port 1"
    ack(on.id)
    assert pile().enabled is True


def test_ack_from_another_pile_is_ignored(app, client, admin, alley_with_pile):
    _, token = admin
    client.post("/api/v1/piles", json={"id": "P-2", "alley": "lane", "ports": 2},
                headers=bearer(token))
    with app.app_context():
        cmd = commands.create(pile(), 1, "disable", T0)
        db.session.commit()
        commands.dispatch_pending(Ctx().publish, T0, rules())
        ack(cmd.id, pile_id="P-2")
        db.session.refresh(cmd)
        assert cmd.status == "sent" and pile().ports[0].enabled is True


def test_no_ack_in_30_s_times_out_and_is_noted_on_the_alert(alley_with_pile, app_ctx):
    alerts.on_fault(pile(), 2, "smoke", True, None, None, T0, T0,
                    rules=settings.alerts(current_app.config))
    db.session.commit()
    commands.dispatch_pending(Ctx().publish, T0, rules())
    job = all_jobs()["commands-timeout"]
    assert job.func(T0 + timedelta(seconds=29), Ctx()) is None
    # (smoke: the whole pile's cut-off, a stop per port and a disable of the pile)
    assert job.func(T0 + timedelta(seconds=31), Ctx()) == "5 command(s) timed out"
    cmds = db.session.scalars(select(Command)).all()
    assert {c.status for c in cmds} == {"timeout"}
    alert = db.session.scalars(select(Alert)).one()
    assert [e.action for e in alert.events].count("command_timeout") == 5
    # the pile answers late after all: record what it did
    stop = next(c for c in cmds if c.action == "disable")
    ack(stop.id, at=T0 + timedelta(seconds=40))
    db.session.refresh(stop)
    assert stop.status == "accepted" and stop.detail.startswith("late ack")
    assert pile().enabled is False


def test_unpublished_commands_wait_then_give_up(app, alley_with_pile, app_ctx):
    cmd = commands.create(pile(), 1, "stop", T0)
    db.session.commit()
    assert commands.dispatch_pending(Ctx(fail=True).publish, T0, rules()) == 0
    db.session.refresh(cmd)
    assert cmd.status == "pending"
    assert commands.expire(T0 + timedelta(seconds=60), rules()) == 0  # still worth sending
    assert commands.expire(T0 + timedelta(seconds=app.config["COMMAND_UNSENT_TIMEOUT_S"] + 1), rules()) == 1
    db.session.refresh(cmd)
    assert cmd.status == "timeout" and cmd.detail == "never published"


def test_jobs_are_registered():
    ids = set(all_jobs())
    assert {"commands-dispatch", "commands-timeout", "alerts-offline", "alerts-notify",
            "alerts-escalate", "notify-deliver"} <= ids


def test_a_piles_command_list_pages_with_limit_and_offset(app, client, admin, alley_with_pile):
    _, token = admin
    with app.app_context():
        ids = [commands.create(pile(), port, "disable", T0 + timedelta(seconds=port)).id
               for port in (1, 2, 3)]
        db.session.commit()
    newest_first = ids[::-1]
    url = "/api/v1/piles/P-1/commands"
    assert [c["id"] for c in client.get(url, headers=bearer(token)).json] == newest_first
    for limit, offset in ((1, 0), (1, 1), (2, 1), (5, 3)):
        r = client.get(f"{url}?limit={limit}&offset={offset}", headers=bearer(token))
        assert r.status_code == 200
        assert [c["id"] for c in r.json] == newest_first[offset:offset + limit], (limit, offset)
    assert client.get(f"{url}?offset=-1", headers=bearer(token)).status_code == 422
