"""Billing pages: posted prices on the alley and pile pages, the receipt link, 'My
account' (rate limited), and the staff pages with CSV exports."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from chargers.extensions import db
from chargers.models import ChargingSession, MoneyAudit
from chargers.services.billing import settlement

from .billing_support import T0, finished, set_tariff
from .conftest import bearer
from .webtools import csrf_from, login

TIERS = [{"max_w": 180, "cents_per_hour": 20}, {"max_w": 360, "cents_per_hour": 30},
         {"max_w": 1200, "cents_per_hour": 80}]


def tiered(app):
    with app.app_context():
        set_tariff("lane", electricity_cents_per_kwh=62, service_scheme="tier_hour",
                   service_tiers=TIERS, step_minutes=30, free_minutes=5, minimum_cents=10,
                   cap_cents=500, full_float_minutes=60)


def settled_session(app, client, token, card="C-1", topup=1000):
    r = client.post("/api/v1/accounts", json={"alley": "lane", "cards": [card], "kind": "prepaid",
                                              "phone": "13800005678"}, headers=bearer(token))
    acc = r.json["id"]
    client.post(f"/api/v1/accounts/{acc}/topups", json={"amount_cents": topup, "method": "cash"},
                headers=bearer(token))
    with app.app_context():
        s = finished("P-1", "R1", card, 95, 600, port=3,
                     samples=[(m, 300, m * 6) for m in range(0, 96, 1)])
        db.session.commit()
        settlement.settle(T0 + timedelta(hours=3))
        return acc, db.session.get(ChargingSession, s.id).receipt_token


def test_alley_and_pile_pages_post_the_prices(app, client, alley_with_pile):
    tiered(app)
    for url in ("/a/lane?lang=zh", "/p/P-1?lang=zh"):
        html = client.get(url).get_data(as_text=True)
        # Prices as residents say them: 元/度, 元/小时 (issue 19).
        assert "0.62 元/度" in html and "kWh" not in html  # electricity
        assert "0.20 元/小时" in html and "0.30 元/小时" in html and "0.80 元/小时" in html
        assert "180" in html and "360" in html and "&gt; 360 W" in html
        assert "¥0.10" in html and "¥5.00" in html  # minimum, cap
        assert "30" in html and "5" in html and "60" in html  # step, free, float


def test_receipt_shows_every_item(app, client, admin, alley_with_pile):
    tiered(app)
    _, token = admin
    _, token_r = settled_session(app, client, token)
    assert len(token_r) >= 20
    html = client.get(f"/r/{token_r}?lang=en").get_data(as_text=True)
    # 0.6 kWh × 0.62 = 37.2 → ¥0.37; 95 min → 120 min × ¥0.30/h = ¥0.60; total ¥0.97
    for text in ("¥0.62 / kWh", "0.600 kWh", "¥0.37", "¥0.30 / hour", "120 min charged",
                 "¥0.60", "¥0.97", "Port 3", "≤ 360 W", "Power stayed in this tier",
                 "per started 30 minutes"):
        assert text in html, text
    assert client.get("/r/not-a-token").status_code == 404


def test_my_account_by_card_and_phone_digits_is_rate_limited(app, client, admin,
                                                             alley_with_pile):
    tiered(app)
    app.config["ACCOUNT_LOOKUP_RATE_LIMIT"] = "3 per hour"
    _, token = admin
    settled_session(app, client, token)
    page = client.get("/a/lane/account?lang=en").get_data(as_text=True)
    csrf = csrf_from(page)

    def look(card, last4):
        return client.post("/a/lane/account?lang=en", data={"csrf_token": csrf, "card": card,
                                                              "phone_last4": last4})

    wrong = look("C-1", "0000").get_data(as_text=True)
    assert "No account matches" in wrong and "¥" not in wrong.split("<h1>")[1]
    right = look("C-1", "5678").get_data(as_text=True)
    assert "¥9.03" in right and "/r/" in right  # 1000 - 97
    assert "Unplugged" in right.split("Recent charges")[1]  # how each charge ended
    assert "13800005678" not in right  # nothing else personal
    assert look("C-1", "5678").status_code == 200  # the third of 3 per hour
    assert look("C-1", "5678").status_code == 429


def test_staff_pages_and_csv_exports(app, client, admin, alley_with_pile):
    tiered(app)
    _, token = admin
    acc, _ = settled_session(app, client, token)
    login(client, "root")
    for url in ("/staff/billing/lane", "/staff/billing/lane/tariffs",
                "/staff/billing/lane/accounts", f"/staff/billing/accounts/{acc}",
                "/staff/billing/review", "/staff/billing/adjustments",
                "/staff/billing/lane/sessions"):
        r = client.get(url + "?lang=zh")
        assert r.status_code == 200, url
    csv = client.get("/staff/billing/lane/sessions.csv")
    assert csv.status_code == 200 and csv.data.startswith(b"\xef\xbb\xbf")
    assert "text/csv" in csv.headers["Content-Type"] and "97" in csv.get_data(as_text=True)
    ledger_csv = client.get("/staff/billing/lane/ledger.csv")
    assert ledger_csv.data.startswith(b"\xef\xbb\xbf") and b"charge:" in ledger_csv.data


def test_staff_top_up_and_refund_are_audited(app, client, admin, alley_with_pile):
    _, token = admin
    r = client.post("/api/v1/accounts", json={"alley": "lane", "cards": ["Z"], "kind": "prepaid"},
                    headers=bearer(token))
    acc = r.json["id"]
    login(client, "root")
    page = client.get(f"/staff/billing/accounts/{acc}").get_data(as_text=True)
    csrf = csrf_from(page)
    r = client.post(f"/staff/billing/accounts/{acc}/topup", data={
        "t-csrf_token": csrf, "t-amount": "5", "t-method": "wechat", "t-receipt": "NO-1"})
    assert r.status_code == 302
    r = client.post(f"/staff/billing/accounts/{acc}/refund", data={
        "r-csrf_token": csrf, "r-amount": "¥2.00", "r-method": "cash", "r-reason": "moving out"})
    assert r.status_code == 302
    assert client.get(f"/api/v1/accounts/{acc}", headers=bearer(token)).json["balance_cents"] == 300
    with app.app_context():
        actions = [(a.action, a.user_id is not None, a.at is not None)
                   for a in db.session.scalars(select(MoneyAudit).order_by(MoneyAudit.id))]
    assert ("money.topup", True, True) in actions and ("money.refund", True, True) in actions


def test_billing_api_is_documented_and_answers_match(app, client, admin, alley_with_pile):
    from openapi_schema_validator import OAS31Validator
    from openapi_spec_validator import validate

    from chargers.web.api import billing
    from chargers.web.api.docs import load_spec

    from .test_web_openapi import _rules

    spec = load_spec()
    validate(spec)
    for method, path in sorted(_rules(app, billing)):
        op = spec["paths"][path][method.lower()]
        assert op["summary"] and "401" in op["responses"], (method, path)

    def check(instance, ref):
        OAS31Validator({"$ref": f"#/components/schemas/{ref}",
                        "components": spec["components"]}).validate(instance)

    tiered(app)
    _, token = admin
    acc, _ = settled_session(app, client, token)
    h = bearer(token)
    check(client.get(f"/api/v1/accounts/{acc}", headers=h).json, "Account")
    for item in client.get("/api/v1/sessions?pile=P-1", headers=h).json:
        check(item, "Session")
    r = client.post(f"/api/v1/accounts/{acc}/topups", json={"amount_cents": 5, "method": "cash"},
                    headers=h)
    check(r.json, "MoneyOut")
    for t in client.get("/api/v1/alleys/lane/tariffs", headers=h).json:
        check(t, "Tariff")
    draft = {"electricity_cents_per_kwh": 60, "service_scheme": "tier_hour",
             "service_tiers": TIERS, "step_minutes": 60}
    r = client.post("/api/v1/alleys/lane/tariffs/preview", json=draft, headers=h)
    assert r.status_code == 200 and len(r.json) == 5
    r = client.post("/api/v1/alleys/lane/tariffs", json={**draft, "effective_from":
                                                         "2030-01-01T00:00:00+08:00"}, headers=h)
    assert r.status_code == 201, r.json
    check(r.json, "Tariff")
    r = client.post("/api/v1/alleys/lane/tariffs", json={**draft, "effective_from":
                                                         "2020-01-01T00:00:00+08:00"}, headers=h)
    assert r.status_code == 422 and r.json["error"]["code"] == "invalid"
    r = client.post("/api/v1/accounts", json={"alley": "lane", "cards": ["C-1"], "kind": "prepaid"},
                    headers=h)
    assert r.status_code == 409


def test_staff_tariff_preview_then_save(app, client, admin, alley_with_pile):
    login(client, "root")
    page = client.get("/staff/billing/lane/tariffs?lang=en").get_data(as_text=True)
    form = {"csrf_token": csrf_from(page), "electricity_per_kwh": "0.60",
            "service_scheme": "tier_hour", "service_tiers": "180: 0.20\n360: 0.3\n1200: 0.80",
            "service_price": "0", "step_minutes": "60", "free_minutes": "5",
            "minimum": "0", "preview_only": "y"}
    html = client.post("/staff/billing/lane/tariffs?lang=en", data=form).get_data(as_text=True)
    assert "Preview on sample sessions" in html and "8 h at 400 W" in html
    assert "8h_400w" not in html and "free minutes" in html  # samples and rules in words
    with app.app_context():
        from chargers.models import Tariff
        assert db.session.query(Tariff).count() == 1  # a preview saves nothing
    form.pop("preview_only")
    form["effective_from"] = "2031-01-01T00:00"
    r = client.post("/staff/billing/lane/tariffs?lang=en", data=form)
    assert r.status_code == 302
    with app.app_context():
        from chargers.models import MoneyAudit, Tariff
        assert db.session.query(Tariff).count() == 2
        t = db.session.query(Tariff).order_by(Tariff.id.desc()).first()
        assert t.effective_from.isoformat() == "2030-12-31T16:00:00+00:00"  # alley time
        assert [a.action for a in db.session.query(MoneyAudit)] == ["tariff.created"]


def test_desk_shows_todays_takings_per_alley(app, client, admin, alley_with_pile):
    tiered(app)
    _, token = admin
    settled_session(app, client, token)
    from chargers.models import User
    from chargers.services import desk

    with app.app_context():
        s = db.session.scalar(select(ChargingSession))
        user = db.session.get(User, admin[0].id)
        today = {d.slug: d.takings_today_cents for d in desk.desk(user, T0 + timedelta(hours=3))}
        tomorrow = {d.slug: d.takings_today_cents for d in desk.desk(user, T0 + timedelta(days=1))}
    assert today == {"lane": s.amount_cents} and s.amount_cents > 0
    assert tomorrow == {"lane": 0}  # a new day in the alley's zone starts from nothing
    login(client, "root")
    html = client.get("/staff/?lang=en").get_data(as_text=True)
    assert "today&#39;s takings" in html or "today's takings" in html
    assert 'href="/staff/billing/lane"' in html


def test_staff_sessions_filter_by_local_date_and_card_with_totals_and_pages(
        app, client, admin, alley_with_pile, monkeypatch):
    """Local end dates of the alley (Asia/Shanghai), as the monthly close counts: a
    session ended 2026-11-29 23:50 local (15:50 UTC) is on the 29th, one ended at 01:00
    local on the 30th (17:00 UTC the 29th) is on the 30th. Totals cover the filter,
    pages of PAGE_SIZE, and the CSV exports what the filter shows."""
    from chargers.web.staff import billing as billing_pages

    with app.app_context():
        late = T0.replace(hour=15, minute=30)  # 23:30 in Shanghai, 29 Nov
        finished("P-1", "A", "C-1", 20, 100, start=late)  # ends 23:50, 29 Nov
        finished("P-1", "B", "C-2", 30, 200, start=late + timedelta(hours=1))  # 30 Nov
        finished("P-1", "C", "C-2", 30, 300, start=late + timedelta(hours=2))  # 30 Nov
        db.session.commit()
        settlement.settle(T0 + timedelta(days=1))
    login(client, "root")

    def page(query):
        return client.get(f"/staff/billing/lane/sessions?lang=en&{query}").get_data(as_text=True)

    html = page("start=2026-11-30&end=2026-11-30")
    assert "C-2" in html and "C-1" not in html.split("<tbody>")[1]
    assert "Sessions: 2" in html and "0.500 kWh" in html  # 200 + 300 Wh
    html = page("start=2026-11-29&end=2026-11-29")
    assert "Sessions: 1" in html and "C-1" in html.split("<tbody>")[1]
    assert "Sessions: 1" in page("card=C-1")
    assert "Sessions: 3" in page("start=not-a-date")  # a bad value filters nothing
    assert "No sessions match." in page("card=nobody")

    monkeypatch.setattr(billing_pages, "PAGE_SIZE", 2)
    first, second = page(""), page("page=2")
    assert "Older" in first and "Newer" not in first
    assert "Newer" in second and "Older" not in second
    assert second.split("<tbody>")[1].count("<tr>") == 1

    csv = client.get("/staff/billing/lane/sessions.csv?card=C-2").get_data(as_text=True)
    assert csv.count("\n") == 3 and "C-1" not in csv  # header + 2 sessions
