"""Monthly close: the right month in the alley's zone, idempotent, corrections after the
close land in the next open month, closed months never change."""

from __future__ import annotations

from datetime import UTC, datetime

import time_machine
from sqlalchemy import func, select

from chargers.extensions import db
from chargers.jobs import all_jobs
from chargers.models import MonthClose, Posting, PostingMonth, Statement, User
from chargers.services.billing import accounts, ledger, monthly_close

from .billing_support import finished, set_tariff
from .pg_schema import on_sqlite_and_postgresql
from .test_settlement import make_account

SH = monthly_close.ZoneInfo("Asia/Shanghai")


# The close on SQLite, then on PostgreSQL (a throwaway schema).
app_config = on_sqlite_and_postgresql("chargers_close")


def local(*args) -> datetime:
    return datetime(*args, tzinfo=SH).astimezone(UTC)


def close(now):
    return all_jobs()["statements-monthly"].func(now, None)


def settle(now):
    return all_jobs()["settle"].func(now, None)


def snapshot():
    rows = db.session.scalars(select(MonthClose).order_by(MonthClose.id)).all()
    sts = db.session.scalars(select(Statement).order_by(Statement.id)).all()
    return ([(m.month, m.sessions, m.energy_wh, m.electricity_cents, m.service_cents,
              m.topups_cents, m.refunds_cents, m.adjustments_cents, m.daily) for m in rows],
            [(s.month, s.resident_id, s.opening_cents, s.topups_cents, s.charges_cents,
              s.refunds_cents, s.adjustments_cents, s.closing_cents, s.sessions)
             for s in sts])


def test_close_takes_the_right_month_once_and_corrections_go_forward(
        app, client, admin, alley_with_pile):
    user, token = admin
    acc = make_account(client, token, ["C-1"])
    with app.app_context():
        boss = db.session.get(User, user.id)
        set_tariff("lane", electricity_cents_per_kwh=60, service_scheme="none")
        accounts.top_up(boss, acc, 1000, "cash", "R1", local(2026, 11, 2, 9, 0))
        # Ends 23:30 on 30 November, Shanghai time (15:30 UTC): November.
        s_nov = finished("P-1", "nov", "C-1", 60, 1000, start=local(2026, 11, 30, 22, 30)).id
        db.session.commit()
        # Income counts by posting time (services/billing/income.py): the November
        # session settled before midnight is November's; the other one December's.
        assert settle(local(2026, 11, 30, 23, 40)) == "1 charged"
        # Ends 00:30 on 1 December Shanghai (still 30 November in UTC): December.
        s_dec = finished("P-1", "dec", "C-1", 60, 500, port=2,
                         start=local(2026, 11, 30, 23, 30)).id
        db.session.commit()
        assert settle(local(2026, 12, 1, 0, 40)) == "1 charged"

        # 01:59 local on the 1st: too early, nothing closes.
        assert close(local(2026, 12, 1, 1, 59)) is None
        assert db.session.scalar(select(func.count()).select_from(MonthClose)) == 0
        # 02:00 local: November closes (the 1st started in UTC on 30 November 18:00).
        assert close(local(2026, 12, 1, 2, 0)) == "closed lane 2026-11"
        nov = db.session.scalar(select(MonthClose).where(MonthClose.month == "2026-11"))
        assert (nov.sessions, nov.energy_wh, nov.electricity_cents) == (1, 1000, 60)
        assert nov.topups_cents == 1000
        assert nov.period_start == local(2026, 11, 1) and nov.period_end == local(2026, 12, 1)
        day30 = [d for d in nov.daily if d["day"] == "2026-11-30"][0]
        assert day30 == {"day": "2026-11-30", "sessions": 1, "energy_wh": 1000,
                         "takings_cents": 60}
        st = db.session.scalar(select(Statement).where(Statement.month == "2026-11"))
        assert (st.opening_cents, st.topups_cents, st.charges_cents, st.closing_cents) == (
            0, 1000, -60, 940)
        assert [x["id"] for x in st.sessions] == [s_nov]
        # The December charge is not counted in November.
        charge_dec = db.session.scalar(select(Posting).where(Posting.session_id == s_dec))
        assert db.session.get(PostingMonth, charge_dec.id) is None

        # Running again (same time, later the same month) changes nothing.
        before = snapshot()
        assert close(local(2026, 12, 1, 2, 0)) is None
        assert close(local(2026, 12, 20, 12, 0)) is None
        assert snapshot() == before

        # A correction after the close: November's top-up is reversed on 3 December.
        topup = db.session.scalar(select(Posting).where(Posting.kind == "topup"))
        accounts.reverse(boss, topup.id, "wrong account", local(2026, 12, 3, 10, 0))
        assert snapshot() == before  # November is untouched
        assert close(local(2027, 1, 1, 3, 0)) == "closed lane 2026-12"
        dec = db.session.scalar(select(MonthClose).where(MonthClose.month == "2026-12"))
        assert (dec.sessions, dec.energy_wh, dec.electricity_cents) == (1, 500, 30)
        # The reversed top-up is no longer received: December's top-ups are −10 yuan.
        assert dec.topups_cents == -1000 and dec.postings == 2
        st12 = db.session.scalar(select(Statement).where(Statement.month == "2026-12"))
        assert (st12.opening_cents, st12.topups_cents, st12.charges_cents,
                st12.adjustments_cents, st12.closing_cents) == (940, -1000, -30, 0, -90)
        assert [x["id"] for x in st12.sessions] == [s_dec]
        assert st12.closing_cents == ledger.balance(accounts.get_account(boss, acc))
        assert snapshot()[0][0] == before[0][0]


def test_missed_runs_close_every_past_month_and_wait_for_settlement(
        app, client, admin, alley_with_pile):
    _, token = admin
    make_account(client, token, ["C-1"], topup=500)
    with app.app_context():
        set_tariff("lane", electricity_cents_per_kwh=100)
        finished("P-1", "a", "C-1", 30, 200, start=local(2026, 9, 10, 8, 0))
        db.session.commit()
        # Unsettled session in September: the close waits.
        out = close(local(2026, 12, 5, 12, 0))
        assert out == "waiting for settlement lane 2026-09"
        settle(local(2026, 9, 10, 9, 0))
        # The API top-up was posted at wall-clock time; only months up to November close.
        out = close(local(2026, 12, 5, 12, 0))
        assert out == "closed lane 2026-09, lane 2026-10, lane 2026-11"
        months = db.session.scalars(select(MonthClose.month).order_by(MonthClose.month)).all()
        assert months == ["2026-09", "2026-10", "2026-11"]
        sep = db.session.scalar(select(MonthClose).where(MonthClose.month == "2026-09"))
        assert (sep.sessions, sep.electricity_cents) == (1, 20)


def test_a_charge_posted_after_the_close_lands_in_the_next_month(app, client, admin,
                                                                 alley_with_pile):
    """A November session on an unknown card, assigned to an account in December: its
    charge (effective at the session's end, in November) is counted in December."""
    from chargers.models import ReviewItem
    from chargers.services.billing import settlement

    user, token = admin
    # The top-up goes through the API, which posts at the wall clock: in November.
    with time_machine.travel(local(2026, 11, 10, 9, 0), tick=False):
        acc = make_account(client, token, ["C-1"], topup=1000)
    with app.app_context():
        boss = db.session.get(User, user.id)
        set_tariff("lane", electricity_cents_per_kwh=100)
        finished("P-1", "x", "LOST-CARD", 60, 1500, start=local(2026, 11, 20, 20, 0))
        db.session.commit()
        assert settle(local(2026, 11, 20, 22, 0)) == "1 review"
        close(local(2026, 12, 1, 2, 30))
        nov = db.session.scalar(select(MonthClose).where(MonthClose.month == "2026-11"))
        assert (nov.sessions, nov.electricity_cents) == (1, 0)  # not charged yet
        item = db.session.scalar(select(ReviewItem))
        settlement.resolve_review(boss, item.id, account_id=acc, waive=False,
                                  note="card of 3-201", now=local(2026, 12, 2, 9, 0))
        close(local(2027, 1, 1, 2, 30))
        dec = db.session.scalar(select(MonthClose).where(MonthClose.month == "2026-12"))
        assert (dec.sessions, dec.electricity_cents) == (0, 150)
        st = db.session.scalar(select(Statement).where(Statement.month == "2026-12",
                                                       Statement.resident_id == acc))
        assert st.charges_cents == -150 and st.closing_cents == st.opening_cents - 150
        assert nov.electricity_cents == 0  # November stays as it was closed
