"""The ingest fuzzed through the real handler code path (issue 13): 1,100 (on SQLite;
300 more on PostgreSQL) hypothesis-generated messages — random bytes, random JSON, protocol payloads with one
field broken, deep nesting, NUL and lone surrogates, retained flags, odd topics — each
applied by `handlers.process` and committed like the worker does. None crashes (no
`error` outcome, no exception), a rejected message changes no state, every rejection
is counted, and a valid message after them all lands."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from chargers.extensions import db
from chargers.ingest import handlers
from chargers.models import (
    Alert,
    ChargingSession,
    Command,
    FaultEvent,
    IngestCounter,
    MeterSample,
    Pile,
    Port,
    ProcessedMessage,
    SeqGap,
)
from tests.ingest_support import PREFIX, body
from tests.pg_schema import on_sqlite_and_postgresql

pytestmark = pytest.mark.usefixtures("alley_with_pile")


# SQLite, then PostgreSQL (which refuses NUL in text): fewer examples there.
app_config = on_sqlite_and_postgresql("chargers_ingest")

EXAMPLES = {"sqlite": 1100, "postgresql": 300}
KINDS = ("boot", "heartbeat", "status", "meter", "session", "fault", "ack")
FIELDS = ("id", "ts", "seq", "model", "firmware", "ports", "max_power_w", "rssi", "port",
          "status", "error", "session", "power_w", "energy_wh", "voltage_v", "current_a",
          "temp_c", "event", "card", "meter_wh", "reason", "code", "active", "value",
          "detail", "cmd", "result")

# Text with everything: NUL, controls, lone surrogates (category Cs), astral planes.
any_text = st.text(st.characters(exclude_categories=()), max_size=80)
scalars = (st.none() | st.booleans() | st.floats() | any_text
           | st.integers(min_value=-(2**70), max_value=2**70)
           | st.sampled_from([0, -1, 2**31 - 1, 2**31, 2**63, 33, 1e308, "", "\x00", "\ud800",
                              "2026-11-27T08:00:00+08:00", "2000-01-01T00:00:00Z", "smoke",
                              "charging", "start", "stop", "accepted"]))
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(any_text, inner, max_size=4), max_leaves=12)


def encode(value, ascii_only: bool) -> bytes:
    text = json.dumps(value, ensure_ascii=ascii_only, allow_nan=True)
    return text.encode("utf-8", "surrogatepass")  # a lone surrogate: invalid UTF-8


@st.composite
def broken_protocol(draw):
    """A protocol payload of some kind with a field changed, added or dropped."""
    kind = draw(st.sampled_from(KINDS))
    extra = {"event": "start", "port": 1, "session": "T1", "meter_wh": 0} if kind == "session" else {}
    data = body(kind, **extra)
    for _ in range(draw(st.integers(1, 3))):
        key = draw(st.sampled_from(FIELDS + tuple(data)) | any_text)
        if draw(st.booleans()) and key in data:
            del data[key]
        else:
            data[key] = draw(json_values)
    return kind, encode(data, draw(st.booleans()))


@st.composite
def messages(draw):
    shape = draw(st.sampled_from(["bytes", "json", "protocol", "deep", "valid"]))
    kind = draw(st.sampled_from(KINDS + ("online", "cmd")) | any_text)
    if shape == "bytes":
        payload = draw(st.binary(max_size=300))
    elif shape == "json":
        payload = encode(draw(json_values), draw(st.booleans()))
    elif shape == "protocol":
        kind, payload = draw(broken_protocol())
    elif shape == "deep":
        n = draw(st.integers(30, 20_000))
        payload = draw(st.sampled_from([b"[" * n, b'{"a":' * n, b"[" * n + b"]" * n]))
    else:  # valid (some land, so the state moves and stays sane)
        kind = draw(st.sampled_from(["heartbeat", "status", "fault"]))
        payload = json.dumps(body(kind, port=draw(st.integers(1, 4))) if kind != "heartbeat"
                             else body(kind)).encode()
        return handlers.Incoming(f"{PREFIX}/P-1/{kind}", payload, datetime.now(UTC))
    pile = draw(st.sampled_from(["P-1", "P-1", "P-1", "P-9", "+", "#", ""]) | any_text)
    topic = draw(st.sampled_from([f"{PREFIX}/{pile}/{kind}", f"{PREFIX}/{pile}/{kind}/x",
                                  f"{PREFIX}/{pile}", f"other/{pile}/{kind}"]))
    return handlers.Incoming(topic, payload, datetime.now(UTC), None,
                             retained=draw(st.sampled_from([False, False, False, True])))


def snapshot() -> tuple:
    """Every piece of state a device message can change."""
    pile = db.session.get(Pile, "P-1")
    ports = db.session.execute(select(Port.number, Port.status, Port.status_ts, Port.enabled)
                               .where(Port.pile_id == "P-1").order_by(Port.number)).all()
    counts = [db.session.scalar(select(func.count()).select_from(m)) for m in
              (ChargingSession, MeterSample, FaultEvent, ProcessedMessage, SeqGap, Alert, Command)]
    return (pile.online, pile.last_seen_at, pile.last_seq, pile.model, pile.firmware,
            pile.port_count, pile.enabled, [tuple(p) for p in ports], counts)


def rejected_total() -> int:
    return db.session.scalar(select(func.coalesce(func.sum(IngestCounter.count), 0))
                             .where(IngestCounter.key.like("rejected:%")))


def test_fuzzed_messages_never_crash_and_rejections_change_nothing(app):
    seen = {"n": 0, "rejected": 0, "accepted": 0}
    backend = app.config["SQLALCHEMY_DATABASE_URI"].partition(":")[0].partition("+")[0]
    examples = EXAMPLES[backend]

    @settings(max_examples=examples, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(msg=messages())
    def one(msg):
        with app.app_context():
            before = snapshot()
            outcomes = handlers.process([msg])  # raises on a crash
            assert len(outcomes) == 1 and outcomes[0] != "rejected:error", (msg, outcomes)
            db.session.rollback()  # read what was committed
            seen["n"] += 1
            if outcomes[0].startswith("rejected:"):
                seen["rejected"] += 1
                assert snapshot() == before, (msg, outcomes)
            elif outcomes[0] == "accepted":
                seen["accepted"] += 1

    one()
    assert seen["n"] >= examples >= 300, seen
    assert seen["rejected"] >= examples // 2 and seen["accepted"] >= 10, seen
    with app.app_context():
        assert rejected_total() == seen["rejected"]
        # After all that, a valid message lands.
        msg = handlers.Incoming(f"{PREFIX}/P-1/status",
                                json.dumps(body("status", port=1, status="charging")).encode(),
                                datetime.now(UTC))
        assert handlers.process([msg]) == ["accepted"]
        db.session.rollback()
        port = db.session.scalar(select(Port).where(Port.pile_id == "P-1", Port.number == 1))
        assert port.status == "charging"


def test_a_hostile_batch_does_not_hold_up_the_valid_message_in_it(app):
    """One batch (one transaction, as the worker takes them): NUL, a lone surrogate,
    deep nesting, a huge number, each rejected as it should be; the valid one lands."""
    def status(**fields):
        return json.dumps(body("status", **fields)).encode()

    hostile = [
        (b'{"id": "a\\u0000b", "ts": "2026-11-27T08:00:00+08:00", "port": 1, '
         b'"status": "available"}', "rejected:invalid"),
        (b'{"id": "\\ud800", "ts": "2026-11-27T08:00:00+08:00", "port": 1, '
         b'"status": "available"}', "rejected:invalid"),
        (status(port=1, status="available", error="smoke\x00"), "rejected:invalid"),
        (b"[" * 100_000, "rejected:oversized"),
        (b"[" * 3000, "rejected:malformed"),
        (status(port=2**63), "rejected:invalid"),
        (status(port=1, seq=2**31), "rejected:invalid"),
        (json.dumps({**body("status", port=1), "ts": math.inf}).encode(), "rejected:malformed"),
        (json.dumps({**body("status", port=1), "a\x00\ud800": 1}).encode(), "rejected:invalid"),
        (json.dumps({**body("status", port=1), "\x00" * 70: 1}).encode(), "rejected:invalid"),
    ]
    with app.app_context():
        before = snapshot()
        msgs = [handlers.Incoming(f"{PREFIX}/P-1/status", raw, datetime.now(UTC))
                for raw, _ in hostile]
        msgs.append(handlers.Incoming(f"{PREFIX}/P-1/sta\x00tus", b"{}", datetime.now(UTC)))
        msgs.append(handlers.Incoming(f"{PREFIX}/P\x00/status", b"{}", datetime.now(UTC)))
        hostile += [(b"", "rejected:unknown_kind"), (b"", "rejected:bad_topic")]
        outcomes = handlers.process(msgs)
        assert outcomes == [o for _, o in hostile]
        db.session.rollback()
        assert snapshot() == before
        valid = handlers.Incoming(f"{PREFIX}/P-1/status", status(port=3, status="charging"),
                                  datetime.now(UTC))
        assert handlers.process(msgs + [valid]) == [o for _, o in hostile] + ["accepted"]
        db.session.rollback()
        port = db.session.scalar(select(Port).where(Port.pile_id == "P-1", Port.number == 3))
        assert port.status == "charging"
