"""An alley holding every state a port or pile can be in, plus billing state, for
tests that look at every page (tests/test_crawler.py).

The state is made as the real doors would leave it: piles speak the device protocol
through the ingest handlers (boot, online, status, session, meter, fault, ack), staff
act through the services (commands, accounts, top-ups, review), and the jobs run with
a chosen `now` (settlement, overstay). Nothing is written to a model directly.

To add a state: write a builder `def _my_state(ctx, pile_id, port)` that sends what a
pile (and staff) would, add it to BUILDERS, and give it a slot in LAYOUT (a port of an
existing pile, or a new pile). `seed()` returns where each state landed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from flask import current_app
from sqlalchemy import select

from chargers import settings
from chargers.extensions import db
from chargers.ingest import handlers
from chargers.models import CardProfile, ChargingSession, Command, PaymentOrder, Pile, User
from chargers.services import onboarding, users
from chargers.services.alerts import cutoff, reports
from chargers.services.billing import accounts as residents
from chargers.services.billing import balance_guard, settlement
from chargers.services.budget import feeder, overload
from chargers.services.devices import alleys, commands, piles
from chargers.services.maintenance import overstay

from .conftest import PASSWORD
from .ingest_support import body, incoming, ts

SLUG = "quanzhuangtai"
# Everything staff typed (names, places, households) or piles sent (ids, cards, model):
# the only Chinese an English page may show, and the only Latin a Chinese page may.
ALLEY = alleys.AlleyInput(slug=SLUG, name="全状态巷", street="双塔街道", community="九如社区",
                          address="姑苏区全状态巷 8 号", contacts="网格员 王阿姨 13800001234",
                          auto_cutoff=True)
MODEL, FIRMWARE = "EB-10", "2.4.1"
ADMIN, STAFF = "root", "li"


@dataclass
class Ctx:
    """What the builders share: the clock, the acting staff member, what they sent."""
    now: datetime
    admin: User
    typed: set[str] = field(default_factory=set)
    _n: int = 0

    def ref(self, prefix: str) -> str:
        self._n += 1
        self.typed.add(f"{prefix}{self._n}")  # the pile's own session ids, shown as sent
        return f"{prefix}{self._n}"

    def send(self, pile_id: str, kind: str, payload=None, *, at: datetime | None = None,
             **fields) -> None:
        """One device message through the ingest, as the worker hands it in."""
        if payload is None:
            payload = body(kind, ts=ts(at or self.now), **fields)
        out = handlers.process([incoming(kind, payload, pile=pile_id,
                                         arrived_at=at or self.now)], now=self.now)
        assert out == ["accepted"], (pile_id, kind, fields, out)

    def session(self, pile_id: str, port: int, card: str | None, start: datetime,
                end: datetime | None, reason: str | None, wh: float = 600.0) -> str:
        """A charge as the pile reports it: start, a few readings, stop (unless `end`
        is None: still charging)."""
        ref = self.ref("S")
        self.send(pile_id, "session", at=start, event="start", port=port, session=ref,
                  **({"card": card} if card else {}), meter_wh=1000.0)
        self.send(pile_id, "status", at=start, port=port, status="charging")
        last = end or self.now
        for i in range(1, 4):
            at = start + (last - start) * i / 4
            self.send(pile_id, "meter", at=at, port=port, session=ref, power_w=300.0,
                      energy_wh=wh * i / 4, voltage_v=220.0, current_a=1.4, temp_c=35.0)
        if end is not None:
            self.send(pile_id, "session", at=end, event="stop", port=port, session=ref,
                      energy_wh=wh, reason=reason)
        return ref

    def ack(self, cmd: Command, at: datetime) -> None:
        self.send(cmd.pile_id, "ack", at=at, cmd=cmd.id, result="accepted")


# -- one builder per state: (ctx, pile id, port or None for the whole pile) ------------

def _free(ctx: Ctx, pile_id: str, port: int) -> None:
    ctx.send(pile_id, "status", at=ctx.now - timedelta(minutes=20), port=port, status="available")


def _occupied(ctx: Ctx, pile_id: str, port: int) -> None:
    ctx.send(pile_id, "status", at=ctx.now - timedelta(minutes=3), port=port, status="occupied")


def _charging(ctx: Ctx, pile_id: str, port: int) -> None:
    ctx.session(pile_id, port, "C-1001", ctx.now - timedelta(minutes=50), None, None)


def _finished(ctx: Ctx, pile_id: str, port: int, minutes_ago: int = 10) -> None:
    end = ctx.now - timedelta(minutes=minutes_ago)
    ctx.session(pile_id, port, "C-1001", end - timedelta(hours=2), end, "full")
    ctx.send(pile_id, "status", at=end, port=port, status="finishing")


def _finished_overstay(ctx: Ctx, pile_id: str, port: int) -> None:
    _finished(ctx, pile_id, port, minutes_ago=50)  # the overstay job runs in seed()


def _stopped_remotely(ctx: Ctx, pile_id: str, port: int) -> None:
    start, stop = ctx.now - timedelta(hours=1), ctx.now - timedelta(minutes=15)
    ref = ctx.session(pile_id, port, "C-2002", start, None, None)
    cmd = commands.issue(ctx.admin, pile_id, port, "stop", now=stop)
    ctx.ack(cmd, stop)
    ctx.send(pile_id, "session", at=stop, event="stop", port=port, session=ref,
             energy_wh=400.0, reason="remote")
    ctx.send(pile_id, "status", at=stop, port=port, status="finishing")


def _faulted(ctx: Ctx, pile_id: str, port: int) -> None:
    at = ctx.now - timedelta(minutes=25)
    ctx.send(pile_id, "fault", at=at, port=port, code="over_current", active=True, value=17.5)
    ctx.send(pile_id, "status", at=at, port=port, status="faulted", error="over_current")


def _smoke(ctx: Ctx, pile_id: str, port: int) -> None:
    """An open critical smoke alert on one port; the pile carried out the automatic
    cut-off and said so (acked, its ports out of service): confirmed."""
    at = ctx.now - timedelta(minutes=4)
    ctx.send(pile_id, "fault", at=at, port=port, code="smoke", active=True,
             detail="smoke sensor 2")
    ctx.typed.add("smoke sensor 2")  # the pile's own words, shown to staff as sent
    cmds = list(db.session.scalars(select(Command).where(Command.pile_id == pile_id)))
    for cmd in cmds:
        cmd.status = "sent"  # as the dispatcher leaves them
    db.session.commit()
    for cmd in cmds:
        ctx.ack(cmd, at + timedelta(seconds=1))
    for n in range(1, len(db.session.get(Pile, pile_id).ports) + 1):
        ctx.send(pile_id, "status", at=at + timedelta(seconds=1), port=n, status="unavailable")


def _smoke_unconfirmed(ctx: Ctx, pile_id: str, port: int) -> None:
    """Smoke, and the pile never answered the cut-off: unconfirmed after the
    cutoff-track job (run at the end of the seed)."""
    ctx.send(pile_id, "fault", at=ctx.now - timedelta(minutes=2), port=port, code="smoke",
             active=True)


def _disabled(ctx: Ctx, pile_id: str, port: int) -> None:
    at = ctx.now - timedelta(hours=3)
    cmd = commands.issue(ctx.admin, pile_id, port, "disable", now=at)
    ctx.ack(cmd, at)
    ctx.send(pile_id, "status", at=at, port=port, status="unavailable")


def _authorize_pile(ctx: Ctx, pile_id: str, port: None) -> None:
    """A v1.1 pile that asks before switching on (boots with `authorize`)."""
    ctx.send(pile_id, "boot", at=ctx.now - timedelta(hours=1), model=MODEL, firmware=FIRMWARE,
             ports=3, max_power_w=1000, features=["config", "authorize", "start"])


def _admitted(ctx: Ctx, pile_id: str, port: int) -> None:
    """A card accepted under the alley's power budget, now charging. Its past charges
    drew 250 W: that fits the 300 W the feeder has left (EV-1's and EV-5's charging
    ports fell silent 13 minutes ago and keep 600 W of its 900 W)."""
    pile = db.session.get(Pile, pile_id)
    db.session.add(CardProfile(alley_id=pile.alley_id, card="C-1001", sessions=3, bulk_w=250.0,
                               energy_wh=900.0, energy_low_wh=700.0, updated_at=ctx.now))
    db.session.commit()
    at = ctx.now - timedelta(minutes=40)
    ctx.send(pile_id, "status", at=at, port=port, status="occupied")
    ctx.send(pile_id, "authorize", at=at, port=port, card="C-1001")
    ref = ctx.session(pile_id, port, "C-1001", at + timedelta(seconds=2), None, None, wh=200.0)
    ctx.send(pile_id, "meter", port=port, session=ref, power_w=420.0, energy_wh=210.0)


def _queued(ctx: Ctx, pile_id: str, port: int) -> None:
    """A card queued: the budget had no room (排队中，第 1 位)."""
    at = ctx.now - timedelta(minutes=5)
    ctx.send(pile_id, "status", at=at, port=port, status="occupied")
    ctx.send(pile_id, "authorize", at=at, port=port, card="C-3003")


def _refused(ctx: Ctx, pile_id: str, port: int) -> None:
    """A card the pile asked about that nobody holds: refused."""
    at = ctx.now - timedelta(minutes=3)
    ctx.send(pile_id, "status", at=at, port=port, status="occupied")
    ctx.send(pile_id, "authorize", at=at, port=port, card="C-7777")
    ctx.send(pile_id, "status", at=at + timedelta(seconds=30), port=port, status="available")
    ctx.typed.add("C-7777")


def _offline(ctx: Ctx, pile_id: str, port: None) -> None:
    ctx.send(pile_id, "online", b"0", at=ctx.now - timedelta(hours=2))


BUILDERS: dict[str, Callable] = {
    "free": _free, "occupied": _occupied, "charging": _charging, "finished": _finished,
    "finished_overstay": _finished_overstay, "stopped_remotely": _stopped_remotely,
    "faulted": _faulted, "smoke": _smoke, "disabled": _disabled, "offline": _offline,
    "cutoff_unconfirmed": _smoke_unconfirmed,
    "authorize_pile": _authorize_pile, "admitted": _admitted, "queued": _queued,
    "refused": _refused,
}

# (pile id, label, location, [state of port 1, port 2, …], state of the whole pile).
# Smoke makes its whole pile unsafe, and an offline pile hides its ports: each on a
# pile of its own.
LAYOUT = [
    ("EV-1", "1号桩", "巷口", ["free", "occupied", "charging", "finished"], None),
    ("EV-2", "2号桩", "3号门", ["finished_overstay", "stopped_remotely", "faulted", "disabled"],
     None),
    ("EV-3", "3号桩", "消防通道旁", ["smoke", "free"], None),
    ("EV-4", "4号桩", "巷尾", ["free", "free"], "offline"),
    ("EV-5", "5号桩", "晾衣架下", ["charging", "cutoff_unconfirmed"], None),
    # A pile that asks before switching on, under the alley's feeder limit: one charging
    # on an accepted card, one waiting in the queue, one refused.
    ("EV-6", "6号桩", "车棚里", ["admitted", "queued", "refused"], "authorize_pile"),
]

HOUSEHOLDS = [  # (card, kind, household, name, phone)
    ("C-1001", "prepaid", "3号门 王家", "王阿姨", "13800005678"),
    ("C-2002", "monthly", "7号门 李家", "李师傅", "13900001111"),
    ("C-3003", "prepaid", "9号门 张家", "张奶奶", "13600003333"),
]


@dataclass
class Seeded:
    slug: str
    piles: list[str]
    where: dict[str, tuple[str, int | None]]  # state → (pile, port or None)
    typed: set[str]
    receipts: list[str]
    pay_pages: list[str] = field(default_factory=list)
    admin: str = ADMIN
    staff: str = STAFF


def seed(now: datetime | None = None, emu=None) -> Seeded:
    """Build the alley (inside an app context; commits). Returns where things are.
    With `emu` (a served chargers.devtools.payemu the app is configured for): online
    top-ups in every state, refunds, rejected notifications and reconciliation findings."""
    now = now or datetime.now(UTC).replace(microsecond=0)
    config = current_app.config
    admin = users.create_user(ADMIN, PASSWORD, "admin")
    onboarding.create_alley(ALLEY, settings.alley_defaults(config), by=admin)
    users.create_user(STAFF, PASSWORD, "staff", [SLUG])
    ctx = Ctx(now, admin)
    ctx.typed |= {v for v in (ALLEY.name, ALLEY.street, ALLEY.community, ALLEY.address,
                              ALLEY.contacts, SLUG, MODEL, FIRMWARE, ADMIN, STAFF) if v}
    boot_at = now - timedelta(hours=6)
    for pile_id, label, place, states, _ in LAYOUT:
        piles.register_pile(admin, piles.PileInput(id=pile_id, alley=SLUG, ports=len(states),
                                                   label=label, location_note=place))
        db.session.commit()
        ctx.typed |= {pile_id, label, place}
        ctx.send(pile_id, "online", b"1", at=boot_at)
        ctx.send(pile_id, "boot", at=boot_at, model=MODEL, firmware=FIRMWARE,
                 ports=len(states), max_power_w=1000)
        for port in range(1, len(states) + 1):
            ctx.send(pile_id, "status", at=boot_at, port=port, status="available")
    _billing(ctx)
    where: dict[str, tuple[str, int | None]] = {}
    # The feeder: room for one session of a card with a history (the second card, at
    # the port limit, queues), and the load sampled over the last hours (the staff
    # feeder page's curve).
    budget_rule = settings.budget(config)
    feeder.set_limit(ctx.admin, SLUG, {"feeder_limit_w": 1000, "feeder_margin_w": 100}, now)
    for pile_id, _, _, states, pile_state in LAYOUT:
        if pile_state == "authorize_pile":  # it boots with the feature before its cards
            BUILDERS[pile_state](ctx, pile_id, None)
            where[pile_state] = (pile_id, None)
            pile_state = None
        for port, state in enumerate(states, start=1):
            BUILDERS[state](ctx, pile_id, port)
            where.setdefault(state, (pile_id, port))
        if pile_state:
            BUILDERS[pile_state](ctx, pile_id, None)
            where[pile_state] = (pile_id, None)
    # The jobs, at the seed's clock: the feeder's samples, overstays, settlement.
    for minutes in range(180, -1, -10):
        overload.check(now - timedelta(minutes=minutes), budget_rule, settings.alerts(config))
    overstay.scan(settings.overstay(config), now)
    rules = settings.alerts(config)  # the cut-off job, once its confirmation time is past
    cutoff.track(now + timedelta(seconds=rules.cutoff.confirm_s + 1), rules)
    settlement.settle(now)
    receipts = list(db.session.scalars(
        select(ChargingSession.receipt_token).where(ChargingSession.receipt_token.is_not(None))
        .order_by(ChargingSession.id)))
    db.session.commit()
    pay_pages = _payments(ctx, emu) if emu is not None else []
    return Seeded(SLUG, [p[0] for p in LAYOUT], where, ctx.typed, receipts, pay_pages)


def _payments(ctx: Ctx, emu) -> list[str]:
    """Online top-ups as the doors leave them: paid by WeChat Native and Alipay (the
    signed notifications through the service the notify view calls), one never paid
    and closed by the expiry job, refunds confirmed and under way, a forged
    notification, and the previous day's reconciliation with a finding of each kind.
    Returns the resident pages to start from (the 充值 page, the orders)."""
    from itsdangerous import URLSafeTimedSerializer

    from chargers.devtools.payemu import Trade
    from chargers.models import ResidentAccount
    from chargers.services.payments import notifications, orders, providers, reconcile, refunds

    rules = settings.payments(current_app.config)
    acc = db.session.scalar(select(ResidentAccount).where(ResidentAccount.household == "3号门 王家"))
    emu.deliver = lambda url, headers, body: 204  # delivered below, through the service
    _closed_online_month(ctx, emu, rules)
    paid = []
    for channel, fen in (("wechat_native", 2000), ("alipay_wap", 5000), ("wechat_h5", 1000),
                         ("wechat_native", 10000)):
        placed = orders.place(acc.id, fen, channel, rules, ctx.now - timedelta(hours=2),
                              return_url="http://localhost/pay/o/{order_no}")
        no = placed.order.order_no
        if channel == "alipay_wap":
            emu.trades[no] = Trade("alipay", no, fen, "", kind="QUICK_WAP_WAY")
        emu.pay(no, notify=False)
        if channel == "alipay_wap":
            form = emu.alipay_notice(no)
            assert notifications.alipay(form, rules, ctx.now).outcome == "posted"
        else:
            headers, body = emu.wechat_notice(no)
            assert notifications.wechat(headers, body, rules, ctx.now).outcome == "posted"
        paid.append(no)
    headers, body = emu.wechat_notice(paid[0], mchid="1900000999")
    notifications.wechat(headers, body, rules, ctx.now)  # another merchant's: rejected
    unpaid = orders.place(acc.id, 3000, "wechat_native", rules, ctx.now - timedelta(hours=1))
    orders.close_unconfirmed(rules, ctx.now)
    pending = orders.place(acc.id, 1500, "wechat_native", rules, ctx.now)
    refunds.ask(ctx.admin, paid[1], 1000, "搬家", rules, ctx.now)
    refunds.track(rules, ctx.now)
    emu.refund_outcome = "PROCESSING"
    refunds.ask(ctx.admin, paid[0], 500, "", rules, ctx.now)
    # The provider's day: the bill of `paid` with one line missing, one amount and one
    # fee different, and a payment only the provider knows of.
    emu.bill_tweaks[paid[2]] = {"drop": True}
    emu.bill_tweaks[paid[3]] = {"fee_cents": 100}
    emu.bill_tweaks[paid[1]] = {"amount_cents": 4000}
    emu.extra_lines.append(Trade("wechat", "T20990101000000ffffffffffffffff", 3000, "",
                                 kind="NATIVE", state="SUCCESS", txn="4200000000stranger",
                                 mchid=emu.mchid, appid=emu.appid, paid_at=ctx.now))
    day = ctx.now.astimezone(providers.CST).date()
    for o in db.session.scalars(select(PaymentOrder)):
        if o.paid_at is not None:
            emu.trades[o.order_no].paid_at = o.paid_at
    reconcile.run(rules, day, ctx.now)
    db.session.commit()
    # Order and refund numbers are codes; the provider's bill lines are shown as sent.
    from chargers.models import PaymentMismatch, PaymentRefund

    ctx.typed |= set(db.session.scalars(select(PaymentOrder.order_no)))
    ctx.typed |= set(db.session.scalars(select(PaymentRefund.refund_no)))
    ctx.typed |= {"搬家", "T20990101000000ffffffffffffffff"}
    for line in db.session.scalars(select(PaymentMismatch.line)):
        ctx.typed |= {str(x) for kv in (line or {}).items() for x in kv}
    token = URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="topup").dumps(acc.id)
    return [f"/a/{SLUG}/topup/{token}", *(f"/pay/o/{n}" for n in paid),
            f"/pay/o/{unpaid.order.order_no}", f"/pay/o/{pending.order.order_no}"]


def _closed_online_month(ctx: Ctx, emu, rules) -> None:
    """A closed month (two months back, so that no charge of the seed falls in it) of a
    household that topped up by WeChat Pay and Alipay and had part refunded to WeChat
    Pay, confirmed: its statement, the month close and the 公示 hold online lines."""
    from chargers.devtools.payemu import Trade
    from chargers.models import Alley
    from chargers.services.billing import monthly_close
    from chargers.services.payments import notifications, orders, refunds

    alley = db.session.scalar(select(Alley).where(Alley.slug == SLUG))
    tz = alleys.zone(alley)
    month = monthly_close._prev(monthly_close._prev(monthly_close.local_month(ctx.now, tz)))
    start, _end = monthly_close.bounds(month, tz)
    t = start + timedelta(days=10, hours=3)
    card, household, name, phone = "C-2010", "9号门 赵家", "赵阿姨", "13700002222"
    acc = residents.create_account(ctx.admin, residents.AccountInput(
        alley=SLUG, cards=[card], kind="prepaid", household=household, name=name, phone=phone),
        t - timedelta(days=1))
    ctx.typed |= {card, household, name, phone, "退一部分"}
    paid = {}
    for channel, fen in (("wechat_native", 5000), ("alipay_wap", 2000)):
        no = orders.place(acc.id, fen, channel, rules, t).order.order_no
        if channel == "alipay_wap":
            emu.trades[no] = Trade("alipay", no, fen, "", kind="QUICK_WAP_WAY")
        emu.pay(no, notify=False)
        emu.trades[no].paid_at = t
        if channel == "alipay_wap":
            outcome = notifications.alipay(emu.alipay_notice(no, notify_time=t), rules, t)
        else:
            headers, body = emu.wechat_notice(no, timestamp=int(t.timestamp()))
            outcome = notifications.wechat(headers, body, rules, t)
        assert outcome.outcome == "posted", outcome
        paid[channel] = no
    emu.refund_outcome = "SUCCESS"
    later = t + timedelta(hours=1)
    refunds.ask(ctx.admin, paid["wechat_native"], 1500, "退一部分", rules, later)
    refunds.track(rules, later)
    db.session.commit()
    mc = monthly_close.close_month(alley, month, ctx.now)
    assert mc is not None and mc.online_cents == 7000 - 1500, mc and mc.online_cents
    # The households opened after that month have no statement of it; this one has.
    assert [acc.id for _st, acc in monthly_close.statements_for(mc)] == [acc.id]


def _hears_by_wechat(ctx: Ctx, account_id: int) -> None:
    """The household linked its WeChat (the openid as the official account's OAuth
    leaves it: that door is the payments work, so it is the one row written here) and
    chose WeChat and SMS, night messages welcome: its charges send session messages,
    listed on its account page."""
    from chargers.models import ResidentChannels
    from chargers.services.billing import reminders

    db.session.add(ResidentChannels(resident_id=account_id, wechat_openid="o-every-state"))
    db.session.commit()
    reminders.set_channels(ctx.admin, account_id, "", True, ctx.now - timedelta(days=2),
                           wechat=True, night=True, language="")


def _billing(ctx: Ctx) -> None:
    """Accounts with money, a settled charge of yesterday with its receipt, a charge on
    an unknown card the guard stopped (on the review list), and a resident's report."""
    for card, kind, household, name, phone in HOUSEHOLDS:
        extra = {}
        if kind == "monthly":
            extra = {"monthly_from": ctx.now - timedelta(days=10),
                     "monthly_until": ctx.now + timedelta(days=20), "monthly_hours": 60}
        acc = residents.create_account(ctx.admin, residents.AccountInput(
            alley=SLUG, cards=[card], kind=kind, household=household, name=name, phone=phone,
            **extra), ctx.now - timedelta(days=2))
        if kind == "prepaid":
            residents.top_up(ctx.admin, acc.id, 5000, "cash", "NO-0001",
                             ctx.now - timedelta(days=2))
            _hears_by_wechat(ctx, acc.id)
        ctx.typed |= {card, household, name, phone}
    ctx.typed.add("NO-0001")
    yesterday = ctx.now - timedelta(days=1)
    # 未能充电: plugged in, nothing flowed, unplugged after 2 minutes: nothing charged.
    failed_at = yesterday - timedelta(hours=3)
    ctx.session("EV-1", 1, "C-1001", failed_at, failed_at + timedelta(minutes=2), "unplugged",
                wh=3.0)
    ctx.session("EV-1", 1, "C-1001", yesterday, yesterday + timedelta(hours=2), "full")
    # An unknown card: the balance guard stops it after its grace, the pile says `remote`.
    start = ctx.now - timedelta(hours=5)
    ref = ctx.session("EV-1", 2, "C-9999", start, None, None, wh=300.0)
    asked = start + timedelta(minutes=5)
    balance_guard.check(asked, settings.guard(current_app.config))
    cmd = db.session.scalar(select(Command).where(Command.pile_id == "EV-1",
                                                  Command.action == "stop"))
    ctx.ack(cmd, asked)
    ctx.send("EV-1", "session", at=asked, event="stop", port=2, session=ref, energy_wh=300.0,
             reason="remote")
    ctx.send("EV-1", "status", at=asked, port=2, status="available")
    ctx.typed.add("C-9999")
    reports.submit(reports.ReportInput(pile_id="EV-2", port=3, kind="no_power",
                                       phone="13700002222"),
                   settings.reports(current_app.config), ctx.now - timedelta(minutes=20),
                   rules=settings.alerts(current_app.config))
    ctx.typed.add("13700002222")
