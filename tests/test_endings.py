"""Why a session ended (issue 18 item 5): "full" only when the pile said `full`; a
session the system or staff stopped says why, on the port tile, the pile page and the
receipt, in both languages; a receipt assigned from the review list no longer says
"unknown card"."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from chargers.extensions import db
from chargers.models import ChargingSession, Command, Pile, ReviewItem, User
from chargers.services.alerts import cutoff
from chargers.services.billing import accounts, settlement
from chargers.services.charging import endings
from chargers.services.charging.endings import ending
from chargers.services.devices import commands
from chargers.settings import CutoffRules

from .billing_support import T0, finished
from .webtools import set_ports


@pytest.mark.parametrize(("stop", "guard", "command", "assigned", "expected"), [
    ("full", None, None, False, "full"),
    ("full", "balance", None, False, "full"),  # the pile's own word wins: it was full
    ("remote", "balance", None, False, "balance"),
    ("balance", None, None, False, "balance"),  # the pile's own limit
    ("remote", "unknown_card", None, False, "unknown_card"),
    ("remote", "unknown_card", None, True, "assigned"),
    ("remote", "monthly_hours", None, True, "monthly_hours"),
    ("remote", None, "staff", False, "staff"),
    ("remote", None, "cutoff", False, "fault"),
    ("remote", None, None, False, "remote"),
    ("unplugged", "balance", None, False, "unplugged"),  # unplugged before the stop came
    ("fault", None, None, False, "fault"),
    ("power_loss", None, None, False, "power_loss"),
    ("timeout", None, None, False, "timeout"),
    ("user", None, None, False, "user"),
    (None, None, None, False, None),
])
def test_ending_from_the_piles_reason_and_what_we_know(stop, guard, command, assigned, expected):
    assert ending(stop, guard, command=command, assigned=assigned) == expected
    assert expected is None or expected in endings.ENDINGS


def test_every_ending_has_words_in_both_languages(app):
    from flask_babel import force_locale

    from chargers.labels import ENDING_LABELS

    assert set(ENDING_LABELS) == set(endings.ENDINGS)
    with app.test_request_context("/"), force_locale("zh"):
        zh = {k: str(v) for k, v in ENDING_LABELS.items()}
    assert zh["full"] == "已充满" and zh["balance"] == "余额不足"
    assert zh["unknown_card"] == "未登记的卡" and zh["staff"] == "工作人员停止"
    assert zh["fault"] == "故障断电" and zh["power_loss"] == "停电" and zh["timeout"] == "超时"
    assert zh["assigned"] == "系统停止，工作人员已认领"
    for code, words in zh.items():
        assert not any("a" <= ch.lower() <= "z" for ch in words), (code, words)


def _ended(pile: str, port: int, ref: str, reason: str, *, guard: str | None = None,
           minutes_ago: int = 30) -> ChargingSession:
    end = datetime.now(UTC) - timedelta(minutes=minutes_ago)
    s = ChargingSession(pile_id=pile, port=port, session_ref=ref, card="C-9", status="stopped",
                        started_at=end - timedelta(hours=1), ended_at=end, energy_wh=500.0,
                        stop_reason=reason, guard_reason=guard,
                        guard_stop_at=end if guard else None)
    db.session.add(s)
    return s


@pytest.fixture
def finished_ports(app, admin, alley_with_pile):
    """P-1: four finished ports: full; stopped by the balance guard; stopped by staff
    (a stop command of theirs); power loss."""
    user, _ = admin
    with app.app_context():
        pile = set_ports("P-1", ["finishing"] * 4, minutes_ago=30)
        _ended("P-1", 1, "s1", "full")
        _ended("P-1", 2, "s2", "remote", guard="balance")
        _ended("P-1", 3, "s3", "remote")
        cmd = commands.create(pile, 3, "stop", datetime.now(UTC) - timedelta(minutes=31),
                              user=db.session.get(User, user.id))
        cmd.status = "accepted"
        _ended("P-1", 4, "s4", "power_loss")
        db.session.commit()


def _port_texts(html: str) -> list[str]:
    import re

    return re.findall(r'<span class="vh">(.*?)</span></li>', html, re.S)


def test_finished_ports_say_full_only_when_full(client, finished_ports):
    cells = _port_texts(client.get("/a/lane?lang=en").get_data(as_text=True))
    assert cells[0] == "Port 1: Finished, Full 30 min ago, bike still plugged in"
    assert cells[1] == "Port 2: Finished, Stopped 30 min ago (Balance too low), bike still plugged in"
    assert cells[2] == "Port 3: Finished, Stopped 30 min ago (Stopped by staff), bike still plugged in"
    assert cells[3] == "Port 4: Finished, Stopped 30 min ago (Power loss), bike still plugged in"
    zh = client.get("/p/P-1?lang=zh").get_data(as_text=True)
    assert zh.count("前已充满") == 1  # port 1 only (the posted tariff may speak of "充满之后")
    for words in ("余额不足", "工作人员停止", "停电"):
        assert f"30 分钟前已停止（{words}），车还插着" in zh, words


def test_staff_alley_page_says_why_too(client, finished_ports):
    from .webtools import login

    login(client, "root")
    html = client.get("/staff/alleys/lane?lang=en").get_data(as_text=True)
    assert "(Stopped by staff)" in html and "(Balance too low)" in html
    assert html.count("Full 30 min ago") == 1


def test_a_finished_port_of_unknown_ending_is_not_called_full(app, client, alley_with_pile):
    with app.app_context():
        set_ports("P-1", ["finishing", "available", "available", "available"], minutes_ago=5)
    html = client.get("/p/P-1?lang=en").get_data(as_text=True)
    assert "Charging ended 5 min ago, bike still plugged in" in html
    assert "Full " not in html


def test_an_automatic_cut_off_reads_as_a_fault(app, client, alley_with_pile):
    from chargers.models import Alert

    with app.app_context():
        pile = set_ports("P-1", ["finishing", "available", "available", "available"])
        alert = Alert(pile_id="P-1", port=1, code="over_current", severity="major",
                      status="cleared")
        db.session.add(alert)
        db.session.flush()
        cutoff.request(alert, pile, datetime.now(UTC) - timedelta(minutes=31), CutoffRules())
        _ended("P-1", 1, "s1", "remote")
        db.session.commit()
    html = client.get("/p/P-1?lang=zh").get_data(as_text=True)
    assert "故障断电" in html and "已充满" not in html


def test_receipt_says_why_and_an_assigned_one_no_longer_says_unknown_card(app, client, admin,
                                                                          alley_with_pile):
    """A session the guard stopped for an unknown card goes to the review list; once staff
    assign it to an account, its receipt says so instead of "unknown card". A waived one
    still says why it was stopped (the card was unknown)."""
    user, _ = admin
    with app.app_context():
        for ref in ("R1", "R2"):
            s = finished("P-1", ref, "NEWCARD", 60, 600, port=2)
            s.stop_reason, s.guard_reason, s.guard_stop_at = "remote", "unknown_card", T0
        full = finished("P-1", "R3", "NEWCARD", 60, 600, port=3)
        full.stop_reason = "full"
        db.session.commit()
        settlement.settle(T0 + timedelta(hours=3))
        rows = {s.session_ref: s for s in db.session.scalars(select(ChargingSession))}
        tokens = {ref: s.receipt_token for ref, s in rows.items()}
        assert all(tokens.values())
        by_ref = {ref: s.id for ref, s in rows.items()}
        items = {i.session_id: i.id for i in db.session.scalars(select(ReviewItem))}
        staff = db.session.get(User, user.id)
        acc = accounts.create_account(staff, accounts.AccountInput(
            alley="lane", cards=["NEWCARD"], kind="exempt"), T0)
        acc_id = acc.id
    r1 = client.get(f"/r/{tokens['R1']}?lang=zh").get_data(as_text=True)
    assert "结束原因" in r1 and "未登记的卡" in r1
    assert "Card not registered" in client.get(f"/r/{tokens['R1']}?lang=en").get_data(
        as_text=True)
    with app.app_context():
        staff = db.session.get(User, user.id)
        settlement.resolve_review(staff, items[by_ref["R1"]], account_id=acc_id, waive=False,
                                  note="his new card", now=T0 + timedelta(hours=4))
        settlement.resolve_review(staff, items[by_ref["R2"]], account_id=None, waive=True,
                                  note="installer's test", now=T0 + timedelta(hours=4))
    r1 = client.get(f"/r/{tokens['R1']}?lang=zh").get_data(as_text=True)
    assert "工作人员已认领" in r1 and "未登记的卡" not in r1
    en = client.get(f"/r/{tokens['R1']}?lang=en").get_data(as_text=True)
    assert "assigned to an account by staff" in en and "Card not registered" not in en
    assert "未登记的卡" in client.get(f"/r/{tokens['R2']}?lang=zh").get_data(as_text=True)
    r3 = client.get(f"/r/{tokens['R3']}?lang=zh").get_data(as_text=True)
    assert "已充满" in r3
    with app.app_context():
        assert db.session.scalar(select(Command.id)) is None  # nothing sent by reading pages
        assert db.session.get(Pile, "P-1") is not None
