"""Residents report a problem (报修) from a pile's page: validated, the photo re-encoded
under the instance folder, staff get an alert (a burning smell pages at once but cuts
nothing), rate limited per address, post/redirect/get to a "sent" page."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import select

from chargers.extensions import db
from chargers.models import Alert, Command, Contact, Notification, ProblemReport

from .conftest import bearer
from .webtools import csrf_from, login


@pytest.fixture
def app_config(app_config, tmp_path):
    app_config["REPORT_PHOTO_DIR"] = str(tmp_path / "reports")
    app_config["REPORT_RATE_LIMIT"] = "3 per hour"
    return app_config


def jpeg_with_exif() -> bytes:
    img = Image.new("RGB", (2400, 1800), (200, 30, 30))
    exif = Image.Exif()
    exif[0x010F] = "SecretCam"  # Make
    out = io.BytesIO()
    img.save(out, "JPEG", exif=exif)
    return out.getvalue()


def send(client, data: dict, photo: bytes | None = None, addr="203.0.113.5"):
    page = client.get("/p/P-1/report", environ_base={"REMOTE_ADDR": addr})
    form = {"csrf_token": csrf_from(page.get_data(as_text=True)), **data}
    if photo is not None:
        form["photo"] = (io.BytesIO(photo), "socket.jpg")
    return client.post("/p/P-1/report", data=form, content_type="multipart/form-data",
                       environ_base={"REMOTE_ADDR": addr})


def test_pile_page_links_to_the_report_form(client, alley_with_pile):
    html = client.get("/p/P-1?lang=en").get_data(as_text=True)
    assert 'href="/p/P-1/report"' in html
    form = client.get("/p/P-1/report?lang=en").get_data(as_text=True)
    for word in ("No power", "Damaged socket", "Burning smell or smoke", "Something else",
                 "Port 4", "call 119", 'enctype="multipart/form-data"'):
        assert word in form


def test_burning_smell_report_pages_at_once_without_cutting_power(app, client, alley_with_pile):
    with app.app_context():
        from chargers.models import Alley
        alley = db.session.scalar(select(Alley))
        db.session.add(Contact(alley_id=alley.id, name="Wang", level=1, channel="webhook",
                               target="https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=x"))
        db.session.commit()
    r = send(client, {"port": "3", "kind": "burning", "phone": "138 0000 1234"},
             photo=jpeg_with_exif())
    assert r.status_code == 302 and r.headers["Location"].endswith("/p/P-1/report/sent")
    sent = client.get(r.headers["Location"] + "?lang=en").get_data(as_text=True)
    assert "your report was sent" in sent
    with app.app_context():
        [report] = db.session.scalars(select(ProblemReport)).all()
        assert (report.port, report.kind, report.phone) == (3, "burning", "138 0000 1234")
        alert = db.session.get(Alert, report.alert_id)
        assert (alert.code, alert.severity, alert.port) == ("report_burning", "critical", 3)
        assert alert.cutoff == "none" and db.session.query(Command).count() == 0
        [n] = db.session.scalars(select(Notification)).all()  # paged at once
        assert "居民报修" in n.body
        # The photo: a fresh, smaller JPEG without the EXIF it came with.
        path = Path(app.config["REPORT_PHOTO_DIR"]) / report.photo
        with Image.open(path) as img:
            assert img.format == "JPEG" and max(img.size) == 1600
            assert not img.getexif()
    # A resident's word alone does not make the port look broken to others.
    with app.app_context():
        from .webtools import set_ports
        set_ports("P-1", ["available"] * 4)
    assert client.get("/api/v1/alleys/lane").json["free"] == 4


def test_second_report_bumps_the_same_alert(app, client, alley_with_pile):
    assert send(client, {"port": "2", "kind": "no_power"}).status_code == 302
    assert send(client, {"port": "2", "kind": "no_power"}).status_code == 302
    assert send(client, {"port": "pile", "kind": "other"}).status_code == 302
    with app.app_context():
        alerts = db.session.scalars(select(Alert).order_by(Alert.id)).all()
        assert [(a.code, a.port, a.count, a.severity) for a in alerts] == [
            ("report_no_power", 2, 2, "major"), ("report_other", None, 1, "minor")]


def test_bad_photo_and_missing_choice_are_refused_in_words(app, client, alley_with_pile):
    r = send(client, {"port": "1", "kind": "damaged"}, photo=b"GIF89a not really")
    assert r.status_code == 400
    assert "could not be read as an image" in r.get_data(as_text=True) or \
        "无法识别" in r.get_data(as_text=True)
    r = send(client, {"port": "1"})
    assert r.status_code == 400
    r = send(client, {"port": "9", "kind": "damaged"})
    assert r.status_code == 400
    with app.app_context():
        assert db.session.query(ProblemReport).count() == 0
        photos = Path(app.config["REPORT_PHOTO_DIR"])
        assert not photos.exists() or not list(photos.iterdir())


def test_rate_limited_per_address(client, alley_with_pile):
    for _ in range(3):
        assert send(client, {"port": "1", "kind": "other"}).status_code == 302
    r = send(client, {"port": "1", "kind": "other"})
    assert r.status_code == 429 and "请稍后再试" in r.get_data(as_text=True)  # in words
    assert send(client, {"port": "1", "kind": "other"}, addr="198.51.100.7").status_code == 302


def test_staff_see_the_report_with_photo_in_their_alley_only(app, client, admin, make_staff,
                                                              alley_with_pile):
    _, token = admin
    client.post("/api/v1/alleys", json={"slug": "other", "name": "Other"}, headers=bearer(token))
    with app.app_context():
        make_staff("elsewhere", ["other"])
    send(client, {"port": "2", "kind": "damaged", "phone": "13900001111"},
         photo=jpeg_with_exif())
    with app.app_context():
        report = db.session.scalars(select(ProblemReport)).one()
        alert_id, photo = report.alert_id, report.photo
    staff = app.test_client()
    login(staff, "root")
    html = staff.get(f"/staff/alerts/{alert_id}?lang=en").get_data(as_text=True)
    assert "Residents' reports" in html and "Damaged socket" in html
    assert 'href="tel:13900001111"' in html
    r = staff.get(f"/staff/reports/photo/{photo}")
    assert r.status_code == 200 and r.mimetype == "image/jpeg"
    other = app.test_client()
    login(other, "elsewhere")
    assert other.get(f"/staff/reports/photo/{photo}").status_code == 404
    assert app.test_client().get(f"/staff/reports/photo/{photo}").status_code in (302, 401)
