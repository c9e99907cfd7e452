"""Issue 25 §3: residents choose their channels on 'My account' (after the card + phone
check, with a signed short-lived proof of it), staff on the account page; clear
refusals; zh pages in Chinese."""

from __future__ import annotations

import re

from sqlalchemy import select

from chargers.extensions import db
from chargers.models import MoneyAudit, ResidentChannels

from .test_settlement import make_account
from .webtools import csrf_from, login, post_form

PROOF = re.compile(r'name="proof"[^>]*value="([^"]+)"')


def looked_up(client, lang="zh") -> str:
    page = client.get(f"/a/lane/account?lang={lang}").get_data(as_text=True)
    return client.post(f"/a/lane/account?lang={lang}", data={
        "csrf_token": csrf_from(page), "card": "C-1", "phone_last4": "1234"}).get_data(as_text=True)


def save(client, page: str, lang="zh", **fields) -> str:
    data = {"csrf_token": csrf_from(page), "proof": PROOF.search(page).group(1), **fields}
    return client.post(f"/a/lane/account/channels?lang={lang}", data=data).get_data(as_text=True)


def test_a_resident_chooses_channels_night_and_language(app, client, admin, alley_with_pile):
    acc = make_account(client, admin[1], ["C-1"])
    page = looked_up(client)
    assert "给您的消息" in page and "尾号 1234 的手机短信" in page
    assert "在微信里打开本页并登录" in page  # WeChat not linked yet: the box is disabled
    # Posting it anyway is refused, clearly.
    refused = save(client, page, wechat="y")
    assert "微信消息需要先绑定微信" in refused
    bad = save(client, page, email="not-an-address")
    assert "name@example.com" in bad
    with app.app_context():
        db.session.add(ResidentChannels(resident_id=acc, wechat_openid="o-zhang"))
        db.session.commit()
    page = looked_up(client)
    done = save(client, page, wechat="y", sms="y", night="y", language="en")
    assert "已保存" in done
    with app.app_context():
        ch = db.session.get(ResidentChannels, acc)
        assert (ch.wechat, ch.sms, ch.email, ch.night, ch.language) == (True, True, "", True,
                                                                        "en")
        audit = db.session.scalars(select(MoneyAudit).where(
            MoneyAudit.action == "reminder.channels")).all()[-1]
        assert audit.user_id is None and audit.data["by_resident"] is True
    assert "当前： <b>短信 · 微信</b>" in done


def test_a_forged_or_old_proof_is_refused(app, client, admin, alley_with_pile):
    make_account(client, admin[1], ["C-1"])
    page = looked_up(client, "en")
    forged = page.replace(PROOF.search(page).group(1), "eyJhIjoxfQ.forged.sig")
    out = save(client, forged, "en", sms="y")
    assert "Please look your account up again" in out
    with app.app_context():
        assert db.session.scalars(select(ResidentChannels)).all() == []


def test_staff_set_wechat_night_and_language(app, client, admin, alley_with_pile):
    acc = make_account(client, admin[1], ["C-1"])
    login(client, "root")
    url = f"/staff/billing/accounts/{acc}"
    page = client.get(url + "?lang=zh").get_data(as_text=True)
    assert "尚未绑定微信" in page and "消息的语言" in page
    r = post_form(client, f"/staff/accounts/{acc}/channels",
                  {"wechat": "1", "language": "en"}, form_url=url)
    assert r.status_code == 302
    page = client.get(url + "?lang=en").get_data(as_text=True)
    assert "微信消息需要先绑定微信" in page or "WeChat messages need the account linked" in page
    with app.app_context():
        db.session.add(ResidentChannels(resident_id=acc, wechat_openid="o-zhang"))
        db.session.commit()
    post_form(client, f"/staff/accounts/{acc}/channels",
              {"wechat": "1", "night": "1", "language": "en"}, form_url=url)
    with app.app_context():
        ch = db.session.get(ResidentChannels, acc)
        assert (ch.wechat, ch.night, ch.language) == (True, True, "en")


def test_the_every_state_household_shows_its_session_messages(app, client):
    """The crawler's seed: the household that hears by WeChat and SMS has its session
    messages listed on its staff account page, in zh and en."""
    from chargers.models import ResidentAccount

    from . import every_state

    with app.app_context():
        seeded = every_state.seed()
        acc = db.session.scalar(select(ResidentAccount).where(
            ResidentAccount.household == "3号门 王家")).id
    login(client, seeded.admin)
    zh = client.get(f"/staff/billing/accounts/{acc}?lang=zh").get_data(as_text=True)
    assert "已充满" in zh and "微信订阅消息" in zh and "未能充电" in zh
    assert "短信：" in zh and "微信：" in zh  # each message's fate on each channel
    receipt = client.get(f"/r/{seeded.receipts[0]}?lang=zh").get_data(as_text=True)
    assert "未能充电" in receipt and "不收费" in receipt
    en = client.get(f"/staff/billing/accounts/{acc}?lang=en").get_data(as_text=True)
    assert "Fully charged" in en and "SMS:" in en and "WeChat:" in en
