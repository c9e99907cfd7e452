"""Issue 10's overstay nudge: the holder of the finished session's card hears through
the account's channels (here e-mail) once the overstay begins, again only after
OVERSTAY_NUDGE_MINUTES, never for an unknown card; every run with a chosen `now`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from chargers import settings
from chargers.extensions import db
from chargers.jobs import all_jobs, run_job
from chargers.models import (
    AccountCard,
    ChargingSession,
    Notification,
    Overstay,
    Pile,
    ResidentAccount,
    ResidentChannels,
)
from chargers.services import onboarding
from chargers.services.devices import alleys, piles
from chargers.services.maintenance import overstay
from chargers.settings import OverstayRule

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)  # the charge finished


@pytest.fixture
def lane(app):
    """Alley `lane`, pile P-1 (label 1号桩); account of card C-1 with an e-mail; port 1
    finished at T0 after a session on `card` (C-1 unless the test says otherwise)."""
    def make(card: str = "C-1") -> None:
        with app.app_context():
            alley = onboarding.create_alley(alleys.AlleyInput(slug="lane", name="幸福里"),
                                        settings.alley_defaults(app.config))
            piles.register_pile(None, piles.PileInput(id="P-1", alley="lane", ports=4,
                                                      label="1号桩"))
            acc = ResidentAccount(alley_id=alley.id, kind="prepaid", household="3-201",
                                  name="张三", phone="13800000000")
            db.session.add(acc)
            db.session.flush()
            db.session.add_all([
                AccountCard(alley_id=alley.id, account_id=acc.id, card="C-1"),
                ResidentChannels(resident_id=acc.id, email="zhang@example.org", sms=False),
                ChargingSession(pile_id="P-1", port=1, session_ref="s1", card=card,
                                status="stopped", started_at=T0 - timedelta(hours=3),
                                ended_at=T0),
            ])
            port = db.session.get(Pile, "P-1").ports[0]
            port.status, port.status_since = "finishing", T0
            db.session.commit()
    return make


def run(app, minutes: int) -> str | None:
    return run_job(app, all_jobs()["overstay"], T0 + timedelta(minutes=minutes))


def notes(app) -> list[tuple[str, str, str, str]]:
    with app.app_context():
        return [(n.reason, n.channel, n.target, n.body) for n in db.session.scalars(
            select(Notification).order_by(Notification.id))]


def test_first_nudge_after_the_threshold_again_after_the_interval(app, lane):
    app.config.update(OVERSTAY_MINUTES=30, OVERSTAY_NUDGE_MINUTES=20)
    lane()
    assert run(app, 29) is None
    assert notes(app) == []
    assert run(app, 30) == "1 overstay(s) noticed, 0 ended, 1 card holder(s) nudged"
    first = notes(app)
    assert [(r, c, t) for r, c, t, _b in first] == [("overstay", "email", "zhang@example.org")]
    assert "幸福里" in first[0][3] and "1号桩" in first[0][3] and "30" in first[0][3]
    assert "挪车" in first[0][3]  # Chinese first
    assert run(app, 49) is None
    assert len(notes(app)) == 1
    assert run(app, 50) == "1 card holder(s) nudged"
    assert len(notes(app)) == 2 and "50" in notes(app)[1][3]
    with app.app_context():
        o = db.session.scalar(select(Overstay))
        assert o.last_nudged_at == T0 + timedelta(minutes=50)
        # Unplugged: the overstay ends, no more nudges.
        db.session.get(Pile, "P-1").ports[0].status = "available"
        db.session.commit()
    assert run(app, 80) == "0 overstay(s) noticed, 1 ended"
    assert len(notes(app)) == 2


def test_no_nudge_for_an_unknown_card(app, lane):
    lane(card="STRANGER")
    assert run(app, 30) == "1 overstay(s) noticed, 0 ended"
    assert run(app, 90) is None
    assert notes(app) == []
    with app.app_context():
        assert db.session.scalar(select(Overstay)).last_nudged_at is None


def test_zero_means_never_and_the_service_takes_its_rule(app, lane):
    lane()
    with app.app_context():
        assert overstay.scan(OverstayRule(minutes=30, nudge_minutes=0),
                             T0 + timedelta(minutes=40)) == (1, 0, 0)
        assert overstay.scan(OverstayRule(minutes=30, nudge_minutes=15),
                             T0 + timedelta(minutes=41)) == (0, 0, 1)
    assert [c for _r, c, _t, _b in notes(app)] == ["email"]


def test_the_public_page_tells_nothing_about_the_holder(app, client, lane):
    lane()
    run(app, 40)
    html = client.get("/p/P-1").get_data(as_text=True)
    assert "张三" not in html and "3-201" not in html and "zhang@example.org" not in html
    assert "13800000000" not in html and "C-1" not in html
