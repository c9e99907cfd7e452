"""Issue 25 §3: session messages to residents. Each message once per event (duplicated
and late MQTT messages included), through the outbox, in the resident's language, held
in the quiet hours (22:00–07:00 in the alley's zone) unless night messages are welcome
or it is a safety stop. The ingest's real handlers, every `now` chosen by the test."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from chargers import settings
from chargers.extensions import db
from chargers.ingest import handlers
from chargers.models import (
    AccountCard,
    ChargingSession,
    LedgerEntry,
    Notification,
    Posting,
    Reminder,
    ResidentAccount,
    ResidentChannels,
)
from chargers.services import onboarding, users
from chargers.services.alerts import notify
from chargers.services.billing import accounts, messages, reminders, settlement
from chargers.services.charging import sessions
from chargers.services.devices import alleys, piles
from chargers.services.errors import Invalid
from chargers.settings import Delivery

from .ingest_support import body, incoming

SH = ZoneInfo("Asia/Shanghai")


def local(zone: ZoneInfo, *args) -> datetime:
    """A local wall-clock time in `zone`, as UTC."""
    return datetime(*args, tzinfo=zone).astimezone(UTC)


DAY_SH = local(SH, 2026, 12, 3, 14, 0)  # 14:00 in Shanghai
NIGHT_SH = local(SH, 2026, 12, 3, 23, 30)  # 23:30 in Shanghai


def make_alley(slug: str = "lane", zone: str = "Asia/Shanghai", pile: str = "P-1") -> None:
    onboarding.create_alley(alleys.AlleyInput(slug=slug, name="幸福里", timezone=zone),
                            settings.alley_defaults({"DEFAULT_TIMEZONE": "Asia/Shanghai",
                                                     "DEFAULT_TARIFF_CENTS_PER_KWH": 60}))
    piles.register_pile(None, piles.PileInput(id=pile, alley=slug, ports=4, label="1号桩"))
    db.session.commit()


def make_resident(card: str, *, slug: str = "lane", email: str = "", sms: bool = False,
                  openid: str = "", night: bool = False, language: str = "",
                  topup: int = 0) -> ResidentAccount:
    alley = alleys.find_alley(slug)
    acc = ResidentAccount(alley_id=alley.id, kind="prepaid", household="3-201", name="张三",
                          phone="13800000000")
    db.session.add(acc)
    db.session.flush()
    db.session.add_all([AccountCard(alley_id=alley.id, account_id=acc.id, card=card),
                        ResidentChannels(resident_id=acc.id, email=email, sms=sms,
                                         wechat_openid=openid, wechat=bool(openid),
                                         night=night, language=language)])
    db.session.commit()
    if topup:
        accounts.top_up(staff(), acc.id, topup, "cash", None, DAY_SH - timedelta(days=1))
        db.session.commit()
    return acc


@pytest.fixture
def lane(app_ctx):
    make_alley()
    return app_ctx


def staff():
    from chargers.models import User

    return db.session.scalar(select(User).where(User.name == "root")) or \
        users.create_user("root", "a-long-password-1", "admin")


def msg(kind: str, at: datetime, pile: str = "P-1", **fields):
    """A device message sent and arriving at `at` (the pile's clock right)."""
    return incoming(kind, body(kind, ts=at.astimezone(SH).isoformat(), **fields), pile=pile,
                    arrived_at=at)


def run(at: datetime, *msgs) -> list[str]:
    return handlers.process(list(msgs), now=at)


def outbox() -> list[Notification]:
    return list(db.session.scalars(select(Notification).order_by(Notification.id)))


def start(at, ref="S1", card="C-1", port=2, pile="P-1"):
    return msg("session", at, pile=pile, event="start", port=port, session=ref, card=card,
               meter_wh=0)


def stop(at, ref="S1", wh=500.0, reason="unplugged", port=2, pile="P-1"):
    return msg("session", at, pile=pile, event="stop", port=port, session=ref,
               energy_wh=wh, reason=reason)


# --- channels ------------------------------------------------------------------------

def test_channel_choice_is_validated_with_clear_refusals(lane):
    acc = make_resident("C-1")
    now = DAY_SH
    with pytest.raises(Invalid) as e:
        reminders.save_channels(acc, None, "", False, now, wechat=True)
    assert e.value.code == "reminder.no_wechat"  # no openid yet: OAuth first
    with pytest.raises(Invalid) as e:
        reminders.set_channels(staff(), acc.id, "", False, now, language="fr")
    assert e.value.code == "reminder.language"
    with pytest.raises(Invalid) as e:
        reminders.save_channels(acc, None, "not-an-address", False, now)
    assert e.value.code == "reminder.email"
    ch = db.session.get(ResidentChannels, acc.id)
    ch.wechat_openid = "o-zhang"
    db.session.commit()
    row = reminders.save_channels(acc, None, "", True, now, wechat=True, night=True,
                                  language="en")
    assert (row.wechat, row.sms, row.night, row.language) == (True, True, True, "en")
    assert reminders.chosen(row, acc) == ["sms", "wechat"]
    row = reminders.set_channels(staff(), acc.id, "", False, now, wechat=False, night=False)
    assert reminders.chosen(row, acc) == []  # none: recorded, not sent
    assert row.language == "en"  # unchanged when not given


# --- quiet hours -----------------------------------------------------------------------

@pytest.mark.parametrize("zone, wall, held_until", [
    ("Asia/Shanghai", (2026, 12, 3, 21, 59), None),
    ("Asia/Shanghai", (2026, 12, 3, 22, 0), (2026, 12, 4, 7, 0)),
    ("Asia/Shanghai", (2026, 12, 3, 23, 30), (2026, 12, 4, 7, 0)),
    ("Asia/Shanghai", (2026, 12, 4, 0, 10), (2026, 12, 4, 7, 0)),
    ("Asia/Shanghai", (2026, 12, 4, 6, 59), (2026, 12, 4, 7, 0)),
    ("Asia/Shanghai", (2026, 12, 4, 7, 0), None),
    ("Asia/Urumqi", (2026, 12, 3, 23, 0), (2026, 12, 4, 7, 0)),
    ("Europe/Berlin", (2026, 3, 29, 1, 30), (2026, 3, 29, 7, 0)),  # the night clocks go on
    ("America/New_York", (2026, 12, 31, 22, 30), (2027, 1, 1, 7, 0)),
])
def test_quiet_hours_in_the_alleys_zone(zone, wall, held_until):
    z = ZoneInfo(zone)
    now = local(z, *wall)
    expected = now if held_until is None else local(z, *held_until)
    assert reminders.quiet_until(now, z) == expected


def test_a_night_message_waits_for_seven_unless_welcome_and_safety_always_goes(lane):
    sleeper = make_resident("C-1", email="a@example.org")
    owl = make_resident("C-2", email="b@example.org", night=True)
    data = {"alley": "幸福里", "pile": "1号桩", "port": 1, "time": "23:30", "balance": "5.00"}
    reminders.queue_to_account(sleeper, "session_start", data, "zh", NIGHT_SH)
    reminders.queue_to_account(owl, "session_start", data, "zh", NIGHT_SH)
    reminders.queue_to_account(sleeper, "battery_risk", data, "zh", NIGHT_SH, safety=True)
    db.session.commit()
    seven = local(SH, 2026, 12, 4, 7, 0)
    assert [(n.target, n.reason, n.next_attempt_at) for n in outbox()] == [
        ("a@example.org", "session_start", seven), ("b@example.org", "session_start", NIGHT_SH),
        ("a@example.org", "battery_risk", NIGHT_SH)]
    # Delivery (SMTP unset: each try fails, but only the due ones are tried)
    delivery = Delivery(smtp_host="")
    notify.deliver_due(seven - timedelta(minutes=1), delivery)
    assert [n.attempts for n in outbox()] == [0, 1, 1]
    notify.deliver_due(seven, delivery)
    assert outbox()[0].attempts == 1  # held, not dropped: tried at 07:00


def test_a_retry_keeps_to_the_quiet_hours_a_safety_retry_does_not(lane):
    acc = make_resident("C-1", email="a@example.org")
    data = {"alley": "幸福里", "pile": "1号桩", "port": 1, "time": "21:59", "balance": "5.00"}
    before = local(SH, 2026, 12, 3, 21, 59)
    reminders.queue_to_account(acc, "session_start", data, "zh", before)
    reminders.queue_to_account(acc, "battery_risk", data, "zh", before, safety=True)
    db.session.commit()
    notify.deliver_due(before, Delivery(smtp_host="", backoff_base_s=60))  # both fail
    held, safety = outbox()
    assert held.next_attempt_at == local(SH, 2026, 12, 4, 7, 0)
    assert safety.next_attempt_at == before + timedelta(seconds=60)


# --- session events through the ingest ---------------------------------------------------

def kinds() -> list[tuple[str, str]]:
    return [(n.reason, n.channel) for n in outbox()]


def test_start_and_full_each_sent_once_whatever_the_pile_repeats(lane):
    make_resident("C-1", email="a@example.org", topup=1234)
    t = DAY_SH
    first = start(t)
    assert run(t, first) == ["accepted"]
    # the same message redelivered (QoS 1), and the same start again under a new id
    assert run(t + timedelta(seconds=5), first, start(t)) == ["duplicate", "accepted"]
    assert kinds() == [("session_start", "email")]
    text = outbox()[0].body
    assert "1号桩" in text and "2" in text and "14:00" in text and "12.34" in text
    assert "开始充电" in outbox()[0].subject
    end = stop(t + timedelta(hours=2), wh=800.0, reason="full")
    assert run(t + timedelta(hours=2), end) == ["accepted"]
    assert run(t + timedelta(hours=2, seconds=3), end, stop(t + timedelta(hours=2), wh=800.0,
                                                           reason="full")) == [
        "duplicate", "accepted"]
    assert kinds() == [("session_start", "email"), ("full", "email")]
    assert "已充满" in outbox()[1].subject and "挪走" in outbox()[1].body
    keys = db.session.scalars(select(Reminder.key).order_by(Reminder.id)).all()
    s = db.session.scalars(select(ChargingSession)).one()
    assert keys == [f"start:{s.id}", f"end:{s.id}"]


def test_stopped_says_why_in_the_words_of_the_endings(lane):
    make_resident("C-1", email="a@example.org")
    t = DAY_SH
    run(t, start(t), msg("meter", t + timedelta(minutes=30), port=2, session="S1",
                         power_w=300.0, energy_wh=150.0))
    run(t + timedelta(hours=1), stop(t + timedelta(hours=1), wh=300.0, reason="user"))
    n = outbox()[-1]
    assert n.reason == "stopped"
    assert "已停止" in n.subject and "用户自行停止" in n.subject + n.body, n.body


def test_a_start_arriving_after_its_stop_sends_only_the_end(lane):
    make_resident("C-1", email="a@example.org")
    t = DAY_SH
    run(t + timedelta(hours=1), stop(t + timedelta(hours=1), wh=300.0))
    assert kinds() == []  # an orphan stop: no start known yet
    run(t + timedelta(hours=1, seconds=2), start(t))
    assert kinds() == [("stopped", "email")]


def test_a_timeout_then_the_real_stop_tell_once(lane, app):
    make_resident("C-1", email="a@example.org")
    t = DAY_SH
    run(t, start(t), msg("meter", t + timedelta(minutes=20), port=2, session="S1",
                         power_w=300.0, energy_wh=100.0))
    later = t + timedelta(hours=2)
    assert sessions.close_stale(later, 3600,
                                lambda rows: messages.on_sessions(rows, later)) == 1
    assert kinds() == [("session_start", "email"), ("stopped", "email")]
    assert "超时" in outbox()[-1].body
    run(t + timedelta(hours=2, minutes=1), stop(t + timedelta(minutes=25), wh=120.0))
    assert len(outbox()) == 2


def test_failed_charge_is_told_and_costs_nothing(lane):
    acc = make_resident("C-1", email="a@example.org", topup=1000)
    alley = alleys.find_alley("lane")
    from chargers.models import Tariff

    t_row = db.session.scalar(select(Tariff).where(Tariff.alley_id == alley.id))
    t_row.minimum_cents, t_row.service_scheme, t_row.service_cents = 100, "flat_hour", 120
    db.session.commit()
    t = DAY_SH
    run(t, start(t))
    run(t + timedelta(minutes=3), stop(t + timedelta(minutes=3), wh=4.0))
    assert kinds() == [("session_start", "email"), ("failed", "email")]
    assert "未能充电" in outbox()[-1].subject and "不收费" in outbox()[-1].body
    settlement.settle(t + timedelta(minutes=10))
    s = db.session.scalars(select(ChargingSession)).one()
    assert (s.amount_cents, s.billing, s.bill["rules"]) == (0, "charged", ["failed"])
    from chargers.services.billing import ledger

    assert ledger.balance(db.session.get(ResidentAccount, acc.id)) == 1000
    # The charge posting exists (the ledger says the session was settled) and moves nothing.
    p = db.session.scalar(select(Posting).where(Posting.session_id == s.id))
    moved = db.session.scalar(select(func.sum(func.abs(LedgerEntry.amount_cents)))
                              .where(LedgerEntry.posting_id == p.id)) if p else 0
    assert not moved
    # A 5-minute charge with 10 Wh did charge: not a failed one.
    run(t + timedelta(hours=1), start(t + timedelta(hours=1), ref="S2"))
    run(t + timedelta(hours=1, minutes=5), stop(t + timedelta(hours=1, minutes=5), ref="S2",
                                                wh=10.0))
    assert kinds()[-1] == ("stopped", "email")


def test_safety_stop_goes_at_night_others_wait(lane):
    make_resident("C-1", email="a@example.org")
    t = NIGHT_SH
    run(t, start(t), start(t, ref="S2", port=3))
    run(t + timedelta(minutes=30), stop(t + timedelta(minutes=30), wh=100.0, reason="fault"),
        stop(t + timedelta(minutes=30), ref="S2", port=3, wh=100.0, reason="user"))
    seven = local(SH, 2026, 12, 4, 7, 0)
    got = [(n.reason, n.next_attempt_at) for n in outbox()]
    assert got == [("session_start", seven), ("session_start", seven),
                   ("stopped", t + timedelta(minutes=30)), ("stopped", seven)]
    assert "故障" in outbox()[2].body


def test_each_resident_hears_in_their_language(lane):
    make_resident("C-1", email="zh@example.org")  # the deployment's (zh)
    make_resident("C-2", email="en@example.org", language="en")
    t = DAY_SH
    run(t, start(t), start(t, ref="S2", card="C-2", port=3))
    zh, en = outbox()
    assert "开始充电" in zh.subject and "Charging started" in en.subject
    run(t + timedelta(hours=1), stop(t + timedelta(hours=1), ref="S2", port=3, wh=300.0,
                                     reason="user"))
    assert "Stopped by the resident" in outbox()[-1].body


def test_unknown_card_and_no_channel(lane):
    make_resident("C-1")  # no channel chosen: recorded, nothing queued
    t = DAY_SH
    run(t, start(t), start(t, ref="S2", card="NOBODY", port=3))
    assert outbox() == []
    assert [(r.kind, r.channels) for r in db.session.scalars(select(Reminder))] == [
        ("session_start", [])]


def test_queue_start_kind_for_the_power_budget(lane):
    acc = make_resident("C-1", email="a@example.org", language="en")
    data = {"alley": "幸福里", "pile": "1号桩", "port": 2, "time": "2026-12-03 14:00"}
    assert messages.tell_once("queue:7", acc, "queue_start", data, DAY_SH).channels == ["email"]
    assert messages.tell_once("queue:7", acc, "queue_start", data, DAY_SH) is None
    db.session.commit()
    assert len(outbox()) == 1 and "Your turn to charge" in outbox()[0].subject


def test_low_balance_goes_through_the_chosen_channels_and_waits_for_morning(lane):
    acc = make_resident("C-1", sms=True, openid="o-zhang", topup=300)  # below 5 yuan
    counts = reminders.run(NIGHT_SH)
    assert counts["low_balance"] == 1
    seven = local(SH, 2026, 12, 4, 7, 0)
    assert [(n.channel, n.target, n.next_attempt_at) for n in outbox()] == [
        ("sms", acc.phone, seven), ("wechat", "o-zhang", seven)]
    assert outbox()[1].payload["params"]["balance"] == "3.00"
    assert reminders.run(NIGHT_SH + timedelta(hours=1))["low_balance"] == 0  # once


def test_the_stale_session_job_tells_the_holder(app, lane):
    from chargers.jobs import all_jobs, run_job

    make_resident("C-1", email="a@example.org")
    t = DAY_SH
    run(t, start(t), msg("meter", t + timedelta(minutes=30), port=2, session="S1",
                         power_w=300.0, energy_wh=150.0))
    run_job(app, all_jobs()["stale-sessions"], t + timedelta(days=1))
    db.session.expire_all()
    assert kinds() == [("session_start", "email"), ("stopped", "email")]
