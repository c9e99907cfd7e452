"""The simulator's batteries (chargers/simulator.py `battery_step`) through the real
ingest and risk grading: each bad pack raises its own reason, the healthy ones none.
The readings are the simulator's own, every simulated minute, with the v1.1
`power_min_w`/`power_max_w` a pile with the features sends."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest

from chargers.simulator import PortState, battery_step

from .test_safety import T0, send, the_session

EXPECTED = {"lithium": set(), "lead_acid": set(), "modified": {"over_power"},
            "swinging": {"power_fluctuation"}, "heating": {"temp_rise"},
            "no_taper": {"no_taper"}}


def readings(kind: str, minutes: int, seed: int = 3):
    rng = random.Random(seed)
    port = PortState(1, battery=kind, need_wh=700.0,
                     p0_w=1100.0 if kind == "modified" else 380.0, temp_c=24.0)
    for _ in range(minutes):
        power, low, high = battery_step(port, 1 / 60, rng)
        yield power, low, high, port.energy_wh, port.temp_c
        if kind not in ("no_taper",) and power < 12:  # the pile calls it full
            return


@pytest.mark.parametrize("kind", sorted(EXPECTED))
def test_each_battery_raises_its_own_reason_and_the_healthy_none(app, alley_with_pile, kind):
    minutes = 6 * 60 + 30 if kind == "no_taper" else 4 * 60  # no_taper: past 6 h at bulk
    send(app, "session", T0, event="start", port=1, session="B1", card="C-1", meter_wh=0)
    n = 0
    for i, (w, low, high, e, temp) in enumerate(readings(kind, minutes)):
        at = T0 + timedelta(minutes=i + 1)
        send(app, "meter", at, port=1, session="B1", power_w=round(w, 1),
             energy_wh=round(e, 1), temp_c=round(temp, 1), power_min_w=round(low, 1),
             power_max_w=round(high, 1))
        n += 1
        if the_session(app, "B1").guard_reason:  # the backend stopped it: as a pile would
            break
    reasons = set(the_session(app, "B1").risk_reasons or [])
    assert EXPECTED[kind] <= reasons, (kind, reasons, n)
    assert reasons - EXPECTED[kind] <= {"too_long"}, (kind, reasons)
    if not EXPECTED[kind]:
        assert reasons == set(), (kind, reasons)
