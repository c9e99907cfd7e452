"""Take the README screenshots, repeatably: seed a temp database with the demo alleys,
give the ports varied states, raise a few alerts through the real ingest, serve the app
on a free local port and shoot pages with headless Chromium at phone size (390x844).

    .venv/bin/python docs/screenshot.py                 # writes docs/*.png
    .venv/bin/python docs/screenshot.py --lang en       # the alley page in English too
    .venv/bin/python docs/screenshot.py --review DIR    # every staff page, phone and
                                                        # desktop, zh and en, into DIR

Staff pages are served by a second server whose requests carry the demo admin's
session cookie (a bare headless Chromium cannot log in), so their links, stylesheets
and scripts all work as in a real browser.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

from werkzeug.serving import make_server

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from flask import current_app  # noqa: E402

from chargers import create_app, settings  # noqa: E402
from chargers.extensions import db  # noqa: E402
from chargers.ingest import handlers  # noqa: E402
from chargers.models import (  # noqa: E402
    Alert,
    Alley,
    ChargingSession,
    Command,
    Contact,
    MeterSample,
    Notification,
    Pile,
    User,
)
from chargers.services import alerts, commands, demo, notify  # noqa: E402

DOCS = ROOT / "docs"
SIZE = (390, 844)
DESKTOP = (1280, 900)
CST = timedelta(hours=8)


def seed_states(now: datetime) -> None:
    """Jiuru Alley at a busy evening: most ports charging, some free, a few finished and
    waiting to be unplugged, one pile offline, one port out of service."""
    rnd = random.Random(7)
    piles = db.session.scalars(db.select(Pile).order_by(Pile.id)).all()
    for pile in piles:
        pile.online = True
        pile.online_since = now - timedelta(days=2)
        pile.last_seen_at = now
        pile.model, pile.firmware = "EB-10", "2.4.1"
        for port in pile.ports:
            port.status = rnd.choices(["charging", "available", "finishing"], [62, 26, 12])[0]
            port.status_since = now - timedelta(minutes=rnd.randint(1, 400))
    jiuru = {p.id: p for p in piles}
    off = jiuru["JRX-011"]
    off.online, off.online_since = False, now - timedelta(minutes=47)
    off.last_seen_at = now - timedelta(minutes=47)
    jiuru["JRX-009"].ports[2].enabled = False
    db.session.commit()


def _msg(pile: str, kind: str, at: datetime, payload: dict | bytes,
         topic: str | None = None) -> handlers.Incoming:
    if isinstance(payload, dict):
        payload = dict(payload, ts=(at + CST).strftime("%Y-%m-%dT%H:%M:%S+08:00"))
        raw = json.dumps(payload).encode()
    else:
        raw = payload
    return handlers.Incoming(topic=topic or f"chargers/v1/{pile}/{kind}", payload=raw,
                             arrived_at=at)


def seed_alerts(now: datetime) -> None:
    """What staff find on an evening: an over-temperature cut off a minute ago, an
    over-current someone is looking at, a pile offline, a meter failing, a flap, and
    some rubbish and a seq gap on the ingest page. Faults, acks and rejections go through
    the real ingest; commands and pages through the services."""
    admin = db.session.scalar(db.select(User).where(User.name == demo.DEMO_ADMIN[0]))
    notify.add_contact(admin, "jiuru", notify.ContactInput(
        name="王师傅 网格员", channel="webhook", level=1,
        target="https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=3f0e-demo-a81c"))
    notify.add_contact(admin, "jiuru", notify.ContactInput(
        name="社区值班邮箱", channel="email", level=1, target="zhiban@example.cn"))
    notify.add_contact(admin, "jiuru", notify.ContactInput(
        name="李主任 居委会", channel="email", level=2, target="li.zhuren@example.cn"))

    def run(*msgs: handlers.Incoming, at: datetime) -> None:
        handlers.process(list(msgs), now=at)

    def flush_commands(at: datetime) -> list[Command]:
        sent: list[Command] = []
        commands.dispatch_pending(lambda topic, body: None, at, settings.commands(current_app.config))
        for c in db.session.scalars(db.select(Command).where(Command.status == "sent")):
            sent.append(c)
        return sent

    # Over-current on JRX-002 port 3, 40 min ago; paged after the debounce, acknowledged.
    t = now - timedelta(minutes=40)
    run(_msg("JRX-002", "fault", t, {"id": "f-1", "port": 3, "code": "over_current",
                                      "active": True, "value": 16.4}), at=t)
    alerts.notify_debounced(t + timedelta(minutes=2), settings.alerts(current_app.config))
    a = db.session.scalar(db.select(Alert).where(Alert.code == "over_current"))
    alerts.acknowledge(admin, a.id, "已到场，插头发黑，先停用该口", now=t + timedelta(minutes=9))
    commands.issue(admin, "JRX-002", 3, "disable", alert_id=a.id, now=t + timedelta(minutes=10))
    for c in flush_commands(t + timedelta(minutes=10)):
        run(_msg("JRX-002", "ack", t + timedelta(minutes=10, seconds=2),
                 {"id": "a-1", "cmd": c.id, "result": "accepted"}),
            at=t + timedelta(minutes=10, seconds=2))

    # A meter failing on TYC-003 (minor) and a flap on JRX-007 (warning, cleared in 20 s).
    t = now - timedelta(minutes=25)
    run(_msg("TYC-003", "fault", t, {"id": "f-2", "port": 5, "code": "meter_failure",
                                      "active": True}), at=t)
    t = now - timedelta(minutes=90)
    run(_msg("JRX-007", "fault", t, {"id": "f-3", "port": 2, "code": "communication",
                                      "active": True}), at=t)
    run(_msg("JRX-007", "fault", t + timedelta(seconds=20),
             {"id": "f-4", "port": 2, "code": "communication", "active": False}),
        at=t + timedelta(seconds=20))

    # Over-temperature on JRX-004 port 7, 3 min ago: critical, cut off at once; the pile
    # takes the stop and the disable, reports it again, refuses a reset, and one more
    # stop goes unanswered.
    t = now - timedelta(minutes=3)
    run(_msg("JRX-004", "status", t, {"id": "s-1", "port": 7, "status": "faulted",
                                       "error": "over_temperature"}),
        _msg("JRX-004", "fault", t, {"id": "f-5", "port": 7, "code": "over_temperature",
                                      "active": True, "value": 78.5,
                                      "detail": "插座温度 78.5°C"}), at=t)
    hot = db.session.scalar(db.select(Alert).where(Alert.code == "over_temperature"))
    for i, c in enumerate(flush_commands(t + timedelta(seconds=1))):
        at = t + timedelta(seconds=3 + i)
        run(_msg("JRX-004", "ack", at, {"id": f"a-{2 + i}", "cmd": c.id, "result": "accepted"}),
            at=at)
    at = t + timedelta(seconds=50)
    run(_msg("JRX-004", "fault", at, {"id": "f-6", "port": 7, "code": "over_temperature",
                                       "active": True, "value": 81.0}), at=at)
    commands.issue(admin, "JRX-004", None, "reset", alert_id=hot.id, now=t + timedelta(minutes=1))
    for c in flush_commands(t + timedelta(minutes=1)):
        at = t + timedelta(minutes=1, seconds=4)
        run(_msg("JRX-004", "ack", at, {"id": "a-9", "cmd": c.id, "result": "rejected",
                                         "detail": "busy: port 7 hot"}), at=at)
    commands.issue(admin, "JRX-004", 7, "stop", alert_id=hot.id, now=t + timedelta(minutes=2))
    flush_commands(t + timedelta(minutes=2))
    commands.expire(now=t + timedelta(minutes=2, seconds=31))
    # The notifications: the webhook went out; the e-mail server is down.
    for n in db.session.scalars(db.select(Notification)):
        if n.channel == "webhook":
            n.status, n.attempts, n.sent_at = "sent", 1, n.created_at + timedelta(seconds=2)
        else:
            n.status, n.attempts, n.last_error = "pending", 2, "SMTP: connection refused"
    db.session.commit()

    # JRX-011 has been away 47 minutes: the offline job raises its alert.
    alerts.raise_offline_alerts(now, settings.alerts(current_app.config))

    # The ingest page: a seq gap, a replay, a stranger, some rubbish.
    t = now - timedelta(minutes=15)
    run(_msg("JRX-005", "boot", t, {"id": "b-1", "seq": 0, "model": "EB-10",
                                     "firmware": "2.4.1", "ports": 10, "max_power_w": 1000}),
        _msg("JRX-005", "heartbeat", t + timedelta(seconds=60), {"id": "h-1", "seq": 1}),
        _msg("JRX-005", "heartbeat", t + timedelta(seconds=120), {"id": "h-2", "seq": 14}),
        _msg("JRX-005", "heartbeat", t + timedelta(seconds=130), {"id": "h-3", "seq": 3}),
        _msg("XX-999", "heartbeat", t + timedelta(seconds=140), {"id": "h-1", "seq": 5}),
        _msg("JRX-006", "meter", t + timedelta(seconds=150), b'{"id": "m-1", "port": 3, "power_w'),
        _msg("JRX-006", "status", t + timedelta(seconds=160),
             {"id": "s-9", "port": 12, "status": "charging"}),
        at=t + timedelta(seconds=170))


def _curve(minutes: int, peak: float, cc_minutes: int, tau: float) -> list[tuple[int, float, float]]:
    """(minute, W, Wh so far) every 5 minutes of a charge: a short ramp, constant power
    for `cc_minutes`, then an exponential taper with time constant `tau` minutes."""
    import math

    rows, wh = [], 0.0
    for m in range(1, minutes + 1):
        if m < 10:
            w = peak * (0.3 + 0.07 * m)
        elif m < cc_minutes:
            w = peak
        else:
            w = peak * math.exp(-(m - cc_minutes) / tau)
        wh += w / 60
        if m % 5 == 0 or m == minutes:
            rows.append((m, round(w, 1), round(wh, 1)))
    return rows


def seed_sessions(now: datetime) -> None:
    """体育场路 at its busiest: every port taken; each charging port has a session with
    meter readings at a different point of its charge, and both alleys have a month of
    full charges, so the pages can estimate time left. One 九如巷 contact is shown to
    residents as who looks after the piles."""
    rnd = random.Random(11)
    piles = db.session.scalars(db.select(Pile).where(Pile.id.like("TYC-%"))
                               .order_by(Pile.id)).all()
    ref = 0
    for pile in piles:
        for port in pile.ports:
            if port.status == "faulted" or (pile.id == "TYC-003" and port.number == 5):
                continue
            port.status = rnd.choices(["charging", "finishing", "occupied"], [80, 15, 5])[0]
            elapsed = rnd.randint(12, 140)
            port.status_since = now - timedelta(minutes=elapsed if port.status != "finishing"
                                                 else rnd.randint(3, 50))
            if port.status != "charging":
                continue
            ref += 1
            start = now - timedelta(minutes=elapsed)
            curve = _curve(elapsed, rnd.choice([380.0, 400.0, 420.0]), 95, 22.0)
            s = ChargingSession(pile_id=pile.id, port=port.number, session_ref=f"live-{ref}",
                                status="active", started_at=start, energy_wh=curve[-1][2],
                                start_meter_wh=0.0, last_meter_at=start + timedelta(minutes=elapsed))
            db.session.add(s)
            db.session.flush()
            db.session.add_all([MeterSample(pile_id=pile.id, port=port.number, session_id=s.id,
                                            ts=start + timedelta(minutes=m), power_w=w, energy_wh=wh)
                                for m, w, wh in curve])
    every = db.session.scalars(db.select(Pile).order_by(Pile.id)).all()
    for day in range(1, 30):
        for pile in rnd.sample(every, 6):
            ref += 1
            minutes = rnd.randint(120, 170)
            start = now - timedelta(days=day, minutes=rnd.randint(0, 600))
            curve = _curve(minutes, rnd.choice([380.0, 400.0, 420.0]), 95, 22.0)
            s = ChargingSession(pile_id=pile.id, port=1, session_ref=f"old-{ref}", status="stopped",
                                started_at=start, ended_at=start + timedelta(minutes=minutes),
                                energy_wh=curve[-1][2], stop_reason="full", start_meter_wh=0.0)
            db.session.add(s)
            db.session.flush()
            db.session.add_all([MeterSample(pile_id=pile.id, port=1, session_id=s.id,
                                            ts=start + timedelta(minutes=m), power_w=w, energy_wh=wh)
                                for m, w, wh in curve])
    for slug in ("jiuru", "tiyuchang"):
        alley = db.session.scalar(db.select(Alley).where(Alley.slug == slug))
        db.session.add(Contact(alley_id=alley.id, name="王师傅（网格员）", level=1, channel="email",
                               target=f"wang.{slug}@example.cn", phone="138 0571 2046",
                               public=True))
    db.session.commit()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    raise SystemExit("no chromium found: apt-get install -y chromium fonts-noto-cjk")


def shoot(url: str, out: Path, size=SIZE) -> None:
    """One headless Chromium screenshot of `url` into `out`."""
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run([
            chromium(), "--headless", "--no-sandbox", "--disable-gpu",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--no-first-run", "--hide-scrollbars", f"--user-data-dir={profile}",
            # The pages follow the browser's language unless chosen: a Chinese phone.
            "--lang=zh-CN", "--accept-lang=zh-CN,zh",
            f"--window-size={size[0]},{size[1]}", f"--screenshot={out}", url,
        ], check=True, capture_output=True, timeout=60)
    print("wrote", out)


# Flask-Login's "strong" session protection ties a session to the client's address and
# User-Agent: the login and the browser's requests must agree on both.
AGENT = "chargers-screenshot"


class LoggedIn:
    """WSGI wrapper: every request without a session cookie gets the demo admin's."""

    def __init__(self, app, cookie: str):
        self.app, self.cookie = app, cookie

    def __call__(self, environ, start_response):
        environ["HTTP_USER_AGENT"] = AGENT
        if "session=" not in environ.get("HTTP_COOKIE", ""):
            environ["HTTP_COOKIE"] = self.cookie
        return self.app(environ, start_response)


def admin_cookie(app) -> str:
    """Log the demo admin in through the test client; its session cookie."""
    client = app.test_client()
    r = client.post("/login", data={"name": demo.DEMO_ADMIN[0], "password": demo.DEMO_ADMIN[1]},
                    headers={"User-Agent": AGENT}, environ_base={"REMOTE_ADDR": "127.0.0.1"})
    assert r.status_code == 302, r.status_code
    name = app.config.get("SESSION_COOKIE_NAME", "session")
    return f"{name}={client.get_cookie(name).value}"


def serve(app) -> tuple[str, object]:
    """Serve `app` on a free local port in a thread; (base URL, server)."""
    port = free_port()
    server = make_server("127.0.0.1", port, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{port}", server


def staff_pages(app) -> dict[str, str]:
    """Every staff page worth a look, by a short name."""
    with app.app_context():
        hot = db.session.scalar(db.select(Alert).where(Alert.code == "over_temperature"))
        acked = db.session.scalar(db.select(Alert).where(Alert.code == "over_current"))
        others = {a.code: a.id for a in db.session.scalars(
            db.select(Alert).where(Alert.code.in_(("offline", "data_loss", "communication"))))}
    return {
        "login": "/login",
        "dashboard": "/staff/",
        "alley": "/staff/alleys/jiuru",
        "alley-edit": "/staff/alleys/jiuru/edit",
        "alley-new": "/staff/alleys/new",
        "alerts": "/staff/alerts",
        "alerts-all": "/staff/alerts?status=all&alley=jiuru",
        "alert-critical": f"/staff/alerts/{hot.id}",
        "alert-acked": f"/staff/alerts/{acked.id}",
        **{f"alert-{code}": f"/staff/alerts/{aid}" for code, aid in others.items()},
        "pile-control": "/staff/piles/JRX-004/control",
        "pile-edit": "/staff/piles/JRX-004/edit",
        "pile-new": "/staff/alleys/jiuru/piles/new",
        "pile-secret": "/staff/piles/JRX-004/secret",
        "contacts": "/staff/alleys/jiuru/contacts",
        "ingest": "/staff/ingest",
        "qr": "/staff/alleys/tiyuchang/qr",
        "not-found": "/staff/alerts/99999",
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lang", choices=["zh", "en"], default="zh")
    ap.add_argument("--review", type=Path, metavar="DIR",
                    help="shoot every staff page (phone and desktop, zh and en) into DIR")
    args = ap.parse_args()
    suffix = "" if args.lang == "zh" else "-en"
    with tempfile.TemporaryDirectory() as tmp:
        app = create_app({
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp}/shot.sqlite",
            "SECRET_KEY": "screenshot", "WTF_CSRF_ENABLED": False,
            "RATELIMIT_ENABLED": False, "PUBLIC_BASE_URL": "https://chargers.example.cn",
        }, config_name="testing")
        now = datetime.now(UTC)
        with app.app_context():
            db.create_all()
            demo.seed(Path(tmp) / "secrets.json", settings.alley_defaults(app.config))
            seed_states(now)
            seed_alerts(now)
            seed_sessions(now)
        base, server = serve(app)
        staff_base, staff_server = serve(LoggedIn(app, admin_cookie(app)))
        try:
            if args.review:
                args.review.mkdir(parents=True, exist_ok=True)
                for name, path in staff_pages(app).items():
                    sep = "&" if "?" in path else "?"
                    for lang in ("zh", "en"):
                        url = f"{staff_base}{path}{sep}lang={lang}"
                        shoot(url, args.review / f"{name}-{lang}-phone.png", size=(SIZE[0], 2000))
                        shoot(url, args.review / f"{name}-{lang}-desktop.png",
                              size=(DESKTOP[0], 1400))
                return
            shoot(f"{base}/a/jiuru?lang={args.lang}", DOCS / f"alley-phone{suffix}.png")
            if args.lang == "en":  # one English shot is enough to show the switch
                return
            shoot(f"{base}/a/jiuru", DOCS / "alley-phone-full.png", size=(SIZE[0], 1900))
            shoot(f"{base}/p/JRX-004", DOCS / "pile-phone.png")
            shoot(f"{base}/", DOCS / "index-phone.png")
            shoot(f"{staff_base}/staff/alleys/jiuru", DOCS / "staff-phone.png")
            shoot(f"{staff_base}/staff/alerts", DOCS / "staff-alerts-phone.png")
            # Issue 11: time left, the fire banner, the report form, the staff desk.
            shoot(f"{base}/a/tiyuchang", DOCS / "alley-estimates-phone.png")
            shoot(f"{base}/p/TYC-002", DOCS / "pile-estimates-phone.png")
            shoot(f"{base}/p/JRX-004", DOCS / "fire-banner-phone.png")
            shoot(f"{base}/p/JRX-002/report", DOCS / "report-form-phone.png")
            shoot(f"{staff_base}/staff/", DOCS / "staff-desk-phone.png")
        finally:
            server.shutdown()
            staff_server.shutdown()


if __name__ == "__main__":
    main()
