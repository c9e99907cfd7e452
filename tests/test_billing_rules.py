"""Issue 22, "billing a treasurer can sign": the auditor's cases (C10 rounding, C11 meter
reset), monthly cards with hours, debts instead of silent cuts, time-of-use prices per
window, `billing verify` catching each kind of tampering, and properties over random
sessions (no fen created or lost between sessions, postings, statements and the close)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from fractions import Fraction

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from chargers.extensions import db
from chargers.models import (
    ChargingSession,
    LedgerAccount,
    LedgerEntry,
    MonthClose,
    Pile,
    Posting,
    ReviewItem,
    Statement,
    User,
)
from chargers.services.billing import accounts, ledger, monthly_close, pricing, settlement
from chargers.services.billing.pricing import Sample, TariffSpec, Usage, Window, price
from chargers.services.charging import sessions

from .billing_support import T0, finished, set_tariff

NOW = T0 + timedelta(hours=12)
PEAK = {"from": "08:00", "to": "21:00", "millifen_per_kwh": 55830, "name": "peak"}
VALLEY = {"from": "21:00", "to": "08:00", "millifen_per_kwh": 35830, "name": "valley"}


def staff(admin) -> User:
    return db.session.get(User, admin[0].id)


def account(admin, cards, kind="prepaid", topup=0, **monthly):
    acc = accounts.create_account(staff(admin), accounts.AccountInput(
        alley="lane", cards=cards, kind=kind, phone="13800001234", **monthly), T0)
    if topup:
        accounts.top_up(staff(admin), acc.id, topup, "cash", None, T0 - timedelta(hours=1))
    return acc.id


def session(ref) -> ChargingSession:
    return db.session.scalar(select(ChargingSession).where(ChargingSession.session_ref == ref))


# --- C10: half a fen is a fen ------------------------------------------------------

def test_c10_eleven_minutes_at_30_fen_an_hour_is_6_fen():
    """¥0.30/h × 11 min = 5.5 fen exactly → 6 (the Decimal context made it 5.4999… → 5)."""
    t = TariffSpec(electricity_cents_per_kwh=0, service_scheme="flat_hour", service_cents=30)
    p = price(t, Usage(T0, T0 + timedelta(minutes=11), 0))
    assert p.service_exact == "5.5" and p.service_cents == 6
    assert p.rounding == "half_up_once_per_component"


# --- C11: a meter reset inside a session -------------------------------------------

def test_c11_a_meter_reset_starts_a_new_segment(app, admin, alley_with_pile):
    with app.app_context():
        set_tariff("lane", electricity_cents_per_kwh=100)
        account(admin, ["C-1"], topup=1000)
        pile = db.session.get(Pile, "P-1")
        at = lambda m: T0 + timedelta(minutes=m)  # noqa: E731
        cache: dict = {}  # the ingest batch's sessions, as the ingest passes them
        sessions.on_start(pile, sessions.Start(1, "R", "C-1", 0.0, at(0), "device"), cache)
        for m, wh in ((10, 100.0), (20, 250.0), (30, 400.0), (40, 50.0)):  # reset at 40
            sessions.on_meter(pile, sessions.Reading(1, "R", 600.0, wh, None, None, None,
                                                     at(m), at(m), "device"), cache)
        sessions.on_stop(pile, sessions.Stop(1, "R", 302.5, "unplugged", at(60), "device"),
                         cache)
        db.session.commit()
        s = session("R")
        assert s.energy_wh == 702.5 and s.meter_resets == 1
        assert db.session.get(Pile, "P-1").meter_resets == 1
        settlement.settle(NOW)
        s = session("R")
        assert s.bill["energy_wh"] == "702.5" and s.energy_cents == 70  # 70.25 → 70
        assert ledger.verify() == []


# --- monthly cards with hours -------------------------------------------------------

def monthly(admin, cards, hours, topup=0):
    return account(admin, cards, kind="monthly", topup=topup,
                   monthly_from=T0 - timedelta(days=1), monthly_until=T0 + timedelta(days=29),
                   monthly_hours=hours)


def test_a_one_hour_card_covers_one_hour_of_three_sessions(app, admin, alley_with_pile):
    """Three 40-minute sessions on a 1-hour card: 40 min, then 20 of 40, then none are
    covered; the rest is charged (balance 0: owed), and hours used are 60 minutes."""
    with app.app_context():
        set_tariff("lane", electricity_cents_per_kwh=100, service_scheme="flat_hour",
                   service_cents=60)
        mid = monthly(admin, ["MO"], 1)
        for i in range(3):
            finished("P-1", f"m{i}", "MO", 40, 400, start=T0 + timedelta(hours=i))
        db.session.commit()
        settlement.settle(NOW)
        m0, m1, m2 = (session(f"m{i}") for i in range(3))
        # each: electricity 0.4 kWh × 100 = 40, service 40 min × 60/h = 40 → 80
        assert [s.amount_cents for s in (m0, m1, m2)] == [80, 80, 80]
        assert (m0.billing, m0.covered_s, m0.covered_cents) == ("covered", 2400, 80)
        # half the time covered: 40 × 200/400 Wh (no readings: evenly) + 40 × 1200/2400 s
        assert (m1.billing, m1.covered_s, m1.covered_cents, m1.shortfall_cents) == (
            "charged", 1200, 40, 40)
        assert (m2.billing, m2.covered_s, m2.covered_cents, m2.shortfall_cents) == (
            "charged", 0, 0, 80)
        acc = accounts.get_account(staff(admin), mid)
        assert settlement.monthly_used_seconds(acc) == 3600
        assert ledger.balance(acc) == -120 and ledger.debt(acc) == 120
        assert ledger.verify() == []


def test_a_review_item_assigned_to_a_monthly_card_is_covered(app, admin, alley_with_pile):
    with app.app_context():
        set_tariff("lane", electricity_cents_per_kwh=100)
        mid = monthly(admin, ["MO"], 10)
        finished("P-1", "u", "NEW-CARD", 60, 1000)
        db.session.commit()
        assert settlement.settle(NOW) == {"review": 1}
        item = db.session.scalar(select(ReviewItem))
        settlement.resolve_review(staff(admin), item.id, account_id=mid, waive=False,
                                  note="his new card", now=NOW)
        s = session("u")
        assert (s.billing, s.covered_cents, s.covered_s) == ("covered", 100, 3600)
        acc = accounts.get_account(staff(admin), mid)
        assert ledger.balance(acc) == 0 and settlement.monthly_used_seconds(acc) == 3600
        assert ledger.verify() == []


# --- nothing owed disappears ---------------------------------------------------------

def test_two_cards_on_one_account_lose_nothing(app, admin, alley_with_pile):
    """Two cards of one account with 100 fen, two 80-fen sessions in one batch: before,
    the second was cut to 20 and 60 fen vanished. Now 60 fen is owed."""
    with app.app_context():
        set_tariff("lane", electricity_cents_per_kwh=100)
        aid = account(admin, ["A1", "A2"], topup=100)
        finished("P-1", "x1", "A1", 60, 800, port=1)
        finished("P-1", "x2", "A2", 60, 800, port=2)
        db.session.commit()
        assert settlement.settle(NOW) == {"charged": 1, "shortfall": 1}
        acc = accounts.get_account(staff(admin), aid)
        assert ledger.balance(acc) == -60 and ledger.debt(acc) == 60
        assert [session(r).shortfall_cents for r in ("x1", "x2")] == [0, 60]
        takings = db.session.scalar(select(LedgerAccount.balance_cents).where(
            LedgerAccount.code.like("alley:%:electricity")))
        assert takings == 160
        # the next top-up clears the debt first; the rest is the balance
        accounts.top_up(staff(admin), aid, 100, "cash", None, NOW)
        assert ledger.balance(accounts.get_account(staff(admin), aid)) == 40
        assert ledger.verify() == []


def test_a_debt_is_written_off_with_a_reason_and_the_close_shows_it(app, client, admin,
                                                                   alley_with_pile):
    with app.app_context():
        set_tariff("lane", electricity_cents_per_kwh=100)
        aid = account(admin, ["A1"], topup=30)
        finished("P-1", "d", "A1", 60, 800)
        db.session.commit()
        settlement.settle(NOW)
        p = accounts.write_off(staff(admin), aid, 20, "moved away, agreed by committee", NOW)
        assert p.kind == "writeoff" and p.reason
        assert ledger.debt(accounts.get_account(staff(admin), aid)) == 30
        monthly_close.close_due(datetime(2026, 12, 1, 3, 0, tzinfo=UTC))
        mc = db.session.scalar(select(MonthClose))
        st = db.session.scalar(select(Statement).where(Statement.resident_id == aid))
        assert (mc.writeoffs_cents, mc.debts_cents) == (20, 30)
        assert (st.writeoffs_cents, st.closing_cents) == (20, -30)
        assert mc.chain_head and mc.chain_postings == db.session.scalar(
            select(func.count()).select_from(Posting))
        assert ledger.verify() == []
    r = client.get("/a/lane/account")
    assert r.status_code == 200


# --- time of use -----------------------------------------------------------------------

def test_a_session_across_21_00_is_priced_per_window(app, client, admin, alley_with_pile):
    """20:00–22:00 Shanghai (T0 is 12:00 UTC): 1200 W for 70 min, then 600 W; readings
    every 25 minutes, so 21:00 falls between two of them: interpolated, 1180 Wh at peak
    ¥0.5583 and 720 Wh at valley ¥0.3583 = 65.8794 + 25.7976 = 91.677 fen → 92."""
    energy = lambda m: 20 * m if m <= 70 else 1400 + 10 * (m - 70)  # noqa: E731
    with app.app_context():
        set_tariff("lane", electricity_cents_per_kwh=56, electricity_millifen_per_kwh=55830,
                   tou_windows=[PEAK, VALLEY])
        account(admin, ["C-1"], topup=1000)
        finished("P-1", "tou", "C-1", 120, energy(120),
                 samples=[(m, 1200 if m < 70 else 600, energy(m)) for m in (25, 50, 75, 100)])
        db.session.commit()
        settlement.settle(NOW)
        s = session("tou")
        lines = [(w["name"], w["kwh"], w["millifen_per_kwh"]) for w in s.bill["windows"]]
        assert lines == [("peak", "1.18", 55830), ("valley", "0.72", 35830)]
        assert s.bill["electricity_exact"] == "91.677" and s.energy_cents == 92
        assert ledger.verify() == []
        token, serial = s.receipt_token, s.receipt_serial
    assert serial == "A1-2026-000001"
    page = client.get(f"/r/{token}?lang=zh").get_data(as_text=True)
    for text in (serial, "2026-11-29 20:00", "peak 08:00–21:00", "1.18 度 × 0.5583 元/度",
                 "valley 21:00–08:00", "0.72 度 × 0.3583 元/度", "本次扣费后余额", "¥9.08",
                 "四舍五入", "运营方"):
        assert text in page, text
    posted = client.get("/a/lane?lang=zh").get_data(as_text=True)  # 明码标价: each window
    # in the residents' words: 元/度
    assert "<b>0.5583 元/度</b> 08:00–21:00 peak" in posted and "0.3583 元/度" in posted


def test_caps_never_cut_electricity_and_occupancy_is_its_own_line():
    t = TariffSpec(electricity_cents_per_kwh=100, service_scheme="flat_hour",
                   service_cents=100, cap_cents=50, service_cap_cents_per_hour=80,
                   occupancy_cents_per_hour=60, occupancy_grace_minutes=10)
    smp = [Sample(T0 + timedelta(minutes=m), 500 if m < 60 else 5, min(m, 60) * 10)
           for m in range(0, 121, 10)]
    p = price(t, Usage(T0, T0 + timedelta(minutes=120), 600, smp))
    # electricity 0.6 kWh × 100 = 60 > cap 50: service cut to 0, electricity kept
    assert (p.energy_cents, p.service_cents) == (60, 0)
    assert "service_cap" in p.rules and "cap" in p.rules
    # full at 60 min (power ≤ 10 W to the end) + 10 min grace: 50 min × 60/h = 50 fen
    assert (p.occupancy_minutes, p.occupancy_cents) == (50, 50)
    assert p.amount_cents == 110


# --- properties ---------------------------------------------------------------------------

reading = st.tuples(st.integers(1, 239), st.integers(0, 1500), st.integers(0, 400))


@settings(max_examples=200, deadline=None)
@given(start_min=st.integers(0, 24 * 60 - 1), minutes=st.integers(1, 240),
       wh=st.integers(0, 4000), readings=st.lists(reading, max_size=8),
       peak=st.integers(1, 200_000), valley=st.integers(1, 200_000),
       scheme=st.sampled_from(["flat_hour", "kwh", "none"]), unit=st.integers(0, 300))
def test_electricity_is_the_windows_rounded_once(start_min, minutes, wh, readings, peak,
                                                  valley, scheme, unit):
    """Σ window kWh × price, rounded once; windows add up to the energy; electricity +
    service (+ occupancy) = amount; every amount a whole fen."""
    windows = (Window(8 * 60, 21 * 60, peak, "peak"), Window(21 * 60, 8 * 60, valley, "valley"))
    t = TariffSpec(electricity_cents_per_kwh=0, service_scheme=scheme, service_cents=unit,
                   windows=windows)
    start = datetime(2026, 11, 1, tzinfo=UTC) + timedelta(minutes=start_min)
    smp = [Sample(start + timedelta(minutes=m % minutes or 1), w, e) for m, w, e in readings]
    usage = Usage(start, start + timedelta(minutes=minutes), wh, smp)
    p = price(t, usage)
    if "failed" in p.rules:  # 未能充电 (under 10 Wh within 5 minutes): nothing charged
        assert pricing.failed_charge(minutes * 60, wh) and p.amount_cents == 0 and not p.windows
        return
    split = pricing.split_windows(t, usage, usage.ended_at, Fraction(wh))
    assert sum(w for _, w in split) == wh  # the windows hold all the energy, exactly
    exact = sum(w / 1000 * win.millifen_per_kwh / 1000 for win, w in split)
    assert p.energy_cents == pricing.fen(exact)  # Σ window kWh × price, rounded once
    # what the receipt prints (kWh to 4 places) recomputes to within its own rounding
    printed = sum(Fraction(w["kwh"]) * w["millifen_per_kwh"] / 1000 for w in p.windows)
    assert abs(printed - exact) <= len(p.windows) * Fraction(5, 100_000) * 200
    assert p.energy_cents + p.service_cents + p.occupancy_cents == p.amount_cents
    assert all(isinstance(x, int) for x in (p.energy_cents, p.service_cents, p.amount_cents))


session_op = st.tuples(st.sampled_from(["P", "M", "E", "X", None]), st.integers(0, 300),
                       st.integers(0, 3000))


@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
@given(ops=st.lists(session_op, min_size=1, max_size=12), topup=st.integers(0, 800))
def test_no_fen_is_created_or_lost(ops, topup):
    """Random sessions on prepaid, monthly (2 h), exempt and unknown cards, settled,
    reviewed and closed: sessions = charge postings = statements + covered + waived =
    the close, and verify agrees."""
    from .test_ledger_properties import app_for_example

    app = app_for_example()
    with app.app_context():
        admin = db.session.scalar(select(User))
        start = T0 - timedelta(days=5)
        ids = {"P": accounts.create_account(admin, accounts.AccountInput(
                   alley="lane", cards=["P"]), start).id,
               "M": accounts.create_account(admin, accounts.AccountInput(
                   alley="lane", cards=["M"], kind="monthly", monthly_from=start,
                   monthly_until=T0 + timedelta(days=10), monthly_hours=2), start).id,
               "E": accounts.create_account(admin, accounts.AccountInput(
                   alley="lane", cards=["E"], kind="exempt"), start).id}
        if topup:
            accounts.top_up(admin, ids["P"], topup, "cash", None, start)
        for i, (card, minutes, wh) in enumerate(ops):
            finished("P-1", f"s{i}", card, minutes, wh, start=start + timedelta(hours=3 * i),
                     port=1 + i % 4)
        db.session.commit()
        settlement.settle(T0)
        for n, item in enumerate(settlement.list_review(admin)):
            settlement.resolve_review(admin, item.id, account_id=ids["M"], waive=n % 2 == 0,
                                      note="checked", now=T0)
        monthly_close.close_due(datetime(2026, 12, 1, 3, 0, tzinfo=UTC))
        assert ledger.verify() == []
        rows = db.session.execute(select(ChargingSession)).scalars().all()
        amounts = sum(s.amount_cents for s in rows)
        assert amounts == sum(s.energy_cents + s.service_cents + (s.occupancy_cents or 0)
                              for s in rows)
        by_kind = dict(db.session.execute(
            select(LedgerAccount.kind, func.sum(LedgerEntry.amount_cents))
            .join(LedgerEntry).join(Posting).where(Posting.kind == "charge")
            .group_by(LedgerAccount.kind)).all())
        takings = sum(by_kind.get(k, 0) for k in ("electricity", "service", "occupancy"))
        payers = -sum(by_kind.get(k, 0) for k in ("resident", "covered", "waived"))
        assert takings == payers == amounts
        mc = db.session.scalar(select(MonthClose))
        charges = -sum(st.charges_cents for st in db.session.scalars(select(Statement)))
        assert mc.electricity_cents + mc.service_cents + mc.occupancy_cents == amounts
        assert charges + mc.covered_cents + mc.waived_cents == amounts
        p = accounts.get_account(admin, ids["P"])
        assert ledger.balance(p) == topup + by_kind_resident(ids["P"])
        db.session.remove()
        db.engine.dispose()


def by_kind_resident(account_id: int) -> int:
    return int(db.session.scalar(
        select(func.coalesce(func.sum(LedgerEntry.amount_cents), 0))
        .join(Posting).join(LedgerAccount)
        .where(Posting.kind == "charge", LedgerAccount.resident_id == account_id)) or 0)


def test_a_monthly_card_sale_is_a_posting_and_bears_its_sessions(app, admin, alley_with_pile):
    """The card's price is income (cash in, card_sales), its period and hours are kept,
    and the sessions it covers are booked against the card's own account."""
    from chargers.models import CardSale

    with app.app_context():
        set_tariff("lane", electricity_cents_per_kwh=100)
        aid = account(admin, ["MO"])
        p = accounts.sell_monthly_card(staff(admin), aid, 3000, T0 - timedelta(days=1),
                                       T0 + timedelta(days=29), 30, "wechat", "R-77", T0)
        assert p.kind == "card_sale"
        sale = db.session.scalar(select(CardSale))
        assert (sale.price_cents, sale.hours) == (3000, 30)
        finished("P-1", "c1", "MO", 60, 1000)
        db.session.commit()
        settlement.settle(NOW)
        card = db.session.get(LedgerAccount, sale.ledger_account_id)
        assert card.kind == "covered" and card.balance_cents == -100
        income = db.session.scalar(select(LedgerAccount.balance_cents).where(
            LedgerAccount.code.like("alley:%:card_sales")))
        assert income == 3000
        monthly_close.close_due(datetime(2026, 12, 1, 3, 0, tzinfo=UTC))
        mc = db.session.scalar(select(MonthClose))
        assert (mc.card_sales_cents, mc.covered_cents) == (3000, 100)
        assert ledger.verify() == []


def test_a_time_of_use_tariff_through_the_api(client, admin, alley_with_pile):
    _, token = admin
    from .conftest import bearer

    body = {"electricity_cents_per_kwh": 56, "service_scheme": "none",
            "electricity_millifen_per_kwh": 55830, "tou_windows": [PEAK, VALLEY],
            "service_cap_cents_per_hour": 80, "occupancy_cents_per_hour": 60,
            "occupancy_grace_minutes": 15,
            "effective_from": (datetime.now(UTC) + timedelta(days=1)).isoformat()}
    r = client.post("/api/v1/alleys/lane/tariffs", json=body, headers=bearer(token))
    assert r.status_code == 201, r.json
    assert r.json["tou_windows"][1] == VALLEY and r.json["electricity_millifen_per_kwh"] == 55830
    gap = {**body, "tou_windows": [PEAK],
           "effective_from": (datetime.now(UTC) + timedelta(days=2)).isoformat()}
    r = client.post("/api/v1/alleys/lane/tariffs", json=gap, headers=bearer(token))
    assert r.status_code == 422 and "windows" in str(r.json), r.json


def test_a_reset_hidden_by_readings_out_of_order_is_still_counted(app, admin, alley_with_pile):
    """The reading before the reset arrives after the ones after it: the ingest cannot
    see the reset then, settlement (all kept readings in time order + the stop) does."""
    with app.app_context():
        set_tariff("lane", electricity_cents_per_kwh=100)
        account(admin, ["C-1"], topup=1000)
        pile = db.session.get(Pile, "P-1")
        at = lambda m: T0 + timedelta(minutes=m)  # noqa: E731
        cache: dict = {}
        sessions.on_start(pile, sessions.Start(1, "L", "C-1", 0.0, at(0), "device"), cache)
        for m, wh in ((10, 100.0), (20, 250.0), (40, 50.0), (30, 400.0)):  # 30 comes late
            sessions.on_meter(pile, sessions.Reading(1, "L", 600.0, wh, None, None, None,
                                                     at(m), at(m), "device"), cache)
        sessions.on_stop(pile, sessions.Stop(1, "L", 302.5, "unplugged", at(60), "device"),
                         cache)
        db.session.commit()
        settlement.settle(NOW)
        assert session("L").bill["energy_wh"] == "702.5" and session("L").energy_wh == 702.5


def test_staff_save_a_time_of_use_tariff(app, client, admin, alley_with_pile):
    from chargers.models import Tariff

    from .test_billing_pages import csrf_from, login

    login(client, "root")
    page = client.get("/staff/billing/lane/tariffs?lang=en").get_data(as_text=True)
    form = {"csrf_token": csrf_from(page), "electricity_per_kwh": "0.56",  # people type yuan
            "service_scheme": "none", "step_minutes": "1",
            "electricity_yuan_exact": "0.5583",
            "tou_windows": "08:00-21:00 0.5583 peak\n21:00-08:00 0.3583 valley",
            "service_cap_cents_per_hour": "0.80", "occupancy_cents_per_hour": "0.60",
            "occupancy_grace_minutes": "15", "effective_from": "2031-01-01T00:00"}
    r = client.post("/staff/billing/lane/tariffs?lang=en", data=form)
    assert r.status_code == 302
    with app.app_context():
        t = db.session.scalar(select(Tariff).order_by(Tariff.id.desc()))
        assert t.electricity_millifen_per_kwh == 55830
        assert t.tou_windows == [PEAK, VALLEY]
        assert (t.service_cap_cents_per_hour, t.occupancy_grace_minutes) == (80, 15)
    form["tou_windows"] = "08:00-21:00 0.5583 peak"  # the night is left unpriced
    form["effective_from"] = "2031-02-01T00:00"
    html = client.post("/staff/billing/lane/tariffs?lang=en", data=form).get_data(as_text=True)
    assert "every minute of the day" in html


def test_a_monthly_card_sold_through_the_api(client, admin, alley_with_pile):
    from .conftest import bearer

    _, token = admin
    r = client.post("/api/v1/accounts", json={"alley": "lane", "cards": ["MO"],
                                                "kind": "prepaid"}, headers=bearer(token))
    body = {"price_cents": 3000, "period_from": "2026-12-01T00:00:00+08:00",
            "period_until": "2027-01-01T00:00:00+08:00", "hours": 30, "method": "cash"}
    url = f"/api/v1/accounts/{r.json['id']}/monthly-cards"
    r = client.post(url, json=body, headers=bearer(token))
    assert r.status_code == 201, r.json
    assert r.json["account"]["kind"] == "monthly" and r.json["account"]["monthly_hours"] == 30
    assert client.post(url, json=body, headers=bearer(token)).status_code == 409  # once
