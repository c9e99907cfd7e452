"""The risk grade of a charging session, one reading at a time (pure: no database).

`step(state, point, ...)` takes the session's small state (a dict kept on the session
as `risk_state`) and one meter reading, and returns the new state and a Verdict: the
grade so far (low/mid/high), each reason's grade, and whether the backend must stop
the session now and why (LimitStop). The cost per reading is a few arithmetic
operations, so grading runs inside the ingest batch without slowing it; what needs
other sessions (the alley's ports under similar load, each card's usual charge) is
prepared by the `risk-review` job and read once per session (`Baseline`).

Reasons (constants.RiskReason), thresholds in settings.RiskRule (docs/risk.md):
- over_power: above the port's limit for `overload_readings` readings in a row (the
  backend stops it: `overload`; high when that is also above what an ordinary charger
  draws, `over_power_w`); or far above the card's own usual bulk power;
- power_fluctuation: readings whose min..max spread (v1.1 `power_min_w`,
  `power_max_w`) or step from the previous reading is a large share of the power;
- no_taper: still at bulk power once the energy is past what this card's pack usually
  takes (or, with no history, after hours at bulk power: mid at 6 h, high at 7 h);
- temp_rise: the port's temperature far above its first reading of the session, and
  by a margin more than the alley's other ports warmed under similar load (a hot
  afternoon warms every port);
- too_long: past the longest session (mid; the backend stops it: `too_long`).
A `no_taper` mid is withdrawn when the charge then tapers to the float (`_tapered`).
Limits that are not risks: power under 充满自停 for the hold time stops it as `full`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from ...constants import RISK_ORDER, LimitStop, RiskGrade, RiskReason
from ...settings import RiskRule


@dataclass(frozen=True)
class Point:
    """One meter reading as the grading needs it."""

    at: datetime
    power_w: float
    energy_wh: float
    temp_c: float | None = None
    power_min_w: float | None = None
    power_max_w: float | None = None


@dataclass(frozen=True)
class Baseline:
    """The card's usual charge (CardProfile): bulk power and the energy its pack takes
    when charged full; None when the card has no history."""

    bulk_w: float | None = None
    energy_wh: float | None = None
    sessions: int = 0  # how many healthy full charges taught it
    # How much the alley's other ports warmed in their recent charges at a similar
    # power (median °C over each one's first reading); None: no such peers.
    peer_rise_c: float | None = None
    # The energy the pack takes from the emptiest start its holder makes, estimated from
    # the spread of its learned charges (cards.full_energy); None: `energy_wh`.
    full_wh: float | None = None


@dataclass(frozen=True)
class Limits:
    max_power_w: float
    full_stop_power_w: float
    full_stop_hold_s: float
    max_session_s: float
    overload_readings: int = 2


@dataclass
class Verdict:
    grade: str = RiskGrade.LOW
    reasons: dict[str, str] = field(default_factory=dict)
    stop: str | None = None  # a LimitStop when the backend must stop the session now


def grade_of(reasons: dict[str, str]) -> str:
    """The session's grade: its worst reason's (low without any)."""
    worst = RiskGrade.LOW
    for g in reasons.values():
        if RISK_ORDER[RiskGrade(g)] > RISK_ORDER[worst]:
            worst = RiskGrade(g)
    return worst.value


def _raise(reasons: dict, reason: str, grade: str) -> None:
    old = reasons.get(reason)
    if old is None or RISK_ORDER[RiskGrade(grade)] > RISK_ORDER[RiskGrade(old)]:
        reasons[reason] = grade


def step(state: dict | None, p: Point, started_at: datetime | None, limits: Limits,
         base: Baseline, rule: RiskRule) -> tuple[dict, Verdict]:
    """Fold one reading into the session's state; the new state and the verdict.
    A reading older than the last one (arrived late) still counts for the limits of
    power, not for the sequence-based checks (swings, hold time)."""
    st = dict(state or {})
    reasons = dict(st.get("r") or {})
    t = p.at.timestamp()
    t_start = started_at.timestamp() if started_at is not None else st.get("t1", t)
    st.setdefault("t1", t)
    last_t = st.get("lt")
    stop = _over_power(st, reasons, p.power_w, limits, base, rule)
    if last_t is None or t > last_t:  # in order
        _swing(st, reasons, p, rule)
        st["lp"], st["lt"] = p.power_w, t
        _no_taper(st, reasons, p, t, limits, base, rule)
        full = _full_stop(st, p.power_w, t, limits)
        stop = stop or full
        _tapered(st, reasons, t, rule)
    _temp_rise(st, reasons, p, base, rule)
    if t - t_start >= limits.max_session_s:  # too_long: the longest session
        _raise(reasons, RiskReason.TOO_LONG, RiskGrade.MID)
        stop = stop or LimitStop.TOO_LONG
    st["n"] = st.get("n", 0) + 1
    st["pk"] = max(st.get("pk", 0.0), p.power_w, p.power_max_w or 0.0)
    st["r"] = reasons
    v = Verdict(grade=grade_of(reasons), reasons=reasons, stop=stop)
    if v.grade == RiskGrade.HIGH and "ht" not in st:
        st["ht"] = t  # when it first graded high (the pile's clock)
    if stop is None and v.grade == RiskGrade.HIGH:
        v.stop = LimitStop.RISK
    return st, v


def _over_power(st: dict, reasons: dict, w: float, limits: Limits, base: Baseline,
                rule: RiskRule):
    """Above the port's limit for N readings in a row (a stop), or far above this card's
    own usual bulk power. Over the limit is a risk of the battery only when it is also
    above what an ordinary charger draws (`rule.over_power_w`): staff may set a port's
    limit lower (a weak circuit), and a healthy 400 W charger over a 300 W limit is
    stopped as `overload`, not graded as a dangerous pack."""
    stop = None
    st["ov"] = st.get("ov", 0) + 1 if w > limits.max_power_w else 0
    if st["ov"] >= limits.overload_readings:
        stop = LimitStop.OVERLOAD
    st["ob"] = st.get("ob", 0) + 1 if w > max(limits.max_power_w, rule.over_power_w) else 0
    if st["ob"] >= limits.overload_readings:
        _raise(reasons, RiskReason.OVER_POWER, RiskGrade.HIGH)
    if base.bulk_w:
        far = w > base.bulk_w * rule.over_card_factor and w - base.bulk_w > rule.over_card_min_w
        st["oc"] = st.get("oc", 0) + 1 if far else 0
        if st["oc"] >= rule.over_card_readings:
            high = w > base.bulk_w * rule.over_card_high
            _raise(reasons, RiskReason.OVER_POWER, RiskGrade.HIGH if high else RiskGrade.MID)
    return stop


def _swing(st: dict, reasons: dict, p: Point, rule: RiskRule) -> None:
    """power_fluctuation: the spread within the interval, or a step between readings
    that comes back (a single step down, bulk → taper, is normal)."""
    w, lp = p.power_w, st.get("lp")
    swing = False
    if p.power_min_w is not None and p.power_max_w is not None and w >= rule.swing_min_w:
        swing = (p.power_max_w - p.power_min_w) > rule.swing_ratio * max(w, 1.0)
    if (lp is not None and w >= rule.swing_min_w and lp >= rule.swing_min_w
            and abs(w - lp) > rule.swing_ratio * max(w, lp)):
        swing = swing or st.get("dir", 0) * (w - lp) < 0
    if lp is not None and abs(w - lp) > rule.swing_ratio * max(w, lp, 1.0):
        st["dir"] = 1 if w > lp else -1
    if not swing:
        return
    st["sw"] = st.get("sw", 0) + 1
    if st["sw"] >= rule.swing_high:
        _raise(reasons, RiskReason.POWER_FLUCTUATION, RiskGrade.HIGH)
    elif st["sw"] >= rule.swing_mid:
        _raise(reasons, RiskReason.POWER_FLUCTUATION, RiskGrade.MID)


def _no_taper(st: dict, reasons: dict, p: Point, t: float, limits: Limits, base: Baseline,
              rule: RiskRule) -> None:
    """no_taper: bulk power is the highest smoothed power; "at bulk" near it, long past
    the energy this card's pack usually takes."""
    w = p.power_w
    ew = w if st.get("ew") is None else 0.5 * st["ew"] + 0.5 * w
    st["ew"] = ew
    if w < rule.idle_w:
        return
    st["bk"] = max(st.get("bk", 0.0), min(ew, limits.max_power_w))
    at_bulk = ew >= rule.bulk_ratio * st["bk"]
    if at_bulk and st.get("bs") is None:
        st["bs"] = t
    elif not at_bulk:
        st["bs"] = None
        st["tp"] = 1  # it tapered once
    if not at_bulk:
        return
    if base.energy_wh:
        # High past the estimate of a full charge from the emptiest start (a charge
        # begun emptier than any learned one goes past the largest), and only when
        # several charges taught it (one charge begun half full says little about the
        # pack). The margin is a share of it, but never more than
        # `no_taper_high_max_s` at this session's bulk power (a big pack on a slow
        # charger would otherwise run long past full before the share is reached).
        # Mid already past the largest learned charge (staff look; nothing stops).
        full = base.full_wh or base.energy_wh
        margin = min(full * (rule.no_taper_high - 1),
                     st["bk"] * rule.no_taper_high_max_s / 3600)
        if (p.energy_wh >= full + margin
                and base.sessions >= rule.no_taper_min_sessions):
            _raise(reasons, RiskReason.NO_TAPER, RiskGrade.HIGH)
        elif p.energy_wh >= base.energy_wh * rule.no_taper_mid and base.sessions >= 2:
            _raise(reasons, RiskReason.NO_TAPER, RiskGrade.MID)
    elif st.get("bs") is not None and t - st["bs"] >= rule.no_taper_default_s:
        _raise(reasons, RiskReason.NO_TAPER, RiskGrade.MID)
    if st.get("bs") is not None and t - st["bs"] >= rule.no_taper_bulk_high_s:
        # Longer at bulk than any healthy pack from empty, whatever the card's history
        # (a failing pack on a card whose usual energy is large, or that has none).
        _raise(reasons, RiskReason.NO_TAPER, RiskGrade.HIGH)


def _tapered(st: dict, reasons: dict, t: float, rule: RiskRule) -> None:
    """A `no_taper` graded mid, withdrawn once the charge has held under the 充满自停
    power for `taper_withdraw_s`: it did taper (a high stands: that charge was stopped).
    `st["ntw"]` keeps that it was raised and withdrawn."""
    if (reasons.get(RiskReason.NO_TAPER) == RiskGrade.MID and st.get("fs") is not None
            and t - st["fs"] >= rule.taper_withdraw_s):
        del reasons[RiskReason.NO_TAPER]
        st["ntw"] = 1


def _full_stop(st: dict, w: float, t: float, limits: Limits):
    """充满自停: under the threshold for the hold time (a stop recorded as full)."""
    if w >= limits.full_stop_power_w:
        st["fs"] = None
        return None
    if st.get("fs") is None:
        st["fs"] = t
    return LimitStop.FULL if t - st["fs"] >= limits.full_stop_hold_s else None


def _temp_rise(st: dict, reasons: dict, p: Point, base: Baseline, rule: RiskRule) -> None:
    """temp_rise: against the port's first reading of this session, and by
    `temp_peer_margin_c` more than the alley's other ports warmed at a similar power."""
    if p.temp_c is None:
        return
    st.setdefault("t0", p.temp_c)
    st["tm"] = max(st.get("tm", p.temp_c), p.temp_c)
    rise = st["tm"] - st["t0"]
    if base.peer_rise_c is not None and rise - base.peer_rise_c < rule.temp_peer_margin_c:
        return
    if rise >= rule.temp_rise_high_c:
        _raise(reasons, RiskReason.TEMP_RISE, RiskGrade.HIGH)
    elif rise >= rule.temp_rise_mid_c:
        _raise(reasons, RiskReason.TEMP_RISE, RiskGrade.MID)
