"""The power budget's rules in process (the ingest's handlers, the jobs' services):
every answer recorded, the allowance exact against the pricing, the queue first come
first served. The end-to-end versions (Mosquitto, the worker, simulated piles) are in
tests/test_budget_e2e.py."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import settings as settings_hyp
from hypothesis import strategies as st
from sqlalchemy import select

from chargers import settings
from chargers.extensions import db
from chargers.ingest import handlers
from chargers.models import Authorization, Command, Pile
from chargers.services.billing import pricing
from chargers.services.budget import allowance, feeder, overload
from chargers.services.budget import queue as budget_queue
from tests.budget_support import account, energy_tariff
from tests.budget_support import feeder as set_feeder
from tests.conftest import bearer
from tests.ingest_support import body, incoming, ts

T0 = datetime(2026, 11, 27, 11, 0, tzinfo=UTC)  # 19:00 in the alley


def send(app, kind, at, pile="P-1", **fields):
    with app.app_context():
        out = handlers.process([incoming(kind, body(kind, ts=ts(at), **fields), pile=pile,
                                         arrived_at=at)], now=at)
    assert out == ["accepted"], out
    return out


def boot_v11(app, at=T0):
    send(app, "boot", at, ports=4, features=["config", "authorize", "start"])


def answer(app, ref: str) -> dict:
    with app.app_context():
        rec = db.session.scalar(select(Authorization).where(Authorization.message_id == ref))
        cmd = db.session.get(Command, rec.command_id)
        return {"action": cmd.action, "port": cmd.port, **cmd.args}


def ask(app, at, port, card, ref, pile="P-1") -> dict:
    send(app, "authorize", at, pile=pile, id=ref, port=port, card=card)
    return answer(app, ref)


@pytest.fixture
def lane(app, client, admin, alley_with_pile):
    _, token = admin
    energy_tariff(app)
    boot_v11(app)
    return token


def test_each_rejection_reason_and_every_answer_recorded(app, client, lane):
    token = lane
    account(client, token, ["RICH"], balance=10_000)
    account(client, token, ["POOR"], balance=0)
    assert ask(app, T0, 1, "NOBODY", "a1")["reason"] == "unknown_card"
    assert ask(app, T0, 1, "POOR", "a2")["reason"] == "no_balance"
    with app.app_context():
        db.session.get(Pile, "P-1").ports[1].enabled = False
        db.session.commit()
    assert ask(app, T0, 2, "RICH", "a3")["reason"] == "disabled"
    send(app, "fault", T0, port=3, code="smoke", active=True)
    assert ask(app, T0 + timedelta(seconds=1), 1, "RICH", "a4")["reason"] == "fire"
    send(app, "fault", T0 + timedelta(seconds=2), port=3, code="smoke", active=False)
    ok = ask(app, T0 + timedelta(seconds=3), 1, "RICH", "a5")
    assert ok["result"] == "accepted" and ok["ref"] == "a5" and ok["port"] == 1
    with app.app_context():
        recs = [(r.message_id, r.card, r.port, r.result, r.reason)
                for r in db.session.scalars(select(Authorization).order_by(Authorization.id))]
    assert recs == [("a1", "NOBODY", 1, "rejected", "unknown_card"),
                    ("a2", "POOR", 1, "rejected", "no_balance"),
                    ("a3", "RICH", 2, "rejected", "disabled"),
                    ("a4", "RICH", 1, "rejected", "fire"),
                    ("a5", "RICH", 1, "accepted", None)]


def test_unknown_cards_are_accepted_where_the_alley_allows_unbilled_charging(app, client, lane):
    r = client.patch("/api/v1/alleys/lane", json={"allow_unbilled": True}, headers=bearer(lane))
    assert r.status_code == 200
    got = ask(app, T0, 1, "NOBODY", "u1")
    assert got["result"] == "accepted" and "max_wh" not in got and got["max_minutes"] == 480


def test_max_wh_is_what_the_balance_buys_under_the_tariff(app, client, lane):
    # 1.00 yuan/kWh of electricity + 0.20 yuan/kWh service, 5.00 yuan of balance: each
    # component rounded half up once. 4174 Wh: 417.4 → 417 + 83.48 → 83 = 500 fen;
    # 4175 Wh: 417.5 → 418 + 83.5 → 84 = 502 fen.
    energy_tariff(app, service_scheme="kwh", service_cents=20)
    account(client, lane, ["C5"], balance=500)
    got = ask(app, T0, 1, "C5", "m1")
    assert got["result"] == "accepted"
    assert got["max_wh"] == 4174 and got["max_minutes"] == 480
    spec = pricing.TariffSpec(100, service_scheme="kwh", service_cents=20)
    assert allowance._price(spec, T0, 4174, 480, 380) == 500
    assert allowance._price(spec, T0, 4175, 480, 380) == 502


def test_time_priced_tariff_limits_the_minutes_too():
    # 2.00 yuan an hour flat service + 1.00 yuan/kWh; 3.00 yuan: 8 h would cost 16 yuan.
    spec = pricing.TariffSpec(100, service_scheme="flat_hour", service_cents=200)
    got = allowance.cover(spec, 300, 400, 480, T0)
    assert got is not None and got.max_minutes < 480
    assert allowance._price(spec, T0, got.max_wh, got.max_minutes, 400) <= 300
    assert allowance._price(spec, T0, got.max_wh + 1, got.max_minutes, 400) > 300
    assert allowance.cover(spec, 1, 400, 480, T0) is None


@settings_hyp(max_examples=200, deadline=None)
@given(st.integers(0, 5000), st.integers(0, 5000), st.integers(-100, 6000))
def test_the_bracketed_search_finds_the_last_fit_from_any_guess(span, edge, guess):
    edge = min(edge, span)
    probes: list[int] = []

    def fits(x: int) -> bool:
        probes.append(x)
        return x <= edge

    assert allowance._largest(fits, 0, span, guess) == edge
    assert len(probes) <= 40


def _most_wh_by_halving(spec, minutes, power_w, balance):
    lo, hi = 0, allowance.MAX_WH
    if allowance._price(spec, T0, 0, minutes, power_w) > balance:
        return 0
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if allowance._price(spec, T0, mid, minutes, power_w) <= balance:
            lo = mid
        else:
            hi = mid - 1
    return lo


@pytest.mark.parametrize("spec", [
    pricing.TariffSpec(100, service_scheme="kwh", service_cents=20),
    pricing.TariffSpec(55, service_scheme="flat_hour", service_cents=35),
    pricing.TariffSpec(61, service_scheme="kwh", service_cents=7, minimum_cents=100),
])
@pytest.mark.parametrize("balance", [1, 99, 500, 1234, 2001, 25_000])
def test_the_energy_a_balance_buys_is_the_plain_halving_search_s(spec, balance):
    for minutes, power_w in ((480, 380), (60, 900)):
        assert allowance._most_wh(spec, T0, minutes, power_w, balance) == \
            _most_wh_by_halving(spec, minutes, power_w, balance)


def test_queue_first_come_first_served_start_in_order_and_a_leaver_dropped(app, client, lane):
    token = lane
    for c in ("A", "B", "C", "D"):
        account(client, token, [c], balance=10_000)
    set_feeder(client, token, 1000, 0)  # room for one session at the 800 W port limit
    for n in range(1, 5):
        send(app, "status", T0, port=n, status="occupied")
    assert ask(app, T0, 1, "A", "q1")["result"] == "accepted"
    b = ask(app, T0, 2, "B", "q2")
    c = ask(app, T0, 3, "C", "q3")
    d = ask(app, T0, 4, "D", "q4")
    assert (b["result"], b["position"]) == ("queued", 1)
    assert (c["position"], d["position"]) == (2, 3)
    rule = settings.budget(app.config)
    # A charges at 380 W: 620 W of headroom, still not 800 W.
    t = T0 + timedelta(seconds=30)
    send(app, "session", t, event="start", port=1, session="S1", card="A", meter_wh=0)
    send(app, "meter", t + timedelta(seconds=60), port=1, session="S1", power_w=380.0,
         energy_wh=6.0)
    with app.app_context():
        assert budget_queue.dispatch_all(t + timedelta(seconds=61), rule)["started"] == 0
        assert feeder.queue_length(1) == 3
    # C's bike leaves: dropped at once, D moves up.
    send(app, "status", t + timedelta(seconds=62), port=3, status="available")
    with app.app_context():
        assert [(r.card, r.position) for r in budget_queue.waiting(1)] == [("B", 1), ("D", 2)]
    # A ends: B gets the start at once (the ingest's batch looks at the queue), D
    # waits behind (first come, first served); the job finds nothing more to do.
    t2 = t + timedelta(minutes=90)
    send(app, "session", t2, event="stop", port=1, session="S1", energy_wh=500.0, reason="full")
    with app.app_context():
        assert budget_queue.dispatch_all(t2, rule)["started"] == 0
        starts = list(db.session.scalars(select(Command).where(Command.action == "start")))
        assert [(s.port, s.args["card"], s.args["ref"]) for s in starts] == [(2, "B", "q2")]
        assert [(r.card, r.position) for r in budget_queue.waiting(1)] == [("D", 1)]
        # B waited from T0 to A's end: the month's queue time per resident.
        from chargers.models import Alley
        waits = budget_queue.month_waits(db.session.get(Alley, 1), "2026-11")
        assert len(waits) == 1 and waits[0]["count"] == 1
        assert waits[0]["max_s"] == waits[0]["p90_s"] == (t2 - T0).total_seconds()
        b_account = waits[0]["account_id"]
        from chargers.services.billing import monthly_close
        assert monthly_close.close_month(db.session.get(Alley, 1), "2026-11",
                                         datetime(2026, 12, 2, 2, 0, tzinfo=UTC)) is not None
        db.session.commit()
    # ... on the closed month's staff page: B once, 90.5 minutes shown whole.
    from tests.webtools import login
    login(client, "root")
    page = client.get("/staff/months/lane/2026-11?lang=zh").get_data(as_text=True)
    row = re.search(rf'<tr data-account="{b_account}">(.*?)</tr>', page, re.S)
    assert row is not None, page[page.find("queue-waits") - 200:][:1500]
    cells = re.findall(r"<td>(.*?)</td>", row.group(1), re.S)
    assert cells[1:] == ["1", "90 分钟", "90 分钟", "90 分钟"], cells


def _v1_charging_over(app, prefix: str, ports: tuple[int, ...]) -> int:
    """A v1 pile (no authorize) charging on `ports` at 450 W each from T0, four
    readings a minute apart, the over-limit check after each: none stopped until it
    has been over for more than two readings. Returns how many the fourth stopped."""
    send(app, "boot", T0, ports=4)
    for n in ports:
        send(app, "session", T0 + timedelta(minutes=n), event="start", port=n,
             session=f"{prefix}{n}", card=f"C{n}", meter_wh=0)
    rule, alerts = settings.budget(app.config), settings.alerts(app.config)
    for k in range(4):
        at = T0 + timedelta(minutes=5 + k)
        for n in ports:
            send(app, "meter", at, port=n, session=f"{prefix}{n}", power_w=450.0,
                 energy_wh=10.0 * k)
        with app.app_context():
            stopped = overload.check(at + timedelta(seconds=5), rule, alerts)["stop_asked"]
        if k < 3:
            assert stopped == 0, k  # not yet over for more than two readings
    return stopped


def test_over_budget_stops_the_newest_sessions_of_v1_piles(app, client, lane):
    set_feeder(client, lane, 1000, 0)
    assert _v1_charging_over(app, "V", (1, 2, 3)) == 1
    with app.app_context():
        [stop] = list(db.session.scalars(select(Command).where(Command.action == "stop")))
        assert stop.port == 3  # the newest
        from chargers.models import Alert
        alert = db.session.scalar(select(Alert).where(Alert.code == "over_budget"))
        assert alert is not None and alert.pile_id == "P-1"
        alert_id = alert.id
    # Staff see the alert with the feeder's load chart of that day.
    from tests.webtools import login
    login(client, "root")
    page = client.get(f"/staff/alerts/{alert_id}?lang=zh").get_data(as_text=True)
    assert "小区供电超过限额" in page and "<polyline" in page and "限额 1000 瓦" in page


def test_an_authorize_applied_before_its_occupied_status_is_not_taken_for_a_bike_that_left(
        app, client, lane):
    """An authorize jumps the inbox's line (ingest/client.py): the port may still read
    `available` from before the bike came. Only a status after the question drops."""
    for c in ("A", "B"):
        account(client, lane, [c], balance=10_000)
    set_feeder(client, lane, 1000, 0)
    send(app, "status", T0 - timedelta(minutes=5), port=2, status="available")
    send(app, "status", T0, port=1, status="occupied")
    assert ask(app, T0, 1, "A", "r1")["result"] == "accepted"
    assert ask(app, T0 + timedelta(seconds=2), 2, "B", "r2")["result"] == "queued"
    rule = settings.budget(app.config)
    with app.app_context():
        assert budget_queue.dispatch_all(T0 + timedelta(seconds=5), rule)["dropped"] == 0
    send(app, "status", T0 + timedelta(seconds=1), port=2, status="occupied")  # late
    with app.app_context():
        assert [r.card for r in budget_queue.waiting(1)] == ["B"]
    send(app, "status", T0 + timedelta(minutes=3), port=2, status="available")  # gone
    with app.app_context():
        assert budget_queue.waiting(1) == []
        rec = db.session.scalar(select(Authorization).where(Authorization.card == "B"))
        assert (rec.queue_state, rec.drop_reason) == ("dropped", "left")


def test_a_piles_own_limit_queues_its_cards_without_holding_up_other_piles(app, client, lane):
    """Staff may set a pile's own limit (its line): a card there waits for room on it,
    while the alley's feeder still has room for a card on another pile."""
    from tests.budget_support import register_piles
    register_piles(client, lane, 2)
    for c in ("A", "B", "C"):
        account(client, lane, [c], balance=10_000)
    set_feeder(client, lane, 5000, 0)
    r = client.patch("/api/v1/piles/P-1", json={"power_limit_w": 1000}, headers=bearer(lane))
    assert r.status_code == 200 and r.json["power_limit_w"] == 1000
    send(app, "boot", T0, pile="P-2", ports=4, features=["config", "authorize", "start"])
    for pile, port in (("P-1", 1), ("P-1", 2), ("P-2", 1)):
        send(app, "status", T0, pile=pile, port=port, status="occupied")
    assert ask(app, T0, 1, "A", "p1")["result"] == "accepted"
    assert ask(app, T0, 2, "B", "p2")["result"] == "queued"  # P-1's line is full
    # First come, first served in the alley: C queues behind B, but B's pile being full
    # does not stop C's start on P-2.
    assert ask(app, T0, 1, "C", "p3", pile="P-2")["result"] == "queued"
    with app.app_context():
        out = budget_queue.dispatch_all(T0 + timedelta(seconds=5), settings.budget(app.config))
        assert out["started"] == 1
        [start] = list(db.session.scalars(select(Command).where(Command.action == "start")))
        assert (start.pile_id, start.args["card"]) == ("P-2", "C")
        assert [r.card for r in budget_queue.waiting(1)] == ["B"]


def test_an_authorize_jumps_the_inbox_line():
    """The worker's inbox hands out urgent kinds (authorize) first, the rest in arrival
    order; a batch that starts with an urgent one holds only urgent ones."""
    from chargers.ingest.client import Inbox, IngestClient, Received
    from tests.ingest_support import incoming

    box = Inbox()
    kinds = ["meter", "status", "authorize", "meter", "authorize", "heartbeat"]
    for i, kind in enumerate(kinds):
        box.put(Received(incoming(kind, pile=f"P-{i}"), i, 1, 0))
    ic = IngestClient.__new__(IngestClient)  # only the inbox and the batch limits
    ic.inbox, ic.carry, ic.batch_max, ic.batch_wait_s = box, [], 200, 0.0
    ic._contended_until = 0.0
    first = ic._take()
    assert [r.mid for r in first] == [2, 4]
    assert [r.mid for r in ic._take()] == [0, 1, 3, 5]


def test_the_budgets_sums_count_fresh_readings_and_admitted_sessions_not_yet_reporting(
        app, client, lane):
    """feeder's one statement (load now, expected draw, queue, silent load) against the
    rows: a stale reading, another pile's reading, an admitted card not reporting yet."""
    from tests.budget_support import register_piles
    register_piles(client, lane, 2)
    for c in ("A", "B", "C"):
        account(client, lane, [c], balance=10_000)
    set_feeder(client, lane, 10_000, 0)
    send(app, "boot", T0, pile="P-2", ports=4, features=["config", "authorize", "start"])
    rule = settings.budget(app.config)
    stale = T0 - timedelta(seconds=rule.reading_fresh_s + 60)
    for pile, port, sid, at, w in (("P-1", 1, "S1", T0, 380.0), ("P-2", 1, "S2", T0, 420.0),
                                   ("P-1", 2, "S3", stale, 999.0)):
        send(app, "session", at - timedelta(seconds=30), pile=pile, event="start", port=port,
             session=sid, card=f"Q{port}{pile}", meter_wh=0)
        send(app, "meter", at, pile=pile, port=port, session=sid, power_w=w, energy_wh=5.0)
    send(app, "status", T0, port=3, status="occupied")
    got = ask(app, T0, 3, "A", "x1")
    assert got["result"] == "accepted"
    now = T0 + timedelta(seconds=5)
    with app.app_context():
        from chargers.models import Alley
        alley = db.session.get(Alley, 1)
        b = feeder.budget(alley, now, rule)
        fresh = feeder.charging_sessions(1, now, rule)
        assert sorted(s.session_ref for s in fresh) == ["S1", "S2"]
        assert b.load_w == sum(s.last_power_w for s in fresh) == 800.0
        expected = db.session.scalar(select(Authorization.expected_w))
        assert b.pending_w == expected and b.queue == 0
        # S3's readings stopped coming: not in the load now (nor in an over-limit stop),
        # but its last power keeps its room for admission until the session ends.
        assert b.silent_w == 999.0
        assert b.headroom_w == 10_000 - 800.0 - expected - 999.0
        assert feeder.load_w(1, now, rule, "P-2") == 420.0
        assert feeder.pending_w(1, now, rule, "P-2") == 0
        assert feeder.pending_w(1, now, rule, "P-1") == expected
        # Past admit_ttl_s the admitted card no longer counts as coming.
        later = T0 + timedelta(seconds=rule.admit_ttl_s + 1)
        assert feeder.pending_w(1, later, rule) == 0


def test_a_pile_over_its_own_limit_has_its_newest_session_stopped(app, client, lane):
    """A pile's own limit (its supply line) is watched like the feeder: a v1 pile's
    load over it for more than two readings stops its newest session and raises the
    over-limit alert on it, which clears once the line is back under. The alley's
    feeder (no limit here) is not involved."""
    r = client.patch("/api/v1/piles/P-1", json={"power_limit_w": 800}, headers=bearer(lane))
    assert r.status_code == 200
    assert _v1_charging_over(app, "W", (1, 2)) == 1
    rule, alerts = settings.budget(app.config), settings.alerts(app.config)
    from chargers.models import Alert
    with app.app_context():
        [stop] = list(db.session.scalars(select(Command).where(Command.action == "stop")))
        assert stop.port == 2  # the newest on the pile
        alert = db.session.scalar(select(Alert).where(Alert.code == "over_budget"))
        assert alert.status == "active" and alert.value == 900
        notes = [alert.note or "", *(e.note or "" for e in alert.events)]
        assert any("own limit 800 W" in n for n in notes), notes
    # The pile confirms the stop; its line is back under: the alert clears.
    at = T0 + timedelta(minutes=10)
    send(app, "session", at, event="stop", port=2, session="W2", energy_wh=40.0,
         reason="remote")
    send(app, "meter", at, port=1, session="W1", power_w=450.0, energy_wh=50.0)
    with app.app_context():
        overload.check(at + timedelta(seconds=5), rule, alerts)
        assert db.session.scalar(select(Alert.status).where(Alert.code == "over_budget")) \
            != "active"
        assert db.session.get(Pile, "P-1").over_limit_since is None


def test_staff_set_a_piles_own_limit_on_its_form(app, client, lane):
    from tests.webtools import login, post_form
    login(client, "root")
    page = client.get("/staff/piles/P-1/edit?lang=zh").get_data(as_text=True)
    assert "本桩线路充电限额（瓦）" in page
    form = {"label": "1号桩", "ports": "4", "location_note": "", "enabled": "y",
            "power_limit_w": "1200"}
    assert post_form(client, "/staff/piles/P-1/edit", form).status_code == 302
    with app.app_context():
        assert db.session.get(Pile, "P-1").power_limit_w == 1200
    assert post_form(client, "/staff/piles/P-1/edit",
                     {**form, "power_limit_w": ""}).status_code == 302
    with app.app_context():
        assert db.session.get(Pile, "P-1").power_limit_w is None


def test_a_new_pile_takes_its_own_limit_on_the_form(app, client, lane):
    from tests.webtools import login, post_form
    login(client, "root")
    r = post_form(client, "/staff/alleys/lane/piles/new",
                  {"id": "P-9", "label": "", "ports": "4", "location_note": "", "enabled": "y",
                   "power_limit_w": "900"})
    assert r.status_code == 302 and "/secret" in r.headers["Location"]
    with app.app_context():
        assert db.session.get(Pile, "P-9").power_limit_w == 900


def test_a_session_whose_readings_stopped_keeps_its_room_but_is_not_stopped_for_it(
        app, client, lane):
    """A pile (or the worker) falls silent while a port charges: the port may well still
    draw, so the next card is queued, not admitted into room that may not exist; and
    no over-limit stop is made on a reading that old."""
    for c in ("A", "B"):
        account(client, lane, [c], balance=10_000)
    set_feeder(client, lane, 1_000, 0)
    rule = settings.budget(app.config)
    send(app, "session", T0, event="start", port=1, session="S1", card="Q1", meter_wh=0)
    send(app, "meter", T0 + timedelta(seconds=30), port=1, session="S1", power_w=700.0,
         energy_wh=1.0)
    later = T0 + timedelta(seconds=30 + rule.reading_fresh_s + 60)  # no reading since
    send(app, "status", later, port=2, status="occupied")
    got = ask(app, later, 2, "A", "x1")
    assert got["result"] == "queued", got
    with app.app_context():
        from chargers.models import Alley
        b = feeder.budget(db.session.get(Alley, 1), later, rule)
        assert (b.load_w, b.silent_w) == (0.0, 700.0)
        overload.check(later, rule, settings.alerts(app.config))
        assert not list(db.session.scalars(select(Command).where(Command.action == "stop")))
