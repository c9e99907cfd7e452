"""The residents' small things: the language follows the browser unless chosen, who
looks after the piles (one contact setting), the "tell me when a port is free" switch,
and the staff's "send a test notification" button."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

from sqlalchemy import select

from chargers.extensions import db
from chargers.models import Contact

from .webtools import csrf_from, login, post_form


def test_language_follows_accept_language_unless_chosen(client, alley_with_pile):
    en = {"Accept-Language": "en-GB,en;q=0.9"}
    assert '<html lang="en">' in client.get("/a/lane", headers=en).get_data(as_text=True)
    zh = {"Accept-Language": "zh-TW,zh;q=0.9,en;q=0.5"}
    assert '<html lang="zh-CN">' in client.get("/a/lane", headers=zh).get_data(as_text=True)
    fr = {"Accept-Language": "fr-FR"}
    assert '<html lang="zh-CN">' in client.get("/a/lane", headers=fr).get_data(as_text=True)
    assert "Accept-Language" in client.get("/a/lane").headers["Vary"]  # caches keep both
    client.get("/a/lane?lang=zh")  # chosen: wins over the browser from now on
    assert '<html lang="zh-CN">' in client.get("/a/lane", headers=en).get_data(as_text=True)


def test_public_contact_shows_on_resident_pages(app, client, admin, alley_with_pile):
    login(client, "root")
    r = post_form(client, "/staff/alleys/lane/contacts", {
        "name": "王师傅", "level": "1", "channel": "email", "target": "wang@example.org",
        "webhook_format": "auto", "phone": "138 0000 1234", "public": "y"})
    assert r.status_code == 302
    post_form(client, "/staff/alleys/lane/contacts", {
        "name": "值班邮箱", "level": "1", "channel": "email", "target": "duty@example.org",
        "webhook_format": "auto"})
    # Public without a phone is refused in words.
    r = post_form(client, "/staff/alleys/lane/contacts", {
        "name": "Li", "level": "1", "channel": "email", "target": "li@example.org",
        "webhook_format": "auto", "public": "y"}, form_url="/staff/alleys/lane/contacts?lang=en")
    resident = app.test_client()
    for path in ("/a/lane?lang=en", "/p/P-1?lang=en"):
        html = resident.get(path).get_data(as_text=True)
        assert "Who looks after these piles" in html
        assert '王师傅 · <a class="tel" href="tel:13800001234">138 0000 1234</a>' in html
        assert "duty@example.org" not in html and "值班邮箱" not in html
    with app.app_context():
        assert db.session.scalar(select(Contact).where(Contact.name == "Li")) is None


def test_notify_switch_is_there_for_javascript_only(client, alley_with_pile):
    html = client.get("/a/lane?lang=en").get_data(as_text=True)
    assert "data-notify-free hidden" in html and "Tell me when a port is free" in html
    assert 'src="/static/notify-free.js"' in html
    assert 'data-free="0"' in html


class _Robot(BaseHTTPRequestHandler):
    bodies: list = []

    def do_POST(self):  # noqa: N802
        self.bodies.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b'{"errcode": 0}')

    def log_message(self, *args):
        pass


def test_send_a_test_notification_shows_the_outcome(app, client, admin, alley_with_pile):
    robot = HTTPServer(("127.0.0.1", 0), _Robot)
    threading.Thread(target=robot.serve_forever, daemon=True).start()
    try:
        with app.app_context():
            from chargers.models import Alley
            alley = db.session.scalar(select(Alley))
            good = Contact(alley_id=alley.id, name="Robot", level=1, channel="webhook",
                           target=f"http://127.0.0.1:{robot.server_port}/hook")
            bad = Contact(alley_id=alley.id, name="Mail", level=1, channel="email",
                          target="x@example.org")
            db.session.add_all([good, bad])
            db.session.commit()
            good_id, bad_id = good.id, bad.id
        login(client, "root")
        page = client.get("/staff/alleys/lane/contacts?lang=en").get_data(as_text=True)
        assert "Send a test notification" in page
        token = csrf_from(page)
        r = client.post(f"/staff/contacts/{good_id}/test", data={"csrf_token": token},
                        follow_redirects=True)
        assert "Test notification delivered to Robot." in r.get_data(as_text=True)
        # in the deployment's first language (Chinese), as every notification
        assert "测试通知" in _Robot.bodies[-1]["text"]["content"]
        r = client.post(f"/staff/contacts/{bad_id}/test", data={"csrf_token": token},
                        follow_redirects=True)
        assert "Test notification to Mail failed: SMTP_HOST is not set" in r.get_data(as_text=True)
    finally:
        robot.shutdown()
