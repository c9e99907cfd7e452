"""Take the README screenshots, repeatably: seed a temp database with the demo alleys,
give the ports varied states, serve the app on a free local port and shoot pages with
headless Chromium at phone size (390x844).

    .venv/bin/python docs/screenshot.py            # writes docs/*.png
    .venv/bin/python docs/screenshot.py --lang en  # the alley page in English too
"""

from __future__ import annotations

import argparse
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

from chargers import create_app  # noqa: E402
from chargers.extensions import db  # noqa: E402
from chargers.models import Alert, Pile  # noqa: E402
from chargers.services import demo  # noqa: E402

DOCS = ROOT / "docs"
SIZE = (390, 844)


def seed_states(now: datetime) -> None:
    """Jiuru Alley at a busy evening: most ports charging, some free, a few finished and
    waiting to be unplugged, one fault, one pile offline, one port out of service."""
    rnd = random.Random(7)
    piles = db.session.scalars(db.select(Pile).order_by(Pile.id)).all()
    for pile in piles:
        pile.online = True
        pile.online_since = now - timedelta(days=2)
        pile.last_seen_at = now
        for port in pile.ports:
            port.status = rnd.choices(["charging", "available", "finishing"], [62, 26, 12])[0]
            port.status_since = now - timedelta(minutes=rnd.randint(1, 400))
    jiuru = {p.id: p for p in piles}
    off = jiuru["JRX-011"]
    off.online, off.online_since = False, now - timedelta(minutes=47)
    jiuru["JRX-004"].ports[6].status = "faulted"
    jiuru["JRX-004"].ports[6].status_since = now - timedelta(minutes=12)
    db.session.add(Alert(pile_id="JRX-004", port=7, code="over_temperature", severity="critical",
                         raised_at=now - timedelta(minutes=12), last_seen_at=now))
    jiuru["JRX-009"].ports[2].enabled = False
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
            f"--window-size={size[0]},{size[1]}", f"--screenshot={out}", url,
        ], check=True, capture_output=True, timeout=60)
    print("wrote", out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lang", choices=["zh", "en"], default="zh")
    args = ap.parse_args()
    suffix = "" if args.lang == "zh" else "-en"
    with tempfile.TemporaryDirectory() as tmp:
        app = create_app({
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp}/shot.sqlite",
            "SECRET_KEY": "screenshot", "WTF_CSRF_ENABLED": False,
            "RATELIMIT_ENABLED": False, "PUBLIC_BASE_URL": "https://chargers.example.cn",
        }, config_name="testing")
        with app.app_context():
            db.create_all()
            demo.seed(Path(tmp) / "secrets.json")
            seed_states(datetime.now(UTC))
        port = free_port()
        server = make_server("127.0.0.1", port, app, threaded=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        base = f"http://127.0.0.1:{port}"
        try:
            shoot(f"{base}/a/jiuru?lang={args.lang}", DOCS / f"alley-phone{suffix}.png")
            if args.lang == "en":  # one English shot is enough to show the switch
                return
            shoot(f"{base}/a/jiuru", DOCS / "alley-phone-full.png", size=(SIZE[0], 1900))
            shoot(f"{base}/p/JRX-004", DOCS / "pile-phone.png")
            shoot(f"{base}/", DOCS / "index-phone.png")
            # Staff pages need a login, which a bare headless Chromium cannot do: render
            # the page through the test client as the demo admin, then shoot that HTML
            # (its stylesheet still comes from the running server).
            page = Path(tmp) / "staff.html"
            page.write_text(_staff_page(app).replace('href="/static/', f'href="{base}/static/'),
                            encoding="utf-8")
            shoot(page.as_uri(), DOCS / "staff-phone.png")
        finally:
            server.shutdown()


def _staff_page(app) -> str:
    """The staff alley page as the demo admin sees it."""
    client = app.test_client()
    r = client.post("/login", data={"name": demo.DEMO_ADMIN[0], "password": demo.DEMO_ADMIN[1]})
    assert r.status_code == 302, r.status_code
    return client.get("/staff/alleys/jiuru").get_data(as_text=True)


if __name__ == "__main__":
    main()
