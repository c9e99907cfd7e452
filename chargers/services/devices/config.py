"""Pile configuration, desired against reported (device protocol v1.1 `config`).

Staff set the protocol's `config` keys for an alley (`Alley.device_settings`) and
override them per pile (`PileConfig.overrides`); the backend's own limits
(settings.LimitRule: port power, 充满自停, the longest session) fill what neither says.
What a pile should run is `PileConfig.desired` under `desired_version`, which grows by
one with every change.

A pile that announced the `config` feature in its `boot` is sent a `config` command
(through services/devices/commands, like every command) on every boot, on every
change, and again every `LimitRule.config_resend_s` until its `config` report carries
the desired version (`resend_due`, job `config-push`). A pile without the feature is
sent nothing (v1 behaviour): the backend enforces the same limits itself
(services/safety/limits.py) for every pile.

The ingest calls `on_boot` and `on_report` inside its batch (no commit); staff calls
(`set_alley_settings`, `set_pile_overrides`) and the job commit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from pydantic import ValidationError
from sqlalchemy import select

from ...constants import CommandAction, ConfigState
from ...extensions import db
from ...models import Alley, Pile, PileConfig, User, bulk
from ...protocol.payloads import CONFIG_KEYS, ConfigSettings
from ...settings import LimitRule
from ..errors import Invalid
from . import alleys, commands, piles

FEATURE = "config"


@dataclass(frozen=True)
class Limits:
    """The limits in force for a pile (what the backend enforces)."""

    max_power_w: int
    full_stop_power_w: int
    full_stop_hold_s: int
    max_session_s: int


ENFORCED = tuple(Limits.__dataclass_fields__)  # the config keys the backend enforces


def clean(settings: dict | None) -> dict:
    """The protocol's config keys of `settings`, validated (Invalid naming the first
    bad key); None values dropped (a key set to null goes back to the default)."""
    settings = {k: v for k, v in (settings or {}).items() if v is not None}
    try:
        parsed = ConfigSettings.model_validate(settings)
    except ValidationError as exc:
        err = exc.errors(include_url=False, include_input=False)[0]
        raise Invalid("config.invalid", key=".".join(str(p) for p in err["loc"]) or "-",
                      detail=err["msg"]) from None
    return parsed.model_dump(exclude_none=True)


def _defaults(rule: LimitRule) -> dict:
    return {"max_power_w": rule.max_power_w, "full_stop_power_w": rule.full_stop_power_w,
            "full_stop_hold_s": rule.full_stop_hold_s, "max_session_s": rule.max_session_s}


def of_pile(pile: Pile) -> PileConfig:
    """The pile's configuration row (made when missing; added, not flushed)."""
    cfg = db.session.get(PileConfig, pile.id)
    if cfg is None:
        cfg = PileConfig(pile_id=pile.id, overrides={}, desired_version=0, desired={})
        db.session.add(cfg)
    return cfg


def wanted(pile: Pile, cfg: PileConfig | None, rule: LimitRule) -> dict:
    """The settings the pile should run: defaults, then the alley's, then its own."""
    merged = _merged(rule, pile.alley.device_settings, cfg.overrides if cfg is not None else None)
    return {k: merged[k] for k in CONFIG_KEYS if k in merged}


def _merged(rule: LimitRule, alley_settings: dict | None, own: dict | None) -> dict:
    """Defaults, then the alley's settings, then the pile's own."""
    return {**_defaults(rule), **(alley_settings or {}), **(own or {})}


def inherited(rule: LimitRule, alley: Alley, *, for_pile: bool) -> dict[str, tuple[object, str]]:
    """What a key left empty means, for the staff forms: {key: (value, "default" or
    "alley")}. For the alley's settings, the default; for a pile's own, the alley's
    setting or else the default. A key with neither (the pile's own firmware value) is
    not in it."""
    own = (alley.device_settings or {}) if for_pile else {}
    return {k: (own[k], "alley") if k in own else (v, "default")
            for k, v in _merged(rule, own, None).items()}


_LOOK = object()  # limits(): read the pile's row


def of_piles(pile_ids) -> dict[str, PileConfig]:
    """The configuration rows of these piles, in one query (piles without one are not
    in it). Without an autoflush."""
    if not pile_ids:
        return {}
    with db.session.no_autoflush:
        rows = db.session.scalars(select(PileConfig).where(bulk.one_of(PileConfig.pile_id,
                                                                       pile_ids)))
        return {c.pile_id: c for c in rows}


def limits(pile: Pile, rule: LimitRule, cfg: PileConfig | None = _LOOK) -> Limits:
    """The limits the backend enforces for this pile (its desired settings); `cfg`: its
    row (None: it has none) when the caller has read it (`of_piles`). A read, asked at
    every reading of a charging port: it makes no row and flushes nothing (an autoflush
    here cost the ingest most of its time: 1.7 ms a reading)."""
    if cfg is _LOOK:
        with db.session.no_autoflush:
            cfg = db.session.get(PileConfig, pile.id)
    s = cfg.desired if cfg is not None and cfg.desired else wanted(pile, cfg, rule)
    d = _defaults(rule)
    return Limits(*(int(s.get(k, d[k])) for k in ENFORCED))


def has_feature(pile: Pile) -> bool:
    return FEATURE in (pile.features or ())


def push(pile: Pile, cfg: PileConfig, now: datetime):
    """Send the desired version to the pile (a `config` command). No commit."""
    cmd = commands.create(pile, None, CommandAction.CONFIG, now,
                          args={"version": cfg.desired_version, "settings": dict(cfg.desired)})
    cfg.sent_version, cfg.sent_at = cfg.desired_version, now
    return cmd


def refresh(pile: Pile, rule: LimitRule, now: datetime, *, send: bool = True) -> bool:
    """Recompute what the pile should run; a change is a new version, sent at once to a
    pile with the feature. Returns whether it changed. No commit."""
    cfg = of_pile(pile)
    new = wanted(pile, cfg, rule)
    if new == (cfg.desired or {}) and cfg.desired_version:
        return False
    cfg.desired = new
    cfg.desired_version = (cfg.desired_version or 0) + 1
    if send and has_feature(pile):
        push(pile, cfg, now)
    return True


def on_boot(pile: Pile, features: list[str] | None, rule: LimitRule, now: datetime) -> None:
    """A (re)boot: remember its features; a pile with `config` is sent its desired
    configuration (every boot: it may have been replaced or reset). No commit."""
    pile.features = list(features or [])
    changed = refresh(pile, rule, now)
    if has_feature(pile) and not changed:
        push(pile, of_pile(pile), now)


def on_report(pile: Pile, version: int, settings: dict, at: datetime) -> PileConfig:
    """The pile's `config` report: the version and settings it applied. An older
    report than the one kept (by version) changes nothing. No commit."""
    cfg = of_pile(pile)
    if cfg.reported_version is not None and version < cfg.reported_version:
        return cfg
    cfg.reported_version, cfg.reported, cfg.reported_at = version, dict(settings), at
    return cfg


def state(pile: Pile, cfg: PileConfig | None = None) -> ConfigState:
    """none (no `config` feature), pending, applied or mismatch (see ConfigState)."""
    if not has_feature(pile):
        return ConfigState.NONE
    cfg = cfg or db.session.get(PileConfig, pile.id)
    if cfg is None or cfg.reported_version != cfg.desired_version:
        return ConfigState.PENDING
    return ConfigState.APPLIED if (cfg.reported or {}) == (cfg.desired or {}) else (
        ConfigState.MISMATCH)


def view(pile: Pile, rule: LimitRule | None = None) -> dict:
    """The API's `config`: desired and reported version, the settings the pile
    reported applying; plus what is desired and the state (for pages). With `rule`
    (the pages), a pile without the `config` feature (a v1 pile) shows as desired only
    the settings the backend enforces for it (the keys of `Limits`), and a pile not yet
    sent any the ones it would be (`wanted`)."""
    cfg = db.session.get(PileConfig, pile.id)
    desired = cfg.desired if cfg else {}
    now_state = state(pile, cfg)
    if rule is not None:
        desired = desired or wanted(pile, cfg, rule)
        if now_state == ConfigState.NONE:  # never sent it: only what the backend enforces
            desired = {k: v for k, v in desired.items() if k in ENFORCED}
    return {"desired_version": cfg.desired_version if cfg else None,
            "reported_version": cfg.reported_version if cfg else None,
            "settings": (cfg.reported if cfg else None),
            "desired": desired,
            "overrides": (cfg.overrides if cfg else {}),
            "state": now_state.value}


def resend_due(now: datetime, rule: LimitRule) -> int:
    """Send the desired version again to every pile with the feature that has not
    reported it and was last sent it `rule.config_resend_s` ago or more. Commits."""
    before = now - timedelta(seconds=rule.config_resend_s)
    n = 0
    rows = db.session.execute(select(Pile, PileConfig).join(PileConfig,
                                                            PileConfig.pile_id == Pile.id)).all()
    for pile, cfg in rows:
        if not has_feature(pile) or cfg.reported_version == cfg.desired_version:
            continue
        if cfg.sent_at is not None and cfg.sent_at > before:
            continue
        push(pile, cfg, now)
        n += 1
    db.session.commit()
    return n


def _coherent(merged: dict, where: str) -> None:
    """The settings a pile would run make sense together: its 充满自停 power is below
    its port limit (else every charge would stop as full, or none could be), and its
    充满自停 hold shorter than its longest session (else none could stop as full)."""
    if merged["full_stop_power_w"] >= merged["max_power_w"]:
        raise Invalid("config.full_over_limit", full=merged["full_stop_power_w"],
                      limit=merged["max_power_w"], where=where)
    if merged["full_stop_hold_s"] >= merged["max_session_s"]:  # no charge could stop as full
        raise Invalid("config.hold_over_session", hold=f"{merged['full_stop_hold_s'] / 60:g}",
                      longest=f"{merged['max_session_s'] / 3600:g}", where=where)


def set_alley_settings(user: User | None, slug: str, settings: dict, rule: LimitRule,
                       now: datetime) -> Alley:
    """Staff set the config keys desired for every pile of the alley; each pile whose
    result changed gets a new version (sent to the piles with the feature). Commits."""
    alley = alleys.get_alley(user, slug)
    settings = clean(settings)
    _coherent(_merged(rule, settings, None), alley.name)
    configs = of_piles([p.id for p in alley.piles])
    for pile in alley.piles:
        cfg = configs.get(pile.id)
        _coherent(_merged(rule, settings, cfg.overrides if cfg else None), pile.label or pile.id)
    alley.device_settings = settings
    for pile in alley.piles:
        refresh(pile, rule, now)
    db.session.commit()
    return alley


def set_pile_overrides(user: User | None, pile_id: str, overrides: dict, rule: LimitRule,
                       now: datetime) -> Pile:
    """Staff set one pile's own config keys over its alley's. Commits."""
    pile = piles.get_pile(user, pile_id)
    overrides = clean(overrides)
    _coherent(_merged(rule, pile.alley.device_settings, overrides), pile.label or pile.id)
    cfg = of_pile(pile)
    cfg.overrides = overrides
    refresh(pile, rule, now)
    db.session.commit()
    return pile
