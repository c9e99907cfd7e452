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


def test_api_refund_takes_a_reason_and_sessions_filter_by_alley(app, client, admin,
                                                                alley_with_pile):
    from .conftest import bearer
    from .test_settlement import make_account

    _, token = admin
    acc = make_account(client, token, ["C-1"], topup=1000)
    r = client.post(f"/api/v1/accounts/{acc}/refunds", headers=bearer(token),
                    json={"amount_cents": 300, "method": "cash", "reason": "moving out"})
    assert r.status_code == 201, r.json
    assert r.json["reason"] == "moving out" and r.json["balance_cents"] == 700
    with app.app_context():
        from sqlalchemy import select

        from chargers.extensions import db
        from chargers.models import Posting

        assert db.session.scalar(select(Posting.reason).where(Posting.kind == "refund")) == (
            "moving out")
    r = client.post(f"/api/v1/accounts/{acc}/refunds", headers=bearer(token),
                    json={"amount_cents": 1, "method": "cash", "reason": "x" * 501})
    assert r.status_code == 422

    client.post("/api/v1/alleys", json={"slug": "other", "name": "Other"}, headers=bearer(token))
    client.post("/api/v1/piles", json={"id": "O-1", "alley": "other", "ports": 2},
                headers=bearer(token))
    with app.app_context():
        from chargers.extensions import db

        from .billing_support import finished

        finished("P-1", "a", "C-1", 10, 100)
        finished("O-1", "b", None, 10, 100)
        db.session.commit()
    everything = client.get("/api/v1/sessions", headers=bearer(token)).json
    assert {s["pile"] for s in everything} == {"P-1", "O-1"}
    lane = client.get("/api/v1/sessions?alley=lane", headers=bearer(token)).json
    assert [s["pile"] for s in lane] == ["P-1"]
    assert client.get("/api/v1/sessions?alley=nowhere", headers=bearer(token)).status_code == 404
    r = client.get("/api/v1/sessions?aley=lane", headers=bearer(token))
    assert r.status_code == 400
    assert r.json["error"]["code"] == "bad_request" and "aley" in r.json["error"]["message"]


def test_a_bad_token_answers_unauthorized(client, admin):
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic x"}):
        r = client.get("/api/v1/sessions", headers=headers)
        assert r.status_code == 401
        assert r.json["error"]["code"] == "unauthorized", r.json
        assert "Bearer" in r.json["error"]["message"]


def test_port_errors_read_properly(app, client, admin, alley_with_pile):
    from chargers.outcomes import english

    from .conftest import bearer

    with app.test_request_context():
        text = english("command.port_range", {"port": 9, "n": 4})
    assert text == "There is no port 9 on this pile: its ports are 1 to 4."
    _, token = admin
    r = client.post("/api/v1/piles/P-1/commands", json={"action": "stop", "port": 9},
                    headers=bearer(token))
    if r.status_code != 404:  # the command call exists
        assert r.status_code == 422
        assert r.json["error"]["message"] == "There is no port 9 on this pile: its ports are 1 to 4."


def test_my_account_lookup_ignores_the_cards_case(app, client, admin, alley_with_pile):
    from .test_settlement import make_account

    _, token = admin
    make_account(client, token, ["C-00001"], phone="13800001234")
    with app.app_context():
        from chargers.services.billing import accounts
        from chargers.services.devices import alleys

        alley = alleys.find_alley("lane")
        assert accounts.lookup(alley, "c-00001", "1234") is not None
        assert accounts.lookup(alley, "C-00001", "1234") is not None
        assert accounts.lookup(alley, "c-00001", "9999") is None
        assert accounts.lookup(alley, "c-00002", "1234") is None


def test_report_other_problem_free_text_is_kept_and_shown_escaped(app, client, admin,
                                                                   alley_with_pile):
    from sqlalchemy import select

    from chargers.extensions import db
    from chargers.models import ProblemReport

    from .test_reports import send
    from .webtools import login

    form = client.get("/p/P-1/report?lang=zh").get_data(as_text=True)
    assert 'name="details"' in form and "<textarea" in form
    text = "充电线松了 <script>alert(1)</script>"
    r = send(client, {"port": "3", "kind": "other", "details": text})
    assert r.status_code == 302, r.get_data(as_text=True)[:500]
    with app.app_context():
        report = db.session.scalars(select(ProblemReport)).one()
        assert report.details == text
        alert_id = report.alert_id
    login(client, "root")
    html = client.get(f"/staff/alerts/{alert_id}?lang=zh").get_data(as_text=True)
    assert "充电线松了 &lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<script>alert(1)" not in html
    r = send(client, {"port": "3", "kind": "other", "details": "x" * 501}, addr="203.0.113.9")
    assert r.status_code == 400
