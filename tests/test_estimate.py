"""The time-left estimate on recorded power curves (one meter reading every 5 minutes
from a 48 V e-bike charger): rising, flat, tapering, and the no-basis cases."""

from __future__ import annotations

from chargers.services.charging.estimate import Estimate, PastSession, Sample, estimate, next_free


def curve(rows: list[tuple[int, float, float]]) -> list[Sample]:
    """(minute, W, Wh so far) rows as samples."""
    return [Sample(m * 60, w, wh) for m, w, wh in rows]


# The charger ramping up in the first quarter hour.
RISING = curve([(1, 95.0, 1.6), (5, 210.0, 12.0), (10, 330.0, 34.0), (15, 392.0, 64.0)])
# Constant current: about 400 W for an hour.
FLAT = curve([(5, 398.0, 33.0), (15, 402.0, 100.0), (25, 400.0, 167.0), (35, 401.0, 234.0),
              (45, 399.0, 300.0), (55, 400.0, 367.0), (65, 401.0, 434.0)])
# Constant voltage: the draw falls from 400 W by about half every 20 minutes.
TAPERING = curve([(60, 401.0, 400.0), (70, 399.0, 467.0), (80, 285.0, 524.0),
                  (90, 203.0, 565.0), (100, 142.0, 594.0), (110, 101.0, 614.0)])

# The alley's past full charges with a similar charger: ~620 Wh in ~2 h 10 min.
HISTORY = [PastSession(7800, 620.0, 405.0), PastSession(8100, 640.0, 398.0),
           PastSession(7500, 600.0, 410.0), PastSession(8400, 660.0, 395.0),
           PastSession(7900, 615.0, 402.0)]
# …and some that are not similar: a scooter charger at 1.2 kW, a phone-sized trickle.
OTHERS = [PastSession(9000, 2400.0, 1200.0), PastSession(3600, 20.0, 25.0)] * 3


def test_rising_curve_uses_similar_past_sessions():
    e = estimate(RISING, 15 * 60, HISTORY + OTHERS)
    assert e.basis == "history" and e.similar == 5
    assert (e.power_w, e.energy_wh) == (392.0, 64.0)
    # ~556 Wh to go at the past sessions' mean ~0.7 of peak (~275 W): about 2 hours.
    assert 110 <= e.minutes <= 130


def test_flat_curve_uses_similar_past_sessions():
    e = estimate(FLAT, 65 * 60, HISTORY)
    assert e.basis == "history"
    # ~186 Wh to go at ~284 W mean: about 40 minutes.
    assert 35 <= e.minutes <= 45


def test_tapering_curve_is_its_own_basis():
    e = estimate(TAPERING, 110 * 60, [])  # no history needed
    assert e.basis == "curve" and e.power_w == 101.0
    # Halving every ~20 min from 101 W to the 40 W end: ~27 minutes.
    assert 22 <= e.minutes <= 32
    # A battery nearly full draws little: almost done.
    nearly = estimate(TAPERING + curve([(120, 38.0, 620.0)]), 120 * 60, [])
    assert (nearly.minutes, nearly.basis) == (0, "curve")


def test_a_long_flat_stretch_before_the_taper_does_not_slow_the_estimate():
    whole = FLAT + TAPERING[2:]  # an hour of 400 W, then the fall
    e = estimate(whole, 110 * 60, HISTORY)
    assert e.basis == "curve" and 22 <= e.minutes <= 32


def test_a_later_taper_reads_less_time_left():
    early = estimate(TAPERING[:4], 90 * 60, [])
    late = estimate(TAPERING, 110 * 60, [])
    assert early.basis == late.basis == "curve" and early.minutes > late.minutes


def test_no_basis_is_said_plainly():
    # A flat curve says nothing about the battery's size; no history to ask.
    assert estimate(FLAT, 65 * 60, []) == Estimate(None, "none", 401.0, 434.0)
    # Only dissimilar history, or too little of it.
    assert estimate(FLAT, 65 * 60, OTHERS).minutes is None
    assert estimate(FLAT, 65 * 60, HISTORY[:2]).minutes is None
    # No readings at all and no history.
    assert estimate([], 600, []) == Estimate(None, "none")
    # A dip in power that is not a taper (one low sample) is no curve basis either.
    dip = curve([(5, 400.0, 33.0), (10, 402.0, 66.0), (15, 250.0, 90.0)])
    assert estimate(dip, 900, []).minutes is None


def test_no_readings_but_history_of_durations():
    e = estimate([], 30 * 60, HISTORY)
    assert e.basis == "history" and 95 <= e.minutes <= 110  # ~2 h 10 min minus 30 min
    assert e.power_w is None and e.energy_wh is None


def test_next_free_is_the_soonest_known():
    assert next_free([Estimate(None, "none"), Estimate(40, "history"), Estimate(12, "curve")]) == 12
    assert next_free([Estimate(None, "none")]) is None
    assert next_free([]) is None
