"""Issue 19 (C): the smaller items: PUBLIC_BASE_URL follows WEB_PORT in development,
piles sort naturally, the report's free text, the card look-up ignores case, the 公示
asks before publishing and a correction is a new version, the API's refunds with a
reason, the sessions filter, a bad token's error code and the port error's words."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from .ingest_support import ROOT


def _base_url(env: dict) -> str:
    clean = {k: v for k, v in os.environ.items() if k not in ("PUBLIC_BASE_URL", "WEB_PORT")}
    out = subprocess.run([sys.executable, "-c", "from config import DevelopmentConfig as c; "
                          "print(c.PUBLIC_BASE_URL)"], cwd=ROOT, env={**clean, **env},
                         capture_output=True, text=True, check=True)
    return out.stdout.strip()


def test_public_base_url_follows_web_port_in_development():
    assert _base_url({}) == "http://127.0.0.1:5000"
    assert _base_url({"WEB_PORT": "5050"}) == "http://127.0.0.1:5050"
    assert _base_url({"WEB_PORT": "5050", "PUBLIC_BASE_URL": "https://cd.example"}) == (
        "https://cd.example")


def _piles(client, token, labels):
    from .conftest import bearer

    for n, label in enumerate(labels):
        r = client.post("/api/v1/piles", json={"id": f"Q-{n}", "alley": "lane", "ports": 2,
                                               "label": label}, headers=bearer(token))
        assert r.status_code == 201, r.json


def _order(html: str, labels) -> list[str]:
    return sorted(labels, key=html.index)


def test_piles_sort_naturally_in_every_list(app, client, admin, alley_with_pile):
    from chargers.ordering import natural_key

    from .webtools import login

    assert sorted(["10号桩", "2号桩", "1号桩"], key=natural_key) == ["1号桩", "2号桩", "10号桩"]
    assert sorted(["A10", "a2", "3"], key=natural_key) == ["3", "a2", "A10"]  # no TypeError
    labels = ["10号桩", "2号桩", "1号桩"]
    _, token = admin
    _piles(client, token, labels)
    want = ["1号桩", "2号桩", "10号桩"]
    login(client, "root")
    for url in ("/a/lane", "/staff/alleys/lane", "/staff/alleys/lane/maintenance/orders/new",
                "/staff/alleys/lane/maintenance/plans/new", "/staff/alleys/lane/qr",
                "/api/v1/alleys/lane"):
        r = client.get(url)
        assert r.status_code == 200, url
        text = (json.dumps(r.json, ensure_ascii=False) if r.is_json
                else r.get_data(as_text=True))
        assert _order(text, labels) == want, url
    with app.app_context():
        from chargers.extensions import db
        from chargers.models import User
        from chargers.services.devices import piles

        boss = db.session.get(User, admin[0].id)
        names = [p.label for p in piles.list_piles(boss, "lane") if p.label in labels]
        assert names == want
