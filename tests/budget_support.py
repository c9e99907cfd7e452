"""Helpers for the power-budget tests: an alley of v1.1 piles with residents' accounts,
its tariff and feeder limit, through the API; simulated piles (chargers/simulator.py)
that a test drives port by port."""

from __future__ import annotations

import random
import threading
import time

from sqlalchemy import select

from chargers.extensions import db
from chargers.models import Authorization, Command
from chargers.mqtt_settings import BrokerAddress
from chargers.services.demo.cards import anonymous as anonymous_cards
from chargers.simulator import Behaviour, CardBox, SimPile
from tests.billing_support import set_tariff
from tests.conftest import bearer

V11 = ("config", "authorize", "start")


def register_piles(client, token, n: int, ports: int = 4, slug: str = "lane") -> dict[str, str]:
    """Piles P-2.. P-n (P-1 comes with `alley_with_pile`); their secrets by id."""
    out = {}
    for i in range(2, n + 1):
        r = client.post("/api/v1/piles", json={"id": f"P-{i}", "alley": slug, "ports": ports},
                        headers=bearer(token))
        assert r.status_code == 201, r.json
        out[f"P-{i}"] = r.json["secret"]
    return out


def account(client, token, cards: list[str], kind: str = "prepaid", balance: int = 0,
            slug: str = "lane", **extra) -> int:
    """A resident account holding `cards`, topped up with `balance` fen."""
    r = client.post("/api/v1/accounts", json={"alley": slug, "cards": cards, "kind": kind,
                                              **extra}, headers=bearer(token))
    assert r.status_code == 201, r.json
    acc = r.json["id"]
    if balance:
        r = client.post(f"/api/v1/accounts/{acc}/topups",
                        json={"amount_cents": balance, "method": "cash"}, headers=bearer(token))
        assert r.status_code == 201, r.json
    return acc


def energy_tariff(app, slug: str = "lane", cents_per_kwh: int = 100, **fields) -> None:
    """A plain tariff: electricity per kWh, no service fee, no minimum, per minute."""
    with app.app_context():
        base = dict(electricity_cents_per_kwh=cents_per_kwh, electricity_millifen_per_kwh=None,
                    service_scheme="none", service_cents=0, minimum_cents=0, step_minutes=1,
                    free_minutes=0, cap_cents=None)
        set_tariff(slug, **{**base, **fields})


def feeder(client, token, limit_w: int | None, margin_w: int | None = 0, slug: str = "lane"):
    r = client.patch(f"/api/v1/alleys/{slug}", json={"feeder_limit_w": limit_w,
                                                     "feeder_margin_w": margin_w},
                     headers=bearer(token))
    assert r.status_code == 200, r.json
    return r.json


def records(app) -> list[Authorization]:
    with app.app_context():
        rows = list(db.session.scalars(select(Authorization).order_by(Authorization.id)))
        for r in rows:
            db.session.expunge(r)
        return rows


def commands(app, action: str) -> list[Command]:
    with app.app_context():
        rows = list(db.session.scalars(select(Command).where(Command.action == action)
                                       .order_by(Command.created_at, Command.id)))
        for r in rows:
            db.session.expunge(r)
        return rows


class DrivenPile(SimPile):
    """A simulated v1.1 pile whose residents the test brings: `present(port, card)`
    plugs a bike in and presents the card (the pile asks `authorize` and obeys the
    answer), `unplug(port)` takes a waiting bike away. Nobody else comes."""

    def present(self, port_no: int, card: str, need_wh: float | None = None) -> None:
        with self.lock:
            port = self.state.ports[port_no - 1]
            self._status(port, "occupied")
            if need_wh is not None:
                self.need_override[port_no] = need_wh
            self.cards = _FixedCard(card)
            if "authorize" in self.features:
                self._ask(port, self.clock())
            else:  # a v1 pile switches on at once
                self._start_session(port, self.clock())

    def unplug(self, port_no: int) -> None:
        with self.lock:
            port = self.state.ports[port_no - 1]
            port.queued_ref, port.leave_queue_at, port.card = None, None, None
            self._status(port, "available")
            port.next_at = float("inf")

    def _start_session(self, port, now, max_wh=None, max_minutes=None):
        super()._start_session(port, now, max_wh, max_minutes)
        need = self.need_override.pop(port.number, None)
        if need is not None:
            port.need_wh = need

    def _tick_port(self, port, now):
        if port.status in ("available", "finishing") and port.session is None:
            return  # nobody comes unless the test brings them
        super()._tick_port(port, now)


class _FixedCard(CardBox):
    def __init__(self, card: str):
        super().__init__(anonymous_cards())
        self.card = card

    def take(self, rng):
        return self.card


class Piles:
    """Driven piles against the test broker, ticked in a thread of their own;
    simulated time runs `speed` times the real clock."""

    def __init__(self, broker, secrets: dict[str, str], *, speed: float = 600,
                 features=V11, behaviour: Behaviour | None = None, ports: int = 4):
        self.t0 = time.monotonic()
        self.speed = speed
        b = behaviour or Behaviour(mean_idle_s=1e12, fault_rate=0.0, early_leave=0.0,
                                   battery_mix=(("lithium", 1.0),), need_wh=(2500, 2500),
                                   power_w=(380, 380), mean_stay_s=1e12)
        address = BrokerAddress("127.0.0.1", broker.port)
        self.piles: dict[str, DrivenPile] = {}
        for i, (pile_id, secret) in enumerate(sorted(secrets.items())):
            p = DrivenPile(pile_id, ports, secret, address, "chargers/v1", b, self.clock,
                           random.Random(i), None, features)
            p.need_override = {}
            self.piles[pile_id] = p
        self.stop_flag = threading.Event()
        for p in self.piles.values():
            p.start()
        for p in self.piles.values():
            assert p.connected.wait(10), f"{p.id} did not connect"
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def clock(self) -> float:
        return (time.monotonic() - self.t0) * self.speed

    def _run(self) -> None:
        while not self.stop_flag.is_set():
            for p in self.piles.values():
                try:
                    p.tick()
                except Exception:  # noqa: BLE001 - a test pile's bug shows in its assertions
                    import logging
                    logging.getLogger(__name__).exception("tick")
            self.stop_flag.wait(0.02)

    def __getitem__(self, pile_id: str) -> DrivenPile:
        return self.piles[pile_id]

    def close(self) -> None:
        self.stop_flag.set()
        self.thread.join(2)
        for p in self.piles.values():
            p.stop(announce=False, timeout=1)
