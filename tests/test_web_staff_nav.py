"""The staff side as one product: every staff page is reached by clicking from the
dashboard, the header shows the sections with the open-alert count, links lead from
alleys and piles to their alerts, contacts and controls, and the Chinese pages carry
no English the services wrote (audit notes, codes)."""

from __future__ import annotations

import io
import re
from collections import deque
from datetime import UTC, datetime, timedelta
from html import unescape
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import pytest
from flask import current_app
from flask_babel import refresh
from PIL import Image

from chargers import settings
from chargers.extensions import db
from chargers.ingest import handlers
from chargers.models import Alert, AlertEvent, Alley, InspectionPlan, Pile, User
from chargers.services import photos
from chargers.services.alerts import lifecycle as alerts
from chargers.services.alerts import notify
from chargers.services.billing import accounts, monthly_close
from chargers.services.devices import commands, presence
from chargers.services.maintenance import inspections
from chargers.web.staff.wording import event_text

from .payments_support import with_emulator
from .webtools import login

NOW = datetime.now(UTC)
HREF = re.compile(r'href="([^"#]+)')


def _incoming(kind: str, body: str, pile: str = "P-1") -> handlers.Incoming:
    return handlers.Incoming(topic=f"chargers/v1/{pile}/{kind}", payload=body.encode(),
                             arrived_at=NOW)


@pytest.fixture
def app_config(app_config, emu, tmp_path):
    """Online payments on, against the provider emulator (a paid order has a refund page)."""
    return with_emulator(app_config, emu, tmp_path)


def _paid_online(emu, account_id: int) -> None:
    """A top-up paid by WeChat Native, its signed notification through the service."""
    from chargers.services.payments import notifications, orders

    rules = settings.payments(current_app.config)
    placed = orders.place(account_id, 2000, "wechat_native", rules, NOW - timedelta(hours=1),
                          return_url="http://localhost/pay/o/{order_no}")
    emu.pay(placed.order.order_no, notify=False)
    headers, body = emu.wechat_notice(placed.order.order_no, timestamp=int(NOW.timestamp()))
    assert notifications.wechat(headers, body, rules, NOW).outcome == "posted"


@pytest.fixture
def evening(app, client, admin, alley_with_pile, emu):
    """Lane's pile with a smoke alert cut off (one command refused, one unanswered),
    a contact, a seq gap, a rejected message and a top-up paid online; logged in as the
    admin."""
    with app.app_context():
        user = db.session.get(User, admin[0].id)
        notify.add_contact(user, "lane", notify.ContactInput(
            name="Wang", channel="webhook", target="https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k"))
        pile = db.session.get(Pile, "P-1")
        alerts.on_fault(pile, 2, "smoke", True, None, "smoke in the box", NOW - timedelta(minutes=3),
                        NOW - timedelta(minutes=3), rules=settings.alerts(current_app.config))
        db.session.commit()
        alert = db.session.query(Alert).one()
        commands.dispatch_pending(lambda topic, body: None, NOW - timedelta(minutes=3),
                                  settings.commands(current_app.config))
        stop = next(c for c in commands.list_commands(user, pile_id="P-1") if c.action == "stop")
        commands.on_ack(pile, stop.id, "rejected", "busy", NOW - timedelta(minutes=2))
        db.session.commit()
        commands.expire(NOW, settings.commands(current_app.config))
        acc = accounts.create_account(user, accounts.AccountInput(alley="lane", cards=["C-1"],
                                                                     household="3-201"), NOW)
        _paid_online(emu, acc.id)
        ts = (NOW + timedelta(hours=8)).strftime("%Y-%m-%dT%H:%M:%S+08:00")
        handlers.process([
            _incoming("heartbeat", f'{{"id": "h1", "ts": "{ts}", "seq": 0}}'),
            _incoming("heartbeat", f'{{"id": "h2", "ts": "{ts}", "seq": 6}}'),
            _incoming("status", "{not json"),
            # A charge on port 1 (its page is reached from the pile's controls).
            _incoming("session", f'{{"id": "s1", "ts": "{ts}", "seq": 7, "event": "start", '
                                 f'"port": 1, "session": "T1", "card": "C-1", "meter_wh": 0}}'),
        ], now=NOW)
        # seq 1-5 never arrive: after the window the gap is possible data loss
        window = app.config["SEQ_GAP_WINDOW_S"]
        presence.expire_seq_gaps(NOW + timedelta(seconds=window), window,
                                 settings.alerts(current_app.config))
        # A signed check with a photo whose failed item opened a work order.
        plan = db.session.scalar(db.select(InspectionPlan).where(InspectionPlan.kind == "daily"))
        image = io.BytesIO()
        Image.new("RGB", (8, 8)).save(image, "PNG")
        photo = photos.store(image.getvalue(), settings.photos(app.config))
        inspections.record_inspection(user, plan.id, inspections.RecordInput(
            [inspections.ItemResult(i["key"], "fail" if n == 0 else "pass")
             for n, i in enumerate(plan.checklist)], photos=[photo]))
        # A closed month (its statement and export pages are reached from the desk).
        lane = db.session.scalar(db.select(Alley).where(Alley.slug == "lane"))
        monthly_close.close_month(lane, monthly_close.local_month(NOW, ZoneInfo(lane.timezone)), NOW)
        alert_id = alert.id
    assert login(client, "root").status_code == 302
    return alert_id


def _staff_get_endpoints(app) -> set[str]:
    """Every staff page a browser opens (GET), except the list's JSON feed and a
    resident's report photo (an image, shown on an alert that has one)."""
    return {r.endpoint for r in app.url_map.iter_rules()
            if r.endpoint.startswith("staff.") and "GET" in r.methods
            and r.endpoint not in ("staff.alerts_feed", "staff.report_photo")}


def test_every_staff_page_is_reached_by_clicking_from_the_dashboard(app, client, evening):
    adapter = app.url_map.bind("localhost")
    seen_paths, reached = set(), set()
    todo = deque(["/staff/"])
    while todo:
        path = todo.popleft()
        if path in seen_paths:
            continue
        seen_paths.add(path)
        r = client.get(path)
        assert r.status_code == 200, (path, r.status_code)
        parts = urlsplit(path)
        reached.add(adapter.match(parts.path, method="GET")[0])
        if r.mimetype != "text/html":  # a photo, a CSV: nothing to follow
            continue
        for href in HREF.findall(r.get_data(as_text=True)):
            href = unescape(href)
            target = urlsplit(href)
            if target.netloc or not target.path.startswith("/staff/"):
                continue
            clean = target.path + (f"?{target.query}" if target.query and "lang=" not in target.query else "")
            todo.append(clean)
    assert _staff_get_endpoints(app) <= reached, _staff_get_endpoints(app) - reached


def test_header_shows_sections_with_the_open_alert_count(app, client, evening):
    html = client.get("/staff/?lang=en").get_data(as_text=True)
    nav = re.search(r'<nav class="staff-nav".*?</nav>', html, re.S).group(0)
    assert 'href="/staff/alerts"' in nav and 'href="/staff/ingest"' in nav
    # smoke (critical, so the badge is red) and the seq gap's data-loss alert
    assert re.search(r'<span class="count crit"[^>]*>2</span>', nav)
    assert 'href="/staff/" aria-current="page"' in nav
    ingest = client.get("/staff/ingest?lang=en").get_data(as_text=True)
    assert 'href="/staff/ingest" aria-current="page"' in ingest
    token = _csrf(client, f"/staff/alerts/{evening}")
    with app.app_context():
        alert_ids = [a.id for a in db.session.query(Alert).all()]
    for alert_id in alert_ids:
        client.post(f"/staff/alerts/{alert_id}/acknowledge", data={"csrf_token": token})
    nav = client.get("/staff/?lang=en").get_data(as_text=True)
    assert '<span class="count' not in re.search(r'<nav class="staff-nav".*?</nav>', nav, re.S).group(0)


def _csrf(client, path: str) -> str:
    return re.search(r'name="csrf_token"[^>]*value="([^"]+)"',
                     client.get(path).get_data(as_text=True)).group(1)


def test_alley_page_links_to_alerts_contacts_and_pile_controls(client, evening):
    html = client.get("/staff/alleys/lane?lang=en").get_data(as_text=True)
    assert 'href="/staff/alerts?alley=lane"' in html
    assert 'href="/staff/alleys/lane/contacts"' in html
    assert 'href="/staff/piles/P-1/control"' in html
    # the pile's open alerts: a badge leading to the pile's controls (one alert: to it)
    assert re.search(r'href="/staff/piles/P-1/control">\s*2 open alerts</a>', html)
    dash = client.get("/staff/?lang=en").get_data(as_text=True)
    assert 'href="/staff/alerts?alley=lane"' in dash


def test_pile_control_asks_before_whole_pile_actions_and_shows_port_alerts(client, evening):
    html = client.get("/staff/piles/P-1/control?lang=en").get_data(as_text=True)
    # Whole pile: disable and reset ask; each port's stop and disable ask too, saying
    # what they interrupt (issue 11); enable never asks.
    assert "Restart P-1 now?" in html and "Take the whole pile P-1 out of service?" in html
    assert html.count('data-confirm="Disable port ') == 4
    assert "It stays off until enabled." in html
    assert f'href="/staff/alerts/{evening}"' in html
    assert 'src="/static/confirm.js"' in html
    assert client.get("/static/confirm.js").status_code == 200


def _text(html: str) -> str:
    """What a reader sees: no tags, scripts, styles or <code> (codes are shown on purpose)."""
    html = re.sub(r"<(script|style|code)\b.*?</\1>", " ", html, flags=re.S)
    return unescape(re.sub(r"<[^>]+>", " ", html))


# Words the Chinese pages may show in Latin letters: data of the fixture, product and
# protocol names, and the pile's own words ("busy", "smoke in the box").
ALLOWED = {"English", "Lane", "Wang", "MQTT", "JSON", "Webhook", "WeCom", "DingTalk",
           "Feishu", "Asia", "Shanghai", "busy", "smoke", "box", "qyapi", "weixin", "com",
           "cgi", "bin", "webhook", "send", "key", "chargers", "heartbeat", "status",
           "https", "root", "localhost", "example", "the"}


@pytest.mark.parametrize("path", [
    "/staff/", "/staff/alleys/lane", "/staff/alerts", "/staff/alerts?status=all",
    "/staff/alerts/{alert}", "/staff/piles/P-1/control", "/staff/alleys/lane/contacts",
    "/staff/ingest", "/staff/alleys/lane/edit", "/staff/piles/P-1/edit",
])
def test_chinese_pages_show_no_english(client, evening, path):
    html = client.get(path.format(alert=evening) + ("&" if "?" in path else "?") + "lang=zh")
    assert html.status_code == 200
    words = set(re.findall(r"[A-Za-z]{3,}", _text(html.get_data(as_text=True))))
    assert words - ALLOWED == set()


def _entry(action: str, note: str | None = None, **data) -> str:
    """An alert-history entry as the services write it (a code, data and the words of
    people or piles), read as the page shows it."""
    return event_text(AlertEvent(action=action, note=note, data=data or None))


def test_audit_notes_read_in_the_page_language(app):
    stop7 = {"action": "stop", "port": 7, "id": "c-1"}
    disable7 = {"action": "disable", "port": 7, "id": "c-2"}
    with app.test_request_context("/?lang=en"):
        refresh()
        assert _entry("cutoff_sent", commands=[stop7, disable7]) == \
            "Stop charging · port 7; Disable · port 7"
        assert _entry("command_rejected", "busy",
                      command={"action": "reset", "port": None, "id": "c-0123abcd"}) == \
            "Reset pile · whole pile · busy"
        assert _entry("command_timeout", command={"action": "stop", "port": 2, "id": "c-99"},
                      outcome="no_ack") == "Stop charging · port 2"
        assert _entry("renotified", levels=[1, 2], contacts=[]) == "level 1+2: nobody (no contacts)"
        assert _entry("raised", missing=12) == "12 messages missing"
        assert _entry("raised", "smoke in the box") == "smoke in the box"  # the pile's
        # staff's own words, and entries from before codes, stay as written
        assert _entry("acknowledged", "stop port 1") == "stop port 1"
        assert _entry("command", "something new") == "something new"
    with app.test_request_context("/?lang=zh"):
        refresh()
        assert _entry("cutoff_sent", commands=[stop7, disable7]) == \
            "停止充电 · 7 号插口; 停用 · 7 号插口"
        assert _entry("flap", debounce_s=120) == "120 秒内已恢复，未通知任何人"
        # in the page's zone (Asia/Shanghai by default)
        assert _entry("raised", last_heard="2026-11-27T07:37:05+00:00") == "最后联系 11-27 15:37:05"


def test_refusals_and_not_found_read_in_the_page_language(client, evening):
    token = _csrf(client, "/staff/alleys/lane/contacts")
    html = client.post("/staff/alleys/lane/contacts?lang=zh", data={
        "csrf_token": token, "name": "Li", "level": "2", "channel": "email", "target": "nope",
        "webhook_format": "auto"}).get_data(as_text=True)
    assert "请填写电子邮件地址。" in html and "target: an e-mail address" not in html
    r = client.get("/staff/alerts/999?lang=zh")
    assert r.status_code == 404 and "没有这条告警。" in r.get_data(as_text=True)
    r = client.get("/staff/alerts/999?lang=en")
    assert "No such alert." in r.get_data(as_text=True)


def test_error_pages_carry_no_stock_english(client):
    html = client.get("/no-such-page").get_data(as_text=True)
    assert "未找到" in html and "requested URL" not in html


def test_acknowledging_from_a_filtered_list_returns_to_it(client, evening):
    html = client.get("/staff/alerts?alley=lane&severity=critical").get_data(as_text=True)
    back = re.search(r'name="back" value="([^"]+)"', html).group(1)
    token = _csrf(client, "/staff/alerts")
    r = client.post(f"/staff/alerts/{evening}/acknowledge",
                    data={"csrf_token": token, "back": unescape(back)})
    assert r.status_code == 302
    assert r.headers["Location"] == "/staff/alerts?status=open&severity=critical&alley=lane"
    # never somewhere else
    r = client.post(f"/staff/alerts/{evening}/acknowledge",
                    data={"csrf_token": token, "back": "https://evil.example/staff/alerts"})
    assert r.headers["Location"] == f"/staff/alerts/{evening}"
