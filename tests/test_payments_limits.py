"""Per-alley online top-up limits: set by staff in yuan on the alley's billing page
(audited, within the deployment's bounds), enforced when an order is placed (a clear
refusal, no order), shown on the resident's 充值 page; empty: the deployment's default."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from chargers import settings
from chargers.extensions import db
from chargers.models import Alley, MoneyAudit, PaymentOrder
from chargers.services.errors import Invalid
from chargers.services.payments import limits, orders

from .payments_support import DESKTOP_UA, start_topup, topup_link, with_emulator
from .webtools import csrf_from, login

NOW = datetime(2026, 12, 1, 4, 0, tzinfo=UTC)


@pytest.fixture
def app_config(app_config, emu, tmp_path):
    return with_emulator(app_config, emu, tmp_path)


def _rules(app):
    return settings.payments(app.config)


def _orders(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(PaymentOrder))


def test_defaults_then_own_limits_enforced_by_the_service(app, resident):
    with app.app_context():
        rules = _rules(app)
        alley = db.session.scalar(select(Alley).where(Alley.slug == "lane"))
        lim = limits.of(alley, rules)
        assert (lim.min_cents, lim.max_cents, lim.own) == (rules.min_cents, rules.max_cents, False)
        lim = limits.set_limits(None, "lane", 1000, 20000, rules, NOW)
        assert (lim.min_cents, lim.max_cents, lim.own) == (1000, 20000, True)
        with pytest.raises(Invalid) as exc:
            orders.place(resident, 999, "wechat_native", rules, NOW)
        assert exc.value.code == "pay.amount"
        assert exc.value.params == {"min": "¥10.00", "max": "¥200.00"}
        with pytest.raises(Invalid):
            orders.place(resident, 20001, "wechat_native", rules, NOW)
        assert orders.place(resident, 20000, "wechat_native", rules, NOW).order.amount_cents == 20000
        # Outside the deployment's bounds, or min above max: refused, nothing changes.
        for lo, hi in ((50, 1000), (1000, rules.max_cents + 1), (3000, 2000)):
            with pytest.raises(Invalid) as exc:
                limits.set_limits(None, "lane", lo, hi, rules, NOW)
            assert exc.value.code == "pay.limits"
        db.session.refresh(alley)
        assert (alley.topup_min_cents, alley.topup_max_cents) == (1000, 20000)
        # Empty: back to the deployment's default.
        lim = limits.set_limits(None, "lane", None, None, rules, NOW)
        assert (lim.min_cents, lim.max_cents, lim.own) == (rules.min_cents, rules.max_cents, False)
        audits = db.session.scalars(select(MoneyAudit).where(MoneyAudit.action == "pay.limits")).all()
        assert [a.data["min_cents"] for a in audits] == [1000, None]


def test_staff_form_in_yuan_and_the_resident_page(app, client, emu, resident, admin):
    assert login(client, "root").status_code == 302
    page = client.get("/staff/billing/lane").get_data(as_text=True)
    assert 'id="topup-limits"' in page
    r = client.post("/staff/billing/lane/topup-limits",
                    data={"csrf_token": csrf_from(page), "lim-topup_min": "20",
                          "lim-topup_max": "80.5"})
    assert r.status_code == 302
    with app.app_context():
        alley = db.session.scalar(select(Alley).where(Alley.slug == "lane"))
        assert (alley.topup_min_cents, alley.topup_max_cents) == (2000, 8050)
    page = client.get("/staff/billing/lane").get_data(as_text=True)
    assert 'value="20.00"' in page and 'value="80.50"' in page
    # A typo in yuan is a sentence on the page, and nothing changes.
    r = client.post("/staff/billing/lane/topup-limits",
                    data={"csrf_token": csrf_from(page), "lim-topup_min": "2O",
                          "lim-topup_max": ""}, follow_redirects=True)
    assert "请以元为单位填写限额" in r.get_data(as_text=True)
    with app.app_context():
        assert db.session.get(Alley, alley.id).topup_min_cents == 2000
    client.post("/logout")
    # The resident's 充值 page: the alley's limits, and only the presets inside them.
    html = client.get(topup_link(app, resident), headers={"User-Agent": DESKTOP_UA}).get_data(as_text=True)
    assert "¥20.00" in html and "¥80.50" in html
    assert 'value="5000"' in html and 'value="1000"' not in html and 'value="10000"' not in html
    r = start_topup(app, client, resident, DESKTOP_UA, "wechat_native", amount="15")
    assert r.status_code == 422 and "¥20.00" in r.get_data(as_text=True)
    r = start_topup(app, client, resident, DESKTOP_UA, "wechat_native", preset=10000)
    assert r.status_code == 422
    assert _orders(app) == 0
    assert start_topup(app, client, resident, DESKTOP_UA, "wechat_native", amount="80.5").status_code == 200
    assert _orders(app) == 1


def test_a_staff_member_of_another_alley_cannot_set_them(app, client, emu, resident, admin,
                                                         make_staff):
    make_staff("other", [])
    assert login(client, "other").status_code == 302
    page = client.get("/staff/billing/lane")
    assert page.status_code == 404
    r = client.post("/staff/billing/lane/topup-limits",
                    data={"csrf_token": csrf_from(client.get("/staff/").get_data(as_text=True)),
                          "lim-topup_min": "20"})
    assert r.status_code == 404
    with app.app_context():
        assert db.session.scalar(select(Alley.topup_min_cents).where(Alley.slug == "lane")) is None
