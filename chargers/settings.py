"""Settings the services need, as small frozen objects built from the app's config in
one place. Services never read `current_app.config`: a door (view, job, command, ingest
handler) calls one of these constructors and passes the object in, so a test can hand
a service exactly the rules it wants.

    rules = settings.alerts(current_app.config)
    alerts.raise_offline_alerts(now, rules)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from types import MappingProxyType

from config import Config as _DEFAULTS  # every default lives in config/


def _frozen(mapping: Mapping | None) -> Mapping:
    return MappingProxyType(dict(mapping or {}))


@dataclass(frozen=True)
class Paging:
    """How a notification about an alert is written: in which language, with links to
    which address, times in which zone when an alley's own is unknown."""

    public_base_url: str = _DEFAULTS.PUBLIC_BASE_URL
    language: str = "zh"
    default_timezone: str = _DEFAULTS.DEFAULT_TIMEZONE


@dataclass(frozen=True)
class CutoffRules:
    """How a cut-off is pressed until the pile confirms it: CUTOFF_CONFIRM_S before it
    is "unconfirmed" (and escalated), re-sends every CUTOFF_RETRY_BASE_S doubling up to
    CUTOFF_RETRY_MAX_S."""

    confirm_s: int = _DEFAULTS.CUTOFF_CONFIRM_S
    retry_base_s: int = _DEFAULTS.CUTOFF_RETRY_BASE_S
    retry_max_s: int = _DEFAULTS.CUTOFF_RETRY_MAX_S


@dataclass(frozen=True)
class AlertRules:
    """When alerts page, flap, go offline, re-send and escalate; severity overrides."""

    debounce_s: int = _DEFAULTS.ALERT_DEBOUNCE_S
    offline_grace_s: int = _DEFAULTS.OFFLINE_GRACE_S
    resend_minutes: int = _DEFAULTS.ALERT_RESEND_MINUTES
    escalate_minutes: int = _DEFAULTS.ALERT_ESCALATE_MINUTES
    severity: Mapping[str, str] = field(default_factory=lambda: _frozen(None))
    paging: Paging = field(default_factory=Paging)
    cutoff: CutoffRules = field(default_factory=lambda: CutoffRules())


@dataclass(frozen=True)
class CommandRules:
    """Where commands are published and how long a pile has to answer."""

    topic_prefix: str = _DEFAULTS.MQTT_TOPIC_PREFIX
    timeout_s: int = _DEFAULTS.COMMAND_TIMEOUT_S
    unsent_timeout_s: int = _DEFAULTS.COMMAND_UNSENT_TIMEOUT_S
    default_timezone: str = _DEFAULTS.DEFAULT_TIMEZONE


@dataclass(frozen=True)
class SmsConfig:
    """SMS_*: Aliyun SendSms endpoint, AccessKey pair, approved signature name (签名)
    and the template code of each reminder kind (see chargers.services.alerts.sms)."""

    endpoint: str = "https://dysmsapi.aliyuncs.com/"
    access_key_id: str = ""
    access_key_secret: str = ""
    sign_name: str = ""
    region: str = _DEFAULTS.SMS_REGION
    timeout_s: int = _DEFAULTS.SMS_TIMEOUT_S
    templates: Mapping[str, str] = field(default_factory=lambda: _frozen(None))

    @property
    def enabled(self) -> bool:
        return bool(self.access_key_id and self.access_key_secret and self.sign_name)


@dataclass(frozen=True)
class WechatConfig:
    """WECHAT_MP_*: the official account's AppID and AppSecret (for the access_token),
    the API's base address, and each message kind's subscription-message template: its
    id and which of the template's keywords (thing1, time2, …) carries which of the
    message's values (see chargers.services.alerts.wechat)."""

    api_base: str = "https://api.weixin.qq.com"
    app_id: str = ""
    app_secret: str = ""
    timeout_s: int = _DEFAULTS.WECHAT_MP_TIMEOUT_S
    # kind -> template id; kind -> {keyword: value name}
    templates: Mapping[str, str] = field(default_factory=lambda: _frozen(None))
    fields: Mapping[str, Mapping[str, str]] = field(default_factory=lambda: _frozen(None))
    page: str = ""  # the page a message opens (empty: none)

    @property
    def enabled(self) -> bool:
        return bool(self.app_id and self.app_secret)


@dataclass(frozen=True)
class Delivery:
    """How the notification outbox is delivered: retries, webhooks, SMTP."""

    max_attempts: int = _DEFAULTS.NOTIFY_MAX_ATTEMPTS
    backoff_base_s: int = _DEFAULTS.NOTIFY_BACKOFF_BASE_S
    backoff_max_s: int = _DEFAULTS.NOTIFY_BACKOFF_MAX_S
    webhook_timeout_s: int = _DEFAULTS.WEBHOOK_TIMEOUT_S
    webhook_allow_private: bool = False
    smtp_host: str = ""
    smtp_port: int = _DEFAULTS.SMTP_PORT
    smtp_from: str = _DEFAULTS.SMTP_FROM
    smtp_user: str = ""
    smtp_password: str = ""
    smtp_security: str = ""
    smtp_timeout_s: int = _DEFAULTS.SMTP_TIMEOUT_S
    sms: SmsConfig = field(default_factory=SmsConfig)
    wechat: WechatConfig = field(default_factory=WechatConfig)


@dataclass(frozen=True)
class AlleyDefaults:
    """What a new alley gets unless told otherwise."""

    timezone: str = _DEFAULTS.DEFAULT_TIMEZONE
    tariff_cents_per_kwh: int = _DEFAULTS.DEFAULT_TARIFF_CENTS_PER_KWH


@dataclass(frozen=True)
class ReportSettings:
    """Residents' problem reports: where photos go and how big they may be."""

    photo_dir: Path = Path("instance/reports")
    photo_max_bytes: int = 8 * 1024 * 1024


@dataclass(frozen=True)
class SettleRule:
    """Settings of a settlement run: sessions per batch (one transaction each), and at
    most how many batches (None: until nothing is left)."""

    batch_size: int = _DEFAULTS.SETTLE_BATCH_SIZE
    max_batches: int | None = None


@dataclass(frozen=True)
class GuardRule:
    """Settings of the balance guard: how long a session on an unknown card may run
    before it is stopped (unless its alley allows unbilled charging)."""

    unknown_card_grace_s: int = 120


def paging(config: Mapping) -> Paging:
    """Notifications are written in the deployment's first language (LANGUAGES[0],
    Chinese by default): alleys carry no language of their own yet."""
    return Paging(public_base_url=config["PUBLIC_BASE_URL"],
                  language=(config.get("LANGUAGES") or ("zh",))[0],
                  default_timezone=config["DEFAULT_TIMEZONE"])


def alerts(config: Mapping) -> AlertRules:
    """ALERT_DEBOUNCE_S, OFFLINE_GRACE_S, ALERT_RESEND/ESCALATE_MINUTES, ALERT_SEVERITY."""
    return AlertRules(debounce_s=config["ALERT_DEBOUNCE_S"],
                      offline_grace_s=config["OFFLINE_GRACE_S"],
                      resend_minutes=config["ALERT_RESEND_MINUTES"],
                      escalate_minutes=config["ALERT_ESCALATE_MINUTES"],
                      severity=_frozen(config.get("ALERT_SEVERITY")),
                      paging=paging(config), cutoff=cutoff(config))


def cutoff(config: Mapping) -> CutoffRules:
    """CUTOFF_CONFIRM_S, CUTOFF_RETRY_BASE_S, CUTOFF_RETRY_MAX_S."""
    return CutoffRules(confirm_s=config["CUTOFF_CONFIRM_S"],
                       retry_base_s=config["CUTOFF_RETRY_BASE_S"],
                       retry_max_s=config["CUTOFF_RETRY_MAX_S"])


def commands(config: Mapping) -> CommandRules:
    """MQTT_TOPIC_PREFIX, COMMAND_TIMEOUT_S, COMMAND_UNSENT_TIMEOUT_S."""
    return CommandRules(topic_prefix=config["MQTT_TOPIC_PREFIX"],
                        timeout_s=config["COMMAND_TIMEOUT_S"],
                        unsent_timeout_s=config["COMMAND_UNSENT_TIMEOUT_S"],
                        default_timezone=config["DEFAULT_TIMEZONE"])


def delivery(config: Mapping) -> Delivery:
    """NOTIFY_*, WEBHOOK_*, SMTP_*."""
    return Delivery(max_attempts=config["NOTIFY_MAX_ATTEMPTS"],
                    backoff_base_s=config["NOTIFY_BACKOFF_BASE_S"],
                    backoff_max_s=config["NOTIFY_BACKOFF_MAX_S"],
                    webhook_timeout_s=config["WEBHOOK_TIMEOUT_S"],
                    webhook_allow_private=bool(config.get("WEBHOOK_ALLOW_PRIVATE")),
                    smtp_host=config["SMTP_HOST"], smtp_port=config["SMTP_PORT"],
                    smtp_from=config["SMTP_FROM"], smtp_user=config["SMTP_USER"],
                    smtp_password=config["SMTP_PASSWORD"],
                    smtp_security=config["SMTP_SECURITY"],
                    smtp_timeout_s=config["SMTP_TIMEOUT_S"], sms=sms(config),
                    wechat=wechat(config))


# The kinds of messages a resident may get (billing.reminders composes each).
RESIDENT_KINDS = ("low_balance", "negative", "monthly_end", "statement", "overstay", "cutoff",
                  "battery_risk", "session_start", "full", "stopped", "failed", "queue_start",
                  "budget_stop")


def wechat(config: Mapping) -> WechatConfig:
    """WECHAT_MP_* (official account subscription messages). Templates come as
    WECHAT_MP_TEMPLATE_<KIND> = "<template id>" or "<template id>|thing1=place,time2=time"
    (the keyword map; without it, chargers.services.alerts.wechat's default for the kind)."""
    templates, fields = {}, {}
    for kind in RESIDENT_KINDS:
        raw = str(config.get(f"WECHAT_MP_TEMPLATE_{kind.upper()}", "") or "").strip()
        tid, _, spec = raw.partition("|")
        if tid.strip():
            templates[kind] = tid.strip()
        if spec.strip():
            fields[kind] = _frozen(dict(
                (k.strip(), v.strip()) for k, _e, v in
                (part.partition("=") for part in spec.split(",")) if k.strip()))
    return WechatConfig(api_base=(config.get("WECHAT_MP_API_BASE")
                                  or WechatConfig.api_base).rstrip("/"),
                        app_id=config.get("WECHAT_MP_APP_ID", ""),
                        app_secret=config.get("WECHAT_MP_APP_SECRET", ""),
                        timeout_s=config.get("WECHAT_MP_TIMEOUT_S", WechatConfig.timeout_s),
                        templates=_frozen(templates), fields=_frozen(fields),
                        page=config.get("WECHAT_MP_PAGE", ""))


# The official account's settings before they were one configuration, and their names now.
RENAMED = {"WECHAT_APPID": "WECHAT_MP_APP_ID", "WECHAT_APP_SECRET": "WECHAT_MP_APP_SECRET",
           "WECHAT_OAUTH_URL": "WECHAT_MP_OAUTH_URL", "WECHAT_API_URL": "WECHAT_MP_API_BASE"}


def official_account_problems(config: Mapping) -> list[str]:
    """What stops a half-configured official account (WECHAT_MP_*, used by both the
    subscription messages and WeChat Pay's appid and OAuth): an AppID without its
    secret (or the reverse), templates without the account, an account that nothing
    uses, a retired name. Names variables, never their values."""
    cfg = wechat(config)
    problems = []
    retired = sorted({n for n in RENAMED if str(config.get(n) or "").strip()}
                     | set(config.get("RETIRED_SETTINGS") or ()))
    for name in retired:
        problems.append(f"{name} is no longer read: the official account is configured once, "
                        f"as {RENAMED[name]}")
    if bool(cfg.app_id) != bool(cfg.app_secret):
        problems.append("The WeChat official account is half configured: set both "
                        "WECHAT_MP_APP_ID and WECHAT_MP_APP_SECRET, or neither")
    elif cfg.templates and not cfg.enabled:
        problems.append("WECHAT_MP_TEMPLATE_* are set but WECHAT_MP_APP_ID and "
                        "WECHAT_MP_APP_SECRET are not")
    elif cfg.enabled and not cfg.templates and not str(config.get("WECHATPAY_MCHID") or "").strip():
        problems.append("WECHAT_MP_APP_ID is set but no WECHAT_MP_TEMPLATE_<KIND> and no "
                        "WECHATPAY_MCHID: nothing would use the official account")
    if cfg.enabled and not cfg.api_base.startswith(("https://", "http://")):
        problems.append("WECHAT_MP_API_BASE must be an http(s) address")
    return problems


def check(config: Mapping) -> None:
    """The one start check of the providers' configuration: a half-configured payment
    channel or official account stops the start (create_app calls this), with every
    problem named at once."""
    problems = payments_problems(config) + official_account_problems(config)
    if problems:
        raise RuntimeError("; ".join(problems))


def sms(config: Mapping) -> SmsConfig:
    """SMS_* (Aliyun SendSms)."""
    templates = {kind: config.get(f"SMS_TEMPLATE_{kind.upper()}", "")
                 for kind in RESIDENT_KINDS}
    return SmsConfig(endpoint=config.get("SMS_ENDPOINT") or SmsConfig.endpoint,
                     access_key_id=config["SMS_ACCESS_KEY_ID"],
                     access_key_secret=config["SMS_ACCESS_KEY_SECRET"],
                     sign_name=config["SMS_SIGN_NAME"],
                     region=config["SMS_REGION"],
                     timeout_s=config["SMS_TIMEOUT_S"],
                     templates=_frozen(templates))


def alley_defaults(config: Mapping) -> AlleyDefaults:
    """DEFAULT_TIMEZONE, DEFAULT_TARIFF_CENTS_PER_KWH."""
    return AlleyDefaults(timezone=config["DEFAULT_TIMEZONE"],
                         tariff_cents_per_kwh=config["DEFAULT_TARIFF_CENTS_PER_KWH"])


def reports(config: Mapping) -> ReportSettings:
    """REPORT_PHOTO_DIR, REPORT_PHOTO_MAX_BYTES."""
    return ReportSettings(photo_dir=Path(config["REPORT_PHOTO_DIR"]),
                          photo_max_bytes=config["REPORT_PHOTO_MAX_BYTES"])


def settle(config: Mapping) -> SettleRule:
    """Settlement settings."""
    return SettleRule(batch_size=config["SETTLE_BATCH_SIZE"])


def guard(config: Mapping) -> GuardRule:
    """Balance guard settings."""
    return GuardRule(unknown_card_grace_s=config["BILLING_UNKNOWN_CARD_GRACE_S"])


@dataclass(frozen=True)
class CloseRule:
    """Monthly close: the local hour on the 1st from which the past month closes, how
    many months one run may close, the loss percent above which reconciliation flags."""

    hour: int = _DEFAULTS.CLOSE_HOUR
    max_months: int = 24
    loss_pct: int = _DEFAULTS.RECONCILE_LOSS_PCT


def close(config: Mapping) -> CloseRule:
    """Monthly close and reconciliation settings."""
    return CloseRule(hour=config["CLOSE_HOUR"],
                     loss_pct=config["RECONCILE_LOSS_PCT"])


@dataclass(frozen=True)
class ReminderRule:
    """Residents' reminders: the default low-balance threshold (fen) and how many days
    before a monthly card ends (alleys may set their own), the public address for
    links, the language of the messages."""

    low_balance_cents: int = _DEFAULTS.REMINDER_LOW_BALANCE_CENTS
    monthly_days: int = _DEFAULTS.REMINDER_MONTHLY_DAYS
    paging: Paging = field(default_factory=Paging)


def reminders(config: Mapping) -> ReminderRule:
    """REMINDER_* and the paging settings."""
    return ReminderRule(low_balance_cents=config["REMINDER_LOW_BALANCE_CENTS"],
                        monthly_days=config["REMINDER_MONTHLY_DAYS"],
                        paging=paging(config))


@dataclass(frozen=True)
class OverstayRule:
    """Overstays: a finished port still plugged in `minutes` is one; its card holder is
    nudged then and again every `nudge_minutes` while it lasts (0: never nudged), in
    the language of `paging`."""

    minutes: int = _DEFAULTS.OVERSTAY_MINUTES
    nudge_minutes: int = _DEFAULTS.OVERSTAY_NUDGE_MINUTES
    paging: Paging = field(default_factory=Paging)


def overstay(config: Mapping) -> OverstayRule:
    """OVERSTAY_MINUTES, OVERSTAY_NUDGE_MINUTES and the paging settings."""
    return OverstayRule(minutes=config["OVERSTAY_MINUTES"],
                        nudge_minutes=config["OVERSTAY_NUDGE_MINUTES"],
                        paging=paging(config))


@dataclass(frozen=True)
class ClockRule:
    """How far a pile's `ts` may be from arrival time and still be believed."""

    past: timedelta = timedelta(seconds=_DEFAULTS.CLOCK_PLAUSIBLE_PAST_S)
    future: timedelta = timedelta(seconds=_DEFAULTS.CLOCK_PLAUSIBLE_FUTURE_S)


def clock(config: Mapping) -> ClockRule:
    """CLOCK_PLAUSIBLE_PAST_S / _FUTURE_S."""
    return ClockRule(timedelta(seconds=config["CLOCK_PLAUSIBLE_PAST_S"]),
                     timedelta(seconds=config["CLOCK_PLAUSIBLE_FUTURE_S"]))


@dataclass(frozen=True)
class PhotoRule:
    """Where inspection photos go and how big they may be."""

    directory: str
    max_bytes: int = _DEFAULTS.MAINTENANCE_PHOTO_MAX_BYTES
    max_px: int = _DEFAULTS.MAINTENANCE_PHOTO_MAX_PX


def photos(config: Mapping) -> PhotoRule:
    """MAINTENANCE_PHOTO_DIR, _MAX_BYTES, _MAX_PX."""
    return PhotoRule(directory=config["MAINTENANCE_PHOTO_DIR"],
                     max_bytes=config["MAINTENANCE_PHOTO_MAX_BYTES"],
                     max_px=config["MAINTENANCE_PHOTO_MAX_PX"])


@dataclass(frozen=True)
class MaintenanceRule:
    """Inspection reminders and the fault rule: the local hour of reminders, days
    before escalation, how many faults in how many days (or which meter temperature)
    open an unscheduled inspection, and the public address for links."""

    remind_hour: int = _DEFAULTS.INSPECTION_REMIND_HOUR
    escalate_days: int = _DEFAULTS.INSPECTION_ESCALATE_DAYS
    fault_count: int = _DEFAULTS.FAULT_INSPECTION_COUNT
    fault_window_days: int = _DEFAULTS.FAULT_INSPECTION_WINDOW_DAYS
    temp_c: float = float(_DEFAULTS.FAULT_INSPECTION_TEMP_C)
    base_url: str = _DEFAULTS.PUBLIC_BASE_URL.rstrip("/")


def maintenance(config: Mapping) -> MaintenanceRule:
    """INSPECTION_*, FAULT_INSPECTION_*, PUBLIC_BASE_URL."""
    return MaintenanceRule(remind_hour=config["INSPECTION_REMIND_HOUR"],
                           escalate_days=config["INSPECTION_ESCALATE_DAYS"],
                           fault_count=config["FAULT_INSPECTION_COUNT"],
                           fault_window_days=config["FAULT_INSPECTION_WINDOW_DAYS"],
                           temp_c=float(config["FAULT_INSPECTION_TEMP_C"]),
                           base_url=config["PUBLIC_BASE_URL"].rstrip("/"))


@dataclass(frozen=True)
class RetentionRule:
    """Ages in days (0 keeps forever) and the batch size of the retention job."""

    meter_days: int = _DEFAULTS.RETENTION_METER_DAYS
    notification_days: int = _DEFAULTS.RETENTION_NOTIFICATION_DAYS
    rejection_days: int = _DEFAULTS.RETENTION_REJECTION_DAYS
    job_run_days: int = _DEFAULTS.RETENTION_JOB_RUN_DAYS
    batch: int = _DEFAULTS.RETENTION_BATCH


def retention(config: Mapping) -> RetentionRule:
    """RETENTION_*."""
    return RetentionRule(meter_days=config["RETENTION_METER_DAYS"],
                         notification_days=config["RETENTION_NOTIFICATION_DAYS"],
                         rejection_days=config["RETENTION_REJECTION_DAYS"],
                         job_run_days=config["RETENTION_JOB_RUN_DAYS"],
                         batch=config["RETENTION_BATCH"])


@dataclass(frozen=True)
class RiskRule:
    """Thresholds of the charging risk grade (services/safety/risk.py); the figures
    behind each default are in docs/risk.md (RISK_* in config/)."""

    # over_power: over the port's limit is a battery risk (high) only above this power,
    # more than any ordinary e-bike charger draws (72 V 5 A is ~500 W at the wall).
    over_power_w: float = float(_DEFAULTS.DEVICE_MAX_POWER_W)
    # over_power: readings above the card's own usual bulk power by this factor (and
    # by at least `over_card_min_w`), this many in a row: mid; by `over_card_high`: high.
    over_card_factor: float = _DEFAULTS.RISK_OVER_CARD_FACTOR
    over_card_high: float = 2.2
    over_card_min_w: float = 120.0
    over_card_readings: int = 3
    # power_fluctuation: a reading swings when its (max-min)/mean or its step from the
    # previous reading exceeds `swing_ratio` of the power (ignoring small powers);
    # this many swings: mid; `swing_high` swings: high.
    swing_ratio: float = _DEFAULTS.RISK_SWING_RATIO
    swing_min_w: float = 60.0
    swing_mid: int = 4
    swing_high: int = 10
    # no_taper: still at ≥ `bulk_ratio` of the bulk power once the energy exceeds the
    # card's usual energy by `no_taper_mid` (mid) or `no_taper_high` (high) of it;
    # without a usual energy, after `no_taper_default_s` at bulk power: mid. The usual
    # energy is the largest learned full charge plus `no_taper_spread` × their spread
    # over their number less one (services/safety/cards.py `full_energy`). Whatever the
    # history, `no_taper_bulk_high_s` at bulk power without a break: high (a healthy
    # pack from empty leaves bulk within about 6 h, lead-acid at C/10). The energy
    # grades high only once `no_taper_min_sessions` full charges taught it (three
    # charges of a habit say little of how empty the pack can be: docs/risk.md).
    bulk_ratio: float = 0.8
    no_taper_mid: float = 1.05
    no_taper_high: float = _DEFAULTS.RISK_NO_TAPER_HIGH
    no_taper_min_sessions: int = 4
    no_taper_high_max_s: int = 25 * 60
    no_taper_spread: float = _DEFAULTS.RISK_NO_TAPER_SPREAD
    no_taper_bulk_high_s: int = 7 * 3600
    no_taper_default_s: int = 6 * 3600
    # temp_rise: the port's temperature this many °C over its first reading: mid / high;
    # the `risk-review` job keeps it only when the alley's other ports under similar
    # load rose at least `temp_peer_margin_c` less.
    temp_rise_mid_c: float = 15.0
    temp_rise_high_c: float = _DEFAULTS.RISK_TEMP_RISE_HIGH_C
    temp_peer_margin_c: float = 8.0
    # Readings below this power count as idle: not used for bulk or swings.
    idle_w: float = 40.0
    # A `no_taper` graded mid is withdrawn once the charge has held under the
    # 充满自停 power this long: it tapered to the float, as a healthy pack begun
    # emptier than its card's history does (a pack that never tapers does not).
    taper_withdraw_s: int = 120


@dataclass(frozen=True)
class LimitRule:
    """The limits the backend enforces on every pile whatever its firmware, where the
    alley and the pile set none (DEVICE_*): per-port power, 充满自停 threshold and
    hold, the longest session; and how often a pile with the `config` feature is sent
    its configuration again until it reports it (CONFIG_RESEND_S)."""

    max_power_w: int = _DEFAULTS.DEVICE_MAX_POWER_W
    overload_readings: int = 2
    full_stop_power_w: int = _DEFAULTS.DEVICE_FULL_STOP_POWER_W
    full_stop_hold_s: int = _DEFAULTS.DEVICE_FULL_STOP_HOLD_S
    max_session_s: int = _DEFAULTS.DEVICE_MAX_SESSION_S
    config_resend_s: int = _DEFAULTS.CONFIG_RESEND_S
    risk: RiskRule = field(default_factory=RiskRule)
    paging: Paging = field(default_factory=Paging)


def limits(config: Mapping) -> LimitRule:
    """DEVICE_MAX_POWER_W, DEVICE_FULL_STOP_POWER_W, DEVICE_FULL_STOP_HOLD_S,
    DEVICE_MAX_SESSION_S, CONFIG_RESEND_S and RISK_*."""
    risk = RiskRule(**{k: type(getattr(RiskRule, k))(config[f"RISK_{k.upper()}"])
                       for k in RiskRule.__dataclass_fields__ if f"RISK_{k.upper()}" in config})
    return LimitRule(max_power_w=config["DEVICE_MAX_POWER_W"],
                     full_stop_power_w=config["DEVICE_FULL_STOP_POWER_W"],
                     full_stop_hold_s=config["DEVICE_FULL_STOP_HOLD_S"],
                     max_session_s=config["DEVICE_MAX_SESSION_S"],
                     config_resend_s=config["CONFIG_RESEND_S"],
                     risk=risk, paging=paging(config))


# WeChat Pay's and Alipay's own clock: their times, time limits and bill dates are Beijing
# time whatever the alley's zone (a provider's fact, not a setting).
PROVIDER_ZONE = "Asia/Shanghai"


@dataclass(frozen=True)
class WeChatPayRule:
    """WECHATPAY_* and WECHAT_*: a direct merchant of WeChat Pay v3 and its official
    account. Key material stays in files; the API v3 key and the AppSecret are held
    here but never shown (repr=False)."""

    mchid: str = ""
    appid: str = ""
    apiv3_key: str = field(default="", repr=False)
    cert_serial: str = ""
    private_key_path: str = ""
    public_key_path: str = ""
    public_key_id: str = ""
    gateway: str = _DEFAULTS.WECHATPAY_GATEWAY
    app_secret: str = field(default="", repr=False)
    oauth_url: str = _DEFAULTS.WECHAT_MP_OAUTH_URL
    api_url: str = _DEFAULTS.WECHAT_MP_API_BASE

    @property
    def enabled(self) -> bool:
        return bool(self.mchid)


@dataclass(frozen=True)
class AlipayRule:
    """ALIPAY_*: an Alipay app with mobile web pay (手机网站支付)."""

    app_id: str = ""
    app_private_key_path: str = ""
    public_key_path: str = ""
    gateway: str = _DEFAULTS.ALIPAY_GATEWAY

    @property
    def enabled(self) -> bool:
        return bool(self.app_id)


@dataclass(frozen=True)
class PaymentRule:
    """Online top-ups: both providers, our notify base URL, the top-up limits, the
    contract fee rates (basis points), a notification's longest age and when an unpaid
    order is queried and closed."""

    wechat: WeChatPayRule = field(default_factory=WeChatPayRule)
    alipay: AlipayRule = field(default_factory=AlipayRule)
    notify_url: str = ""
    min_cents: int = _DEFAULTS.PAYMENTS_MIN_CENTS
    max_cents: int = _DEFAULTS.PAYMENTS_MAX_CENTS
    wechat_fee_bp: int = _DEFAULTS.PAYMENTS_WECHAT_FEE_BP
    alipay_fee_bp: int = _DEFAULTS.PAYMENTS_ALIPAY_FEE_BP
    notice_max_age_s: int = _DEFAULTS.PAYMENTS_NOTICE_MAX_AGE_S
    order_expire_s: int = _DEFAULTS.PAYMENTS_ORDER_EXPIRE_S
    timeout_s: int = _DEFAULTS.PAYMENTS_TIMEOUT_S

    @property
    def enabled(self) -> bool:
        return self.wechat.enabled or self.alipay.enabled


_WECHAT_NEEDS = ("WECHATPAY_MCHID", "WECHATPAY_APIV3_KEY", "WECHATPAY_CERT_SERIAL",
                 "WECHATPAY_PRIVATE_KEY_PATH", "WECHAT_MP_APP_ID",
                 "WECHAT_MP_APP_SECRET")
_ALIPAY_NEEDS = ("ALIPAY_APP_ID", "ALIPAY_APP_PRIVATE_KEY_PATH", "ALIPAY_PUBLIC_KEY_PATH")


# WeChat Pay's platform-certificate mode is refused (docs/payments.md): wechatpayv3
# downloads the platform certificates from its built-in gateway while the client is
# being built, before WECHATPAY_GATEWAY can apply, so the mode cannot be run against
# the emulator nor tested here; public-key mode (微信支付公钥) is what WeChat Pay gives
# merchants now.
PLATFORM_CERT_REFUSED = (
    "WeChat Pay: platform-certificate mode (WECHATPAY_PLATFORM_CERT_DIR) is not supported; "
    "use public-key mode: set WECHATPAY_PUBLIC_KEY_PATH and WECHATPAY_PUBLIC_KEY_ID (the "
    "WeChat Pay public key and its id, from the merchant platform's API security page) and "
    "leave WECHATPAY_PLATFORM_CERT_DIR empty")


def _text(config: Mapping, name: str) -> str:
    """A setting as trimmed text ("" when unset)."""
    return str(config.get(name) or "").strip()


def _given(config: Mapping, name: str) -> bool:
    return bool(_text(config, name))


def payments_problems(config: Mapping) -> list[str]:
    """What stops a half-configured payment channel from starting (empty: each channel
    is wholly configured or wholly off). Names variables, never their values."""
    problems = []
    for channel, needs, extra in (
            ("WeChat Pay", _WECHAT_NEEDS, ("WECHATPAY_PUBLIC_KEY_PATH", "WECHATPAY_PUBLIC_KEY_ID",
                                           "WECHATPAY_PLATFORM_CERT_DIR")),
            ("Alipay", _ALIPAY_NEEDS, ())):
        # The official account (WECHAT_MP_*) is also the messages': it alone is no
        # WeChat Pay.
        on = [n for n in needs + extra if _given(config, n) and not n.startswith("WECHAT_MP_")]
        if not on:
            continue
        missing = [n for n in needs if not _given(config, n)]
        if channel == "WeChat Pay":
            missing += _wechat_missing(config)
            if _given(config, "WECHATPAY_PLATFORM_CERT_DIR"):
                problems.append(PLATFORM_CERT_REFUSED)
        if missing:
            problems.append(f"{channel} is half configured: set {', '.join(missing)} "
                            "(or none of its settings to turn it off)")
            continue
        problems += _file_problems(config, channel, needs + extra)
        if not _given(config, "PAYMENTS_NOTIFY_URL"):
            problems.append(f"{channel} needs PAYMENTS_NOTIFY_URL (where the provider "
                            "posts its notifications)")
    return problems


def _wechat_missing(config: Mapping) -> list[str]:
    """WeChat Pay's public key and its id go together; the APIv3 key has 32 characters."""
    missing = []
    key, key_id = _given(config, "WECHATPAY_PUBLIC_KEY_PATH"), _given(config, "WECHATPAY_PUBLIC_KEY_ID")
    if key != key_id:
        missing.append("WECHATPAY_PUBLIC_KEY_ID" if key else "WECHATPAY_PUBLIC_KEY_PATH")
    elif not key:
        missing.append("WECHATPAY_PUBLIC_KEY_PATH and WECHATPAY_PUBLIC_KEY_ID")
    if len(str(config.get("WECHATPAY_APIV3_KEY") or "")) not in (0, 32):
        missing.append("WECHATPAY_APIV3_KEY of 32 characters")
    return missing


def _file_problems(config: Mapping, channel: str, names) -> list[str]:
    """Each given *_PATH names a file and each *_DIR a folder."""
    problems = []
    for n in names:
        if n.endswith("_PATH") and _given(config, n) and not Path(str(config[n])).is_file():
            problems.append(f"{channel}: {n} names no readable file")
        if n.endswith("_DIR") and _given(config, n) and not Path(str(config[n])).is_dir():
            problems.append(f"{channel}: {n} names no folder")
    return problems


def payments(config: Mapping) -> PaymentRule:
    """PAYMENTS_*, WECHATPAY_*, the official account's WECHAT_MP_*, ALIPAY_*;
    RuntimeError when a channel is half configured (create_app calls this, so such a
    deployment does not start)."""
    problems = payments_problems(config)
    if problems:
        raise RuntimeError("; ".join(problems))

    def g(name: str) -> str:
        return _text(config, name)

    wechat = WeChatPayRule(
        mchid=g("WECHATPAY_MCHID"), appid=g("WECHAT_MP_APP_ID"), apiv3_key=g("WECHATPAY_APIV3_KEY"),
        cert_serial=g("WECHATPAY_CERT_SERIAL"), private_key_path=g("WECHATPAY_PRIVATE_KEY_PATH"),
        public_key_path=g("WECHATPAY_PUBLIC_KEY_PATH"), public_key_id=g("WECHATPAY_PUBLIC_KEY_ID"),
        gateway=g("WECHATPAY_GATEWAY") or WeChatPayRule.gateway,
        app_secret=g("WECHAT_MP_APP_SECRET"),
        oauth_url=g("WECHAT_MP_OAUTH_URL") or WeChatPayRule.oauth_url,
        api_url=(g("WECHAT_MP_API_BASE") or WeChatPayRule.api_url).rstrip("/"))
    alipay = AlipayRule(app_id=g("ALIPAY_APP_ID"),
                        app_private_key_path=g("ALIPAY_APP_PRIVATE_KEY_PATH"),
                        public_key_path=g("ALIPAY_PUBLIC_KEY_PATH"),
                        gateway=g("ALIPAY_GATEWAY") or AlipayRule.gateway)
    d = PaymentRule()
    return PaymentRule(wechat=wechat, alipay=alipay, notify_url=g("PAYMENTS_NOTIFY_URL").rstrip("/"),
                       min_cents=int(config.get("PAYMENTS_MIN_CENTS", d.min_cents)),
                       max_cents=int(config.get("PAYMENTS_MAX_CENTS", d.max_cents)),
                       wechat_fee_bp=int(config.get("PAYMENTS_WECHAT_FEE_BP", d.wechat_fee_bp)),
                       alipay_fee_bp=int(config.get("PAYMENTS_ALIPAY_FEE_BP", d.alipay_fee_bp)),
                       notice_max_age_s=int(config.get("PAYMENTS_NOTICE_MAX_AGE_S",
                                                       d.notice_max_age_s)),
                       order_expire_s=int(config.get("PAYMENTS_ORDER_EXPIRE_S", d.order_expire_s)),
                       timeout_s=int(config.get("PAYMENTS_TIMEOUT_S", d.timeout_s)))
@dataclass(frozen=True)
class BudgetRule:
    """The alley's power budget (services/budget): the safety margin kept under an
    alley's feeder limit when it sets none (BUDGET_MARGIN_PCT); how long an admitted
    session's expected draw counts before its first reading (BUDGET_ADMIT_TTL_S); how
    old a reading may be and still count as load now (BUDGET_READING_FRESH_S); over how
    many readings above the limit the backend stops sessions (BUDGET_OVER_READINGS, the
    reading interval BUDGET_READING_S); how long a queued resident may wait
    (BUDGET_QUEUE_MAX_WAIT_S); and the limits an accepted session gets."""

    margin_pct: int = _DEFAULTS.BUDGET_MARGIN_PCT
    admit_ttl_s: int = _DEFAULTS.BUDGET_ADMIT_TTL_S
    reading_fresh_s: int = _DEFAULTS.BUDGET_READING_FRESH_S
    reading_s: int = _DEFAULTS.BUDGET_READING_S
    over_readings: int = _DEFAULTS.BUDGET_OVER_READINGS
    queue_max_wait_s: int = _DEFAULTS.BUDGET_QUEUE_MAX_WAIT_S
    limits: LimitRule = field(default_factory=LimitRule)


def budget(config: Mapping) -> BudgetRule:
    """BUDGET_* and the device limits (DEVICE_*)."""
    return BudgetRule(margin_pct=config["BUDGET_MARGIN_PCT"],
                      admit_ttl_s=config["BUDGET_ADMIT_TTL_S"],
                      reading_fresh_s=config["BUDGET_READING_FRESH_S"],
                      reading_s=config["BUDGET_READING_S"],
                      over_readings=config["BUDGET_OVER_READINGS"],
                      queue_max_wait_s=config["BUDGET_QUEUE_MAX_WAIT_S"],
                      limits=limits(config))


@dataclass(frozen=True)
class IngestRule:
    """What the MQTT ingest (chargers/ingest/handlers.py) applies a batch by: the topic
    prefix, the largest payload, the device clock's plausible range, the heartbeat
    interval, how long message ids are remembered, the alert, limit and budget rules,
    and the deployment's language for residents' messages."""

    prefix: str
    max_bytes: int
    clock: ClockRule
    heartbeat_s: int
    alerts: AlertRules
    dedup_days: int = 7
    limits: LimitRule = LimitRule()
    budget: BudgetRule = BudgetRule()
    language: str = "zh"


def ingest(config: Mapping) -> IngestRule:
    """MQTT_TOPIC_PREFIX, MAX_PAYLOAD_BYTES, CLOCK_*, HEARTBEAT_INTERVAL_S,
    DEDUP_RETENTION_DAYS, the alert, device-limit and budget settings, LANGUAGES[0]."""
    return IngestRule(prefix=config["MQTT_TOPIC_PREFIX"], max_bytes=config["MAX_PAYLOAD_BYTES"],
                      clock=clock(config), heartbeat_s=config["HEARTBEAT_INTERVAL_S"],
                      alerts=alerts(config), limits=limits(config),
                      dedup_days=config["DEDUP_RETENTION_DAYS"], budget=budget(config),
                      language=(config.get("LANGUAGES") or ("zh",))[0])
