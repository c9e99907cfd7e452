"""Uploads (issue 20, item 2): both photo stores (residents' reports, inspection
photos) decode only JPEG, PNG and WebP (an EPS named .jpg never reaches Ghostscript),
answer any decoder error with a clear 400, bound the pixels per image and per request
before decoding, and leave no file behind when a request fails."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import EpsImagePlugin, Image
from sqlalchemy import select

from chargers.extensions import db
from chargers.models import InspectionRecord, ProblemReport
from chargers.services import photos

from . import test_maintenance_pages as maintenance_pages
from .test_maintenance_pages import csrf, marks, plan_id
from .webtools import csrf_from

staff = maintenance_pages.staff  # the fixture: lane staff logged in


@pytest.fixture
def app_config(app_config, tmp_path):
    app_config["REPORT_PHOTO_DIR"] = str(tmp_path / "reports")
    app_config["MAINTENANCE_PHOTO_DIR"] = str(tmp_path / "photos")
    return app_config


@pytest.fixture
def ghostscript_calls(monkeypatch):
    """Pretend Ghostscript is installed and record every call Pillow makes to it."""
    calls = []

    def fake(*args, **kwargs):
        calls.append(args)
        raise OSError("ghostscript must never run on an upload")

    monkeypatch.setattr(EpsImagePlugin, "Ghostscript", fake)
    monkeypatch.setattr(EpsImagePlugin, "has_ghostscript", lambda: True)
    monkeypatch.setattr(EpsImagePlugin, "gs_binary", "gs", raising=False)
    return calls


def eps_bytes() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (40, 30), (200, 0, 0)).save(out, "EPS")
    return out.getvalue()


def png(size=(120, 100)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (10, 200, 10)).save(out, "PNG")
    return out.getvalue()


def report(client, photo: bytes, name="x.jpg"):
    page = client.get("/p/P-1/report")
    return client.post("/p/P-1/report", content_type="multipart/form-data", data={
        "csrf_token": csrf_from(page.get_data(as_text=True)), "port": "1", "kind": "damaged",
        "photo": (io.BytesIO(photo), name)})


def check(client, app, photos_: list[bytes]):
    pid = plan_id(app, "daily")
    data = {**marks(app, pid), "csrf_token": csrf(client, f"/staff/maintenance/plans/{pid}/check"),
            "photos": [(io.BytesIO(p), f"IMG_{i}.jpg") for i, p in enumerate(photos_)]}
    return client.post(f"/staff/maintenance/plans/{pid}/check", data=data,
                       content_type="multipart/form-data")


def nothing_kept(app) -> None:
    with app.app_context():
        assert db.session.query(ProblemReport).count() == 0
        assert db.session.scalar(select(InspectionRecord)) is None
    for key in ("REPORT_PHOTO_DIR", "MAINTENANCE_PHOTO_DIR"):
        folder = Path(app.config[key])
        assert not folder.exists() or not any(folder.iterdir()), key


def test_an_eps_named_jpg_never_reaches_ghostscript_in_either_store(app, client, staff,
                                                                   ghostscript_calls):
    eps = eps_bytes()
    assert eps.startswith(b"%!PS") or eps[:4] == b"\xc5\xd0\xd3\xc6"
    r = report(app.test_client(), eps)
    assert r.status_code == 400
    r = check(staff, app, [eps])
    assert r.status_code == 400 and "That file is not a photo" in r.get_data(as_text=True)
    assert ghostscript_calls == []
    nothing_kept(app)
    # The decoders the stores allow, and no other.
    assert photos.FORMATS == ["JPEG", "PNG", "WEBP"]


def test_any_decoder_error_is_a_clear_400(app, client, alley_with_pile, monkeypatch):
    from PIL import ImageOps

    def broken(img):
        raise IndexError("a bug deep in a decoder")

    monkeypatch.setattr(ImageOps, "exif_transpose", broken)
    r = report(client, png())
    assert r.status_code == 400
    assert "无法识别" in r.get_data(as_text=True) or "could not be read" in r.get_data(as_text=True)
    truncated = png((300, 300))[:200]
    monkeypatch.undo()
    assert report(client, truncated).status_code == 400
    nothing_kept(app)


def test_pixels_are_bounded_per_image_before_decoding(app, client, alley_with_pile, monkeypatch):
    # 7100 x 7100 = 50.4 megapixels, claimed by a file of a few kB.
    out = io.BytesIO()
    Image.new("1", (7100, 7100)).save(out, "PNG")
    decoded = []
    monkeypatch.setattr(Image.Image, "load", lambda self: decoded.append(self.size))
    with pytest.raises(photos.BadImage, match="too_large"):
        photos.reencode(out.getvalue(), 1600)
    assert decoded == []
    assert report(client, out.getvalue()).status_code == 400
    assert photos.MAX_PIXELS == 50_000_000
    nothing_kept(app)


def test_pixels_are_bounded_per_request(app, staff, monkeypatch):
    monkeypatch.setattr(photos, "MAX_REQUEST_PIXELS", 20_000, raising=False)
    r = check(staff, app, [png(), png()])  # 12,000 pixels each: 24,000 together
    assert r.status_code == 400
    assert "megapixels" in r.get_data(as_text=True)
    nothing_kept(app)
    assert check(staff, app, [png()]).status_code == 302


def test_a_failed_request_leaves_no_file(app, client, alley_with_pile, staff, monkeypatch):
    # Two photos, the second not a photo: the first is not kept either.
    r = check(staff, app, [png(), b"\x89PNG\r\n\x1a\n not really"])
    assert r.status_code == 400
    nothing_kept(app)
    # The report's photo is stored, then keeping the report fails: the file goes too.
    from chargers.services.alerts import lifecycle as alerts

    def fails(*args, **kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr(alerts, "on_report", fails)
    assert report(client, png()).status_code == 500
    nothing_kept(app)
