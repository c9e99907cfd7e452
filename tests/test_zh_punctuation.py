"""Chinese sentences take Chinese punctuation (issue 19 item 3): the statement and 公示
pages in zh have no ASCII comma, colon, semicolon, bracket, question or exclamation
mark touching a Chinese character."""

from __future__ import annotations

import re

from sqlalchemy import select

from chargers.extensions import db
from chargers.models import Statement

from .test_crawler import PageText
from .test_statements_pages import closed_november
from .webtools import login, post_form

ASCII_IN_HAN = re.compile(r"[\u4e00-\u9fff][,:;?!()]|[,:;?!(][\u4e00-\u9fff]")


def ascii_punctuation(html: str) -> list[str]:
    p = PageText()
    p.feed(html)
    return [m.group(0) for m in ASCII_IN_HAN.finditer(p.text)]


def test_statement_and_public_pages_use_chinese_punctuation(app, client, admin,
                                                            alley_with_pile):
    acc = closed_november(app, client, admin)
    login(client, "root")
    url = "/staff/months/lane/2026-11"
    post_form(client, url, {"grid_kwh": "10", "amount": "5.60"})
    post_form(client, url + "/publish", {"confirm": "y"}, form_url=url)
    with app.app_context():
        st = db.session.scalar(select(Statement).where(Statement.resident_id == acc))
    pages = [f"/staff/statements/{st.id}", url, "/staff/months/lane",
             "/a/lane/accounts", "/a/lane/accounts/2026-11", "/a/lane/accounts/2026-11/notice"]
    found = {}
    for page in pages:
        html = client.get(page + "?lang=zh").get_data(as_text=True)
        bad = ascii_punctuation(html)
        if bad:
            found[page] = bad
    assert not found, found
