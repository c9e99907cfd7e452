"""WeChat subscription messages (服务号「订阅通知」) to residents, through the official
account's server API as WeChat documents it (developers.weixin.qq.com, 服务号 > 订阅通知
> sendNewSubscribeMsg; 获取 Access token):

1. access_token: `GET {base}/cgi-bin/token?grant_type=client_credential&appid=APPID&secret=SECRET`
   answers `{"access_token": "...", "expires_in": 7200}` or `{"errcode": 40013, "errmsg": ...}`.
   The token is kept in the process (the worker: one per deployment) until 5 minutes
   before it expires.
2. send: `POST {base}/cgi-bin/message/subscribe/bizsend?access_token=TOKEN` with the JSON
   `{"touser": openid, "template_id": ..., "page": ..., "data": {"thing1": {"value":
   "..."}, "time2": {"value": "2026-12-03 14:00"}, ...}}`; the answer
   `{"errcode": 0, "errmsg": "ok"}` is success.
   - 40001 (invalid credential), 40014 (invalid access_token), 42001 (access_token
     expired): the token is fetched again and the message sent once more;
   - 43101 (the user refused / did not subscribe), 40003 (invalid openid), 40037
     (invalid template_id), 47003 (template data invalid), 41030 (invalid page): giving
     up at once — the outbox marks it failed with the reason, no retry would help;
   - anything else (-1 system busy, 45009 quota, network errors): the outbox retries.

Each message kind has a template (WECHAT_MP_TEMPLATE_<KIND>, settings.WechatConfig)
whose keywords take the message's values: DEFAULT_FIELDS unless the configuration maps
them itself. Values are cut to the lengths WeChat allows (thing: 20 characters,
character_string/number/letter: 32, phrase: 5).

Called by the notification outbox (chargers.services.alerts.notify) for channel
`wechat`. The same address guard as the webhooks: no redirects followed, and the
API's host must be public unless WEBHOOK_ALLOW_PRIVATE (development, tests).
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from urllib.parse import urlencode

from ...settings import WechatConfig
from .outbound import DeliveryError, fetch
from .outbound import check_public as _check_public

TOKEN_INVALID = (40001, 40014, 42001)
PERMANENT = {43101: "the user refused or has not subscribed",
             40003: "invalid openid", 40037: "invalid template_id",
             47003: "template data invalid", 41030: "invalid page"}
DEFAULT_FIELDS: dict[str, dict[str, str]] = {
    "session_start": {"thing1": "place", "time2": "time", "amount3": "balance"},
    "full": {"thing1": "place", "time2": "time", "thing3": "subject"},
    "stopped": {"thing1": "place", "time2": "time", "thing3": "reason"},
    "failed": {"thing1": "place", "time2": "time", "thing3": "subject"},
    "queue_start": {"thing1": "place", "time2": "time"},
    "budget_stop": {"thing1": "place", "time2": "time"},
    "low_balance": {"thing1": "alley", "amount2": "balance"},
    "negative": {"thing1": "alley", "amount2": "balance"},
}
_LIMITS = {"thing": 20, "character_string": 32, "number": 32, "letter": 32, "symbol": 5,
           "phrase": 5, "name": 10, "amount": 32, "time": 32, "date": 32}

_tokens: dict[tuple[str, str], tuple[str, float]] = {}
_lock = threading.Lock()


class WechatError(Exception):
    """WeChat did not take the message; `permanent`: no retry would help."""

    def __init__(self, text: str, permanent: bool = False, errcode: int | None = None):
        super().__init__(text)
        self.permanent, self.errcode = permanent, errcode


def _cut(keyword: str, value: str) -> str:
    kind = keyword.rstrip("0123456789")
    limit = _LIMITS.get(kind, 20)
    value = " ".join(str(value).split())
    if kind == "amount" and value and not value.endswith("元"):
        value += "元"
    return value if len(value) <= limit else value[:limit - 1] + "…"


def message_data(cfg: WechatConfig, kind: str, params: Mapping[str, str],
                 subject: str) -> dict:
    """The template's `data`: each keyword with its value from the message."""
    values = {"subject": subject, **{k: str(v) for k, v in params.items()}}
    if "place" not in values and "pile" in values:
        values["place"] = f"{values.get('alley', '')} {values['pile']}-{values.get('port', '')}"
    fields = cfg.fields.get(kind) or DEFAULT_FIELDS.get(kind) or {"thing1": "subject"}
    return {kw: {"value": _cut(kw, values.get(name, ""))} for kw, name in fields.items()}


def _call(cfg: WechatConfig, req: urllib.request.Request, allow_private: bool) -> dict:
    try:
        _check_public(req.full_url, allow_private)
    except DeliveryError as exc:
        raise WechatError(str(exc)) from None
    try:
        raw = fetch(req, cfg.timeout_s)
    except DeliveryError as exc:
        raise WechatError(str(exc)) from None
    try:
        answer = json.loads(raw)
    except ValueError:
        raise WechatError("answer is not JSON") from None
    if not isinstance(answer, dict):
        raise WechatError("answer is not a JSON object")
    return answer


def access_token(cfg: WechatConfig, allow_private: bool = False, *, fresh: bool = False) -> str:
    """The official account's access_token (kept until 5 minutes before it expires)."""
    key = (cfg.api_base, cfg.app_id)
    with _lock:
        held = _tokens.get(key)
        if held and not fresh and held[1] > time.monotonic():
            return held[0]
    query = urlencode({"grant_type": "client_credential", "appid": cfg.app_id,
                       "secret": cfg.app_secret})
    answer = _call(cfg, urllib.request.Request(f"{cfg.api_base}/cgi-bin/token?{query}"),
                   allow_private)
    token = answer.get("access_token")
    if not token:
        raise WechatError(f"token refused: {answer.get('errcode')} {answer.get('errmsg', '')}"
                          .strip(), errcode=answer.get("errcode"))
    expires = int(answer.get("expires_in") or 7200)
    with _lock:
        _tokens[key] = (str(token), time.monotonic() + max(60, expires - 300))
    return str(token)


def forget_tokens() -> None:
    """Drop the kept tokens (tests; a changed secret)."""
    with _lock:
        _tokens.clear()


def send(cfg: WechatConfig, openid: str, kind: str, params: Mapping[str, str], subject: str,
         *, allow_private: bool = False) -> None:
    """Send one subscription message; raises WechatError when WeChat does not take it."""
    if not cfg.enabled:
        raise WechatError("WeChat is not configured (WECHAT_MP_APP_ID, WECHAT_MP_APP_SECRET)")
    template = cfg.templates.get(kind)
    if not template:
        raise WechatError(f"no WeChat template for {kind} (WECHAT_MP_TEMPLATE_{kind.upper()})",
                          permanent=True)
    body = {"touser": openid, "template_id": template,
            "data": message_data(cfg, kind, params, subject)}
    if cfg.page:
        body["page"] = cfg.page
    data = json.dumps(body, ensure_ascii=False).encode()
    for attempt in (1, 2):
        token = access_token(cfg, allow_private, fresh=attempt == 2)
        url = f"{cfg.api_base}/cgi-bin/message/subscribe/bizsend?{urlencode({'access_token': token})}"
        answer = _call(cfg, urllib.request.Request(
            url, data=data, method="POST",
            headers={"Content-Type": "application/json; charset=utf-8"}), allow_private)
        code = answer.get("errcode", 0)
        if code in (0, "0"):
            return
        why = f"errcode {code} {answer.get('errmsg', '')}".strip()
        if code in TOKEN_INVALID and attempt == 1:
            continue  # the token went stale (refreshed elsewhere, or expired): once more
        if code in PERMANENT:
            raise WechatError(f"{PERMANENT[code]}: {why}", permanent=True, errcode=code)
        raise WechatError(f"refused: {why}", errcode=code)
