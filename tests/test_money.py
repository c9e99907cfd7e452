"""Money as people type and read it (issue 19 item 1): the one parser of typed yuan
(chargers/money.py), every staff form that takes money going through it, the
confirmations repeating what was recorded, and yuan in the exports."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import select

from chargers.extensions import db
from chargers.models import Alley, LedgerAccount, ResidentAccount, Tariff
from chargers.money import MoneyError, parse_yuan, yuan_decimal, yuan_plain, yuan_text

from .conftest import bearer
from .webtools import csrf_from, login, post_form


@pytest.mark.parametrize("typed, fen", [
    ("50", 5000), ("50.5", 5050), ("50.00", 5000), ("¥50", 5000), ("￥50.05", 5005),
    (" 50 ", 5000), ("0.01", 1), ("1,234.50", 123450), ("1，234", 123400), ("50元", 5000),
    ("50.10", 5010), ("50.100", 5010), (".5", 50), ("0", 0), ("", None), (None, None),
    ("12345678.99", 1234567899),
])
def test_parse_yuan_reads_what_people_type(typed, fen):
    assert parse_yuan(typed) == fen


@pytest.mark.parametrize("typed, code", [
    ("50.005", "too_precise"), ("0.001", "too_precise"), ("-5", "negative"),
    ("¥-5", "negative"), ("−5", "negative"), ("1,23", "bad_separator"),
    ("12,34.5", "bad_separator"), ("1,2345", "bad_separator"), ("abc", "not_a_number"),
    ("5e3", "not_a_number"), ("1.2.3", "not_a_number"), ("¥", "not_a_number"),
    (".", "not_a_number"), ("NaN", "not_a_number"), ("Infinity", "not_a_number"),
])
def test_parse_yuan_refuses_with_a_reason(typed, code):
    with pytest.raises(MoneyError) as exc:
        parse_yuan(typed)
    assert exc.value.code == code


def test_parse_yuan_bounds_and_signs():
    assert parse_yuan("-5.5", allow_negative=True) == -550
    assert parse_yuan("100", max_fen=10000) == 10000
    with pytest.raises(MoneyError, match="too_large"):
        parse_yuan("100.01", max_fen=10000)
    # Exact for every fen of a large range: no float anywhere.
    for fen in range(0, 100_000, 7):
        assert parse_yuan(yuan_plain(fen)) == fen
        assert parse_yuan(yuan_text(fen)) == fen
    assert yuan_text(-3150) == "-¥31.50" and yuan_text(3150, signed=True) == "+¥31.50"
    assert yuan_decimal(5) == Decimal("0.05") and yuan_text(None) == "—"


def _account(client, token, card="C-9", household="3-201"):
    r = client.post("/api/v1/accounts", json={"alley": "lane", "cards": [card], "kind": "prepaid",
                                              "household": household}, headers=bearer(token))
    return r.json["id"]


def _balance(app, acc):
    with app.app_context():
        return db.session.scalar(select(LedgerAccount.balance_cents)
                                 .where(LedgerAccount.resident_id == acc)) or 0


def test_top_up_and_refund_forms_take_yuan_and_say_what_was_recorded(app, client, admin,
                                                                       alley_with_pile):
    _, token = admin
    acc = _account(client, token)
    login(client, "root")
    url = f"/staff/billing/accounts/{acc}"
    csrf = csrf_from(client.get(url).get_data(as_text=True))

    def top_up(amount, prefix="t", action="topup"):
        r = client.post(f"{url}/{action}?lang=zh", data={
            f"{prefix}-csrf_token": csrf, f"{prefix}-amount": amount, f"{prefix}-method": "cash"},
            follow_redirects=True)
        return r.get_data(as_text=True)

    assert "已为 3-201 充值 ¥50.00" in top_up("50")
    assert "已为 3-201 充值 ¥50.50" in top_up("50.5")
    assert "已为 3-201 充值 ¥50.00" in top_up("¥50.00")
    assert _balance(app, acc) == 15050
    for bad, words in (("50.005", "最多两位小数"), ("-5", "不能为负数"),
                       ("1,23", "不要加分隔符"), ("五十", "以元为单位"), ("0", "至少 ¥0.01")):
        assert words in top_up(bad), bad
    assert _balance(app, acc) == 15050  # nothing recorded for a refused amount
    assert "已为 3-201 退款 ¥0.50" in top_up("0.5", "r", "refund")
    assert _balance(app, acc) == 15000


def test_tariff_form_takes_yuan_for_every_price(app, client, admin, alley_with_pile):
    login(client, "root")
    url = "/staff/billing/lane/tariffs?lang=zh"
    form = {"electricity_per_kwh": "¥0.62", "service_scheme": "tier_hour",
            "service_tiers": "180: 0.2\n360：0.30\n1200: ¥0.80", "service_price": "",
            "step_minutes": "30", "free_minutes": "5", "minimum": "0.1", "cap": "5",
            "effective_from": "2031-01-01T00:00"}
    r = post_form(client, url, form)
    assert r.status_code == 302
    html = client.get(r.headers["Location"] + "?lang=zh").get_data(as_text=True)
    assert "新电价已保存：电费 ¥0.62/度" in html
    with app.app_context():
        t = db.session.scalars(select(Tariff).order_by(Tariff.id.desc())).first()
        assert (t.electricity_cents_per_kwh, t.minimum_cents, t.cap_cents) == (62, 10, 500)
        assert [x["cents_per_hour"] for x in t.service_tiers] == [20, 30, 80]
    for field, bad, words in (("electricity_per_kwh", "0.625", "最多两位小数"),
                              ("minimum", "-1", "不能为负数"), ("cap", "1,0", "不要加分隔符")):
        html = post_form(client, url, {**form, field: bad}).get_data(as_text=True)
        assert words in html, field
    with app.app_context():
        assert db.session.query(Tariff).count() == 2  # only the good one was saved


def test_alley_form_grid_bill_and_reminder_threshold_take_yuan(app, client, admin,
                                                                alley_with_pile):
    login(client, "root")
    r = post_form(client, "/staff/alleys/new", {"slug": "east", "name": "东段",
                                                "tariff_per_kwh": "¥0.56"})
    assert r.status_code == 302
    with app.app_context():
        assert db.session.scalar(select(Alley.tariff_cents_per_kwh)
                                 .where(Alley.slug == "east")) == 56
    html = post_form(client, "/staff/alleys/new?lang=zh", {
        "slug": "west", "name": "西段", "tariff_per_kwh": "0.561"}).get_data(as_text=True)
    assert "最多两位小数" in html
    r = post_form(client, "/staff/months/lane/reminders?lang=zh",
                  {"low_balance": "¥8.5", "monthly_days": "3"}, form_url="/staff/months/lane")
    html = client.get("/staff/months/lane?lang=zh").get_data(as_text=True)
    assert "余额低于 ¥8.50 时提醒" in html and 'value="8.50"' in html
    r = post_form(client, "/staff/months/lane/reminders?lang=zh",
                  {"low_balance": "8.505", "monthly_days": "3"}, form_url="/staff/months/lane")
    assert "最多两位小数" in client.get("/staff/months/lane?lang=zh").get_data(as_text=True)


def test_grid_bill_form_takes_yuan(app, client, admin, alley_with_pile):
    from .test_statements_pages import closed_november

    closed_november(app, client, admin)
    login(client, "root")
    url = "/staff/months/lane/2026-11?lang=zh"
    r = post_form(client, url, {"grid_kwh": "10", "amount": "¥1,234.56"})
    assert r.status_code == 302
    html = client.get(url).get_data(as_text=True)
    assert "已保存 2026-11 的电网账单：¥1234.56" in html and 'value="1234.56"' in html
    html = post_form(client, url, {"grid_kwh": "10", "amount": "12.345"}).get_data(as_text=True)
    assert "最多两位小数" in html


def test_sessions_and_ledger_csv_carry_yuan_and_words(app, client, admin, alley_with_pile):
    from .test_billing_pages import settled_session, tiered

    tiered(app)
    _, token = admin
    acc, _ = settled_session(app, client, token)
    login(client, "root")
    r = client.get("/staff/billing/lane/sessions.csv?lang=zh")
    assert r.headers["Content-Type"] == "text/csv; charset=utf-8"
    lines = r.data.decode("utf-8").lstrip("\ufeff").splitlines()
    assert "合计（元）" in lines[0] and "计费（代码）" in lines[0]
    header = lines[0].split(",")
    row = dict(zip(header, lines[1].split(","), strict=True))
    with app.app_context():
        from chargers.models import ChargingSession
        s = db.session.scalars(select(ChargingSession)).one()
        assert row["合计（元）"] == yuan_plain(s.amount_cents)
        assert row["计费（代码）"] == "charged" and row["计费"] == "已扣费"
    text = client.get("/staff/billing/lane/ledger.csv?lang=zh").data.decode("utf-8")
    header = text.lstrip("\ufeff").splitlines()[0]
    assert "金额（元）" in header and "类型（代码）" in header
    assert ",topup,充值," in text and ",cash,现金," in text and f"resident:{acc}" in text
    with app.app_context():
        assert db.session.get(ResidentAccount, acc) is not None
