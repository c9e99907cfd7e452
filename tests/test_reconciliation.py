"""Energy reconciliation: grid kWh against the piles' metered kWh, flagged above the
threshold; the grid bill is locked once the month is published."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from chargers.extensions import db
from chargers.models import MonthClose, User
from chargers.services.billing import monthly_close, reconciliation
from chargers.services.errors import Conflict, Invalid
from chargers.settings import CloseRule

from .billing_support import finished, set_tariff
from .test_monthly_close import close, local, settle


def test_loss_rounding_is_integer_half_up():
    assert reconciliation.loss_permille(1000, 913) == 87
    assert reconciliation.loss_permille(2000, 1999) == 1  # 0.05 % → 0.1 %
    assert reconciliation.loss_permille(1000, 1100) == -100
    assert reconciliation.loss_permille(0, 10) is None
    assert reconciliation.kwh_to_wh("12.3456") == 12346
    with pytest.raises(Invalid):
        reconciliation.kwh_to_wh("nan")


def test_month_flagged_when_grid_exceeds_metered_by_more_than_threshold(
        app, client, admin, alley_with_pile):
    user, _ = admin
    with app.app_context():
        boss = db.session.get(User, user.id)
        set_tariff("lane", electricity_cents_per_kwh=60)
        finished("P-1", "a", None, 600, 92_000, start=local(2026, 11, 10, 8, 0))  # 92 kWh
        db.session.commit()
        settle(local(2026, 11, 10, 19, 0))
        close(local(2026, 12, 1, 3, 0))
        mc = db.session.scalar(select(MonthClose))
        rule = CloseRule(loss_pct=8)
        assert reconciliation.reconcile(mc, rule).grid_wh is None

        # 100 kWh from the grid, 92 metered: 8.0 % loss, not above 8 %.
        reconciliation.set_grid_bill(boss, "lane", reconciliation.GridInput(
            month="2026-11", grid_kwh="100", amount_cents=5200), local(2026, 12, 2, 9, 0))
        r = reconciliation.reconcile(mc, rule)
        assert (r.metered_wh, r.grid_wh, r.loss_wh, r.loss_permille) == (92_000, 100_000,
                                                                          8_000, 80)
        assert r.loss_pct_text == "8.0%" and not r.flagged
        # Corrected from the meter readings: 1000.0 → 1101.0 kWh = 101 kWh, 8.9 %: flagged.
        reconciliation.set_grid_bill(boss, "lane", reconciliation.GridInput(
            month="2026-11", reading_start_kwh="1000.0", reading_end_kwh="1101.0",
            amount_cents=5252), local(2026, 12, 2, 10, 0))
        r = reconciliation.reconcile(mc, rule)
        assert r.grid_wh == 101_000 and r.loss_permille == 89 and r.flagged
        assert r.difference_cents == mc.electricity_cents - 5252
        assert reconciliation.reconcile(mc, CloseRule(loss_pct=9)).flagged is False

        # Published: the grid figures are frozen in the month and the bill is locked.
        monthly_close.publish(boss, "lane", "2026-11", local(2026, 12, 3, 9, 0))
        with pytest.raises(Conflict):
            reconciliation.set_grid_bill(boss, "lane", reconciliation.GridInput(
                month="2026-11", grid_kwh="90", amount_cents=1), local(2026, 12, 4, 9, 0))
        with pytest.raises(Conflict):
            monthly_close.publish(boss, "lane", "2026-11", local(2026, 12, 4, 9, 0))
        assert reconciliation.reconcile(mc, rule).grid_wh == 101_000
