"""Issue 19 (A): one income, from the ledger, on every page. Over a seeded January the
billing page, the money dashboard, the monthly close with its statements, the 公示 and
a plain query of the ledger give the same income to the fen; a session waiting on the
review list is no income; a reversed top-up is not received; cash received equals
top-ups − refunds; covered splits into monthly cards and the community."""

from __future__ import annotations

import re
from datetime import date

import time_machine
from sqlalchemy import func, select

from chargers.extensions import db
from chargers.models import (
    Alley,
    LedgerAccount,
    LedgerEntry,
    MonthClose,
    Posting,
    ReviewItem,
    Statement,
    User,
)
from chargers.services.billing import accounts, income, money_dashboard, monthly_close
from chargers.services.billing import settlement as settlement_service

from .billing_support import finished, set_tariff
from .test_monthly_close import close, local, settle
from .test_settlement import make_account
from .webtools import login

JAN = (local(2027, 1, 1), local(2027, 2, 1))


def _ledger_income(alley_id: int) -> int:
    """The ledger itself: electricity and service credits posted in January."""
    return int(db.session.scalar(
        select(func.coalesce(func.sum(LedgerEntry.amount_cents), 0))
        .join(LedgerAccount, LedgerAccount.id == LedgerEntry.account_id)
        .join(Posting, Posting.id == LedgerEntry.posting_id)
        .where(LedgerAccount.alley_id == alley_id,
               LedgerAccount.kind.in_(("electricity", "service")),
               Posting.created_at >= JAN[0], Posting.created_at < JAN[1])))


def _seed(app, client, admin) -> dict:
    user, token = admin
    prepaid = make_account(client, token, ["C-1"])
    make_account(client, token, ["C-E"], kind="exempt")
    with app.app_context():
        boss = db.session.get(User, user.id)
        set_tariff("lane", electricity_cents_per_kwh=100, service_scheme="kwh",
                   service_cents=20)
        monthly = accounts.create_account(boss, accounts.AccountInput(
            alley="lane", cards=["C-M"], kind="monthly", household="5-101",
            monthly_from=local(2026, 12, 1), monthly_until=local(2027, 3, 1)),
            local(2026, 12, 1)).id
        accounts.top_up(boss, prepaid, 5000, "cash", "R1", local(2026, 12, 30, 9, 0))
        # Ends 23:50 on 31 December, settled 00:10 on 1 January: a December session,
        # January income (posting time).
        finished("P-1", "dec", "C-1", 50, 500, start=local(2026, 12, 31, 23, 0))
        db.session.commit()
        settle(local(2027, 1, 1, 0, 10))
        # A top-up recorded by mistake and reversed: not received.
        accounts.top_up(boss, prepaid, 2000, "cash", "R2", local(2027, 1, 4, 9, 0))
        wrong_id = db.session.scalar(select(Posting.id).where(Posting.receipt == "R2"))
        accounts.reverse(boss, wrong_id, "wrong household", local(2027, 1, 4, 10, 0))
        accounts.top_up(boss, prepaid, 1000, "wechat", None, local(2027, 1, 5, 8, 0))
        for ref, card, wh, day, port in (("p", "C-1", 1000, 5, 1), ("m", "C-M", 2000, 6, 2),
                                         ("e", "C-E", 500, 7, 3), ("x", "LOST", 1500, 8, 4),
                                         ("w", "GONE", 1000, 9, 1)):
            finished("P-1", ref, card, 60, wh, port=port, start=local(2027, 1, day, 20, 0))
            db.session.commit()
            settle(local(2027, 1, day, 21, 30))
        gone = db.session.scalar(select(ReviewItem).order_by(ReviewItem.id.desc()))
        settlement_service.resolve_review(boss, gone.id, account_id=None, waive=True,
                                          note="visitor", now=local(2027, 1, 10, 9, 0))
        accounts.refund(boss, prepaid, 500, "cash", None, local(2027, 1, 20, 9, 0),
                        reason="moving out")
        alley_id = db.session.scalar(select(Alley.id).where(Alley.slug == "lane"))
        return {"alley": alley_id, "monthly": monthly}


# Prices: 100 fen/kWh electricity + 20 fen/kWh service.
# January postings: dec 0.5 kWh → 60 (prepaid); p 1 kWh → 120 (prepaid);
# m 2 kWh → 240 (monthly card); e 0.5 kWh → 60 (community); x 1.5 kWh → review, open
# (180, no income); w 1 kWh → waived 120.
INCOME = 60 + 120 + 240 + 60 + 120


def _cell(html: str, cls: str) -> list[str]:
    return re.findall(rf'class="[^"]*{cls}[^"]*">([^<]+)<', html)


def test_every_page_gives_the_ledgers_income_to_the_fen(app, client, admin,
                                                         alley_with_pile):
    ids = _seed(app, client, admin)
    with app.app_context():
        assert _ledger_income(ids["alley"]) == INCOME
        fig = income.figures(ids["alley"], *JAN)
        assert fig.takings_cents == INCOME
        assert (fig.covered_monthly_cents, fig.covered_exempt_cents, fig.waived_cents) == (
            240, 60, 120)
        assert fig.paid_by_residents_cents == 180
        # The reversed top-up is not received; cash received = top-ups − refunds.
        assert (fig.topups_cents, fig.refunds_cents) == (1000, 500)
        assert fig.cash_cents == fig.topups_cents - fig.refunds_cents == 500

    # The billing page, on the last evening of January: "this month" (and labelled).
    with time_machine.travel(local(2027, 1, 31, 20, 0), tick=False):
        login(client, "root")
        html = client.get("/staff/billing/lane?lang=en").get_data(as_text=True)
    assert _cell(html, "income-total")[1] == "¥6.00"
    assert "by posting time" in html

    # The monthly close, its statements and the 公示.
    with app.app_context():
        close(local(2027, 2, 1, 3, 0))
        mc = db.session.scalar(select(MonthClose).where(MonthClose.month == "2027-01"))
        assert mc.electricity_cents + mc.service_cents == INCOME
        assert (mc.topups_cents, mc.refunds_cents, mc.covered_cents, mc.waived_cents) == (
            1000, 500, 300, 120)
        dec = db.session.scalar(select(MonthClose).where(MonthClose.month == "2026-12"))
        assert (dec.sessions, dec.electricity_cents + dec.service_cents) == (1, 0)
        charges = db.session.scalar(select(func.sum(Statement.charges_cents))
                                    .where(Statement.close_id == mc.id))
        assert -charges + mc.covered_cents + mc.waived_cents == INCOME
        topups = db.session.scalar(select(func.sum(Statement.topups_cents))
                                   .where(Statement.close_id == mc.id))
        assert topups == 1000  # the reversed top-up left the statement's top-ups too
        # Sessions by end time: the five that ended in January, the review one included.
        assert mc.sessions == 5
        alley = db.session.get(Alley, ids["alley"])
        months = {r["start"]: r for r in money_dashboard.series(alley, "month",
                                                                 local(2027, 2, 5, 12, 0))}
        assert months[date(2027, 1, 1)]["takings_cents"] == INCOME
        monthly_close.publish(db.session.get(User, 1), "lane", "2027-01",
                              local(2027, 2, 2, 9, 0))

    with time_machine.travel(local(2027, 2, 5, 12, 0), tick=False):
        login(client, "root")
        html = client.get("/staff/money/lane?period=month&lang=en").get_data(as_text=True)
        row = re.search(r"<td>2027-01</td>(.*?)</tr>", html, re.S).group(1)
        assert row.rstrip().endswith("¥6.00</td>")
        for url in ("/a/lane/accounts/2027-01?lang=en", "/a/lane/accounts/2027-01/notice?lang=en",
                    "/staff/months/lane/2027-01?lang=en"):
            html = client.get(url).get_data(as_text=True)
            assert _cell(html, "income-total") == ["¥6.00"], url
            assert "Covered by monthly cards" in html or "covered by monthly cards" in html
            assert "¥2.40" in html and "¥0.60" in html
        # The sessions page counts January as the close does, and says what is in review.
        html = client.get("/staff/billing/lane/sessions?lang=en&start=2027-01-01"
                          "&end=2027-01-31").get_data(as_text=True)
        assert "Sessions: 5" in html
        assert "1 on the review list, not charged" in html
        # Amounts only of charged sessions: 120 + 240 + 60 + 120 (not the 180 in review).
        assert "Charged ¥5.40" in html


def test_covered_is_split_by_who_bears_it_wherever_shown(app, client, admin,
                                                         alley_with_pile):
    """Issue 19 (B): a monthly card's session says 月卡, only an exempt account's says
    社区承担; the covered ledger account is split in two on the billing page, in the
    ledger and sessions CSVs, the month totals and the API."""
    _seed(app, client, admin)
    with time_machine.travel(local(2027, 1, 31, 20, 0), tick=False):
        login(client, "root")
        html = client.get("/staff/billing/lane/sessions?lang=zh").get_data(as_text=True)
        rows = {m.group(1): m.group(2) for m in re.finditer(
            r"<td>(C-[ME])</td>.*?<td>([^<]*)</td></tr>", html, re.S)}
        assert rows == {"C-M": "包月卡", "C-E": "社区承担"}
        home = client.get("/staff/billing/lane?lang=zh").get_data(as_text=True)
        assert "月卡或社区承担" not in home  # the covered balance is shown split
        assert re.search(r"<td>包月卡</td><td class=\"num\">¥2\.40</td>", home)
        assert re.search(r"<td>社区承担</td><td class=\"num\">¥0\.60</td>", home)
        assert "其中月卡和社区承担" not in home
        csv = client.get("/staff/billing/lane/sessions.csv?lang=zh").get_data(as_text=True)
        line_m = next(x for x in csv.splitlines() if ",C-M," in x)
        line_e = next(x for x in csv.splitlines() if ",C-E," in x)
        assert "月卡" in line_m and "社区" not in line_m and "社区承担" in line_e
        ledger_csv = client.get("/staff/billing/lane/ledger.csv?lang=zh").get_data(as_text=True)
        covered = [x for x in ledger_csv.splitlines() if ":covered," in x]
        assert {("月卡" in x, "社区承担" in x) for x in covered} == {(True, False), (False, True)}
    with app.app_context():
        close(local(2027, 2, 1, 3, 0))
    with time_machine.travel(local(2027, 2, 5, 12, 0), tick=False):
        login(client, "root")
        html = client.get("/staff/months/lane/2027-01?lang=zh").get_data(as_text=True)
        assert "其中月卡和社区承担" not in html
        assert "其中月卡" in html and "其中社区承担（免费账户）" in html
        token = admin[1]
        r = client.get("/api/v1/alleys/lane/months/2027-01",
                       headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 200, r.json
        assert (r.json["covered_monthly_cents"], r.json["covered_exempt_cents"]) == (240, 60)


def test_publishing_asks_for_confirmation_first(app, client, admin, alley_with_pile):
    """Issue 19 (C): the 公示 is published only with the box ticked (and the button asks
    the browser to confirm); without it nothing is published."""
    from .webtools import post_form

    _seed(app, client, admin)
    with app.app_context():
        close(local(2027, 2, 1, 3, 0))
    with time_machine.travel(local(2027, 2, 5, 12, 0), tick=False):
        login(client, "root")
        url = "/staff/months/lane/2027-01"
        html = client.get(url + "?lang=zh").get_data(as_text=True)
        assert 'name="confirm"' in html and "data-confirm=" in html
        post_form(client, url + "/publish", {}, form_url=url)
        html = client.get(url + "?lang=zh").get_data(as_text=True)
        assert "未公示：请先勾选确认已核对合计。" in html
        assert client.get("/a/lane/accounts/2027-01").status_code == 404
        post_form(client, url + "/publish", {"confirm": "y"}, form_url=url)
        assert client.get("/a/lane/accounts/2027-01").status_code == 200
