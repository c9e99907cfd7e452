"""A jump in a pile's `seq` is possible data loss only when the missing messages do
not arrive late within SEQ_GAP_WINDOW_S: then a staff alert that does not take the
pile's ports away from residents; a gap that fills raises none (and clears one)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from chargers import settings
from chargers.extensions import db
from chargers.ingest import handlers
from chargers.models import Alert, ChargingSession, Pile, Port, SeqGap
from chargers.services.devices import presence
from tests.ingest_support import incoming, ts

pytestmark = pytest.mark.usefixtures("alley_with_pile")


def data_loss_alerts():
    return db.session.scalars(select(Alert).where(Alert.code == "data_loss")).all()


def expire(app, after_s: int) -> int:
    """The `seq-gaps` job as it would run `after_s` seconds from now."""
    from chargers.jobs import all_jobs, run_job

    run_job(app, all_jobs()["seq-gaps"], datetime.now(UTC) + timedelta(seconds=after_s), None)
    with app.app_context():
        return len(data_loss_alerts())


def test_seq_gap_not_filled_in_time_raises_one_alert_that_keeps_ports_free(app, client):
    window = app.config["SEQ_GAP_WINDOW_S"]
    with app.app_context():
        handlers.process([incoming("boot", seq=0)])
        pile = db.session.get(Pile, "P-1")
        pile.online = True
        for p in pile.ports:
            p.status = "available"
        db.session.commit()
        handlers.process([incoming("heartbeat", seq=1), incoming("heartbeat", seq=5)])
        handlers.process([incoming("heartbeat", seq=9)])
        assert data_loss_alerts() == []  # within the window: the missing may still come

    assert expire(app, window - 5) == 0
    assert expire(app, window + 1) == 1
    with app.app_context():
        [alert] = data_loss_alerts()
        assert alert.port is None and alert.status == "active" and alert.severity == "minor"
        assert alert.value == 3 + 3
        assert {g.status for g in db.session.scalars(select(SeqGap))} == {"lost"}
    assert expire(app, window + 60) == 1  # judged once
    # A link problem, not a hardware fault: residents still see the ports free.
    ports = client.get("/api/v1/alleys/lane").json["piles"][0]["ports"]
    assert all(p["free"] for p in ports)


def test_out_of_order_messages_all_land_and_a_filled_gap_raises_nothing(app):
    t0 = datetime.now(UTC) - timedelta(minutes=10)
    with app.app_context():
        handlers.process([incoming("boot", seq=0, ts=ts(t0))])
        # The pile sent: 1 status occupied, 2 start, 3 status charging, 4 meter,
        # 5 status finishing, 6 stop. They arrive: 6, 5, then 1..4 in another batch.
        late = [
            incoming("session", event="stop", port=2, session="S9", energy_wh=40.0,
                     reason="full", seq=6, ts=ts(t0 + timedelta(minutes=6))),
            incoming("status", port=2, status="finishing", seq=5,
                     ts=ts(t0 + timedelta(minutes=6))),
        ]
        assert handlers.process(late) == ["accepted", "accepted"]
        [gap] = db.session.scalars(select(SeqGap)).all()
        assert (gap.expected_seq, gap.got_seq, gap.status) == (1, 6, "open")
        early = [
            incoming("status", port=2, status="occupied", seq=1, ts=ts(t0)),
            incoming("session", event="start", port=2, session="S9", meter_wh=0, seq=2,
                     ts=ts(t0 + timedelta(seconds=30))),
            incoming("status", port=2, status="charging", seq=3,
                     ts=ts(t0 + timedelta(seconds=30))),
            incoming("meter", port=2, session="S9", energy_wh=20.0, seq=4,
                     ts=ts(t0 + timedelta(minutes=3))),
        ]
        assert handlers.process(early) == ["accepted"] * 4
        s = db.session.scalars(select(ChargingSession)).one()
        assert (s.status, s.energy_wh, s.stop_reason) == ("stopped", 40.0, "full")
        assert s.ended_at - s.started_at == timedelta(minutes=5, seconds=30)
        # the lower-seq statuses are older than `finishing`: they do not overwrite it
        port = db.session.scalar(select(Port).where(Port.pile_id == "P-1", Port.number == 2))
        assert port.status == "finishing"
        db.session.refresh(gap)
        assert gap.status == "filled" and gap.extra["arrived"] == [1, 2, 3, 4, 5]
        # each number once: the same seq again under a new id (and its old time) is a replay
        assert handlers.process([incoming("heartbeat", seq=3, ts=ts(t0 + timedelta(minutes=2)))]
                                ) == ["rejected:replay"]
    assert expire(app, 3600) == 0


def test_a_late_fill_clears_the_alert_and_boot_resets(app):
    window = app.config["SEQ_GAP_WINDOW_S"]
    with app.app_context():
        handlers.process([incoming("boot", seq=0), incoming("heartbeat", seq=1),
                          incoming("heartbeat", seq=4)])
    assert expire(app, window + 1) == 1
    with app.app_context():
        handlers.process([incoming("heartbeat", seq=3), incoming("heartbeat", seq=2)])
        [alert] = data_loss_alerts()
        assert alert.status == "cleared"
        assert "cleared_filled" in [e.action for e in alert.events]
        # a new gap, then a reboot before it fills: what is missing is lost at once,
        # and the new sequence starts again
        handlers.process([incoming("heartbeat", seq=7)])
        assert handlers.process([incoming("boot", seq=0), incoming("heartbeat", seq=1),
                                 incoming("heartbeat", seq=2)]) == ["accepted"] * 3
        gaps = {g.expected_seq: g.status for g in db.session.scalars(select(SeqGap))}
        assert gaps == {2: "filled", 5: "closed"}
        open_alerts = [a for a in data_loss_alerts() if a.status == "active"]
        assert len(open_alerts) == 1 and open_alerts[0].value == 2


def test_expire_is_a_service_with_a_chosen_now(app):
    with app.app_context():
        handlers.process([incoming("boot", seq=0), incoming("heartbeat", seq=3)])
        assert presence.expire_seq_gaps(datetime.now(UTC), 60, settings.alerts(app.config)) == 0
        assert presence.expire_seq_gaps(datetime.now(UTC) + timedelta(seconds=61), 60,
                                        settings.alerts(app.config)) == 1


def test_messages_that_overtake_their_boot_start_the_new_sequence(app):
    """Two workers may apply a pile's first messages after a reboot before its boot:
    they are newer by the pile's clock, so they start the new sequence; the late boot
    fills its 0; nothing is a replay, and nothing is lost."""
    t0 = datetime.now(UTC) - timedelta(minutes=30)
    with app.app_context():
        handlers.process([incoming("boot", seq=0, ts=ts(t0)),
                          *[incoming("heartbeat", seq=i, ts=ts(t0 + timedelta(minutes=i)))
                            for i in range(1, 8)]])
        t1 = t0 + timedelta(minutes=20)  # the pile reboots: seq from 0 again
        out = handlers.process([
            incoming("status", port=1, status="charging", seq=2, ts=ts(t1 + timedelta(seconds=2))),
            incoming("status", port=1, status="occupied", seq=1, ts=ts(t1 + timedelta(seconds=1))),
        ])
        assert out == ["accepted", "accepted"]
        pile = db.session.get(Pile, "P-1")
        assert pile.last_seq == 2
        assert handlers.process([incoming("boot", seq=0, ts=ts(t1))]) == ["accepted"]
        assert handlers.process([incoming("heartbeat", seq=3, ts=ts(t1 + timedelta(seconds=3)))]
                                ) == ["accepted"]
        assert db.session.get(Pile, "P-1").last_seq == 3
        port = db.session.scalar(select(Port).where(Port.pile_id == "P-1", Port.number == 1))
        assert port.status == "charging"
        assert {g.status for g in db.session.scalars(select(SeqGap))} == {"filled"}
        # and an old message of the previous sequence is still a replay
        assert handlers.process([incoming("heartbeat", seq=1, ts=ts(t0 + timedelta(minutes=1)))]
                                ) == ["rejected:replay"]
    assert expire(app, 3600) == 0


def test_first_contact_out_of_order_and_joining_a_running_sequence(app):
    with app.app_context():
        # a pile first heard: its boot and first message overtaken by the second
        t0 = datetime.now(UTC) - timedelta(minutes=5)
        assert handlers.process([incoming("heartbeat", seq=2, ts=ts(t0 + timedelta(seconds=2)))]
                                ) == ["accepted"]
        assert handlers.process([incoming("heartbeat", seq=1, ts=ts(t0 + timedelta(seconds=1))),
                                 incoming("boot", seq=0, ts=ts(t0))]) == ["accepted", "accepted"]
        [gap] = db.session.scalars(select(SeqGap)).all()
        assert (gap.expected_seq, gap.got_seq, gap.status) == (0, 2, "filled")
        # (a boot newer than them, by a wrong clock, also fills its 0: nothing lost)
        assert data_loss_alerts() == []
        # the backend joining a pile far into its sequence takes it as the baseline
        db.session.get(Pile, "P-1").last_seq = None
        db.session.commit()
        assert handlers.process([incoming("heartbeat", seq=50_000)]) == ["accepted"]
        assert db.session.scalar(select(func.count()).select_from(SeqGap)) == 1
