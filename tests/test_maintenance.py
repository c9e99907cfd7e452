"""Maintenance and the fire-safety routine (issue 10): every job run with a chosen
`now`, never by waiting. Reminders when due and not before, once, escalated when
overdue; recording resets the plan; the fault rule opens one order for a burst; a
failed item takes a port out of service until its order is done; overstays;
retention; photos without their location."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime, timedelta

import pytest
from PIL import Image
from sqlalchemy import func, select

from chargers import settings
from chargers.extensions import db
from chargers.jobs import all_jobs, run_job
from chargers.models import (
    Command,
    Contact,
    FaultEvent,
    InspectionPlan,
    InspectionRecord,
    JobRunLog,
    MeterSample,
    Notification,
    Pile,
    Rejection,
    WorkOrder,
)
from chargers.services import onboarding, photos, retention, users
from chargers.services.devices import alleys, piles
from chargers.services.errors import Conflict, Invalid
from chargers.services.maintenance import inspections, overstay
from chargers.services.maintenance.inspections import ItemResult, RecordInput

# 2026-12-01 in Suzhou (UTC+8); 08:00 local is 00:00 UTC.
D = date(2026, 12, 1)


def local(day: date, hour: int, minute: int = 0) -> datetime:
    """A UTC instant at `hour` o'clock of `day` in Asia/Shanghai."""
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC) - timedelta(hours=8)


def run(app, job_id: str, now: datetime) -> str | None:
    return run_job(app, all_jobs()[job_id], now)


@pytest.fixture
def site(app):
    """Alley `lane` (Asia/Shanghai, default plans), pile P-1 with 4 ports, a level-1
    and a level-2 contact, and a staff member of the alley. Returns ids."""
    with app.app_context():
        alley = onboarding.create_alley(alleys.AlleyInput(slug="lane", name="Lane"),
                                    settings.alley_defaults(app.config))
        piles.register_pile(None, piles.PileInput(id="P-1", alley="lane", ports=4, label="1号桩"))
        db.session.add_all([
            Contact(alley_id=alley.id, name="网格员", level=1, channel="email", target="a@example.org"),
            Contact(alley_id=alley.id, name="主任", level=2, channel="email", target="b@example.org"),
        ])
        user = users.create_user("wang", "correct-horse-battery", "staff", ["lane"])
        db.session.commit()
        return {"alley": alley.id, "user": user.id}


def _plan(kind: str) -> InspectionPlan:
    return db.session.scalar(select(InspectionPlan).where(InspectionPlan.kind == kind))


def _only_daily_due_on(day: date) -> int:
    """Keep only the daily patrol active, due on `day`; returns its id."""
    for p in db.session.scalars(select(InspectionPlan)):
        p.active = p.kind == "daily"
        p.next_due = day
    db.session.commit()
    return _plan("daily").id


def _notes(reason: str | None = None) -> list[Notification]:
    stmt = select(Notification).where(Notification.alert_id.is_(None))
    if reason:
        stmt = stmt.where(Notification.reason == reason)
    return list(db.session.scalars(stmt.order_by(Notification.id)))


def _all_pass(plan: InspectionPlan, **fail) -> list[ItemResult]:
    out = []
    for line in plan.checklist:
        if line["key"] in fail:
            out.append(ItemResult(line["key"], "fail", **fail[line["key"]]))
        else:
            out.append(ItemResult(line["key"], "pass"))
    return out


def test_new_alley_gets_the_default_plans(app, site):
    with app.app_context():
        plans = {p.kind: p for p in db.session.scalars(select(InspectionPlan))}
        assert set(plans) == {"daily", "monthly", "quarterly"}
        assert (plans["daily"].every, plans["daily"].unit) == (1, "day")
        assert (plans["quarterly"].every, plans["quarterly"].unit) == (3, "month")
        keys = {i["key"] for i in plans["monthly"].checklist}
        assert {"sockets_plugs", "smoke_detector", "rcd_test", "extinguisher_pressure",
                "signs_phone", "cables_enclosure"} <= keys
        assert {i["key"] for i in plans["daily"].checklist} >= {"fire_lane", "no_flying_wires",
                                                                 "extinguisher_reach"}
        assert all(p.pile_id is None and p.active for p in plans.values())


def test_reminded_when_due_not_before_once_then_escalated(app, site):
    with app.app_context():
        _only_daily_due_on(D)
    # The day before, and on the day before 08:00 local: nothing.
    assert run(app, "inspections-due", local(D - timedelta(days=1), 9)) is None
    assert run(app, "inspections-due", local(D, 7, 59)) is None
    with app.app_context():
        assert _notes() == []
    # 08:00 local on the due date: level 1 is reminded, once.
    assert run(app, "inspections-due", local(D, 8)) == "1 due; 1 message(s) queued"
    assert run(app, "inspections-due", local(D, 9)) is None
    assert run(app, "inspections-due", local(D, 23)) is None
    with app.app_context():
        due = _notes("due")
        assert [n.target for n in due] == ["a@example.org"]
        assert "日常巡查" in due[0].subject and "2026-12-01" in due[0].body
    # The next morning it is overdue: level 1 again, once.
    assert run(app, "inspections-due", local(D + timedelta(days=1), 8)) == "1 overdue; 1 message(s) queued"
    assert run(app, "inspections-due", local(D + timedelta(days=2), 8)) is None
    # Overdue 3 days (INSPECTION_ESCALATE_DAYS): level 2 hears of it, once.
    assert run(app, "inspections-due", local(D + timedelta(days=3), 8)) == "1 escalation; 1 message(s) queued"
    assert run(app, "inspections-due", local(D + timedelta(days=4), 8)) is None
    with app.app_context():
        assert [n.target for n in _notes("overdue")] == ["a@example.org"]
        assert [n.target for n in _notes("escalation")] == ["b@example.org"]
        assert len(_notes()) == 3


def test_reminders_follow_the_alley_zone(app, site):
    """An alley in Europe/Berlin is reminded at its own 08:00, not Suzhou's."""
    with app.app_context():
        alley = alleys.find_alley("lane")
        alley.timezone = "Europe/Berlin"
        _only_daily_due_on(D)
    assert run(app, "inspections-due", datetime(2026, 12, 1, 6, 30, tzinfo=UTC)) is None  # 07:30
    assert run(app, "inspections-due", datetime(2026, 12, 1, 7, 0, tzinfo=UTC)) == \
        "1 due; 1 message(s) queued"


def test_recording_resets_the_plan(app, site):
    with app.app_context():
        plan_id = _only_daily_due_on(D)
    run(app, "inspections-due", local(D + timedelta(days=1), 8))  # overdue sent
    with app.app_context():
        user = db.session.get(users.User, site["user"])
        plan = db.session.get(InspectionPlan, plan_id)
        record = inspections.record_inspection(user, plan_id, RecordInput(_all_pass(plan)),
                                               now=local(D + timedelta(days=1), 10))
        assert record.due_date == D and record.signer.name == "wang"
        assert db.session.get(InspectionPlan, plan_id).next_due == D + timedelta(days=2)
    # The overdue stage of the old due date is over; the new date is reminded as due.
    assert run(app, "inspections-due", local(D + timedelta(days=1), 12)) is None
    assert run(app, "inspections-due", local(D + timedelta(days=2), 8)) == "1 due; 1 message(s) queued"
    with app.app_context():
        plan = db.session.get(InspectionPlan, plan_id)
        assert inspections.due_state(plan, D + timedelta(days=2)).state == "due"
        assert inspections.due_state(plan, D + timedelta(days=1)).state == "upcoming"


def test_monthly_plan_steps_by_calendar_month():
    assert inspections.add_period(date(2026, 1, 31), 1, "month") == date(2026, 2, 28)
    assert inspections.add_period(date(2026, 11, 15), 3, "month") == date(2027, 2, 15)
    assert inspections.add_period(date(2026, 12, 31), 1, "day") == date(2027, 1, 1)


def test_every_item_must_be_marked_and_records_never_change(app, site):
    with app.app_context():
        user = db.session.get(users.User, site["user"])
        plan = _plan("daily")
        with pytest.raises(Invalid) as exc:
            inspections.record_inspection(user, plan.id, RecordInput(_all_pass(plan)[1:]))
        assert exc.value.code == "maintenance.missing_item"
        record = inspections.record_inspection(user, plan.id, RecordInput(_all_pass(plan)))
        record.notes = "changed afterwards"
        with pytest.raises(ValueError):
            db.session.commit()
        db.session.rollback()
        assert db.session.get(InspectionRecord, record.id).notes == ""


def test_failed_item_takes_the_port_out_of_service_until_done(app, site):
    with app.app_context():
        user = db.session.get(users.User, site["user"])
        plan = _plan("monthly")
        fail = {"sockets_plugs": {"note": "2号口插座发黑", "pile_id": "P-1", "port": 2,
                                  "out_of_service": True}}
        record = inspections.record_inspection(user, plan.id, RecordInput(_all_pass(plan, **fail)))
        orders = list(db.session.scalars(select(WorkOrder)))
        assert len(orders) == 1
        order = orders[0]
        assert (order.kind, order.status, order.pile_id, order.port) == ("repair", "open", "P-1", 2)
        assert order.record_id == record.id and order.took_out_of_service
        assert order.data["item"] == "sockets_plugs"
        cmds = list(db.session.scalars(select(Command)))
        assert [(c.action, c.port, c.status) for c in cmds] == [("disable", 2, "pending")]

        inspections.start_order(user, order.id, "电工已到场")
        with pytest.raises(Conflict):
            inspections.start_order(user, order.id)
        with pytest.raises(Invalid):
            inspections.finish_order(user, order.id, "")
        inspections.finish_order(user, order.id, "更换插座")
        order = db.session.get(WorkOrder, order.id)
        assert order.status == "done" and order.closed_by == user.id
        assert [e.action for e in order.events] == ["opened", "out_of_service", "started", "done",
                                                    "back_in_service"]
        cmds = list(db.session.scalars(select(Command).order_by(Command.created_at, Command.id)))
        assert [(c.action, c.port, c.status) for c in cmds] == [
            ("disable", 2, "pending"), ("enable", 2, "pending")]


def test_a_failed_item_without_out_of_service_sends_no_command(app, site):
    with app.app_context():
        user = db.session.get(users.User, site["user"])
        plan = _plan("daily")
        inspections.record_inspection(user, plan.id, RecordInput(
            _all_pass(plan, fire_lane={"note": "杂物堵塞"})))
        assert db.session.scalar(select(func.count()).select_from(WorkOrder)) == 1
        assert db.session.scalar(select(func.count()).select_from(Command)) == 0


def _faults(pile_id: str, at: datetime, n: int) -> None:
    for i in range(n):
        t = at + timedelta(minutes=i)
        db.session.add(FaultEvent(pile_id=pile_id, port=1, code="over_current", active=True,
                                  ts=t, received_at=t))
    db.session.commit()


def test_fault_rule_opens_one_order_for_a_burst(app, site):
    t0 = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)
    with app.app_context():
        _faults("P-1", t0, 2)
    assert run(app, "fault-inspections", t0 + timedelta(hours=1)) is None  # 2 < 3
    with app.app_context():
        _faults("P-1", t0 + timedelta(days=1), 5)  # a burst: 7 faults in 2 days
    assert run(app, "fault-inspections", t0 + timedelta(days=1, hours=1)) == \
        "1 inspection order(s) opened"
    assert run(app, "fault-inspections", t0 + timedelta(days=1, hours=2)) is None
    with app.app_context():
        _faults("P-1", t0 + timedelta(days=1, hours=3), 4)  # more faults while it is open
    assert run(app, "fault-inspections", t0 + timedelta(days=1, hours=4)) is None
    with app.app_context():
        orders = list(db.session.scalars(select(WorkOrder)))
        assert len(orders) == 1
        assert (orders[0].kind, orders[0].reason, orders[0].pile_id) == \
            ("inspection", "fault_burst", "P-1")
        assert orders[0].data["faults"] >= 3
        user = db.session.get(users.User, site["user"])
        inspections.finish_order(user, orders[0].id, "检查完毕",
                                 now=t0 + timedelta(days=1, hours=5))
    # Done: the old faults do not open another; a new burst does.
    assert run(app, "fault-inspections", t0 + timedelta(days=1, hours=6)) is None
    with app.app_context():
        _faults("P-1", t0 + timedelta(days=2), 3)
    assert run(app, "fault-inspections", t0 + timedelta(days=2, hours=1)) == \
        "1 inspection order(s) opened"
    # Faults older than the window do not count.
    assert run(app, "fault-inspections", t0 + timedelta(days=30)) is None


def test_fault_rule_opens_an_order_for_a_hot_meter(app, site):
    t0 = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)
    with app.app_context():
        for temp in (45.0, 81.5, 90.0):
            db.session.add(MeterSample(pile_id="P-1", port=1, ts=t0, received_at=t0,
                                       power_w=300, energy_wh=10, temp_c=temp))
        db.session.commit()
    assert run(app, "fault-inspections", t0 + timedelta(minutes=10)) == \
        "1 inspection order(s) opened"
    assert run(app, "fault-inspections", t0 + timedelta(minutes=20)) is None
    with app.app_context():
        order = db.session.scalar(select(WorkOrder))
        assert order.reason == "over_temperature" and order.data["temp_c"] == 90.0


def test_overstay_minutes_per_port(app, site):
    now = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    with app.app_context():
        pile = db.session.get(Pile, "P-1")
        pile.ports[0].status, pile.ports[0].status_since = "finishing", now - timedelta(minutes=40)
        pile.ports[1].status, pile.ports[1].status_since = "finishing", now - timedelta(minutes=5)
        pile.ports[2].status, pile.ports[2].status_since = "charging", now - timedelta(hours=2)
        db.session.commit()
    assert run(app, "overstay", now) == "1 overstay(s) noticed, 0 ended"
    assert run(app, "overstay", now + timedelta(minutes=1)) is None
    with app.app_context():
        assert overstay.minutes_by_port(["P-1"], now=now) == {("P-1", 1): 40}
        assert overstay.minutes_by_port(alley_id=site["alley"], now=now) == {("P-1", 1): 40}
        pile = db.session.get(Pile, "P-1")
        pile.ports[0].status, pile.ports[0].status_since = "available", now + timedelta(minutes=2)
        db.session.commit()
    assert run(app, "overstay", now + timedelta(minutes=3)) == "0 overstay(s) noticed, 1 ended"
    with app.app_context():
        assert overstay.minutes_by_port(["P-1"], now=now) == {}


def test_retention_deletes_old_rows_in_batches(app, site):
    now = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    old, new = now - timedelta(days=400), now - timedelta(days=1)
    with app.app_context():
        for t in [old] * 5 + [new] * 2:
            db.session.add(MeterSample(pile_id="P-1", port=1, ts=t, received_at=t, power_w=1,
                                       energy_wh=1))
            db.session.add(Rejection(reason="malformed", topic="x", received_at=t))
            db.session.add(JobRunLog(job_id="x", started_at=t, finished_at=t, status="ok"))
            db.session.add(Notification(channel="email", target="a@b", status="sent", sent_at=t,
                                        created_at=t))
        db.session.add(Notification(channel="email", target="a@b", status="pending", created_at=old))
        db.session.commit()
        out = retention.purge(retention.RetentionRule(batch=2), now)
        assert out == {"meter_samples": 5, "feeder_samples": 0, "notifications": 5,
                       "rejections": 5, "job_runs": 5}
        assert db.session.scalar(select(func.count()).select_from(MeterSample)) == 2
        assert db.session.scalar(select(func.count()).select_from(Rejection)) == 2
        # Undelivered notifications stay whatever their age.
        assert db.session.scalar(select(func.count()).select_from(Notification)
                                 .where(Notification.status == "pending")) == 1


def _jpeg_with_gps() -> bytes:
    img = Image.new("RGB", (64, 48), (200, 30, 30))
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"  # Make
    gps = {1: "N", 2: (31.0, 18.0, 30.0), 3: "E", 4: (120.0, 37.0, 10.0)}
    exif[0x8825] = gps  # GPSInfo
    out = io.BytesIO()
    img.save(out, "JPEG", exif=exif)
    return out.getvalue()


def test_photo_with_gps_is_stored_without_it(tmp_path):
    data = _jpeg_with_gps()
    with Image.open(io.BytesIO(data)) as src:
        assert src.getexif().get_ifd(0x8825)  # the upload does carry a position
    rule = photos.PhotoRule(directory=str(tmp_path / "photos"))
    name = photos.store(data, rule)
    stored = photos.path_of(name, rule).read_bytes()
    with Image.open(io.BytesIO(stored)) as img:
        assert img.format == "JPEG" and img.size == (64, 48)
        assert not img.getexif()
        assert "exif" not in img.info
    assert b"PhoneMaker" not in stored and b"GPS" not in stored


def test_not_an_image_is_refused(tmp_path):
    rule = photos.PhotoRule(directory=str(tmp_path / "photos"), max_bytes=1000)
    with pytest.raises(Invalid) as exc:
        photos.store(b"%PDF-1.4 not a picture at all", rule)
    assert exc.value.code == "photo.not_image"
    with pytest.raises(Invalid) as exc:
        photos.store(b"\xff\xd8\xff" + b"0" * 2000, rule)
    assert exc.value.code == "photo.too_large"
    assert not (tmp_path / "photos").exists() or not any((tmp_path / "photos").iterdir())
