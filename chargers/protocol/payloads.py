"""Validation of device payloads against the protocol (pydantic v2, strict).

`decode(kind, raw, max_bytes)` turns the bytes of one MQTT message into a typed
model or raises PayloadError with a reason: `oversized`, `malformed` (not UTF-8, not
JSON, not an object, NaN/Infinity, nested too deep) or `invalid` (the schema).
No database here: range checks that need the pile (port count) are the handler's.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Annotated, Literal, NamedTuple

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
)

from .codes import (
    ACK_RESULTS,
    FAULT_CODES,
    FEATURES,
    MAX_PAYLOAD_BYTES,
    MAX_PORTS,
    OFFLINE_POLICIES,
    PORT_STATUSES,
    STOP_REASONS,
)

INT32_MAX = 2**31 - 1  # columns are 32-bit integers on PostgreSQL


# RFC 3339 date-time with a mandatory offset (Z or ±hh:mm).
_RFC3339 = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$"
)


class PayloadError(ValueError):
    """Why a payload was refused: `reason` is a rejection reason, `detail` a short text."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def _rfc3339(value: object) -> datetime:
    if not isinstance(value, str) or not _RFC3339.match(value):
        raise ValueError("ts must be an RFC 3339 date-time with an offset")
    text = value.upper().replace(" ", "T")
    frac = re.search(r"\.(\d+)", text)
    if frac and len(frac.group(1)) > 6:  # datetime keeps microseconds
        text = text.replace(frac.group(0), "." + frac.group(1)[:6])
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise ValueError("ts is not a valid date-time") from None


def _storable(value: str) -> str:
    """Text a database can keep: no NUL (PostgreSQL refuses it) and no lone surrogate
    (not encodable as UTF-8). JSON escapes (`\\u0000`, `\\ud800`) can carry both."""
    if "\x00" in value:
        raise ValueError("NUL character not allowed")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("lone surrogate not allowed") from None
    return value


Timestamp = Annotated[datetime, BeforeValidator(_rfc3339)]
Text = Annotated[str, AfterValidator(_storable)]
Text64 = Annotated[Text, Field(min_length=1, max_length=64)]
Port = Annotated[int, Field(ge=1, le=MAX_PORTS)]
Watts = Annotated[float, Field(ge=0, le=100_000)]
# Session energy of an e-bike charge is well under 10 kWh; a pile's lifetime meter
# can be far larger, but not beyond a GWh.
SessionWh = Annotated[float, Field(ge=0, le=1_000_000)]
LifetimeWh = Annotated[float, Field(ge=0, le=1_000_000_000)]


class Envelope(BaseModel):
    """Fields every JSON payload carries."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False, frozen=True)

    id: Text64
    ts: Timestamp
    seq: Annotated[int, Field(ge=0, le=INT32_MAX)] | None = None


class Boot(Envelope):
    model: Text64
    firmware: Text64
    ports: Port
    max_power_w: Annotated[int, Field(ge=1, le=100_000)]
    # v1.1: what the pile can do beyond v1 (absent = none). An unknown feature is a
    # newer firmware's: ignored, not refused.
    features: Annotated[list[Text64], Field(max_length=16)] | None = None

    @property
    def known_features(self) -> list[str]:
        """The announced features this backend knows, each once, in protocol order."""
        return [f for f in FEATURES if f in (self.features or ())]


class Heartbeat(Envelope):
    rssi: Annotated[int, Field(ge=-200, le=50)] | None = None


class Status(Envelope):
    port: Port
    status: Literal[PORT_STATUSES]  # type: ignore[valid-type]
    error: Literal[FAULT_CODES] | None = None  # type: ignore[valid-type]


class Meter(Envelope):
    port: Port
    session: Text64
    power_w: Watts
    energy_wh: SessionWh
    voltage_v: Annotated[float, Field(ge=0, le=1000)] | None = None
    current_a: Annotated[float, Field(ge=0, le=1000)] | None = None
    temp_c: Annotated[float, Field(ge=-60, le=300)] | None = None
    # v1.1: lowest and highest instantaneous power since the previous `meter`.
    power_min_w: Watts | None = None
    power_max_w: Watts | None = None


class SessionStart(Envelope):
    event: Literal["start"]
    port: Port
    session: Text64
    card: Text64 | None = None
    meter_wh: LifetimeWh


class SessionStop(Envelope):
    event: Literal["stop"]
    port: Port
    session: Text64
    energy_wh: SessionWh
    reason: Literal[STOP_REASONS]  # type: ignore[valid-type]


class Fault(Envelope):
    port: Port | None = None
    code: Literal[FAULT_CODES]  # type: ignore[valid-type]
    active: bool
    value: Annotated[float, Field(ge=-1e9, le=1e9)] | None = None
    detail: Annotated[Text, Field(max_length=1000)] | None = None


class Ack(Envelope):
    cmd: Text64
    result: Literal[ACK_RESULTS]  # type: ignore[valid-type]
    detail: Annotated[Text, Field(max_length=1000)] | None = None


class Authorize(Envelope):
    """v1.1 `authorize`: a card presented at a port, before any power flows."""

    port: Port
    card: Text64


class ConfigSettings(BaseModel):
    """The `config` keys of the protocol (all optional). A command carries the ones
    desired; a report, the ones the pile applied."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False, frozen=True)

    max_power_w: Annotated[int, Field(ge=1, le=100_000)] | None = None
    overload_hold_s: Annotated[int, Field(ge=1, le=3600)] | None = None
    full_stop_power_w: Annotated[int, Field(ge=0, le=10_000)] | None = None
    full_stop_hold_s: Annotated[int, Field(ge=1, le=86_400)] | None = None
    max_session_s: Annotated[int, Field(ge=60, le=7 * 86_400)] | None = None
    offline_policy: Literal[OFFLINE_POLICIES] | None = None  # type: ignore[valid-type]
    offline_max_minutes: Annotated[int, Field(ge=1, le=7 * 1440)] | None = None


CONFIG_KEYS = tuple(ConfigSettings.model_fields)


class ConfigReport(Envelope):
    """v1.1 `config`: the version the pile applied and the settings it applied."""

    version: Annotated[int, Field(ge=0, le=INT32_MAX)]
    settings: ConfigSettings


SessionEvent = Annotated[SessionStart | SessionStop, Field(discriminator="event")]

_ADAPTERS: dict[str, TypeAdapter] = {
    "boot": TypeAdapter(Boot),
    "heartbeat": TypeAdapter(Heartbeat),
    "status": TypeAdapter(Status),
    "meter": TypeAdapter(Meter),
    "session": TypeAdapter(SessionEvent),
    "fault": TypeAdapter(Fault),
    "ack": TypeAdapter(Ack),
    "config": TypeAdapter(ConfigReport),
    "authorize": TypeAdapter(Authorize),
}
JSON_KINDS = tuple(_ADAPTERS)


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not allowed")


def parse_json_object(raw: bytes, max_bytes: int = MAX_PAYLOAD_BYTES) -> dict:
    """The payload as a dict, or PayloadError (`oversized` / `malformed`)."""
    if len(raw) > max_bytes:  # checked before any decoding
        raise PayloadError("oversized", f"{len(raw)} bytes > {max_bytes}")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise PayloadError("malformed", "not UTF-8") from None
    try:
        data = json.loads(text, parse_constant=_refuse_constant)
    except RecursionError:
        raise PayloadError("malformed", "JSON nested too deep") from None
    except ValueError as exc:  # JSONDecodeError is a ValueError, so is NaN refusal
        raise PayloadError("malformed", f"not JSON: {str(exc)[:120]}") from None
    if not isinstance(data, dict):
        raise PayloadError("malformed", f"JSON {type(data).__name__}, not an object")
    return data


def _errors(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors(include_url=False, include_input=False)[:5]:
        where = ".".join(str(p) for p in err["loc"]) or "payload"
        parts.append(f"{where}: {err['msg']}")
    return "; ".join(parts)[:500]


def decode(kind: str, raw: bytes, max_bytes: int = MAX_PAYLOAD_BYTES) -> Envelope:
    """Validate the payload of a JSON `kind`; return its model or raise PayloadError."""
    data = parse_json_object(raw, max_bytes)
    try:
        return _ADAPTERS[kind].validate_python(data)
    except ValidationError as exc:
        raise PayloadError("invalid", _errors(exc)) from None
    except RecursionError:
        raise PayloadError("malformed", "nested too deep") from None


def peek_id(raw: bytes, max_bytes: int = MAX_PAYLOAD_BYTES) -> str | None:
    """The payload's `id` when it looks like one, without validating anything else
    (decode() does that); used to prefetch a batch's ledger entries."""
    if len(raw) > max_bytes:
        return None
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):
        return None
    value = data.get("id") if isinstance(data, dict) else None
    if not isinstance(value, str) or not 0 < len(value) <= 64:
        return None
    try:
        return _storable(value)
    except ValueError:  # a NUL would break the batch's query on PostgreSQL
        return None


class Peek(NamedTuple):
    id: str | None
    session: str | None
    port: int | None
    card: str | None = None


def peek(raw: bytes, max_bytes: int = MAX_PAYLOAD_BYTES) -> Peek:
    """`id`, `session`, `port` and `card` when they look like ones, without validating
    anything else: to prefetch a batch's ledger entries, charging sessions, ports and
    cards' profiles in one query each."""
    if len(raw) > max_bytes:
        return Peek(None, None, None)
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):
        return Peek(None, None, None)
    if not isinstance(data, dict):
        return Peek(None, None, None)
    out = []
    for key in ("id", "session", "card"):
        value = data.get(key)
        out.append(value if isinstance(value, str) and 0 < len(value) <= 64
                   and _is_storable(value) else None)
    port = data.get("port")
    return Peek(out[0], out[1], port if type(port) is int and 1 <= port <= MAX_PORTS else None,
                out[2])


def _is_storable(value: str) -> bool:
    """Whether the database could take `value` as a query parameter (see `_storable`:
    a hostile id must not reach the prefetch's query before validation rejects it)."""
    try:
        _storable(value)
    except ValueError:
        return False
    return True


def decode_online(raw: bytes) -> bool:
    """The retained `online` payload: exactly `1` or `0` (not JSON)."""
    if raw == b"1":
        return True
    if raw == b"0":
        return False
    raise PayloadError("malformed", "online payload must be 1 or 0")
