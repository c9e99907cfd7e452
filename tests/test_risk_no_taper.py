"""The no_taper rule's reference for "full": what a card's healthy full charges teach
(services/safety/cards.py `fold`, `full_energy`) and how the grade reads it
(services/safety/risk.py), pure; and once through the real ingest and the
`risk-review` job's learning, with a chosen clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

from sqlalchemy import select

from chargers.constants import RiskGrade, RiskReason
from chargers.extensions import db
from chargers.models import CardProfile, ChargingSession, Pile
from chargers.services.safety import cards, limits, risk
from chargers.settings import LimitRule, RiskRule

T0 = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)
RULE = RiskRule()
LIM = LimitRule()
LIMITS = risk.Limits(LIM.max_power_w, LIM.full_stop_power_w, LIM.full_stop_hold_s,
                     LIM.max_session_s, LIM.overload_readings)


def profile(*energies: float, bulk: float = 300.0) -> SimpleNamespace:
    prof = SimpleNamespace(sessions=0, bulk_w=None, energy_wh=None, energy_low_wh=None)
    for e in energies:
        cards.fold(prof, bulk, e)
    return prof


def at_bulk(base: risk.Baseline, power: float, minutes: int):
    """A pack that never tapers: `power` every minute. (the verdict at each minute's
    end, the energy then)."""
    st, e, out = None, 0.0, []
    for i in range(1, minutes + 1):
        e += power / 60
        st, v = risk.step(st, risk.Point(T0 + timedelta(minutes=i), power, e), T0,
                          LIMITS, base, RULE)
        out.append((i, v, e))
    return out


def first_high(trace):
    return next(((i, e) for i, v, e in trace if v.reasons.get(RiskReason.NO_TAPER) == "high"),
                None)


def test_a_card_keeps_its_largest_and_least_full_charge_forgetting_slowly():
    prof = profile(900.0)
    assert (prof.energy_wh, prof.energy_low_wh, prof.sessions) == (900.0, 900.0, 1)
    for e in (600.0, 1200.0, 700.0):
        cards.fold(prof, 200.0, e)
    assert prof.sessions == 4
    # Each charge moves the other end 0.2 % of the way towards it.
    assert 1198 < prof.energy_wh <= 1200 and 600 <= prof.energy_low_wh < 602
    # A week of half-full charges moves the largest by well under 1 %: the charge begun
    # nearly empty is not forgotten.
    for _ in range(7):
        cards.fold(prof, 200.0, 700.0)
    assert prof.energy_wh > 1200 * 0.99


def test_the_usual_energy_widens_by_the_spread_over_the_charges_less_one():
    assert cards.full_energy(profile(), RULE) is None
    assert cards.full_energy(profile(800.0), RULE) == 800.0
    # the largest, plus RISK_NO_TAPER_SPREAD times the spread over the charges less one
    k = RULE.no_taper_spread
    # (the least moved 0.2 % towards the later charges: 601.8 Wh)
    assert abs(cards.full_energy(profile(600.0, 900.0, 1200.0), RULE) - (1200.0 + k * 299.1)) < 1
    # Ten charges spread the same way say the pack's top is close to the largest.
    many = profile(*[600.0 + 600.0 * i / 9 for i in range(10)])
    assert abs(cards.full_energy(many, RULE) - (1200.0 + k * 600.0 / 9)) < 2


def test_a_healthy_charge_begun_emptier_than_any_learned_is_not_high_a_failing_pack_is():
    prof = profile(600.0, 900.0, 1200.0)
    usual = cards.full_energy(prof, RULE)  # 1200 Wh + the spread's 300 Wh × RULE's factor
    base = cards.baseline_of(prof, RULE)
    assert (base.energy_wh, base.full_wh) == (prof.energy_wh, usual)
    trace = at_bulk(base, 300.0, 8 * 60 - 1)
    # At bulk up to 1,450 Wh (begun emptier than the learned charges: past the largest
    # by 250 Wh, 50 minutes of bulk power) and still not high: the old rule (the largest
    # plus 25 minutes at bulk) stopped it at 1,325 Wh.
    assert all(v.reasons.get(RiskReason.NO_TAPER) != "high" for _i, v, e in trace if e <= 1450)
    # Past the largest learned charge by 5 % it is mid (staff look; nothing stops).
    mids = [e for _i, v, e in trace if v.reasons.get(RiskReason.NO_TAPER) == "mid"]
    assert 1260 <= mids[0] <= 1260 + 5
    # Never tapering, it grades high within 25 minutes at bulk past the usual energy.
    minute, energy = first_high(trace)
    assert usual < energy <= usual + 300.0 * 25 / 60 + 300.0 / 60


def test_seven_hours_at_bulk_is_high_whatever_the_history():
    trace = at_bulk(risk.Baseline(), 150.0, 8 * 60 - 1)
    grades = {i: v.reasons.get(RiskReason.NO_TAPER) for i, v, _e in trace}
    assert grades[6 * 60 - 1] is None and grades[6 * 60 + 1] == "mid"
    assert grades[7 * 60 - 1] == "mid" and grades[7 * 60 + 1] == "high"
    # A card whose usual energy is past 8 h at this power is still graded high before
    # the longest session ends it.
    huge = profile(150.0 * 8.5, bulk=150.0)
    minute, _e = first_high(at_bulk(risk.Baseline(150.0, huge.energy_wh, 5), 150.0,
                                    8 * 60 - 1))
    assert minute <= 7 * 60 + 1


def test_the_risk_review_job_learns_the_least_charge_and_the_grade_reads_the_estimate(
        app, alley_with_pile):
    with app.app_context():
        pile = db.session.get(Pile, "P-1")
        ends = []
        for i, energy in enumerate((600.0, 900.0, 1200.0)):
            start = T0 + timedelta(days=i)
            db.session.add(ChargingSession(
                pile_id="P-1", port=1, session_ref=f"L{i}", card="C-9", status="completed",
                started_at=start, ended_at=start + timedelta(hours=5), energy_wh=energy,
                stop_reason="full", risk=RiskGrade.LOW.value, risk_reasons=[],
                risk_state={"bk": 200.0, "tp": 1}))
            ends.append(start + timedelta(hours=5))
        db.session.commit()
        assert cards.learn_finished(ends[-1] + timedelta(minutes=1),
                                    since=timedelta(days=5)) == 3
        prof = db.session.get(CardProfile, (pile.alley_id, "C-9"))
        assert prof.sessions == 3 and 600 <= prof.energy_low_wh < 602
        assert prof.energy_wh == 1200.0
        base = limits.baseline(pile, "C-9", rule=LIM)
        assert base.energy_wh == 1200.0
        assert abs(base.full_wh - cards.full_energy(prof, RULE)) < 1e-9
        assert 1200 + RULE.no_taper_spread * 290 < base.full_wh < 1200 + RULE.no_taper_spread * 300
        assert db.session.scalar(select(ChargingSession.risk_state).where(
            ChargingSession.session_ref == "L0"))["fin"] == 1


def test_a_mid_no_taper_is_withdrawn_when_the_charge_tapers_to_full():
    """Begun emptier than its card's history, a healthy pack runs past the largest
    learned charge (mid) and then tapers: held under the 充满自停 power for
    `taper_withdraw_s`, the reason is withdrawn and the grade is low again."""
    base = cards.baseline_of(profile(600.0, 900.0, 1200.0), RULE)
    trace = at_bulk(base, 300.0, 262)  # ~1,310 Wh: past 1,260, under the estimate
    assert trace[-1][1].grade == "mid"
    st, e = None, 0.0
    for i in range(1, 263):
        e += 300.0 / 60
        st, v = risk.step(st, risk.Point(T0 + timedelta(minutes=i), 300.0, e), T0, LIMITS,
                          base, RULE)
    grades = []
    for j in range(1, 6):  # the float: 10 W
        st, v = risk.step(st, risk.Point(T0 + timedelta(minutes=262 + j), 10.0, e), T0,
                          LIMITS, base, RULE)
        grades.append(v.grade)
    assert grades[:2] == ["mid", "mid"] and grades[3:] == ["low", "low"]
    assert st["ntw"] == 1 and RiskReason.NO_TAPER not in v.reasons
