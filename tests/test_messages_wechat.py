"""Issue 25 §3/§4: residents' WeChat subscription messages through the outbox, against
the local emulator of the official account API (chargers/devtools/wechat_mp.py): the
token fetched once and refreshed when WeChat says it went stale, a user who refused
given up at once, a network failure retried, a half-configured channel refused."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from chargers import create_app, settings
from chargers.devtools.wechat_mp import WechatMP
from chargers.extensions import db
from chargers.models import Notification
from chargers.services.alerts import notify, wechat

from .test_messages_sessions import DAY_SH, make_alley, make_resident, run, start, stop

APP_ID, SECRET = "wx-test-app", "test-secret"


@pytest.fixture
def mp():
    wechat.forget_tokens()
    with WechatMP(APP_ID, SECRET) as emulator:
        yield emulator
    wechat.forget_tokens()


@pytest.fixture
def app_config(app_config, mp):
    app_config.update(WECHAT_MP_API_BASE=mp.base_url, WECHAT_MP_APP_ID=APP_ID,
                      WECHAT_MP_APP_SECRET=SECRET, WEBHOOK_ALLOW_PRIVATE=True,
                      WECHAT_MP_TEMPLATE_SESSION_START="tpl-start",
                      WECHAT_MP_TEMPLATE_STOPPED="tpl-stop|thing7=place,thing2=reason",
                      WECHAT_MP_TEMPLATE_FULL="tpl-full",
                      WECHAT_MP_TEMPLATE_FAILED="tpl-failed")
    return app_config


def outbox() -> list[Notification]:
    db.session.expire_all()
    return list(db.session.scalars(select(Notification).order_by(Notification.id)))


def deliver(app, at):
    return notify.deliver_due(at, settings.delivery(app.config))


def test_messages_go_through_the_emulator_token_kept_then_refreshed(app, app_ctx, mp):
    make_alley()
    make_resident("C-1", openid="o-zhang", topup=1234)
    t = DAY_SH
    run(t, start(t))
    assert [(n.channel, n.target) for n in outbox()] == [("wechat", "o-zhang")]
    assert deliver(app, t) == (1, 0)
    [m] = mp.received
    assert (m["touser"], m["template_id"]) == ("o-zhang", "tpl-start")
    assert m["data"] == {"thing1": {"value": "幸福里 1号桩-2"},
                         "time2": {"value": "2026-12-03 14:00"},
                         "amount3": {"value": "12.34元"}}
    assert mp.token_calls == 1
    # The next message reuses the token; the stop's template maps its own keywords.
    run(t + timedelta(hours=1), stop(t + timedelta(hours=1), wh=300.0, reason="user"))
    assert deliver(app, t + timedelta(hours=1)) == (1, 0)
    assert mp.token_calls == 1
    assert mp.received[-1]["data"] == {"thing7": {"value": "幸福里 1号桩-2"},
                                       "thing2": {"value": "用户自行停止"}}
    # WeChat says the token expired (42001): fetched again, sent once more, delivered.
    mp.expire_tokens()
    run(t + timedelta(hours=2), start(t + timedelta(hours=2), ref="S2"))
    assert deliver(app, t + timedelta(hours=2)) == (1, 0)
    assert mp.token_calls == 2
    assert [a["errcode"] for a in mp.answers] == [0, 0, 42001, 0]
    assert [n.status for n in outbox()] == ["sent", "sent", "sent"]


def test_a_user_who_refused_is_given_up_at_once(app, app_ctx, mp):
    make_alley()
    make_resident("C-1", openid="o-refuses")
    mp.refuse("o-refuses")
    run(DAY_SH, start(DAY_SH))
    assert deliver(app, DAY_SH) == (0, 1)
    [n] = outbox()
    assert (n.status, n.attempts) == ("failed", 1)
    assert "43101" in n.last_error and "refused" in n.last_error
    assert deliver(app, DAY_SH + timedelta(hours=1)) == (0, 0)  # never tried again


def test_network_failure_and_wrong_secret_are_retried(app, app_ctx, mp):
    make_alley()
    make_resident("C-1", openid="o-zhang")
    run(DAY_SH, start(DAY_SH))
    bad = settings.delivery({**app.config, "WECHAT_MP_APP_SECRET": "wrong"})
    assert notify.deliver_due(DAY_SH, bad) == (0, 1)
    [n] = outbox()
    assert (n.status, n.attempts) == ("pending", 1) and "40125" in n.last_error
    mp.stop()
    assert deliver(app, n.next_attempt_at) == (0, 1)
    [n] = outbox()
    assert (n.status, n.attempts) == ("pending", 2) and "unreachable" in n.last_error


def test_no_template_for_the_kind_is_given_up(app, app_ctx, mp):
    make_alley()
    acc = make_resident("C-1", openid="o-zhang")
    from chargers.services.billing import reminders

    reminders.queue_to_account(acc, "statement", {"alley": "幸福里", "household": "3-201",
                                                  "month": "2026-11", "balance": "1.00",
                                                  "url": "http://x"}, "zh", DAY_SH)
    db.session.commit()
    deliver(app, DAY_SH)
    [n] = outbox()
    assert n.status == "failed" and "WECHAT_MP_TEMPLATE_STATEMENT" in n.last_error


@pytest.mark.parametrize("half", [
    {"WECHAT_MP_APP_ID": "wx-1"},
    {"WECHAT_MP_APP_SECRET": "s"},
    {"WECHAT_MP_TEMPLATE_FULL": "tpl"},
    {"WECHAT_MP_APP_ID": "wx-1", "WECHAT_MP_APP_SECRET": "s"},  # no template at all
])
def test_a_half_configured_channel_stops_the_start(tmp_path, half):
    with pytest.raises(RuntimeError, match="WECHAT_MP"):
        create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path}/x.sqlite",
                    "SECRET_KEY": "t", **half}, config_name="testing")


def test_the_emulator_is_never_imported_by_production_code():
    root = Path(__file__).resolve().parent.parent / "chargers"
    imports = re.compile(r"^\s*(from|import)\s+[\w.]*devtools", re.M)
    users = [p for p in root.rglob("*.py") if "devtools" not in p.parts
             and imports.search(p.read_text(encoding="utf-8"))]
    assert users == []


def test_refusals_are_counted_in_the_metrics(app, mp):
    with app.app_context():
        make_alley()
        make_resident("C-1", openid="o-refuses")
        mp.refuse("o-refuses")
        run(DAY_SH, start(DAY_SH))
        deliver(app, DAY_SH)
        from chargers.services import metrics

        text = metrics.render().decode()
    assert ('chargers_notifications{channel="wechat",reason="session_start",status="failed"} 1.0'
            in text)


def test_the_staff_account_page_says_what_became_of_each_message(app, client, mp):
    """"Why didn't I get a message?": the staff account page lists each message to the
    resident with each channel's fate: sent, held for the quiet hours (until 07:00, the
    alley's time), or failed with the reason in words (the resident refused WeChat
    messages), in zh and en."""
    import time_machine

    from .test_messages_sessions import NIGHT_SH, staff
    from .webtools import login

    with app.app_context():
        make_alley()
        acc = make_resident("C-1", openid="o-refuses", email="a@example.org").id
        staff()
        mp.refuse("o-refuses")
        run(DAY_SH, start(DAY_SH))
        deliver(app, DAY_SH)  # WeChat refuses (43101); e-mail fails, is retried (no SMTP)
        run(NIGHT_SH, start(NIGHT_SH, ref="S9"))  # at 23:30: held until 07:00
        rows = outbox()
        assert sorted((n.channel, n.status) for n in rows) == [
            ("email", "pending"), ("email", "pending"), ("wechat", "failed"),
            ("wechat", "pending")]
        assert all(n.payload.get("ref") for n in rows)
    with time_machine.travel(NIGHT_SH + timedelta(minutes=5), tick=False):
        login(client, "root", "a-long-password-1")
        zh = client.get(f"/staff/billing/accounts/{acc}?lang=zh").get_data(as_text=True)
        en = client.get(f"/staff/billing/accounts/{acc}?lang=en").get_data(as_text=True)
    assert "给居民的消息" in zh
    assert "发送失败：居民拒收微信消息（或未订阅）" in zh
    assert zh.count("夜间免打扰，暂缓到 12-04 07:00 再发") == 2
    assert "尚未送达（已试 1 次）" in zh
    assert "failed: the resident refused WeChat messages (or has not subscribed to them)" in en
    assert en.count("held for the quiet hours until 12-04 07:00") == 2
    mp.refused.clear()  # the resident subscribed again
    with app.app_context():
        deliver(app, DAY_SH + timedelta(days=1))  # 14:00 the next day: WeChat takes it
    with time_machine.travel(DAY_SH + timedelta(days=1, minutes=5), tick=False):
        zh = client.get(f"/staff/billing/accounts/{acc}?lang=zh").get_data(as_text=True)
    assert "已发出 12-04 14:00" in zh
