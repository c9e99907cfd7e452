"""Pricing rules, table by table (chargers/services/billing/pricing.py: pure, no database)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest

from chargers.services.billing.pricing import (
    Sample,
    TariffSpec,
    Tier,
    Usage,
    choose_tier,
    fen,
    price,
    split_paid,
    tariff_at,
)

SH = ZoneInfo("Asia/Shanghai")
T0 = datetime(2026, 11, 30, 10, 0, tzinfo=UTC)
TIERS = (Tier(180, 20), Tier(360, 30), Tier(540, 40), Tier(800, 60), Tier(1200, 80))


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def samples(*pairs) -> list[Sample]:
    """(minute, watts) pairs → samples every given minute."""
    return [Sample(at(m), w) for m, w in pairs]


# --- rounding: once per component, half up ----------------------------------------

@pytest.mark.parametrize("exact, expected", [
    ("0.5", 1), ("0.49", 0), ("1.5", 2), ("2.5", 3), ("0", 0), ("99.5", 100), ("99.4999", 99),
])
def test_rounding_half_up(exact, expected):
    assert fen(Decimal(exact)) == expected


# --- tier with hysteresis ----------------------------------------------------------

@pytest.mark.parametrize("name, readings, tier, reason", [
    ("edge 180 W is tier 0", [(0, 180), (1, 180), (2, 180)], 0, "held"),
    ("edge 181 W is tier 1", [(0, 181), (1, 181), (2, 181)], 1, "held"),
    ("edge 360 W is tier 1", [(0, 360), (1, 360), (2, 360)], 1, "held"),
    ("edge 1200 W is tier 4", [(0, 1200), (1, 1200), (2, 1200)], 4, "held"),
    ("above every tier counts in the last", [(0, 1500), (1, 1500), (2, 1500)], 4, "held"),
    ("not held 2 min: highest seen", [(0, 100), (1, 400)], 2, "undecided_max"),
    ("held only after 2 min of one tier",
     [(0, 100), (1, 400), (2, 400), (3, 400)], 2, "held"),
    ("two higher readings do not raise",
     [(0, 100), (1, 100), (2, 100), (3, 500), (4, 500), (5, 100)], 0, "held"),
    ("three higher readings in a row raise",
     [(0, 100), (1, 100), (2, 100), (3, 500), (4, 500), (5, 500)], 2, "raised"),
    ("raise goes to the lowest of the three",
     [(0, 100), (1, 100), (2, 100), (3, 900), (4, 300), (5, 900)], 1, "raised"),
    ("interrupted run does not raise",
     [(0, 100), (1, 100), (2, 100), (3, 500), (4, 500), (5, 100), (6, 500), (7, 500)],
     0, "held"),
    ("never lowered", [(0, 700), (1, 700), (2, 700), (3, 50), (4, 50), (5, 50)], 3, "held"),
    ("fixed after 15 min",
     [(0, 100), (1, 100), (2, 100), (16, 900), (17, 900), (18, 900)], 0, "held"),
    ("raised up to the 15th minute",
     [(0, 100), (1, 100), (2, 100), (13, 900), (14, 900), (15, 900)], 4, "raised"),
    ("no readings: lowest tier", [], 0, "no_readings"),
])
def test_tier_hysteresis(name, readings, tier, reason):
    choice = choose_tier(TIERS, T0, samples(*readings))
    assert (choice.tier, choice.reason) == (tier, reason), name
    if reason in ("held", "raised"):
        assert choice.readings, "the readings that chose the tier are kept"


# --- step rounding, free minutes, minimum, cap ------------------------------------

BASE = TariffSpec(electricity_cents_per_kwh=60, service_scheme="flat_hour", service_cents=60)


@pytest.mark.parametrize("step, minutes, charged, service", [
    (1, 0.5, 1, 1),      # 1 min × 60 fen/h = 1 fen
    (1, 61, 61, 61),
    (1, 60 + 1 / 60, 61, 61),  # a started minute counts (one second)
    (30, 1, 30, 30),
    (30, 30, 30, 30),
    (30, 31, 60, 60),
    (60, 1, 60, 60),
    (60, 60, 60, 60),
    (60, 60 + 1 / 60, 120, 120),
    (15, 46, 60, 60),
])
def test_step_rounding(step, minutes, charged, service):
    t = TariffSpec(**{**BASE.__dict__, "step_minutes": step})
    # Within 5 minutes a charge needs 10 Wh, else it failed and pays nothing (below).
    wh = 0 if minutes > 5 else 10
    p = price(t, Usage(T0, at(minutes), wh))
    assert (p.charged_minutes, p.service_cents, p.energy_cents) == (
        charged, service, fen(Decimal(wh) / 1000 * 60))


@pytest.mark.parametrize("minutes, wh, failed", [
    (0.5, 0, True), (5, 9.999, True), (5, 10, False), (5 + 1 / 60, 0, False),
    (1, 9, True), (3, 50, False),
])
def test_a_failed_charge_pays_nothing(minutes, wh, failed):
    """未能充电: stopped within 5 minutes with under 10 Wh: no minimum, no service, no
    occupancy, nothing at all."""
    t = TariffSpec(**{**BASE.__dict__, "minimum_cents": 100,
                      "occupancy_cents_per_hour": 600, "full_float_minutes": 0})
    p = price(t, Usage(T0, at(minutes), wh, stop_reason="full"))
    assert (p.amount_cents == 0) is failed
    assert ("failed" in p.rules) is failed
    if failed:
        assert (p.energy_cents, p.service_cents, p.occupancy_cents, p.rules) == (0, 0, 0,
                                                                                ("failed",))


@pytest.mark.parametrize("free, minutes, amount, rules", [
    (5, 4, 0, ("free",)),
    (5, 5, 0, ("free",)),
    (5, 6, 6 + 6, ()),      # past the free minutes the whole session pays
    (0, 1, 1 + 6, ()),
])
def test_free_minutes(free, minutes, amount, rules):
    t = TariffSpec(**{**BASE.__dict__, "free_minutes": free})
    p = price(t, Usage(T0, at(minutes), 100))  # 0.1 kWh × 60 = 6 fen
    assert (p.amount_cents, p.rules) == (amount, rules)


@pytest.mark.parametrize("minimum, cap, minutes, wh, energy, service, rules", [
    (50, None, 10, 100, 6, 44, ("minimum",)),
    (50, None, 60, 1000, 60, 60, ()),
    (0, 100, 600, 2000, 120, 0, ("cap",)),       # 120 + 600 → service cut; never energy
    (0, 300, 600, 2000, 120, 180, ("cap",)),
    (0, 300, 60, 1000, 60, 60, ()),
    (200, 100, 10, 0, 0, 100, ("minimum", "cap")),  # a cap below the minimum wins
])
def test_minimum_and_cap(minimum, cap, minutes, wh, energy, service, rules):
    t = TariffSpec(**{**BASE.__dict__, "minimum_cents": minimum, "cap_cents": cap})
    p = price(t, Usage(T0, at(minutes), wh))
    assert (p.energy_cents, p.service_cents, p.rules) == (energy, service, rules)
    assert p.amount_cents == p.energy_cents + p.service_cents


@pytest.mark.parametrize("float_min, stop_reason, readings, charged, energy_wh, rules", [
    # full reported by stop reason: the session ended there, nothing to cut
    (30, "full", [], 480, "1000", ()),
    # power low from minute 300 on: charged up to 300 + 30 minutes, energy at that time
    (30, "unplugged", [(60, 300, 300), (299, 200, 900), (300, 5, 950), (330, 5, 960),
                       (480, 5, 1000)], 330, "960", ("float_after_full",)),
    # no float configured: the whole time
    (None, "unplugged", [(60, 300, 300), (300, 5, 950), (480, 5, 1000)], 480, "1000", ()),
    # full but unplugged within the float: the whole time
    (30, "unplugged", [(60, 300, 300), (470, 5, 990), (480, 5, 1000)], 480, "1000", ()),
])
def test_float_after_full(float_min, stop_reason, readings, charged, energy_wh, rules):
    t = TariffSpec(**{**BASE.__dict__, "full_float_minutes": float_min})
    smp = [Sample(at(m), w, e) for m, w, e in readings]
    p = price(t, Usage(T0, at(480), 1000, smp, stop_reason))
    assert (p.charged_minutes, p.energy_wh, p.rules) == (charged, energy_wh, rules)
    assert p.service_cents == charged  # 60 fen/h = 1 fen/min


@pytest.mark.parametrize("start_local, end_local, minutes", [
    ("2026-11-30 23:40", "2026-12-01 00:20", 40),   # midnight and month end
    ("2026-12-31 23:50", "2027-01-01 01:50", 120),  # year end
    ("2027-02-28 23:00", "2027-03-01 00:30", 90),   # February's end
])
def test_across_midnight_and_month_end(start_local, end_local, minutes):
    start = datetime.fromisoformat(start_local).replace(tzinfo=SH).astimezone(UTC)
    end = datetime.fromisoformat(end_local).replace(tzinfo=SH).astimezone(UTC)
    p = price(BASE, Usage(start, end, 500))
    assert p.charged_minutes == minutes
    assert p.service_cents == minutes and p.energy_cents == 30


def test_tariff_change_during_a_session_prices_by_the_one_at_start():
    old = SimpleNamespace(id=1, effective_from=T0 - timedelta(days=30),
                          electricity_cents_per_kwh=60, service_scheme="none", service_tiers=[],
                          service_cents=0, step_minutes=1, free_minutes=0, minimum_cents=0,
                          cap_cents=None, full_float_minutes=None)
    new = SimpleNamespace(**{**old.__dict__, "id": 2, "effective_from": at(30),
                             "electricity_cents_per_kwh": 90})
    draft = SimpleNamespace(**{**old.__dict__, "id": 3, "effective_from": None,
                               "electricity_cents_per_kwh": 1})
    chosen = tariff_at([new, old, draft], T0)
    assert chosen.id == 1
    p = price(TariffSpec.from_row(chosen), Usage(T0, at(120), 1000))
    assert (p.energy_cents, p.tariff_id) == (60, 1)
    assert tariff_at([new, old], at(30)).id == 2
    assert tariff_at([new], T0) is None


@pytest.mark.parametrize("scheme, unit, wh, minutes, service", [
    ("kwh", 25, 1500, 10, 38),       # 1.5 kWh × 25 = 37.5 → 38
    ("flat_hour", 45, 0, 20, 15),    # 1/3 h × 45 = 15
    ("flat_hour", 50, 10, 1, 1),     # 0.8333 → 1 (10 Wh: not a failed charge)
    ("none", 0, 1000, 60, 0),
])
def test_service_schemes(scheme, unit, wh, minutes, service):
    t = TariffSpec(electricity_cents_per_kwh=55, service_scheme=scheme, service_cents=unit)
    p = price(t, Usage(T0, at(minutes), wh))
    assert p.service_cents == service
    assert p.energy_cents == fen(Decimal(wh) / 1000 * 55)


def test_tier_hour_prices_by_chosen_tier_and_keeps_evidence():
    t = TariffSpec(electricity_cents_per_kwh=60, service_scheme="tier_hour", tiers=TIERS,
                   step_minutes=30)
    smp = [Sample(at(m), 400, m * 7) for m in range(0, 90, 1)]
    p = price(t, Usage(T0, at(90), 630, smp))
    assert (p.tier, p.tier_max_w, p.service_unit_cents) == (2, 540, 40)
    assert p.service_cents == 60 and p.energy_cents == 38  # 1.5 h × 40; 0.63 × 60 = 37.8
    assert p.tier_evidence["reason"] == "held" and p.tier_evidence["readings"]


def test_float_meter_values_never_become_float_amounts():
    p = price(BASE, Usage(T0, at(60), 0.1 + 0.2))  # 0.30000000000000004 Wh
    assert isinstance(p.energy_cents, int) and isinstance(p.amount_cents, int)


@pytest.mark.parametrize("amount, available, paid, short", [
    (100, 100, 100, 0), (100, 70, 70, 30), (100, 0, 0, 100), (100, -5, 0, 100), (0, -5, 0, 0),
])
def test_a_balance_pays_what_it_holds_and_the_rest_is_owed(amount, available, paid, short):
    """Nothing is cut for want of balance: the shortfall is the resident's debt."""
    assert split_paid(amount, available) == (paid, short)
    assert paid + short == amount
