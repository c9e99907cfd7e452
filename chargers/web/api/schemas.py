"""Request bodies of the registry API, validated by pydantic (strict types).

A create body is its update body with the identifying fields required."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from ...protocol.codes import MAX_PORTS, PILE_ID_PATTERN


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class AlleyUpdate(_Strict):
    name: str | None = Field(None, min_length=1, max_length=120)
    street: str | None = Field(None, max_length=120)
    community: str | None = Field(None, max_length=120)
    address: str | None = Field(None, max_length=255)
    timezone: str | None = Field(None, max_length=64)
    contacts: str | None = Field(None, max_length=2000)
    tariff_cents_per_kwh: int | None = Field(None, ge=0, le=100000)
    auto_cutoff: bool | None = None
    allow_unbilled: bool | None = None
    # The protocol's config keys for every pile (services/devices/config.py checks them).
    device_settings: dict | None = None
    # The alley's power budget (services/budget): null clears it.
    feeder_limit_w: int | None = Field(None, ge=0, le=10_000_000)
    feeder_margin_w: int | None = Field(None, ge=0, le=10_000_000)


class AlleyCreate(AlleyUpdate):
    slug: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,63}$")
    name: str = Field(min_length=1, max_length=120)


class PileUpdate(_Strict):
    alley: str | None = Field(None, min_length=1, max_length=64)
    ports: int | None = Field(None, ge=1, le=MAX_PORTS)
    label: str | None = Field(None, min_length=1, max_length=64)
    location_note: str | None = Field(None, max_length=255)
    enabled: bool | None = None
    # The pile's own config keys over its alley's.
    config: dict | None = None
    # The power the pile's own line may carry for charging (null: none; services/budget).
    power_limit_w: int | None = Field(None, ge=0, le=1_000_000)


class PileCreate(PileUpdate):
    id: str = Field(pattern=PILE_ID_PATTERN)
    alley: str = Field(min_length=1, max_length=64)
    ports: int = Field(ge=1, le=MAX_PORTS)


class AccountCreate(_Strict):
    alley: str = Field(min_length=1, max_length=64)
    cards: list[str] = Field(min_length=1, max_length=20)
    kind: str = Field(pattern=r"^(prepaid|monthly|exempt)$")
    household: str = Field("", max_length=64)
    name: str = Field("", max_length=64)
    phone: str = Field("", max_length=32)
    monthly_from: datetime | None = Field(None, strict=False)  # RFC 3339 text
    monthly_until: datetime | None = Field(None, strict=False)
    monthly_hours: int | None = Field(None, ge=0, le=24 * 31)


class Money(_Strict):
    amount_cents: int = Field(gt=0, le=1_000_000)
    method: str = Field(pattern=r"^(cash|wechat|alipay|bank|other)$")
    receipt: str | None = Field(None, max_length=64)


class RefundIn(Money):
    reason: str | None = Field(None, max_length=500)


class CardSaleIn(_Strict):
    price_cents: int = Field(gt=0, le=1_000_000)
    period_from: datetime = Field(strict=False)
    period_until: datetime = Field(strict=False)
    hours: int | None = Field(None, ge=0, le=744)
    method: str = Field(pattern=r"^(cash|wechat|alipay|bank|other)$")
    receipt: str | None = Field(None, max_length=64)


class WriteOff(_Strict):
    amount_cents: int | None = Field(None, gt=0, le=100_000_000)
    reason: str = Field(min_length=1, max_length=200)


class TierIn(_Strict):
    max_w: int = Field(gt=0, le=100_000)
    cents_per_hour: int = Field(ge=0, le=100_000)


class WindowIn(_Strict):
    # The JSON says "from"/"to" ("from" is a Python keyword).
    model_config = ConfigDict(extra="forbid", strict=True, populate_by_name=True)
    start: str = Field(alias="from", pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")
    end: str = Field(alias="to", pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")
    millifen_per_kwh: int = Field(ge=0, le=100_000_000)
    name: str = Field("", max_length=32)


class TariffCreate(_Strict):
    electricity_cents_per_kwh: int = Field(ge=0, le=100_000)
    service_scheme: str = Field(pattern=r"^(tier_hour|kwh|flat_hour|none)$")
    service_tiers: list[TierIn] = Field(default_factory=list, max_length=20)
    service_cents: int = Field(0, ge=0, le=100_000)
    step_minutes: int = Field(1, ge=1, le=1440)
    free_minutes: int = Field(0, ge=0, le=1440)
    minimum_cents: int = Field(0, ge=0, le=100_000)
    cap_cents: int | None = Field(None, ge=0, le=1_000_000)
    full_float_minutes: int | None = Field(None, ge=0, le=1440)
    effective_from: datetime | None = Field(None, strict=False)  # RFC 3339; None: a draft
    electricity_millifen_per_kwh: int | None = Field(None, ge=0, le=100_000_000)
    tou_windows: list[WindowIn] | None = Field(None, max_length=24)
    service_cap_millifen_per_kwh: int | None = Field(None, ge=0, le=100_000_000)
    service_cap_cents_per_hour: int | None = Field(None, ge=0, le=100_000)
    occupancy_cents_per_hour: int | None = Field(None, ge=0, le=100_000)
    occupancy_grace_minutes: int | None = Field(None, ge=0, le=1440)


class Decision(_Strict):
    note: str = Field(min_length=1, max_length=200)
    approve: bool | None = None  # adjustments
    account: int | None = None  # review: assign to this account
    waive: bool | None = None  # review: waive instead


KWH_TEXT = r"^[0-9]{1,9}(\.[0-9]{1,3})?$"


class GridIn(_Strict):
    """A month's grid meter readings and/or bill (kWh as decimal text, money in fen)."""

    grid_kwh: str | None = Field(None, pattern=KWH_TEXT)
    reading_start_kwh: str | None = Field(None, pattern=KWH_TEXT)
    reading_end_kwh: str | None = Field(None, pattern=KWH_TEXT)
    amount_cents: int = Field(ge=0, le=10_000_000_000)
    note: str = Field("", max_length=255)
