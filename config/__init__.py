"""Settings classes, read from the environment (and `.env` in the checkout root).

`CHARGERS_ENV` picks the class: development (default), testing or production.
"""

from __future__ import annotations

import os
from pathlib import Path

from dotenv import load_dotenv

ROOT = Path(__file__).resolve().parent.parent
load_dotenv(ROOT / ".env")


def _env_int(name: str, default: int) -> int:
    """An integer setting from the environment; a value that is not one stops the
    start with a message naming the variable."""
    raw = os.environ.get(name, default)
    try:
        return int(raw)
    except (TypeError, ValueError):
        raise RuntimeError(f"setting {name} must be an integer, not {raw!r}") from None


def _env_map(name: str) -> dict[str, str]:
    """`a=x,b=y` from the environment as {"a": "x", "b": "y"} (empty when unset)."""
    out = {}
    for part in os.environ.get(name, "").split(","):
        key, sep, value = part.partition("=")
        if sep and key.strip():
            out[key.strip()] = value.strip()
    return out


def _public_base_url() -> str:
    """PUBLIC_BASE_URL; unset, the address the development web serves (`make run`:
    127.0.0.1 on WEB_PORT, 5000 by default), so QR codes and links follow the port."""
    port = os.environ.get("WEB_PORT", "").strip() or "5000"
    return os.environ.get("PUBLIC_BASE_URL", "").strip() or f"http://127.0.0.1:{port}"


class Config:
    """Safe development defaults; every value can be set from the environment."""

    SECRET_KEY = os.environ.get("SECRET_KEY", "dev-only-not-secret")
    SQLALCHEMY_DATABASE_URI = os.environ.get(
        "DATABASE_URL", f"sqlite:///{ROOT / 'instance' / 'chargers.sqlite'}"
    )
    SQLALCHEMY_ENGINE_OPTIONS: dict = {"pool_pre_ping": True}
    # Empty MQTT_URL means: the embedded broker that `make run` starts itself.
    MQTT_URL = os.environ.get("MQTT_URL", "")
    MQTT_TOPIC_PREFIX = os.environ.get("MQTT_TOPIC_PREFIX", "chargers/v1")
    MQTT_CLIENT_ID = os.environ.get("MQTT_CLIENT_ID", "chargers-backend")
    # The worker's MQTT version: "3.1.1" (clean_session=False) or "5" (clean_start=False
    # with a session expiry; lets a broker name the sender in a user property).
    MQTT_PROTOCOL = os.environ.get("MQTT_PROTOCOL", "3.1.1")
    # Several workers: each with its own WORKER_NAME (client id MQTT_CLIENT_ID-NAME)
    # takes the device topics through `$share/MQTT_SHARE_GROUP/…`. Empty: one worker.
    WORKER_NAME = os.environ.get("WORKER_NAME", "")
    MQTT_SHARE_GROUP = os.environ.get("MQTT_SHARE_GROUP", "chargers")
    # The names of all the workers that will run (space or comma separated, e.g.
    # "w1 w2"): `flask mqtt-auth` and `flask broker` give each MQTT_CLIENT_ID-<name> a
    # login of its own (the broker binds client ids to logins).
    WORKER_NAMES = os.environ.get("WORKER_NAMES", "")
    # Where the development broker (`flask broker`) writes the address it actually
    # listens on and the backend's login.
    EMBEDDED_BROKER_FILE = os.environ.get(
        "EMBEDDED_BROKER_FILE", str(ROOT / "instance" / "broker.json")
    )
    # Where `flask broker` keeps Mosquitto's generated configuration and its data.
    BROKER_DIR = os.environ.get("BROKER_DIR", str(ROOT / "instance" / "mosquitto"))
    DEFAULT_TIMEZONE = os.environ.get("DEFAULT_TIMEZONE", "Asia/Shanghai")
    DEFAULT_TARIFF_CENTS_PER_KWH = _env_int("DEFAULT_TARIFF_CENTS_PER_KWH", 100)
    # A pile's clock is believed when within this many seconds of arrival time
    # (messages queued during an outage may legitimately be older).
    CLOCK_PLAUSIBLE_PAST_S = _env_int("CLOCK_PLAUSIBLE_PAST_S", 24 * 3600)
    CLOCK_PLAUSIBLE_FUTURE_S = _env_int("CLOCK_PLAUSIBLE_FUTURE_S", 300)
    HEARTBEAT_INTERVAL_S = _env_int("HEARTBEAT_INTERVAL_S", 60)
    MAX_PAYLOAD_BYTES = _env_int("MAX_PAYLOAD_BYTES", 4096)
    DEDUP_RETENTION_DAYS = _env_int("DEDUP_RETENTION_DAYS", 7)
    # A jump in a pile's `seq` is possible data loss only when the missing numbers have
    # not arrived (late, out of order) within this many seconds.
    SEQ_GAP_WINDOW_S = _env_int("SEQ_GAP_WINDOW_S", 120)
    # A started session with no meter reading for this long is closed (status timeout).
    SESSION_STALE_S = _env_int("SESSION_STALE_S", 2 * 3600)

    # Billing. Sessions settled per transaction by the `settle` job.
    SETTLE_BATCH_SIZE = _env_int("SETTLE_BATCH_SIZE", 2000)
    # A session on an unknown card is stopped after this many seconds, unless its alley
    # allows unbilled charging.
    BILLING_UNKNOWN_CARD_GRACE_S = _env_int("BILLING_UNKNOWN_CARD_GRACE_S", 120)
    # Limits the backend enforces on every pile (an alley's device_settings and a
    # pile's overrides win), and the risk grade's thresholds: docs/risk.md.
    DEVICE_MAX_POWER_W = _env_int("DEVICE_MAX_POWER_W", 800)
    DEVICE_FULL_STOP_POWER_W = _env_int("DEVICE_FULL_STOP_POWER_W", 30)
    DEVICE_FULL_STOP_HOLD_S = _env_int("DEVICE_FULL_STOP_HOLD_S", 900)
    DEVICE_MAX_SESSION_S = _env_int("DEVICE_MAX_SESSION_S", 8 * 3600)
    CONFIG_RESEND_S = _env_int("CONFIG_RESEND_S", 120)
    # The alley's power budget (services/budget): the margin kept under a feeder limit
    # (percent, when the alley sets none); an admitted session's expected draw counts
    # until its first reading, at most this long; a reading counts as load now while
    # this fresh; the backend stops sessions after the load stayed over the limit for
    # more than this many readings (of BUDGET_READING_S each); a queued resident waits
    # at most this long.
    BUDGET_MARGIN_PCT = _env_int("BUDGET_MARGIN_PCT", 10)
    BUDGET_ADMIT_TTL_S = _env_int("BUDGET_ADMIT_TTL_S", 180)
    BUDGET_READING_FRESH_S = _env_int("BUDGET_READING_FRESH_S", 180)
    BUDGET_READING_S = _env_int("BUDGET_READING_S", 60)
    BUDGET_OVER_READINGS = _env_int("BUDGET_OVER_READINGS", 2)
    BUDGET_QUEUE_MAX_WAIT_S = _env_int("BUDGET_QUEUE_MAX_WAIT_S", 12 * 3600)
    RISK_OVER_CARD_FACTOR = float(os.environ.get("RISK_OVER_CARD_FACTOR", "1.6"))
    RISK_OVER_POWER_W = float(os.environ.get("RISK_OVER_POWER_W", str(DEVICE_MAX_POWER_W)))
    RISK_SWING_RATIO = float(os.environ.get("RISK_SWING_RATIO", "0.35"))
    RISK_NO_TAPER_HIGH = float(os.environ.get("RISK_NO_TAPER_HIGH", "1.1"))
    RISK_NO_TAPER_SPREAD = float(os.environ.get("RISK_NO_TAPER_SPREAD", "3.0"))
    RISK_TEMP_RISE_HIGH_C = float(os.environ.get("RISK_TEMP_RISE_HIGH_C", "25"))
    # Monthly close (`statements-monthly`): the local hour on the 1st from which the past
    # month closes; reconciliation flags a month whose grid kWh exceed the piles' metered
    # kWh by more than this percent of the grid kWh.
    CLOSE_HOUR = _env_int("CLOSE_HOUR", 2)
    RECONCILE_LOSS_PCT = _env_int("RECONCILE_LOSS_PCT", 8)
    # 'My account' look-ups per address (card + last 4 phone digits).
    ACCOUNT_LOOKUP_RATE_LIMIT = os.environ.get("ACCOUNT_LOOKUP_RATE_LIMIT", "10 per hour")
    # ... and per card, whatever address tries it (a guess of the last 4 digits spread
    # over many addresses still meets this one).
    ACCOUNT_LOOKUP_CARD_RATE_LIMIT = os.environ.get("ACCOUNT_LOOKUP_CARD_RATE_LIMIT",
                                                    "20 per day")

    # Alerts, commands and notifications.
    # Per-deployment severity changes, e.g. "communication=minor,other=major".
    ALERT_SEVERITY = _env_map("ALERT_SEVERITY")
    # A non-critical alert cleared within this many seconds is a flap: kept, pages nobody.
    ALERT_DEBOUNCE_S = _env_int("ALERT_DEBOUNCE_S", 60)
    # A pile silent and offline this long raises an `offline` alert.
    OFFLINE_GRACE_S = _env_int("OFFLINE_GRACE_S", 300)
    COMMAND_TIMEOUT_S = _env_int("COMMAND_TIMEOUT_S", 30)
    # A cut-off the pile has not confirmed (acked, and no port charging) within this
    # is "unconfirmed": escalated to level 2 and by SMS. Unconfirmed commands are sent
    # again every BASE s, doubling up to MAX s, and at once when the pile comes back.
    CUTOFF_CONFIRM_S = _env_int("CUTOFF_CONFIRM_S", 30)
    CUTOFF_RETRY_BASE_S = _env_int("CUTOFF_RETRY_BASE_S", 2)
    CUTOFF_RETRY_MAX_S = _env_int("CUTOFF_RETRY_MAX_S", 60)
    # A command that could not be published for this long is given up (timeout).
    COMMAND_UNSENT_TIMEOUT_S = _env_int("COMMAND_UNSENT_TIMEOUT_S", 300)
    # An unacknowledged critical alert is re-sent every N minutes, escalated after M.
    ALERT_RESEND_MINUTES = _env_int("ALERT_RESEND_MINUTES", 10)
    ALERT_ESCALATE_MINUTES = _env_int("ALERT_ESCALATE_MINUTES", 15)
    NOTIFY_MAX_ATTEMPTS = _env_int("NOTIFY_MAX_ATTEMPTS", 8)
    NOTIFY_BACKOFF_BASE_S = _env_int("NOTIFY_BACKOFF_BASE_S", 30)
    NOTIFY_BACKOFF_MAX_S = _env_int("NOTIFY_BACKOFF_MAX_S", 3600)
    WEBHOOK_TIMEOUT_S = _env_int("WEBHOOK_TIMEOUT_S", 10)
    # Webhooks to private/loopback addresses: allowed in development and tests (a local
    # receiver), refused in production unless set to 1.
    WEBHOOK_ALLOW_PRIVATE = os.environ.get("WEBHOOK_ALLOW_PRIVATE", "1") == "1"
    SMTP_HOST = os.environ.get("SMTP_HOST", "")
    SMTP_PORT = _env_int("SMTP_PORT", 25)
    SMTP_FROM = os.environ.get("SMTP_FROM", "chargers@localhost")
    SMTP_USER = os.environ.get("SMTP_USER", "")
    SMTP_PASSWORD = os.environ.get("SMTP_PASSWORD", "")
    # "starttls", "ssl" or "" (plain, e.g. a local relay).
    SMTP_SECURITY = os.environ.get("SMTP_SECURITY", "")
    SMTP_TIMEOUT_S = _env_int("SMTP_TIMEOUT_S", 10)
    # Residents' SMS reminders through Aliyun SendSms (RPC signature v1, HMAC-SHA1):
    # endpoint, AccessKey pair, approved signature name and one approved template code
    # per reminder kind (params: balance, threshold, until, month, alley, url).
    SMS_ENDPOINT = os.environ.get("SMS_ENDPOINT", "https://dysmsapi.aliyuncs.com/")
    SMS_ACCESS_KEY_ID = os.environ.get("SMS_ACCESS_KEY_ID", "")
    SMS_ACCESS_KEY_SECRET = os.environ.get("SMS_ACCESS_KEY_SECRET", "")
    SMS_SIGN_NAME = os.environ.get("SMS_SIGN_NAME", "")
    SMS_REGION = os.environ.get("SMS_REGION", "cn-hangzhou")
    SMS_TIMEOUT_S = _env_int("SMS_TIMEOUT_S", 10)
    SMS_TEMPLATE_LOW_BALANCE = os.environ.get("SMS_TEMPLATE_LOW_BALANCE", "")
    SMS_TEMPLATE_NEGATIVE = os.environ.get("SMS_TEMPLATE_NEGATIVE", "")
    SMS_TEMPLATE_MONTHLY_END = os.environ.get("SMS_TEMPLATE_MONTHLY_END", "")
    SMS_TEMPLATE_STATEMENT = os.environ.get("SMS_TEMPLATE_STATEMENT", "")
    SMS_TEMPLATE_OVERSTAY = os.environ.get("SMS_TEMPLATE_OVERSTAY", "")  # alley, pile, port, minutes
    SMS_TEMPLATE_CUTOFF = os.environ.get("SMS_TEMPLATE_CUTOFF", "")  # alley, pile, code
    SMS_TEMPLATE_SESSION_START = os.environ.get("SMS_TEMPLATE_SESSION_START", "")
    SMS_TEMPLATE_FULL = os.environ.get("SMS_TEMPLATE_FULL", "")
    SMS_TEMPLATE_STOPPED = os.environ.get("SMS_TEMPLATE_STOPPED", "")
    SMS_TEMPLATE_FAILED = os.environ.get("SMS_TEMPLATE_FAILED", "")
    SMS_TEMPLATE_QUEUE_START = os.environ.get("SMS_TEMPLATE_QUEUE_START", "")
    SMS_TEMPLATE_BUDGET_STOP = os.environ.get("SMS_TEMPLATE_BUDGET_STOP", "")
    # The alley's WeChat official account (公众号), one for everything: its AppID +
    # AppSecret (both or neither) are the payments' appid and the OAuth that learns a
    # resident's openid (WeChat Pay JSAPI), and they send the residents' subscription
    # messages. The API's base address (token, OAuth code exchange, messages), the OAuth
    # authorize page, and per message kind
    # WECHAT_MP_TEMPLATE_<KIND> = "<template id>[|thing1=place,time2=time,…]". Kinds:
    # session_start, full, stopped, failed, low_balance, negative, queue_start, …
    # (settings.RESIDENT_KINDS). A half-configured channel stops the start.
    WECHAT_MP_API_BASE = os.environ.get("WECHAT_MP_API_BASE", "https://api.weixin.qq.com")
    WECHAT_MP_APP_ID = os.environ.get("WECHAT_MP_APP_ID", "")
    WECHAT_MP_APP_SECRET = os.environ.get("WECHAT_MP_APP_SECRET", "")
    WECHAT_MP_OAUTH_URL = os.environ.get("WECHAT_MP_OAUTH_URL",
                                         "https://open.weixin.qq.com/connect/oauth2/authorize")
    # Names this official account had before it was one configuration: any of them set
    # stops the start, naming the name to use instead.
    RETIRED_SETTINGS = tuple(n for n in ("WECHAT_APPID", "WECHAT_APP_SECRET", "WECHAT_OAUTH_URL",
                                         "WECHAT_API_URL") if os.environ.get(n))
    WECHAT_MP_TIMEOUT_S = _env_int("WECHAT_MP_TIMEOUT_S", 10)
    WECHAT_MP_PAGE = os.environ.get("WECHAT_MP_PAGE", "")
    WECHAT_MP_TEMPLATE_LOW_BALANCE = os.environ.get("WECHAT_MP_TEMPLATE_LOW_BALANCE", "")
    WECHAT_MP_TEMPLATE_NEGATIVE = os.environ.get("WECHAT_MP_TEMPLATE_NEGATIVE", "")
    WECHAT_MP_TEMPLATE_MONTHLY_END = os.environ.get("WECHAT_MP_TEMPLATE_MONTHLY_END", "")
    WECHAT_MP_TEMPLATE_STATEMENT = os.environ.get("WECHAT_MP_TEMPLATE_STATEMENT", "")
    WECHAT_MP_TEMPLATE_OVERSTAY = os.environ.get("WECHAT_MP_TEMPLATE_OVERSTAY", "")
    WECHAT_MP_TEMPLATE_CUTOFF = os.environ.get("WECHAT_MP_TEMPLATE_CUTOFF", "")
    WECHAT_MP_TEMPLATE_BATTERY_RISK = os.environ.get("WECHAT_MP_TEMPLATE_BATTERY_RISK", "")
    WECHAT_MP_TEMPLATE_SESSION_START = os.environ.get("WECHAT_MP_TEMPLATE_SESSION_START", "")
    WECHAT_MP_TEMPLATE_FULL = os.environ.get("WECHAT_MP_TEMPLATE_FULL", "")
    WECHAT_MP_TEMPLATE_STOPPED = os.environ.get("WECHAT_MP_TEMPLATE_STOPPED", "")
    WECHAT_MP_TEMPLATE_FAILED = os.environ.get("WECHAT_MP_TEMPLATE_FAILED", "")
    WECHAT_MP_TEMPLATE_QUEUE_START = os.environ.get("WECHAT_MP_TEMPLATE_QUEUE_START", "")
    WECHAT_MP_TEMPLATE_BUDGET_STOP = os.environ.get("WECHAT_MP_TEMPLATE_BUDGET_STOP", "")
    # Reminders (job `reminders`): defaults for alleys without their own setting.
    REMINDER_LOW_BALANCE_CENTS = _env_int("REMINDER_LOW_BALANCE_CENTS", 500)
    REMINDER_MONTHLY_DAYS = _env_int("REMINDER_MONTHLY_DAYS", 3)

    # Maintenance and the fire-safety routine (issue 10).
    # Reminders go out from this local hour of each alley's day.
    INSPECTION_REMIND_HOUR = _env_int("INSPECTION_REMIND_HOUR", 8)
    # A check overdue this many days is escalated to level-2 contacts.
    INSPECTION_ESCALATE_DAYS = _env_int("INSPECTION_ESCALATE_DAYS", 3)
    # A pile with this many faults within this many days, or a meter temperature above
    # this, gets one unscheduled inspection work order.
    FAULT_INSPECTION_COUNT = _env_int("FAULT_INSPECTION_COUNT", 3)
    FAULT_INSPECTION_WINDOW_DAYS = _env_int("FAULT_INSPECTION_WINDOW_DAYS", 7)
    FAULT_INSPECTION_TEMP_C = _env_int("FAULT_INSPECTION_TEMP_C", 70)
    # A finished port still plugged in this long is an overstay.
    OVERSTAY_MINUTES = _env_int("OVERSTAY_MINUTES", 30)
    # Its card holder is nudged (e-mail/SMS per account) then and every this many
    # minutes while it lasts; 0 = never.
    OVERSTAY_NUDGE_MINUTES = _env_int("OVERSTAY_NUDGE_MINUTES", 30)
    # Inspection photos: where (under instance/ by default), largest upload, longest side.
    MAINTENANCE_PHOTO_DIR = os.environ.get(
        "MAINTENANCE_PHOTO_DIR", str(ROOT / "instance" / "maintenance-photos"))
    MAINTENANCE_PHOTO_MAX_BYTES = _env_int("MAINTENANCE_PHOTO_MAX_BYTES", 10 * 1024 * 1024)
    MAINTENANCE_PHOTO_MAX_PX = _env_int("MAINTENANCE_PHOTO_MAX_PX", 1600)
    # Housekeeping (job `retention`): ages in days, rows deleted per transaction.
    RETENTION_METER_DAYS = _env_int("RETENTION_METER_DAYS", 180)
    RETENTION_NOTIFICATION_DAYS = _env_int("RETENTION_NOTIFICATION_DAYS", 90)
    RETENTION_REJECTION_DAYS = _env_int("RETENTION_REJECTION_DAYS", 30)
    RETENTION_JOB_RUN_DAYS = _env_int("RETENTION_JOB_RUN_DAYS", 30)
    RETENTION_BATCH = _env_int("RETENTION_BATCH", 1000)

    # Online top-ups (docs/payments.md). A channel is on when all its settings are
    # given, off when none are; half of them stops the start, naming what is missing.
    # Key material is read from files (paths here), never stored in the database.
    # Our notify base URL: WeChat posts to <it>/pay/notify/wechat, Alipay to
    # <it>/pay/notify/alipay (https, reachable from the internet).
    PAYMENTS_NOTIFY_URL = os.environ.get("PAYMENTS_NOTIFY_URL", "")
    # WeChat Pay v3 (direct merchant): merchant id, API v3 key, the merchant API
    # certificate's serial and private key, and the platform's public key and its id
    # (微信支付公钥) or a folder of platform certificates (平台证书).
    WECHATPAY_MCHID = os.environ.get("WECHATPAY_MCHID", "")
    WECHATPAY_APIV3_KEY = os.environ.get("WECHATPAY_APIV3_KEY", "")
    WECHATPAY_CERT_SERIAL = os.environ.get("WECHATPAY_CERT_SERIAL", "")
    WECHATPAY_PRIVATE_KEY_PATH = os.environ.get("WECHATPAY_PRIVATE_KEY_PATH", "")
    WECHATPAY_PUBLIC_KEY_PATH = os.environ.get("WECHATPAY_PUBLIC_KEY_PATH", "")
    WECHATPAY_PUBLIC_KEY_ID = os.environ.get("WECHATPAY_PUBLIC_KEY_ID", "")
    # Read only to refuse it: platform-certificate mode is not supported (docs/payments.md).
    WECHATPAY_PLATFORM_CERT_DIR = os.environ.get("WECHATPAY_PLATFORM_CERT_DIR", "")
    WECHATPAY_GATEWAY = os.environ.get("WECHATPAY_GATEWAY", "https://api.mch.weixin.qq.com")
    # The official account bound to the merchant is WECHAT_MP_* above (its AppID is the
    # payments' appid, its AppSecret the OAuth's).
    # Alipay (mobile web pay): app id, the app's private key, Alipay's public key.
    ALIPAY_APP_ID = os.environ.get("ALIPAY_APP_ID", "")
    ALIPAY_APP_PRIVATE_KEY_PATH = os.environ.get("ALIPAY_APP_PRIVATE_KEY_PATH", "")
    ALIPAY_PUBLIC_KEY_PATH = os.environ.get("ALIPAY_PUBLIC_KEY_PATH", "")
    ALIPAY_GATEWAY = os.environ.get("ALIPAY_GATEWAY", "https://openapi.alipay.com/gateway.do")
    # Top-up limits (fen), the contract fee rates (basis points: 60 = 0.6 %) that
    # reconciliation expects, how old a notification may be, when an unpaid order is
    # queried and closed.
    PAYMENTS_MIN_CENTS = _env_int("PAYMENTS_MIN_CENTS", 100)
    PAYMENTS_MAX_CENTS = _env_int("PAYMENTS_MAX_CENTS", 50_000)
    PAYMENTS_WECHAT_FEE_BP = _env_int("PAYMENTS_WECHAT_FEE_BP", 60)
    PAYMENTS_ALIPAY_FEE_BP = _env_int("PAYMENTS_ALIPAY_FEE_BP", 60)
    PAYMENTS_NOTICE_MAX_AGE_S = _env_int("PAYMENTS_NOTICE_MAX_AGE_S", 300)
    PAYMENTS_ORDER_EXPIRE_S = _env_int("PAYMENTS_ORDER_EXPIRE_S", 300)
    PAYMENTS_TIMEOUT_S = _env_int("PAYMENTS_TIMEOUT_S", 10)

    # Largest request body the app reads (413 beyond it; JSON under /api/).
    MAX_CONTENT_LENGTH = _env_int("MAX_CONTENT_LENGTH", 256 * 1024)
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    SESSION_COOKIE_SECURE = os.environ.get("SESSION_COOKIE_SECURE", "0") == "1"
    REMEMBER_COOKIE_HTTPONLY = True
    REMEMBER_COOKIE_SAMESITE = "Lax"
    REMEMBER_COOKIE_SECURE = SESSION_COOKIE_SECURE
    WTF_CSRF_TIME_LIMIT = None
    # Where login attempts are counted. memory:// is per process: with several web
    # processes each counts alone, so production refuses it (use redis://…).
    RATELIMIT_STORAGE_URI = os.environ.get("RATELIMIT_STORAGE_URI", "memory://")
    # Prefix of the limiter's keys in a shared store (several deployments, one Redis).
    RATELIMIT_KEY_PREFIX = os.environ.get("RATELIMIT_KEY_PREFIX", "chargers")
    RATELIMIT_HEADERS_ENABLED = True
    # How many reverse proxies stand in front of the app (nginx: 1). Each appends the
    # address it saw to X-Forwarded-For; the app believes only the last PROXY_COUNT
    # entries (werkzeug ProxyFix). 0: no forwarded header is believed (direct exposure).
    PROXY_COUNT = _env_int("PROXY_COUNT", 0)
    LOGIN_RATE_LIMIT = os.environ.get("LOGIN_RATE_LIMIT", "10 per minute")  # per address
    LOGIN_ACCOUNT_RATE_LIMIT = os.environ.get("LOGIN_ACCOUNT_RATE_LIMIT", "20 per hour")
    # Residents' problem reports (报修): per address, and where their photos are kept.
    REPORT_RATE_LIMIT = os.environ.get("REPORT_RATE_LIMIT", "5 per hour")
    REPORT_PHOTO_DIR = os.environ.get("REPORT_PHOTO_DIR", str(ROOT / "instance" / "reports"))
    REPORT_PHOTO_MAX_BYTES = _env_int("REPORT_PHOTO_MAX_BYTES", 8 * 1024 * 1024)
    BABEL_DEFAULT_LOCALE = "zh"
    BABEL_DEFAULT_TIMEZONE = DEFAULT_TIMEZONE
    LANGUAGES = ("zh", "en")
    PUBLIC_BASE_URL = _public_base_url()
    TESTING = False


class DevelopmentConfig(Config):
    """The default: SQLite under instance/, embedded broker."""

    DEBUG = False


class TestingConfig(Config):
    """Tests pass their own DATABASE_URL / MQTT_URL through create_app(overrides)."""

    TESTING = True
    WTF_CSRF_ENABLED = True
    RATELIMIT_ENABLED = True


class ProductionConfig(Config):
    """Refuses to start without its secrets."""

    SESSION_COOKIE_SECURE = os.environ.get("SESSION_COOKIE_SECURE", "1") == "1"
    REMEMBER_COOKIE_SECURE = SESSION_COOKIE_SECURE
    WEBHOOK_ALLOW_PRIVATE = os.environ.get("WEBHOOK_ALLOW_PRIVATE", "0") == "1"

    @classmethod
    def check(cls) -> None:
        """Raise when a required secret is missing from the environment."""
        missing = [k for k in ("SECRET_KEY", "DATABASE_URL") if not os.environ.get(k)]
        if missing:
            raise RuntimeError(f"production config needs {', '.join(missing)} in the environment")
        store = os.environ.get("RATELIMIT_STORAGE_URI", "memory://").strip()
        if not store or store.startswith("memory://"):
            raise RuntimeError(
                "production config needs RATELIMIT_STORAGE_URI of a store shared by every web "
                "process (e.g. redis://127.0.0.1:6379/0), not the in-process memory://")


CONFIGS = {
    "development": DevelopmentConfig,
    "testing": TestingConfig,
    "production": ProductionConfig,
}


# Numeric settings and their allowed ranges (inclusive; None: unbounded), checked by
# validate() when the app is built: a wrong value stops the start naming the variable.
DAY = 86_400
RANGES: dict[str, tuple[int | None, int | None]] = {
    "PROXY_COUNT": (0, 5),
    "DEFAULT_TARIFF_CENTS_PER_KWH": (0, 100_000),
    "CLOCK_PLAUSIBLE_PAST_S": (0, 365 * DAY),
    "CLOCK_PLAUSIBLE_FUTURE_S": (0, 365 * DAY),
    "HEARTBEAT_INTERVAL_S": (1, DAY),
    "MAX_PAYLOAD_BYTES": (256, 1024 * 1024),
    "DEDUP_RETENTION_DAYS": (1, 3650),
    "SEQ_GAP_WINDOW_S": (1, DAY),
    "SESSION_STALE_S": (60, 30 * DAY),
    "SETTLE_BATCH_SIZE": (1, 100_000),
    "BILLING_UNKNOWN_CARD_GRACE_S": (0, DAY),
    "CLOSE_HOUR": (0, 23),
    "RECONCILE_LOSS_PCT": (0, 100),
    "ALERT_DEBOUNCE_S": (0, DAY),
    "OFFLINE_GRACE_S": (0, 30 * DAY),
    "COMMAND_TIMEOUT_S": (1, DAY),
    "CUTOFF_CONFIRM_S": (1, DAY),
    "DEVICE_MAX_POWER_W": (50, 10_000),
    "DEVICE_FULL_STOP_POWER_W": (0, 1_000),
    "DEVICE_FULL_STOP_HOLD_S": (1, DAY),
    "DEVICE_MAX_SESSION_S": (60, 7 * DAY),
    "CONFIG_RESEND_S": (1, DAY),
    "BUDGET_MARGIN_PCT": (0, 90),
    "BUDGET_ADMIT_TTL_S": (1, DAY),
    "BUDGET_READING_FRESH_S": (1, DAY),
    "BUDGET_READING_S": (1, 3600),
    "BUDGET_OVER_READINGS": (1, 100),
    "BUDGET_QUEUE_MAX_WAIT_S": (60, 7 * DAY),
    "CUTOFF_RETRY_BASE_S": (1, DAY),
    "CUTOFF_RETRY_MAX_S": (1, DAY),
    "COMMAND_UNSENT_TIMEOUT_S": (1, 30 * DAY),
    "ALERT_RESEND_MINUTES": (1, 7 * 24 * 60),
    "ALERT_ESCALATE_MINUTES": (1, 7 * 24 * 60),
    "NOTIFY_MAX_ATTEMPTS": (1, 100),
    "NOTIFY_BACKOFF_BASE_S": (1, DAY),
    "NOTIFY_BACKOFF_MAX_S": (1, 7 * DAY),
    "WEBHOOK_TIMEOUT_S": (1, 300),
    "SMTP_PORT": (1, 65_535),
    "SMTP_TIMEOUT_S": (1, 300),
    "SMS_TIMEOUT_S": (1, 300),
    "WECHAT_MP_TIMEOUT_S": (1, 300),
    "REMINDER_LOW_BALANCE_CENTS": (0, 1_000_000),
    "REMINDER_MONTHLY_DAYS": (0, 60),
    "INSPECTION_REMIND_HOUR": (0, 23),
    "INSPECTION_ESCALATE_DAYS": (1, 365),
    "FAULT_INSPECTION_COUNT": (1, 1000),
    "FAULT_INSPECTION_WINDOW_DAYS": (1, 365),
    "FAULT_INSPECTION_TEMP_C": (0, 200),
    "OVERSTAY_MINUTES": (1, 7 * 24 * 60),
    "OVERSTAY_NUDGE_MINUTES": (0, 7 * 24 * 60),
    "MAINTENANCE_PHOTO_MAX_BYTES": (1024, 100 * 1024 * 1024),
    "MAINTENANCE_PHOTO_MAX_PX": (16, 10_000),
    "REPORT_PHOTO_MAX_BYTES": (1024, 100 * 1024 * 1024),
    "RETENTION_METER_DAYS": (1, 36_500),
    "RETENTION_NOTIFICATION_DAYS": (1, 36_500),
    "RETENTION_REJECTION_DAYS": (1, 36_500),
    "RETENTION_JOB_RUN_DAYS": (1, 36_500),
    "RETENTION_BATCH": (1, 1_000_000),
    "MAX_CONTENT_LENGTH": (1024, 100 * 1024 * 1024),
    "PAYMENTS_MIN_CENTS": (1, 10_000_000),
    "PAYMENTS_MAX_CENTS": (1, 10_000_000),
    "PAYMENTS_WECHAT_FEE_BP": (0, 10_000),
    "PAYMENTS_ALIPAY_FEE_BP": (0, 10_000),
    "PAYMENTS_NOTICE_MAX_AGE_S": (10, DAY),
    "PAYMENTS_ORDER_EXPIRE_S": (60, DAY),
    "PAYMENTS_TIMEOUT_S": (1, 300),
}
# Pairs that must be in order (first <= second).
ORDERED = [("CUTOFF_RETRY_BASE_S", "CUTOFF_RETRY_MAX_S"),
           ("NOTIFY_BACKOFF_BASE_S", "NOTIFY_BACKOFF_MAX_S"),
           ("PAYMENTS_MIN_CENTS", "PAYMENTS_MAX_CENTS")]
# Rate limits, in the limits library's notation ("10 per minute").
RATE_LIMITS = ("ACCOUNT_LOOKUP_RATE_LIMIT", "ACCOUNT_LOOKUP_CARD_RATE_LIMIT", "LOGIN_RATE_LIMIT",
               "LOGIN_ACCOUNT_RATE_LIMIT", "REPORT_RATE_LIMIT")


def validate(cfg) -> None:
    """Raise RuntimeError naming the first setting of RANGES that is not an integer in
    its range (a typo in the environment must not start a half-working service)."""
    for name, (low, high) in RANGES.items():
        if name not in cfg:
            continue
        value = cfg[name]
        if isinstance(value, bool) or not isinstance(value, int):
            raise RuntimeError(f"setting {name} must be an integer, not {value!r}")
        if (low is not None and value < low) or (high is not None and value > high):
            span = f"{low if low is not None else '…'}..{high if high is not None else '…'}"
            raise RuntimeError(f"setting {name}={value} is out of range {span}")
    for first, second in ORDERED:
        if first in cfg and second in cfg and cfg[first] > cfg[second]:
            raise RuntimeError(f"setting {first}={cfg[first]} must not exceed "
                               f"{second}={cfg[second]}")
    from limits import parse_many

    for name in RATE_LIMITS:
        if name in cfg:
            try:
                if not parse_many(str(cfg[name])):
                    raise ValueError(cfg[name])
            except ValueError:
                raise RuntimeError(f"setting {name}={cfg[name]!r} is not a rate limit "
                                   "(e.g. '10 per minute')") from None


def get_config(name: str | None = None) -> type[Config]:
    """The settings class named by `name` or by CHARGERS_ENV (development by default)."""
    name = name or os.environ.get("CHARGERS_ENV", "development")
    try:
        cls = CONFIGS[name]
    except KeyError:
        raise RuntimeError(f"unknown CHARGERS_ENV {name!r}; one of {sorted(CONFIGS)}") from None
    if hasattr(cls, "check"):
        cls.check()
    return cls
