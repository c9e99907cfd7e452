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


class AlleyCreate(AlleyUpdate):
    slug: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,63}$")
    name: str = Field(min_length=1, max_length=120)


class PileUpdate(_Strict):
    alley: str | None = Field(None, min_length=1, max_length=64)
    ports: int | None = Field(None, ge=1, le=MAX_PORTS)
    label: str | None = Field(None, min_length=1, max_length=64)
    location_note: str | None = Field(None, max_length=255)
    enabled: bool | None = None


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
