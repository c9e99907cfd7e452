"""The ingest's rules at handler level, without a broker (fast): validation
classes, idempotency, time, ports, sessions, presence, seq, and the jobs."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from chargers.extensions import db
from chargers.ingest import handlers
from chargers.models import (
    ChargingSession,
    FaultEvent,
    IngestCounter,
    MeterSample,
    Pile,
    Port,
    ProcessedMessage,
    Rejection,
    SeqGap,
)
from tests.conftest import bearer
from tests.ingest_support import body, incoming, ts

pytestmark = pytest.mark.usefixtures("alley_with_pile")


def run(*msgs):
    return handlers.process(list(msgs))


def counter(key: str) -> int:
    row = db.session.get(IngestCounter, key)
    return row.count if row else 0


def port(n: int = 1) -> Port:
    return db.session.scalar(select(Port).where(Port.pile_id == "P-1", Port.number == n))


def count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def state_snapshot():
    """Everything a rejected message must leave alone."""
    pile = db.session.get(Pile, "P-1")
    return (pile.online, pile.last_seen_at, pile.last_seq, pile.model,
            [(p.number, p.status, p.status_ts) for p in pile.ports],
            count(ChargingSession), count(MeterSample), count(FaultEvent),
            count(ProcessedMessage), count(SeqGap))


def test_status_lands_and_ledger_records_it(app, app_ctx):
    assert run(incoming("status", port=2, status="charging")) == ["accepted"]
    assert port(2).status == "charging"
    assert counter("accepted:status") == 1
    assert count(ProcessedMessage) == 1


def test_duplicate_changes_nothing(app, app_ctx):
    first = body("status", port=1, status="occupied")
    assert run(incoming("status", first)) == ["accepted"]
    snap = state_snapshot()
    later = dict(first, status="available")  # same id, different content: still the same message
    assert run(incoming("status", first), incoming("status", later)) == ["duplicate", "duplicate"]
    assert state_snapshot() == snap
    assert counter("duplicate") == 2


def test_duplicate_within_one_batch(app, app_ctx):
    m = body("meter", session="T9", energy_wh=3.0)
    assert run(incoming("meter", m), incoming("meter", m)) == ["accepted", "duplicate"]
    assert count(MeterSample) == 1


BAD = [
    ("bad_topic", dict(kind="status", topic="chargers/v1/P-1/status/extra")),
    ("bad_topic", dict(kind="status", topic="chargers/v1/bad id!/status")),
    ("bad_topic", dict(kind="status", topic="elsewhere/P-1/status")),
    ("unknown_kind", dict(kind="status", topic="chargers/v1/P-1/selfdestruct")),
    ("unknown_pile", dict(kind="status", pile="NOPE")),
    ("sender_mismatch", dict(kind="status", sender="P-2")),
    ("oversized", dict(kind="status", payload=b"{" + b" " * 5000 + b"}")),
    ("malformed", dict(kind="status", payload=b"\xff\xfe not utf-8")),
    ("malformed", dict(kind="status", payload=b"{not json")),
    ("malformed", dict(kind="status", payload=b"[1, 2, 3]")),
    ("malformed", dict(kind="meter", payload=b'{"id":"x","ts":"2026-11-27T08:00:00Z","power_w":NaN}')),
    ("malformed", dict(kind="status", payload=b"[" * 2000 + b"]" * 2000)),
    ("malformed", dict(kind="online", payload=b"yes")),
    ("invalid", dict(kind="status", payload={"id": "a", "ts": ts(), "port": 1})),  # missing status
    ("invalid", dict(kind="status", payload={"id": "a", "ts": ts(), "port": "1", "status": "available"})),
    ("invalid", dict(kind="status", payload={"id": "a", "ts": ts(), "port": 1, "status": "exploded"})),
    ("invalid", dict(kind="status", payload={"id": "a", "ts": "2026-11-27T08:00:00", "port": 1,
                                             "status": "available"})),  # no offset
    ("invalid", dict(kind="status", payload={"id": "a", "ts": ts(), "port": 1, "status": "available",
                                             "extra": 1})),
    ("invalid", dict(kind="meter", payload=body("meter", energy_wh=-1.0))),
    ("invalid", dict(kind="meter", payload=body("meter", power_w=1e300))),
    ("invalid", dict(kind="meter", payload=body("meter", power_w=True))),
    ("invalid", dict(kind="status", payload=body("status", seq=2**40))),
    ("invalid", dict(kind="session", payload=body("session", event="start", port=1, session="S",
                                                  energy_wh=1.0, reason="full"))),
    ("invalid", dict(kind="status", payload=body("status", port=0))),
    ("port_out_of_range", dict(kind="status", payload=body("status", port=5))),
    ("port_out_of_range", dict(kind="fault", payload=body("fault", port=9))),
]


@pytest.mark.parametrize("reason,spec", BAD, ids=[f"{r}-{i}" for i, (r, _) in enumerate(BAD)])
def test_bad_input_is_rejected_counted_and_harmless(app, reason, spec, app_ctx):
    spec = dict(spec)
    kind = spec.pop("kind")
    before = state_snapshot()
    good = incoming("status", port=3, status="charging")
    outcomes = run(incoming(kind, **spec), good)
    assert outcomes == [f"rejected:{reason}", "accepted"]
    assert counter(f"rejected:{reason}") == 1
    kept = db.session.scalars(select(Rejection)).all()
    assert [r.reason for r in kept] == [reason]
    assert len(kept[0].payload_excerpt) <= 201
    # nothing changed but what the valid message after it did
    after = state_snapshot()
    assert (after[0], after[2], after[3]) == (before[0], before[2], before[3])
    assert port(3).status == "charging"
    assert after[5:8] == before[5:8]


def test_our_own_commands_are_ignored(app, app_ctx):
    assert run(incoming("cmd", {"id": "c1", "ts": ts(), "action": "reset"})) == ["ignored"]
    assert count(Rejection) == 0


def test_time_source_device_or_server(app, app_ctx):
    now = datetime.now(UTC)
    run(incoming("fault", body("fault", ts=ts(now - timedelta(minutes=3))), arrived_at=now),
        incoming("fault", body("fault", ts="2000-01-01T00:00:07+08:00"), arrived_at=now),
        incoming("fault", body("fault", ts=ts(now + timedelta(hours=2))), arrived_at=now))
    events = db.session.scalars(select(FaultEvent).order_by(FaultEvent.id)).all()
    assert [e.time_source for e in events] == ["device", "server", "server"]
    assert events[0].ts == (now - timedelta(minutes=3)).replace(microsecond=events[0].ts.microsecond)
    assert events[1].ts == now and events[2].ts == now


def test_older_status_does_not_overwrite_newer(app, app_ctx):
    now = datetime.now(UTC)
    run(incoming("status", port=1, status="charging", ts=ts(now)),
        incoming("status", port=1, status="occupied", ts=ts(now - timedelta(seconds=5))))
    assert port(1).status == "charging"
    assert counter("stale:status") == 1


def test_one_charge_gives_one_session_with_its_energy(app, client, admin):
    t0 = datetime.now(UTC) - timedelta(minutes=30)
    msgs = [incoming("status", port=3, status="occupied", ts=ts(t0)),
            incoming("session", event="start", port=3, session="T1001", card="C-42", meter_wh=0,
                     ts=ts(t0 + timedelta(seconds=5))),
            incoming("status", port=3, status="charging", ts=ts(t0 + timedelta(seconds=5)))]
    msgs += [incoming("meter", port=3, session="T1001", power_w=318.0, energy_wh=5.3 * i,
                      ts=ts(t0 + timedelta(minutes=i))) for i in range(1, 6)]
    msgs += [incoming("session", event="stop", port=3, session="T1001", energy_wh=30.0,
                      reason="full", ts=ts(t0 + timedelta(minutes=6))),
             incoming("status", port=3, status="finishing", ts=ts(t0 + timedelta(minutes=6)))]
    with app.app_context():
        assert set(run(*msgs)) == {"accepted"}
        s = db.session.scalars(select(ChargingSession)).one()
        assert (s.status, s.port, s.card, s.energy_wh, s.stop_reason) == ("stopped", 3, "C-42", 30.0, "full")
        assert s.ended_at - s.started_at == timedelta(minutes=6, seconds=-5)
        assert count(MeterSample) == 5
    r = client.get("/api/v1/sessions?pile=P-1", headers=bearer(admin[1]))
    assert r.status_code == 200
    [row] = r.json
    assert row["energy_wh"] == 30.0 and row["amount_cents"] is None and row["status"] == "stopped"
    assert row["pile"] == "P-1" and row["port"] == 3


def test_stop_before_start_is_reconciled(app, app_ctx):
    t0 = datetime.now(UTC) - timedelta(minutes=10)
    run(incoming("session", event="stop", port=2, session="X", energy_wh=50.0, reason="unplugged",
                 ts=ts(t0 + timedelta(minutes=5))))
    s = db.session.scalars(select(ChargingSession)).one()
    assert s.status == "orphan" and s.started_at is None
    run(incoming("session", event="start", port=2, session="X", meter_wh=100.0, ts=ts(t0)))
    db.session.refresh(s)
    assert (s.status, s.energy_wh, s.stop_reason) == ("stopped", 50.0, "unplugged")
    assert s.ended_at - s.started_at == timedelta(minutes=5)
    assert count(ChargingSession) == 1


def test_meter_for_unknown_session_then_start(app, app_ctx):
    t0 = datetime.now(UTC) - timedelta(minutes=10)
    run(incoming("meter", port=4, session="M", energy_wh=7.0, ts=ts(t0 + timedelta(minutes=1))))
    s = db.session.scalars(select(ChargingSession)).one()
    assert s.status == "orphan" and s.energy_wh == 7.0
    run(incoming("session", event="start", port=4, session="M", meter_wh=0, ts=ts(t0)))
    db.session.refresh(s)
    assert s.status == "active" and s.started_at is not None
    assert db.session.scalar(select(MeterSample.session_id)) == s.id


def test_start_that_never_stops_is_closed_by_job(app, app_ctx):
    from chargers.jobs import all_jobs, run_job

    t0 = datetime.now(UTC) - timedelta(hours=3)
    run(incoming("session", event="start", port=1, session="Z", meter_wh=0, ts=ts(t0)),
        incoming("meter", port=1, session="Z", energy_wh=11.0, ts=ts(t0 + timedelta(minutes=2))))
    job = all_jobs()["stale-sessions"]
    summary = run_job(app, job, datetime.now(UTC), None)
    assert summary == "1 sessions closed by timeout"
    s = db.session.scalars(select(ChargingSession)).one()
    db.session.refresh(s)
    assert (s.status, s.stop_reason, s.energy_wh) == ("timeout", "timeout", 11.0)
    assert s.ended_at == (t0 + timedelta(minutes=2)).replace(microsecond=s.ended_at.microsecond)
    # a late real stop still corrects an unsettled timeout
    run(incoming("session", event="stop", port=1, session="Z", energy_wh=12.0, reason="full",
                 ts=ts(t0 + timedelta(minutes=3))))
    db.session.refresh(s)
    assert (s.status, s.energy_wh) == ("stopped", 12.0)


def test_seq_gap_and_replay(app, app_ctx):
    run(incoming("boot", seq=0))
    run(incoming("heartbeat", seq=1), incoming("heartbeat", seq=2))
    assert count(SeqGap) == 0
    run(incoming("heartbeat", seq=7))
    gap = db.session.scalars(select(SeqGap)).one()
    assert (gap.expected_seq, gap.got_seq, gap.missing, gap.status) == (3, 7, 4, "open")
    # a seq seen already (not one of the gap's), as old as it, is a replay (a lower seq
    # with a newer pile clock would be a reboot whose boot has not arrived yet)
    old = ts(datetime.now(UTC) - timedelta(minutes=1))
    assert run(incoming("status", port=1, status="charging", seq=2, ts=old)) == [
        "rejected:replay"]
    assert port(1).status != "charging"
    # a new boot resets the baseline
    assert run(incoming("boot", seq=0), incoming("status", port=1, status="charging", seq=1)) == [
        "accepted", "accepted"]


def test_boot_updates_pile_info_and_ports(app, app_ctx):
    run(incoming("boot", model="EB-12", firmware="3.0", ports=6, max_power_w=1200))
    pile = db.session.get(Pile, "P-1")
    assert (pile.model, pile.firmware, pile.max_power_w, pile.port_count) == ("EB-12", "3.0", 1200, 6)
    assert [p.number for p in pile.ports] == [1, 2, 3, 4, 5, 6]
    assert run(incoming("status", port=6, status="available")) == ["accepted"]


def test_online_will_and_heartbeat_sweep(app, app_ctx):
    from chargers.jobs import all_jobs, run_job

    now = datetime.now(UTC)
    run(incoming("online", b"1", arrived_at=now))
    pile = db.session.get(Pile, "P-1")
    assert pile.online
    run(incoming("online", b"0", arrived_at=now))
    db.session.refresh(pile)
    assert not pile.online and pile.offline_reason == "will"
    # after a will, a heartbeat does not revive; `online 1` does
    run(incoming("heartbeat"))
    db.session.refresh(pile)
    assert not pile.online
    run(incoming("online", b"1"))
    db.session.refresh(pile)
    assert pile.online
    # three missed heartbeats: the sweep marks it offline; a fresh heartbeat revives it
    later = datetime.now(UTC) + timedelta(seconds=3 * app.config["HEARTBEAT_INTERVAL_S"] + 5)
    run_job(app, all_jobs()["offline-sweep"], later, None)
    db.session.refresh(pile)
    assert not pile.online and pile.offline_reason == "heartbeat"
    # the stored `online 1` replayed on resubscribe is old news: still offline
    run(incoming("online", b"1", retained=True))
    db.session.refresh(pile)
    assert not pile.online
    run(incoming("heartbeat"))
    db.session.refresh(pile)
    assert pile.online
    # a stored `0` (the will fired while we were away) does count
    run(incoming("online", b"0", retained=True))
    db.session.refresh(pile)
    assert not pile.online


def test_poison_message_does_not_block_the_batch(app, monkeypatch, app_ctx):
    from chargers.services.alerts import lifecycle as alerts

    def boom(*a, **k):
        raise RuntimeError("bug in a handler")

    monkeypatch.setattr(alerts, "on_fault", boom)
    outcomes = run(incoming("status", port=1, status="occupied"), incoming("fault"),
                   incoming("status", port=2, status="charging"))
    assert outcomes == ["accepted", "rejected:error", "accepted"]
    assert port(1).status == "occupied" and port(2).status == "charging"
    assert count(FaultEvent) == 0 and counter("rejected:error") == 1


def test_a_batch_retried_one_by_one_still_yields_to_an_urgent_message(app, monkeypatch, app_ctx):
    """A failed batch is applied again a message at a time (a commit each): asked after
    each, it gives way to an authorize; the poison message is kept and the rest come
    back unapplied."""
    from chargers.services.alerts import lifecycle as alerts

    def boom(*a, **k):
        raise RuntimeError("bug in a handler")

    monkeypatch.setattr(alerts, "on_fault", boom)
    asked = []
    msgs = [incoming("fault"), incoming("status", port=1, status="occupied"),
            incoming("status", port=2, status="charging")]
    out = handlers.process(msgs, yield_to=lambda: asked.append(1) or len(asked) >= 2)
    assert out == ["rejected:error", "accepted", handlers.YIELDED]
    assert port(1).status == "occupied" and port(2).status != "charging"
    assert count(FaultEvent) == 0 and counter("rejected:error") == 1


def test_rejections_api_and_staff_page(app, client, admin, make_staff):
    with app.app_context():
        run(incoming("status", payload=b"garbage"), incoming("status", pile="NOPE"))
    r = client.get("/api/v1/rejections", headers=bearer(admin[1]))
    assert r.status_code == 200
    assert [x["reason"] for x in r.json] == ["unknown_pile", "malformed"]
    assert r.json[1]["pile"] == "P-1"
    client.post("/api/v1/alleys", json={"slug": "other", "name": "Other"}, headers=bearer(admin[1]))
    _, token = make_staff("zhang", ["other"])
    assert client.get("/api/v1/rejections", headers=bearer(token)).json == []
    assert client.get("/api/v1/sessions?pile=P-1", headers=bearer(token)).status_code == 404
    assert client.get("/api/v1/rejections").status_code == 401


def test_ledger_prune_job(app, app_ctx):
    from chargers.jobs import all_jobs, run_job

    old = datetime.now(UTC) - timedelta(days=30)
    run(incoming("heartbeat", arrived_at=old), incoming("heartbeat"))
    run_job(app, all_jobs()["prune-ledger"], datetime.now(UTC), None)
    assert count(ProcessedMessage) == 1


def test_metrics_show_counters(app, client):
    with app.app_context():
        run(incoming("status", payload=b"{"), incoming("heartbeat"))
    text = client.get("/metrics").get_data(as_text=True)
    assert 'chargers_ingest_rejected_total{reason="malformed"} 1.0' in text
    assert json  # keep import for payload helpers


def test_sessions_newest_first_paged_and_documented(app, client, admin):
    t0 = datetime.now(UTC) - timedelta(hours=1)
    # the later charge arrives first (say, after an outage)
    with app.app_context():
        run(incoming("session", event="start", port=2, session="late", meter_wh=0,
                     ts=ts(t0 + timedelta(minutes=30))),
            incoming("session", event="start", port=1, session="early", meter_wh=0, ts=ts(t0)))
    rows = client.get("/api/v1/sessions?pile=P-1", headers=bearer(admin[1])).json
    assert [r["session"] for r in rows] == ["late", "early"]
    rows = client.get("/api/v1/sessions?pile=P-1&limit=1&offset=1", headers=bearer(admin[1])).json
    assert [r["session"] for r in rows] == ["early"]
    assert client.get("/api/v1/sessions?pile=NOPE", headers=bearer(admin[1])).status_code == 404
    paths = client.get("/api/v1/openapi.json").json["paths"]
    assert "get" in paths["/sessions"] and "get" in paths["/rejections"]


def test_a_flood_is_counted_in_full_but_kept_in_moderation(app, app_ctx):
    now = datetime.now(UTC)
    flood = [incoming("status", pile="STRANGER", arrived_at=now) for _ in range(50)]
    assert run(*flood) == ["rejected:unknown_pile"] * 50
    assert counter("rejected:unknown_pile") == 50
    assert count(Rejection) == 20
    # other piles' rejections are still kept, and a minute later the stranger's again
    run(incoming("status", payload=b"{", arrived_at=now),
        incoming("status", pile="STRANGER", arrived_at=now + timedelta(minutes=1)))
    assert count(Rejection) == 22
