"""Pages of the monthly close: staff months, grid bill, publication, statements, the
takings dashboard, XLSX/CSV exports read back; the public month page and A4 notice
show charts drawn on the server and nothing personal."""

from __future__ import annotations

import io

from openpyxl import load_workbook
from sqlalchemy import select

from chargers.extensions import db
from chargers.models import LedgerAccount, LedgerEntry, Posting, PostingMonth, Statement, User
from chargers.services.billing import accounts

from .billing_support import finished, set_tariff
from .test_monthly_close import close, local, settle
from .test_settlement import make_account
from .webtools import csrf_from, login, post_form


def closed_november(app, client, admin):
    user, token = admin
    acc = make_account(client, token, ["C-77"], phone="13912345678")
    with app.app_context():
        boss = db.session.get(User, user.id)
        set_tariff("lane", electricity_cents_per_kwh=60, service_scheme="flat_hour",
                   service_cents=40, step_minutes=60)
        accounts.top_up(boss, acc, 5000, "cash", "R-9", local(2026, 11, 1, 9, 0))
        for i, day in enumerate((3, 3, 10, 17, 30)):
            finished("P-1", f"s{i}", "C-77", 120, 1500, port=1 + i % 2,
                     start=local(2026, 11, day, 20, 0))
        db.session.commit()
        finished("P-1", "anon", None, 60, 800, start=local(2026, 11, 12, 8, 0))
        db.session.commit()
        settle(local(2026, 11, 30, 23, 0))
        assert close(local(2026, 12, 1, 2, 5)) == "closed lane 2026-11"
    return acc


def test_staff_month_grid_bill_publication_and_public_page(app, client, admin, alley_with_pile):
    closed_november(app, client, admin)
    login(client, "root")
    html = client.get("/staff/months/lane").get_data(as_text=True)
    assert "2026-11" in html
    # The reminder settings form once, in the body (it was once pasted into <title>
    # and <head> as well).
    head, body = html.split("</head>")
    assert "<form" not in head and "<" not in head.split("<title>")[1].split("</title>")[0]
    assert body.count('name="low_balance"') == 1
    # Not published: the public page does not have it.
    assert client.get("/a/lane/accounts/2026-11").status_code == 404
    assert "2026-11" not in client.get("/a/lane/accounts").get_data(as_text=True)

    url = "/staff/months/lane/2026-11"
    r = post_form(client, url, {"grid_kwh": "10", "amount": "5.60", "note": "bill 11"})
    assert r.status_code == 302
    html = client.get(url + "?lang=en").get_data(as_text=True)
    # 6 sessions: 5 × 1.5 + 0.8 = 8.3 kWh metered; grid 10 kWh → 17.0 % loss, flagged.
    assert "8.3 kWh" in html and "10.0 kWh" in html and "17.0%" in html
    assert 'class="flag"' in html and "<svg" in html
    r = post_form(client, url + "/publish", {"confirm": "y"}, form_url=url)
    assert r.status_code == 302

    page = client.get("/a/lane/accounts/2026-11?lang=zh").get_data(as_text=True)
    assert page.count("<svg") == 3 and "<rect" in page and "<script>" not in page
    assert "¥5.60" in page and "17.0%" in page
    for personal in ("C-77", "13912345678", "5678", "3-201"):
        assert personal not in page
    notice = client.get("/a/lane/accounts/2026-11/notice?lang=zh").get_data(as_text=True)
    assert "<svg" in notice and "2026-11" in notice and "C-77" not in notice
    assert "2026-11" in client.get("/a/lane/accounts").get_data(as_text=True)
    # Locked after publication.
    token = csrf_from(client.get("/staff/months/lane").get_data(as_text=True))
    client.post(url, data={"grid_kwh": "9", "amount": "0.01", "csrf_token": token})
    assert client.get(url).status_code == 200
    with app.app_context():
        from chargers.services.billing import reconciliation
        assert reconciliation.grid_bill(1, "2026-11").grid_wh == 10_000


def fen(value) -> int:
    """A yuan number read back from a spreadsheet, as integer fen (exactly)."""
    from decimal import Decimal

    cents = Decimal(str(value)) * 100
    assert cents == cents.to_integral_value(), value
    return int(cents)


def test_exports_read_back_match_the_ledger_and_statements(app, client, admin, alley_with_pile):
    acc = closed_november(app, client, admin)
    login(client, "root")
    r = client.get("/staff/months/lane/ledger.xlsx")
    assert r.status_code == 200 and r.mimetype.endswith("spreadsheetml.sheet")
    ws = load_workbook(io.BytesIO(r.data), read_only=True).worksheets[0]
    rows = list(ws.iter_rows(values_only=True))
    with app.app_context():
        expected = db.session.execute(
            select(Posting.id, Posting.key, Posting.kind, LedgerAccount.code,
                   LedgerEntry.amount_cents, PostingMonth.month)
            .join(LedgerEntry, LedgerEntry.posting_id == Posting.id)
            .join(LedgerAccount, LedgerAccount.id == LedgerEntry.account_id)
            .outerjoin(PostingMonth, PostingMonth.posting_id == Posting.id)
            .order_by(Posting.id, LedgerEntry.id)).all()
        # Amounts are yuan (numbers with a currency format); codes keep a column of words.
        got = [(x[0], x[1], x[2], x[5], fen(x[7]), x[15]) for x in rows[1:]]
        assert got == [tuple(e) for e in expected]
        assert sum(fen(x[7]) for x in rows[1:]) == 0  # double entry: everything sums to zero
        assert rows[0][7] == "金额（元）" and {x[3] for x in rows[1:]} >= {"充值", "扣费"}
        st = db.session.scalar(select(Statement).where(Statement.resident_id == acc))
        st_id, closing = st.id, st.closing_cents
    assert len(rows) == len(expected) + 1

    r = client.get("/staff/months/lane/2026-11/statements.xlsx")
    ws = load_workbook(io.BytesIO(r.data), read_only=True).worksheets[0]
    srows = list(ws.iter_rows(values_only=True))
    mine = [x for x in srows[1:] if x[0] == acc][0]
    assert mine[2] == "C-77" and mine[4] == 0 and mine[5] == 50 and fen(mine[9]) == closing
    assert fen(mine[9]) == sum(fen(v) for v in mine[4:9]) and mine[10] == 5
    cells = list(load_workbook(io.BytesIO(r.data)).worksheets[0].iter_rows(min_row=2, max_row=2))
    assert "¥" in cells[0][5].number_format and "0.00" in cells[0][5].number_format

    r = client.get("/staff/months/lane/2026-11/statements.csv?lang=zh")
    assert r.headers["Content-Type"] == "text/csv; charset=utf-8"
    csv = r.data.decode("utf-8")
    assert csv.startswith("\ufeff") and "C-77" in csv
    assert "期初余额（元）" in csv.splitlines()[0] and ",50.00," in csv  # yuan, 2 decimals
    csv = client.get("/staff/months/lane/ledger.csv?lang=zh").data.decode("utf-8")
    assert csv.startswith("\ufeff") and "2026-11" in csv
    assert client.get("/staff/months/lane/ledger.pdf").status_code == 404

    html = client.get(f"/staff/statements/{st_id}?lang=en").get_data(as_text=True)
    assert "¥50.00" in html and "P-1" in html
    for period in ("day", "week", "month"):
        html = client.get(f"/staff/money/lane?period={period}").get_data(as_text=True)
        assert html.count("<svg") == 3


def test_xlsx_keeps_text_that_looks_like_a_formula(app, client, admin, alley_with_pile):
    from datetime import timedelta

    from chargers.models import utcnow

    _, token = admin
    h = {"Authorization": f"Bearer {token}"}
    r = client.post("/api/v1/accounts", json={"alley": "lane", "cards": ["F-1"], "kind": "prepaid",
                                              "household": '=HYPERLINK("http://x")'}, headers=h)
    assert r.status_code == 201
    client.post(f"/api/v1/accounts/{r.json['id']}/topups", headers=h,
                json={"amount_cents": 100, "method": "cash"})
    with app.app_context():
        assert close(utcnow() + timedelta(days=40))
    login(client, "root")
    with app.app_context():
        month = db.session.scalar(select(Statement.month))
    r = client.get(f"/staff/months/lane/{month}/statements.xlsx")
    ws = load_workbook(io.BytesIO(r.data)).worksheets[0]
    cell = [row for row in ws.iter_rows() if row[0].value == 1][0][1]
    assert cell.value == '=HYPERLINK("http://x")' and cell.data_type == "s"


def test_other_staff_cannot_see_the_alley_months(app, client, admin, alley_with_pile, make_staff):
    closed_november(app, client, admin)
    make_staff("other", [])
    login(client, "other")
    assert client.get("/staff/months/lane").status_code == 404
    assert client.get("/staff/months/lane/2026-11").status_code == 404
    assert client.get("/staff/months/lane/ledger.xlsx").status_code == 404
    with app.app_context():
        st_id = db.session.scalar(select(Statement.id))
    assert client.get(f"/staff/statements/{st_id}").status_code == 404


def test_api_months_grid_publish_and_statements(app, client, admin, alley_with_pile):
    from .conftest import bearer
    from .test_web_openapi import _check

    acc = closed_november(app, client, admin)
    _, token = admin
    h = bearer(token)
    with app.app_context():
        from chargers.web.api.docs import load_spec
        spec = load_spec()
    r = client.get("/api/v1/alleys/lane/months", headers=h)
    assert r.status_code == 200 and [m["month"] for m in r.json] == ["2026-11"]
    _check(spec, r.json[0], "Month")
    r = client.put("/api/v1/alleys/lane/months/2026-11/grid", headers=h,
                   json={"reading_start_kwh": "100", "reading_end_kwh": "109.5",
                         "amount_cents": 532})
    assert r.status_code == 200 and r.json["grid_wh"] == 9500, r.json
    _check(spec, r.json, "Grid")
    m = client.get("/api/v1/alleys/lane/months/2026-11", headers=h).json
    assert m["reconciliation"]["loss_permille"] == 126 and m["reconciliation"]["flagged"]
    assert len(m["daily"]) == 30
    _check(spec, m, "Month")
    r = client.put("/api/v1/alleys/lane/months/2026-11/grid", headers=h, json={"amount_cents": 1})
    assert r.status_code == 422 and r.json["error"]["code"] == "invalid"
    r = client.post("/api/v1/alleys/lane/months/2026-11/publish", headers=h)
    assert r.status_code == 200 and r.json["published_at"]
    assert client.post("/api/v1/alleys/lane/months/2026-11/publish", headers=h).status_code == 409
    assert client.get("/api/v1/alleys/lane/months/2026-12", headers=h).status_code == 404
    sts = client.get(f"/api/v1/accounts/{acc}/statements", headers=h).json
    assert [s["month"] for s in sts] == ["2026-11"] and len(sts[0]["sessions"]) == 5
    _check(spec, sts[0], "Statement")


def test_dashboard_buckets_by_local_day_week_and_month(app, client, admin, alley_with_pile):
    """Sessions by their local end day; income from the ledger by posting time: a
    session waiting on the review list (no card) is a session but no income."""
    from datetime import date

    from chargers.models import Alley
    from chargers.services.billing import money_dashboard

    _, token = admin
    make_account(client, token, ["C-9"], topup=5000)
    with app.app_context():
        set_tariff("lane", electricity_cents_per_kwh=100)
        finished("P-1", "c", "C-9", 30, 500, port=3, start=local(2026, 10, 31, 12, 0))
        db.session.commit()
        settle(local(2026, 10, 31, 12, 40))
        # 23:30 Shanghai on Sunday 29 November (15:30 UTC), and 00:30 on Monday 30 November.
        finished("P-1", "a", "C-9", 30, 1000, start=local(2026, 11, 29, 23, 0))
        db.session.commit()
        settle(local(2026, 11, 29, 23, 45))
        finished("P-1", "b", "C-9", 30, 2000, port=2, start=local(2026, 11, 30, 0, 0))
        finished("P-1", "r", None, 30, 700, port=4, start=local(2026, 11, 30, 0, 5))
        db.session.commit()
        settle(local(2026, 11, 30, 1, 0))
        alley = db.session.scalar(select(Alley))
        now = local(2026, 11, 30, 12, 0)
        days = {r["start"]: r for r in money_dashboard.series(alley, "day", now)}
        assert len(days) == 31 and max(days) == date(2026, 11, 30)
        assert (days[date(2026, 11, 29)]["sessions"], days[date(2026, 11, 29)]["energy_wh"],
                days[date(2026, 11, 29)]["takings_cents"]) == (1, 1000, 100)
        # Two sessions ended on the 30th; the one on the review list is no income.
        assert (days[date(2026, 11, 30)]["sessions"], days[date(2026, 11, 30)]["energy_wh"],
                days[date(2026, 11, 30)]["takings_cents"]) == (2, 2700, 200)
        weeks = {r["start"]: r for r in money_dashboard.series(alley, "week", now)}
        assert weeks[date(2026, 11, 30)]["sessions"] == 2  # Monday starts the week
        assert weeks[date(2026, 11, 23)]["sessions"] == 1
        months = {r["start"]: r for r in money_dashboard.series(alley, "month", now)}
        assert len(months) == 12
        assert (months[date(2026, 11, 1)]["sessions"], months[date(2026, 10, 1)]["sessions"]) == (
            3, 1)
        assert months[date(2026, 11, 1)]["takings_cents"] == 300
        assert months[date(2026, 10, 1)]["takings_cents"] == 50


def test_month_pages_are_reached_by_clicking_from_the_staff_desk(app, client, admin,
                                                                alley_with_pile):
    import re
    from collections import deque
    from html import unescape
    from urllib.parse import urlsplit

    closed_november(app, client, admin)
    login(client, "root")
    adapter = app.url_map.bind("localhost")
    seen, reached, todo = set(), set(), deque(["/staff/"])
    while todo:
        path = todo.popleft()
        if path in seen:
            continue
        seen.add(path)
        r = client.get(path)
        data = r.get_data()  # read to the end: a streamed CSV then ends its app context
        r.close()
        assert r.status_code == 200, (path, r.status_code)
        reached.add(adapter.match(urlsplit(path).path, method="GET")[0])
        if r.mimetype != "text/html":
            continue
        for href in re.findall(r'href="([^"]+)"', data.decode()):
            t = urlsplit(unescape(href))
            if not t.netloc and t.path.startswith("/staff/") and "lang=" not in t.query:
                todo.append(t.path + (f"?{t.query}" if t.query else ""))
    mine = {r.endpoint for r in app.url_map.iter_rules()
            if r.endpoint.startswith("staff.") and "GET" in r.methods
            and r.rule.startswith(("/staff/months", "/staff/money", "/staff/statements"))}
    assert len(mine) == 6 and mine <= reached, mine - reached


def test_a_correction_after_publishing_is_a_new_version_shown_as_such(app, client, admin,
                                                                      alley_with_pile):
    closed_november(app, client, admin)
    login(client, "root")
    url = "/staff/months/lane/2026-11"
    # Before publication there is nothing to correct: the grid bill itself is edited.
    r = post_form(client, url + "/correct", {"grid_kwh": "9", "amount": "5.00", "reason": "x"},
                  form_url=url)
    assert r.status_code == 302
    assert "尚未公示" in client.get(url + "?lang=zh").get_data(as_text=True)
    post_form(client, url, {"grid_kwh": "10", "amount": "5.60", "note": "bill 11"})
    post_form(client, url + "/publish", {"confirm": "y"}, form_url=url)
    page = client.get("/a/lane/accounts/2026-11?lang=zh").get_data(as_text=True)
    assert "¥5.60" in page and "更正于" not in page  # version 1: nothing to say yet
    # The bill was mistyped: corrected, with why; the first version stays readable.
    r = post_form(client, url + "/correct",
                  {"grid_kwh": "9.5", "amount": "5.32", "reason": "抄表读数录错，以供电局账单为准"},
                  form_url=url)
    assert r.status_code == 302
    page = client.get("/a/lane/accounts/2026-11?lang=zh").get_data(as_text=True)
    assert "¥5.32" in page and "第 2 版，更正于" in page and "抄表读数录错" in page
    assert "第 1 版" in page and "¥5.60" in page and "10.0 度" in page
    notice = client.get("/a/lane/accounts/2026-11/notice?lang=zh").get_data(as_text=True)
    assert "第 2 版，更正于" in notice
    staff_page = client.get(url + "?lang=zh").get_data(as_text=True)
    assert "第 2 版，更正于" in staff_page and "更正公示" in staff_page
    # A correction needs a reason, and must change something.
    post_form(client, url + "/correct", {"grid_kwh": "9.5", "amount": "5.32", "reason": "同上"},
              form_url=url)
    with app.app_context():
        from chargers.models import MonthClose, NoticeVersion

        mc = db.session.scalar(select(MonthClose).where(MonthClose.month == "2026-11"))
        assert (mc.version, mc.published_grid_wh, mc.published_grid_cents) == (2, 9500, 532)
        assert [v.version for v in db.session.scalars(select(NoticeVersion))] == [1, 2]
