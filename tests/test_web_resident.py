"""Residents' pages: every port state shown in words and symbols with counts and how
long, Chinese by default with an English switch, no personal data, works without
JavaScript and refreshes itself."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from chargers.extensions import db
from chargers.models import Alert, Alley, ChargingSession, Pile

from .conftest import bearer, loaded
from .webtools import set_ports

STATE_WORDS = {
    "en": {"free": "Free", "in_use": "In use", "finished": "Finished", "fault": "Fault",
           "offline": "Offline", "out_of_service": "Out of service"},
    "zh": {"free": "空闲", "in_use": "充电中", "finished": "充电结束", "fault": "故障",
           "offline": "离线", "out_of_service": "停用"},
}


@pytest.fixture
def busy_alley(app, client, admin, alley_with_pile):
    """Alley `lane` with one port in each resident-facing state (and more).

    P-1: free, in use, finished, fault (the port reports faulted)
    P-2: pile offline (2 ports)
    P-3: port 1 disabled, port 2 unavailable: out of service
    P-4: port 1 available but an active fault alert on it: fault; port 2 free
    """
    _, token = admin
    for pid, n in (("P-2", 2), ("P-3", 2), ("P-4", 2)):
        r = client.post("/api/v1/piles", json={"id": pid, "alley": "lane", "ports": n},
                        headers=bearer(token))
        assert r.status_code == 201
    with app.app_context():
        set_ports("P-1", ["available", "charging", "finishing", "faulted"], minutes_ago=30)
        # port 3's charge ended full (only then does a finished port say "full")
        db.session.add(ChargingSession(
            pile_id="P-1", port=3, session_ref="s-full", status="stopped",
            started_at=datetime.now(UTC) - timedelta(hours=3),
            ended_at=datetime.now(UTC) - timedelta(minutes=30), energy_wh=800.0,
            stop_reason="full"))
        set_ports("P-2", ["available", "charging"], online=False, minutes_ago=125)
        p3 = set_ports("P-3", ["available", "unavailable"])
        p3.ports[0].enabled = False
        set_ports("P-4", ["available", "available"])
        # (not a fire code: smoke would make the whole pile unsafe, tests/test_resident_fire.py)
        db.session.add(Alert(pile_id="P-4", port=1, code="over_current", severity="major"))
        alley = db.session.query(Alley).filter_by(slug="lane").one()
        alley.contacts = "网格员 王阿姨 13800001234"
        alley.address = "九如巷 5 号"
        db.session.commit()
        return loaded(alley)


def cell_states(html: str) -> list[str]:
    return re.findall(r'<li class="cell st \w+" data-state="(\w+)"', html)


def legend_count(html: str, state: str) -> int:
    m = re.search(rf'<li class="{state}(?: zero)?">.*?<b>(\d+)</b>', html)
    assert m, state
    return int(m.group(1))


def test_alley_page_shows_each_port_state_in_words_with_counts(client, busy_alley):
    html = client.get("/a/lane?lang=en").get_data(as_text=True)
    assert cell_states(html) == [
        "free", "in_use", "finished", "fault",  # P-1
        "offline", "offline",  # P-2
        "out_of_service", "out_of_service",  # P-3
        "fault", "free",  # P-4
    ]
    words = STATE_WORDS["en"]
    for state, n in {"free": 2, "in_use": 1, "finished": 1, "fault": 2, "offline": 2,
                     "out_of_service": 2}.items():
        assert legend_count(html, state) == n
        assert words[state] in html
    # Each cell carries its word (for screen readers) and how long it has been so.
    assert "Port 2: In use, for 30 min, No basis yet to estimate when it will be done" in html
    # A finished port does not read like a free one.
    assert "Port 3: Finished, Full 30 min ago, bike still plugged in" in html
    assert "Port 1: Offline, for 2h 5m" in html
    # The big number at the top is the free count.
    assert re.search(r'<span class="big" data-free="2">2</span>', html)
    # Each pile links to its own page.
    for pid in ("P-1", "P-2", "P-3", "P-4"):
        assert f'href="/p/{pid}"' in html


def test_alley_page_in_chinese_by_default(client, busy_alley):
    r = client.get("/a/lane")
    html = r.get_data(as_text=True)
    assert '<html lang="zh-CN">' in html
    for state, word in STATE_WORDS["zh"].items():
        assert word in html, state
    assert "2 号插口: 充电中, 已 30 分钟" in html
    assert 'href="/a/lane?lang=en"' in html  # the English switch keeps the page


def test_english_switch_is_remembered(client, busy_alley):
    assert "空闲" in client.get("/a/lane").get_data(as_text=True)
    html = client.get("/a/lane?lang=en").get_data(as_text=True)
    assert '<html lang="en">' in html and "Free" in html and "空闲" not in html
    assert 'href="/a/lane?lang=zh"' in html
    html = client.get("/").get_data(as_text=True)  # remembered for the session
    assert '<html lang="en">' in html and "Free charging ports" in html
    html = client.get("/p/P-1?lang=zh").get_data(as_text=True)
    assert '<html lang="zh-CN">' in html and "空闲" in html


def test_pile_page_shows_each_port_with_word_and_since(client, busy_alley):
    html = client.get("/p/P-1?lang=en").get_data(as_text=True)
    assert re.findall(r'class="port-row" data-state="(\w+)"', html) == [
        "free", "in_use", "finished", "fault"]
    for word in ("Free", "Fault"):
        assert f"</span>{word}</span>" in html
    assert '</span>In use<small class="detail"><b class="left unknown">' in html
    assert ('</span>Finished<small class="detail">Full 30 min ago, bike still plugged in'
            in html)
    assert html.count("for 30 min") == 4
    assert "← Lane" in html
    assert client.get("/p/P-2?lang=en").get_data(as_text=True).count(">Offline</span>") == 2
    assert client.get("/p/NOPE").status_code == 404


def test_index_lists_alleys_with_free_counts(client, busy_alley, admin):
    _, token = admin
    client.post("/api/v1/alleys", json={"slug": "empty", "name": "Empty Road"},
                headers=bearer(token))
    html = client.get("/?lang=en").get_data(as_text=True)
    assert 'href="/a/lane"' in html and 'href="/a/empty"' in html
    assert re.search(r'<b class="">2</b> / 10', html)  # lane: 2 of 10 free
    assert re.search(r'<b class="zero">0</b> / 0', html)


def test_piles_in_natural_order(client, admin):
    _, token = admin
    client.post("/api/v1/alleys", json={"slug": "jr", "name": "JR"}, headers=bearer(token))
    for n in (10, 2, 1):
        client.post("/api/v1/piles", json={"id": f"J-{n}", "alley": "jr", "ports": 1,
                                           "label": f"{n}号桩"}, headers=bearer(token))
    html = client.get("/a/jr").get_data(as_text=True)
    assert re.findall(r'href="/p/(J-\d+)"', html) == ["J-1", "J-2", "J-10"]


def test_api_lists_an_alleys_piles_in_natural_order_too(client, admin):
    _, token = admin
    client.post("/api/v1/alleys", json={"slug": "jr", "name": "JR"}, headers=bearer(token))
    for n in (10, 2, 1):
        client.post("/api/v1/piles", json={"id": f"JRX-{n}", "alley": "jr", "ports": 1},
                    headers=bearer(token))
    piles = client.get("/api/v1/alleys/jr").json["piles"]
    assert [p["id"] for p in piles] == ["JRX-1", "JRX-2", "JRX-10"]


def test_public_pages_show_no_personal_data(client, busy_alley, make_staff):
    make_staff("wang-grid", ["lane"])
    for url in ("/", "/a/lane", "/p/P-1", "/api/v1/alleys", "/api/v1/alleys/lane"):
        body = client.get(url).get_data(as_text=True)
        assert "13800001234" not in body and "王阿姨" not in body, url
        assert "九如巷 5 号" not in body, url
        assert "wang-grid" not in body, url
        assert "secret" not in body.lower(), url


def test_pages_work_without_javascript_and_refresh_themselves(client, busy_alley):
    for url in ("/", "/a/lane", "/p/P-1"):
        html = client.get(url).get_data(as_text=True)
        # Without JS: a meta refresh; with JS, live.js refreshes in place instead.
        assert re.search(r'<noscript><meta http-equiv="refresh" content="\d+"></noscript>', html)
        assert 'src="/static/live.js"' in html and "data-live=" in html
        # Nothing inline for the CSP to block: every script is a file, no style attributes.
        assert re.findall(r"<script(?![^>]*\bsrc=)[^>]*>", html) == []
        assert " style=" not in html
    assert client.get("/static/live.js").status_code == 200


def test_unknown_alley_is_a_404_page(client, app):
    r = client.get("/a/nope")
    assert r.status_code == 404 and "text/html" in r.content_type


def test_pile_out_of_service_and_offline_headers(app, client, busy_alley):
    with app.app_context():
        pile = db.session.get(Pile, "P-3")
        pile.enabled = False
        db.session.commit()
    html = client.get("/a/lane?lang=en").get_data(as_text=True)
    assert re.search(r'<span class="n warn">Out of service</span>', html)
    assert re.search(r'<span class="n warn">Offline</span>', html)


def test_times_are_shown_in_the_alleys_zone(app, client, admin, alley_with_pile):
    from datetime import UTC, datetime

    _, token = admin
    client.post("/api/v1/alleys", json={"slug": "ldn", "name": "London Lane",
                                        "timezone": "Europe/London"}, headers=bearer(token))
    client.post("/api/v1/piles", json={"id": "L-1", "alley": "ldn", "ports": 1},
                headers=bearer(token))
    at = datetime(2026, 1, 2, 1, 30, tzinfo=UTC)
    with app.app_context():
        for pid in ("P-1", "L-1"):
            pile = set_ports(pid, ["available"] * len(db.session.get(Pile, pid).ports))
            pile.online_since = at
            for port in pile.ports:
                port.status_since = at
        db.session.commit()
    assert "01-02 09:30" in client.get("/p/P-1").get_data(as_text=True)  # Asia/Shanghai
    assert "01-02 01:30" in client.get("/p/L-1").get_data(as_text=True)  # Europe/London
