"""Pile configuration and the backend's limits and risk grade, through the real ingest
(chargers.ingest.handlers.process) with a chosen clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from chargers.extensions import db
from chargers.ingest import handlers
from chargers.jobs import safety as safety_jobs
from chargers.models import Alert, ChargingSession, Command, Notification
from chargers.services.billing import reminders
from tests.conftest import bearer
from tests.ingest_support import body, incoming, ts

T0 = datetime(2026, 11, 27, 0, 0, tzinfo=UTC)


def send(app, kind, at, pile="P-1", **fields):
    with app.app_context():
        out = handlers.process([incoming(kind, body(kind, ts=ts(at), **fields), pile=pile,
                                         arrived_at=at)], now=at)
    assert out == ["accepted"], out
    return out


def charge(app, powers, *, start=T0, every=60, ref="T1", card="C-1", port=1, temps=None,
           energy_per_reading=None, **extra):
    """Start a session and send one meter reading per power (every `every` s)."""
    send(app, "session", start, event="start", port=port, session=ref, card=card, meter_wh=0)
    e = 0.0
    for i, w in enumerate(powers):
        at = start + timedelta(seconds=every * (i + 1))
        e += w * every / 3600 if energy_per_reading is None else energy_per_reading
        fields = {"temp_c": temps[i]} if temps else {}
        send(app, "meter", at, port=port, session=ref, power_w=float(w), energy_wh=round(e, 2),
             **fields, **extra)
    return start + timedelta(seconds=every * len(powers))


def the_session(app, ref="T1"):
    with app.app_context():
        s = db.session.scalar(select(ChargingSession).where(ChargingSession.session_ref == ref))
        db.session.expunge(s)
        return s


def stops(app):
    with app.app_context():
        return [(c.action, c.port) for c in db.session.scalars(
            select(Command).where(Command.action == "stop"))]


def test_over_power_for_two_readings_is_stopped_with_an_overload_alert(app, client, admin,
                                                                        alley_with_pile):
    from tests.webtools import login, post_form

    charge(app, [300, 900])
    assert stops(app) == [] and the_session(app).guard_reason is None
    charge(app, [900], start=T0 + timedelta(minutes=2), ref="T1")  # a second reading above
    s = the_session(app)
    assert s.guard_reason == "overload" and s.risk == "high"
    assert "over_power" in s.risk_reasons
    assert stops(app) == [("stop", 1)]
    with app.app_context():
        codes = {a.code for a in db.session.scalars(select(Alert))}
    assert {"overload", "battery_risk_high"} <= codes
    # Further readings do not ask again.
    send(app, "meter", T0 + timedelta(minutes=5), port=1, session="T1", power_w=950.0,
         energy_wh=40.0)
    assert stops(app) == [("stop", 1)]
    # The alerts say which charge, why in the reader's words, and what came of the
    # system's stop (not the fire cut-off's "未断电").
    with app.app_context():
        ids = {a.code: a.id for a in db.session.scalars(select(Alert))}
    login(client, "root")
    page = client.get(f"/staff/alerts/{ids['battery_risk_high']}?lang=zh").get_data(as_text=True)
    assert f'data-session="{s.id}"' in page and 'data-stop="pending"' in page
    assert "充电记录 T1：功率过大" in page and "未断电" not in page and "session T1" not in page
    # The backend's overload is not the pile's to clear: resolved without an override.
    r = post_form(client, f"/staff/alerts/{ids['overload']}/resolve", {"note": "换了充电器"})
    assert r.status_code == 302
    with app.app_context():
        assert db.session.get(Alert, ids["overload"]).status == "cleared"


def test_a_limit_staff_set_low_stops_a_healthy_charger_as_overload_not_as_a_bad_battery(
        app, client, admin, alley_with_pile):
    """Under a 300 W limit a healthy 400 W charger is stopped as `overload`, with no
    risk grade and no message to its holder; 1,200 W over the same limit is both."""
    _, token = admin
    r = client.patch("/api/v1/alleys/lane", json={"device_settings": {"max_power_w": 300}},
                     headers=bearer(token))
    assert r.status_code == 200, r.json
    charge(app, [400, 400])
    s = the_session(app)
    assert s.guard_reason == "overload" and s.risk in (None, "low")
    assert "over_power" not in (s.risk_reasons or [])
    with app.app_context():
        codes = {a.code for a in db.session.scalars(select(Alert))}
        told = db.session.scalar(select(Notification).where(
            Notification.reason == "battery_risk"))
    assert "overload" in codes and "battery_risk_high" not in codes and told is None
    charge(app, [1200, 1200], start=T0 + timedelta(minutes=10), ref="T2", port=2)
    s = the_session(app, "T2")
    assert s.guard_reason == "overload" and s.risk == "high" and "over_power" in s.risk_reasons


def test_full_stop_after_the_hold_time_under_the_threshold(app, alley_with_pile):
    # 20 min at 250 W, then 10 W: the default hold is 15 min.
    charge(app, [250] * 20 + [10] * 14)
    assert the_session(app).guard_reason is None
    charge(app, [10], start=T0 + timedelta(minutes=34), ref="T1")
    charge(app, [10], start=T0 + timedelta(minutes=35), ref="T1")
    s = the_session(app)
    assert s.guard_reason == "full" and s.risk == "low"
    assert stops(app) == [("stop", 1)]


def test_too_long_is_stopped_by_the_job_even_without_readings(app, alley_with_pile):
    charge(app, [200] * 3)
    with app.app_context():
        assert safety_jobs.risk_review(T0 + timedelta(hours=7, minutes=59), None) is None
        safety_jobs.risk_review(T0 + timedelta(hours=8, minutes=1), None)
    s = the_session(app)
    assert s.guard_reason == "too_long" and s.risk == "mid" and s.risk_reasons == ["too_long"]
    assert stops(app) == [("stop", 1)]


def test_alley_device_settings_set_the_limit(app, client, admin, alley_with_pile):
    _, token = admin
    r = client.patch("/api/v1/alleys/lane", json={"device_settings": {"max_power_w": 500}},
                     headers=bearer(token))
    assert r.status_code == 200, r.json
    assert r.json["device_settings"] == {"max_power_w": 500}
    r = client.patch("/api/v1/alleys/lane", json={"device_settings": {"max_power_w": "x"}},
                     headers=bearer(token))
    assert r.status_code == 422
    charge(app, [600, 600])
    assert the_session(app).guard_reason == "overload"


def boot(app, at, features):
    send(app, "boot", at, features=features, ports=4)


def config_cmds(app):
    with app.app_context():
        return [c.args for c in db.session.scalars(
            select(Command).where(Command.action == "config").order_by(Command.created_at))]


def test_config_is_sent_on_boot_only_to_piles_with_the_feature(app, client, admin,
                                                               alley_with_pile):
    _, token = admin
    boot(app, T0, None)
    assert config_cmds(app) == []
    r = client.get("/api/v1/piles/P-1", headers=bearer(token))
    assert r.json["config"]["state"] == "none" and r.json["features"] == []
    boot(app, T0 + timedelta(minutes=1), ["config", "future-thing"])
    sent = config_cmds(app)
    assert len(sent) == 1 and sent[0]["version"] == 1
    assert sent[0]["settings"]["max_session_s"] == 8 * 3600
    r = client.get("/api/v1/piles/P-1", headers=bearer(token))
    assert r.json["features"] == ["config"]
    assert r.json["config"]["desired_version"] == 1 and r.json["config"]["reported_version"] is None
    assert r.json["config"]["state"] == "pending"
    # Re-sent by the job until reported.
    with app.app_context():
        safety_jobs.config_push(T0 + timedelta(minutes=1, seconds=30), None)
        assert len(config_cmds(app)) == 1  # not yet due
        safety_jobs.config_push(T0 + timedelta(minutes=4), None)
    assert len(config_cmds(app)) == 2
    # A change is a new version, sent at once.
    r = client.patch("/api/v1/piles/P-1", json={"config": {"max_power_w": 400}},
                     headers=bearer(token))
    assert r.status_code == 200 and r.json["config"]["desired_version"] == 2
    assert config_cmds(app)[-1]["version"] == 2 and config_cmds(app)[-1]["settings"]["max_power_w"] == 400
    desired = r.json["config"]["desired"]
    # The pile reports another setting under that version: mismatch.
    send(app, "config", T0 + timedelta(minutes=5), version=2,
         settings={**desired, "max_power_w": 1000})
    r = client.get("/api/v1/piles/P-1", headers=bearer(token))
    assert r.json["config"]["reported_version"] == 2 and r.json["config"]["state"] == "mismatch"
    send(app, "config", T0 + timedelta(minutes=6), version=2, settings=desired)
    r = client.get("/api/v1/piles/P-1", headers=bearer(token))
    assert r.json["config"]["state"] == "applied" and r.json["config"]["settings"] == desired
    with app.app_context():
        safety_jobs.config_push(T0 + timedelta(minutes=30), None)
    assert len(config_cmds(app)) == 3  # applied: nothing more


def test_high_risk_tells_the_holder_once_per_session(app, client, admin, alley_with_pile):
    user, token = admin
    r = client.post("/api/v1/accounts", json={"alley": "lane", "cards": ["C-9"],
                                              "kind": "prepaid", "phone": "13800000009"},
                    headers=bearer(token))
    assert r.status_code == 201, r.json
    with app.app_context():
        reminders.set_channels(db.session.merge(user), r.json["id"], "h@example.org", True, T0)
    # Port heats 30 °C over its first reading: high, stopped, told once.
    temps = [25 + 3 * i for i in range(12)]
    charge(app, [250] * 12, card="C-9", temps=temps)
    s = the_session(app)
    assert s.risk == "high" and s.risk_reasons == ["temp_rise"] and s.guard_reason == "risk"
    with app.app_context():
        told = db.session.scalars(select(Notification).where(
            Notification.reason == "battery_risk")).all()
        assert sorted(n.channel for n in told) == ["email", "sms"]
        # What was seen, that a stop was asked (not that it happened), what to do.
        for text in ("端口温升过快", "已要求充电桩停止充电", "电池或充电器可能异常，请停止使用并检修"):
            assert text in told[0].body, text
        from chargers.models import Reminder
        kept = db.session.scalar(select(Reminder).where(Reminder.key == f"risk:{s.id}"))
        assert kept.kind == "battery_risk" and kept.data["reasons"] == ["temp_rise"]
        # It was mid (+15 °C) before high (+25 °C): one open alert about it, the high one.
        by_code = {a.code: a.status for a in db.session.scalars(select(Alert))}
        assert by_code == {"battery_risk": "cleared", "battery_risk_high": "active"}, by_code
        mid_id = db.session.scalar(select(Alert.id).where(Alert.code == "battery_risk"))
    from tests.webtools import login
    login(client, "root")
    page = client.get(f"/staff/alerts/{mid_id}?lang=zh").get_data(as_text=True)
    assert "已升为高风险：见其高风险告警" in page
    # The holder sees it on their account page, with what was seen.
    from tests.webtools import csrf_from
    page = client.get("/a/lane/account?lang=zh").get_data(as_text=True)
    html = client.post("/a/lane/account?lang=zh", data={
        "csrf_token": csrf_from(page), "card": "C-9", "phone_last4": "0009"}).get_data(as_text=True)
    mine = html.split("<h2>提醒</h2>")[1].split("</ul>")[0]  # the reminders
    assert "电池或充电器可能异常" in mine and "端口温升过快" in mine
    now = html.split("<h2>正在充电</h2>")[1].split("</ul>")[0]  # not ended yet: not billed
    assert "1 号插口" in now and "高风险" in now
    charge(app, [250] * 3, start=T0 + timedelta(minutes=13), card="C-9", ref="T1",
           temps=[70, 72, 75])
    with app.app_context():
        assert db.session.query(Notification).filter_by(reason="battery_risk").count() == 2


def test_staff_pages_show_the_grade_the_chart_the_cards_and_the_config(app, client, admin,
                                                                         alley_with_pile):
    from tests.webtools import login, post_form

    _, token = admin
    r = client.post("/api/v1/accounts", json={"alley": "lane", "cards": ["C-9"], "kind": "prepaid",
                                              "household": "12号", "name": "王阿姨"},
                    headers=bearer(token))
    assert r.status_code == 201, r.json
    boot(app, T0, ["config"])
    temps = [25 + 3 * i for i in range(12)]
    now = charge(app, [250] * 12, card="C-9", temps=temps)
    s = the_session(app)
    login(client, "root")
    page = client.get(f"/staff/sessions/{s.id}?lang=zh").get_data(as_text=True)
    assert "高风险" in page and "端口温升过快" in page and "<polyline" in page
    # The legend's colours are drawn (the CSP forbids inline styles), the axis is a phone's.
    assert 'style="' not in page.split('class="chart line-chart"')[1].split("</figure>")[0]
    assert 'viewBox="0 0 360 200"' in page and 'class="badge risk-high"' in page
    # The system asked the pile to stop: asked, not done, and why.
    assert "系统要求停止" in page and "电池或充电器疑似危险" in page
    assert 'data-stop="pending"' in page and "系统已停止" not in page
    with app.app_context():
        cmd = db.session.scalar(select(Command).where(Command.action == "stop"))
        assert cmd.id == s.guard_command_id  # the session keeps its own stop command
        cmd.status = "accepted"  # the pile's ack (as the ingest records it)
        db.session.commit()
    # An ack alone is not a stop: the session still charges.
    page = client.get(f"/staff/sessions/{s.id}?lang=zh").get_data(as_text=True)
    assert 'data-stop="accepted"' in page and "充电桩已接受，但仍在充电" in page
    send(app, "session", now + timedelta(seconds=30), event="stop", port=1, session="T1",
         energy_wh=60.0, reason="remote")
    page = client.get(f"/staff/sessions/{s.id}?lang=zh").get_data(as_text=True)
    assert 'data-stop="ended"' in page and "充电已结束" in page
    import time_machine
    with time_machine.travel(now + timedelta(minutes=5), tick=False):
        login(client, "root")
        page = client.get("/staff/alleys/lane/risk?lang=zh").get_data(as_text=True)
        assert 'data-card="C-9"' in page and "12号 王阿姨" in page  # whose battery
        r = post_form(client, "/staff/alleys/lane/risk", {"card": " c-9 ", "note": "换了充电器"})
        assert r.status_code == 302  # typed in lower case: the card as the alley knows it
        page = client.get("/staff/alleys/lane/risk?lang=zh").get_data(as_text=True)
        assert "换了充电器" in page and 'data-card="C-9"' in page  # history stays
        with app.app_context():
            from chargers.models import CardCheck
            assert db.session.scalars(select(CardCheck.card)).all() == ["C-9"]
        r = post_form(client, "/staff/alleys/lane/risk", {"card": "NOPE-1", "note": "x"})
        assert r.status_code == 200 and "本巷没有这张卡" in r.get_data(as_text=True)
    login(client, "root")
    page = client.get("/staff/piles/P-1/control?lang=zh").get_data(as_text=True)
    assert 'data-config-state="pending"' in page and "配置未生效" in page
    r = post_form(client, "/staff/alleys/lane/device-settings", {"max_power_w": "600"})
    assert r.status_code == 302
    assert config_cmds(app)[-1]["settings"]["max_power_w"] == 600


def test_device_settings_are_typed_in_minutes_and_hours_and_say_what_empty_means(
        app, client, admin, alley_with_pile):
    """The 充满自停 hold is typed in minutes and the longest session in hours (the
    protocol carries seconds); each field says what it means left empty: the default
    for the alley, the alley's own for a pile. The pile's table reads 8 小时, not 28800."""
    from tests.webtools import login, post_form

    login(client, "root")
    page = client.get("/staff/alleys/lane/device-settings?lang=zh").get_data(as_text=True)
    for text in ("充满自停判定时间（分钟）", "最长充电时间（小时）", "留空：用默认值，8 小时。",
                 "留空：用默认值，800 W。", "留空：用充电桩自己的设置。"):
        assert text in page, text
    r = post_form(client, "/staff/alleys/lane/device-settings",
                  {"full_stop_hold_s": "10", "max_session_s": "7.5"})
    assert r.status_code == 302
    with app.app_context():
        from chargers.models import Alley
        lane = db.session.scalar(select(Alley).where(Alley.slug == "lane"))
        assert lane.device_settings == {"full_stop_hold_s": 600, "max_session_s": 27000}
    page = client.get("/staff/alleys/lane/device-settings?lang=zh").get_data(as_text=True)
    assert 'value="10"' in page and 'value="7.5"' in page  # read back in its unit
    page = client.get("/staff/piles/P-1/config?lang=zh").get_data(as_text=True)
    assert "留空：用本巷设置，7.5 小时。" in page and "留空：用默认值，800 W。" in page
    assert "7.5 小时" in page.split("config-table")[1] and "27000" not in page
    assert "由后台执行" in page  # a v1 pile: what the backend enforces for it
    r = post_form(client, "/staff/piles/P-1/config", {"max_session_s": "0.001"})
    assert r.status_code == 200 and "0.01" in r.get_data(as_text=True)  # not a number of hours
    # Stored values the form shows rounded stay as they were when saved unchanged.
    _, token = admin
    r = client.patch("/api/v1/alleys/lane", json={"device_settings": {
        "full_stop_hold_s": 5, "max_session_s": 5000, "overload_hold_s": 30,
        "offline_policy": "reject"}}, headers=bearer(token))
    assert r.status_code == 200, r.json
    page = client.get("/staff/alleys/lane/device-settings?lang=zh").get_data(as_text=True)
    assert 'value="0.08"' in page and 'value="1.39"' in page
    r = post_form(client, "/staff/alleys/lane/device-settings",
                  {"full_stop_hold_s": "0.08", "max_session_s": "1.39", "overload_hold_s": "30",
                   "offline_policy": "reject", "max_power_w": "700"})
    assert r.status_code == 302
    with app.app_context():
        lane = db.session.scalar(select(Alley).where(Alley.slug == "lane"))
        assert lane.device_settings == {"full_stop_hold_s": 5, "max_session_s": 5000,
                                        "overload_hold_s": 30, "offline_policy": "reject",
                                        "max_power_w": 700}
    # Letters: one sentence, not a parser's words with a range on top.
    r = post_form(client, "/staff/alleys/lane/device-settings", {"max_session_s": "abc"})
    html = r.get_data(as_text=True)
    assert r.status_code == 200 and "请填数字，如 7.5。" in html and "请填 0.01 到" not in html
    # A full-stop hold as long as the longest session could never stop a charge as full.
    r = post_form(client, "/staff/alleys/lane/device-settings",
                  {"full_stop_hold_s": "120", "max_session_s": "2"})
    assert r.status_code == 200
    assert "充满自停判定时间（120 分钟）必须短于最长充电时间（2 小时）" in r.get_data(as_text=True)
    # A v1 pile's table lists only what the backend enforces, not what only a pile applies.
    table = client.get("/staff/piles/P-1/config?lang=zh").get_data(as_text=True).split(
        "config-table")[1].split("</table>")[0]
    assert "700 W" in table and "1.39 小时" in table
    assert "过载判定时间" not in table and "离线策略" not in table


def test_temp_rise_counts_only_beyond_what_the_alleys_other_ports_warmed(app, alley_with_pile):
    """A hot afternoon warms every port: a port that warmed as much as its peers at a
    similar power is not a temp_rise; one that warmed far more still is."""
    hot = [20 + 1.8 * i for i in range(12)]  # +19.8 °C over the first reading
    charge(app, [250] * 12, ref="A", port=1, card="C-1", temps=hot)
    charge(app, [260] * 12, ref="B", port=2, card="C-2", temps=hot)
    assert the_session(app, "A").risk == "mid"  # no peers yet: +19.8 °C is a mid
    later = T0 + timedelta(minutes=20)
    charge(app, [240] * 12, start=later, ref="C", port=3, card="C-3", temps=hot)
    assert the_session(app, "C").risk == "low"  # its peers warmed as much
    hotter = [20 + 3 * i for i in range(12)]  # +33 °C: 13 °C beyond the peers
    charge(app, [250] * 12, start=later, ref="D", port=4, card="C-4", temps=hotter)
    s = the_session(app, "D")
    assert s.risk == "high" and s.risk_reasons == ["temp_rise"]


def test_each_session_keeps_its_own_stop_command(app, alley_with_pile):
    """Two sessions of one port stopped by the system in one run (a stale one whose
    stop message was lost, and the new one) each read their own command's answer."""
    from chargers.models import Pile
    from chargers.services.charging import endings, sessions

    with app.app_context():
        pile = db.session.get(Pile, "P-1")
        old, new = (ChargingSession(pile_id="P-1", port=1, session_ref=ref, status="active",
                                    started_at=T0 + timedelta(minutes=i), energy_wh=0.0)
                    for i, ref in enumerate(("S-old", "S-new")))
        db.session.add_all([old, new])
        db.session.flush()
        c_old = sessions.ask_stop(pile, old, "too_long", T0 + timedelta(hours=9))
        c_new = sessions.ask_stop(pile, new, "risk", T0 + timedelta(hours=9))
        c_old.status = "rejected"
        c_new.status = "accepted"
        db.session.commit()
        assert endings.stop_asked(old) == ("rejected", c_old)
        assert endings.stop_asked(new) == ("accepted", c_new)


def test_the_chart_draws_a_degree_as_a_degree():
    """The second axis spans `min_span` at least: 27 -> 28 °C is not drawn from the
    bottom of the chart to its top, and both ends of that axis are labelled."""
    from chargers.web.charts import line_chart

    c = line_chart("t", [0, 60, 120], [("P", [300, 300, 300], "#00f", "W"),
                                       ("T", [27.0, 27.5, 28.0], "#f00", "°C")],
                   width=360, height=200, min_span=10.0)
    ys = [float(p.split(",")[1]) for p in c.lines[1].points.split()]
    assert max(ys) - min(ys) < (c.base - c.top) * 0.15
    assert c.lines[1].max_text == "22–32 °C"  # 27.5 ± 5


def test_a_mid_no_taper_alert_is_withdrawn_when_the_charge_tapers(app, client, alley_with_pile):
    """Six hours at bulk with no history is mid (staff alerted); the charge then tapers to
    the float: the reason and the alert are withdrawn, and the history says why."""
    from chargers.models import AlertEvent
    from tests.webtools import login

    end = charge(app, [250] * 37, every=600)  # 6 h 10 min at bulk
    assert the_session(app).risk == "mid"
    with app.app_context():
        alert = db.session.scalar(select(Alert).where(Alert.code == "battery_risk"))
        assert alert.status == "active"
        alert_id = alert.id
    e = 250 * 37 * 600 / 3600
    for k in (1, 2):
        send(app, "meter", end + timedelta(seconds=600 * k), port=1, session="T1",
             power_w=10.0, energy_wh=round(e + k, 2))
    s = the_session(app)
    assert s.risk == "low" and s.risk_reasons == [] and s.risk_alerted is None
    with app.app_context():
        alert = db.session.get(Alert, alert_id)
        assert alert.status == "cleared"
        assert db.session.scalars(select(AlertEvent.action).where(
            AlertEvent.alert_id == alert_id)).all()[-1] == "withdrawn"
    login(client, "root")
    page = client.get(f"/staff/alerts/{alert_id}?lang=zh").get_data(as_text=True)
    assert "充电记录 T1 已充满并减流" in page


def test_a_session_begun_in_the_same_batch_is_named_by_its_alerts(app, client, admin,
                                                                   alley_with_pile):
    """The start and the readings over the limit in one batch: the alerts still carry
    the session's id (it is flushed for them), and their page shows that charge and
    whose card it is."""
    from chargers.models import AlertEvent
    from tests.webtools import login

    r = client.post("/api/v1/accounts", json={"alley": "lane", "cards": ["C-1"], "kind": "prepaid",
                                              "household": "3号", "name": "李师傅"},
                    headers=bearer(admin[1]))
    assert r.status_code == 201, r.json

    msgs = [incoming("session", body("session", ts=ts(T0), event="start", port=1,
                                     session="B1", card="C-1", meter_wh=0), arrived_at=T0)]
    for i, w in enumerate((1200.0, 1250.0), start=1):
        at = T0 + timedelta(minutes=i)
        msgs.append(incoming("meter", body("meter", ts=ts(at), port=1, session="B1",
                                           power_w=w, energy_wh=20.0 * i), arrived_at=at))
    with app.app_context():
        assert handlers.process(msgs, now=T0 + timedelta(minutes=2)) == ["accepted"] * 3
        sid = db.session.scalar(select(ChargingSession.id).where(
            ChargingSession.session_ref == "B1"))
        raised = db.session.scalars(select(AlertEvent.data).where(
            AlertEvent.action == "raised")).all()
        ids = db.session.scalars(select(Alert.id)).all()
    assert raised and all(d["session"] == sid for d in raised)
    login(client, "root")
    for alert_id in ids:
        page = client.get(f"/staff/alerts/{alert_id}?lang=zh")
        assert page.status_code == 200 and f'data-session="{sid}"' in page.get_data(as_text=True)
        assert "3号 李师傅" in page.get_data(as_text=True)


def test_an_auto_stop_power_above_the_port_limit_is_refused(app, client, admin, alley_with_pile):
    """Every charge would end as full (or none could): the alley's settings and a pile's
    own are refused when the 充满自停 power is not below the port limit they make."""
    from tests.webtools import login, post_form

    _, token = admin
    r = client.patch("/api/v1/alleys/lane", json={"device_settings": {"full_stop_power_w": 900}},
                     headers=bearer(token))
    assert r.status_code == 422 and "900" in str(r.json)
    r = client.patch("/api/v1/alleys/lane", json={"device_settings": {"max_power_w": 500}},
                     headers=bearer(token))
    assert r.status_code == 200
    r = client.patch("/api/v1/piles/P-1", json={"config": {"full_stop_power_w": 500}},
                     headers=bearer(token))
    assert r.status_code == 422
    login(client, "root")
    r = post_form(client, "/staff/alleys/lane/device-settings",
                  {"max_power_w": "500", "full_stop_power_w": "600"})
    assert r.status_code in (200, 422) and "充满自停功率" in r.get_data(as_text=True)


def test_a_reminder_says_why_in_words_that_do_not_repeat_its_title(app):
    """'已停止' then '电池或充电器疑似危险', not '已停止' then '已停止：…'; a full charge
    does not repeat 已充满; what was seen is listed."""
    from types import SimpleNamespace

    from flask_babel import force_locale

    detail = app.jinja_env.globals["reminder_detail"]
    with app.test_request_context("/?lang=zh"), force_locale("zh"):
        said = detail(SimpleNamespace(kind="stopped", data={"reason": "risk"}))
        assert said and "已停止" not in said and "危险" in said
        assert detail(SimpleNamespace(kind="failed", data={"reason": "unplugged"})) == "已拔出"
        assert detail(SimpleNamespace(kind="full", data={"reason": "full"})) == ""
        assert detail(SimpleNamespace(kind="battery_risk", data=None)) == ""
        assert "端口温升过快" in detail(SimpleNamespace(kind="battery_risk",
                                                   data={"reasons": ["temp_rise"]}))
