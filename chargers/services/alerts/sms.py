"""SMS through Aliyun (Alibaba Cloud) Short Message Service, API `SendSms` (version
2017-05-25), signed with the RPC signature v1 (HMAC-SHA1) exactly as Alibaba Cloud's
"RPC signature mechanism" documents it (help.aliyun.com, 签名机制 / "Signature
mechanism" of RPC APIs; SendSms: help.aliyun.com/document_detail/419273.html):

1. Every request parameter except `Signature` (common: AccessKeyId, Action, Format,
   RegionId, SignatureMethod=HMAC-SHA1, SignatureNonce (unique per request),
   SignatureVersion=1.0, Timestamp (ISO 8601 UTC, yyyy-MM-ddTHH:mm:ssZ), Version;
   SendSms's own: PhoneNumbers, SignName, TemplateCode, TemplateParam (a JSON string),
   OutId) is sorted by name; names and values are percent-encoded in UTF-8 per RFC 3986
   (A-Z a-z 0-9 - _ . ~ kept, space as %20, everything else %XY uppercase) and joined
   as `name=value` with `&`: the canonicalized query string.
2. StringToSign = HTTPMethod + "&" + percentEncode("/") + "&" +
   percentEncode(CanonicalizedQueryString).
3. Signature = Base64(HMAC-SHA1(key = AccessKeySecret + "&", StringToSign)).
4. The request carries `Signature` with the other parameters; here a POST with an
   application/x-www-form-urlencoded body to the endpoint (SMS_ENDPOINT, by default
   https://dysmsapi.aliyuncs.com/). The answer is JSON; `Code` "OK" is success, any
   other code (e.g. isv.BUSINESS_LIMIT_CONTROL) is a failure with `Message`.

Called by the notification outbox (chargers.services.alerts.notify) for channel `sms`; the
outbox retries failures with backoff.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import urllib.error
import urllib.request
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from urllib.parse import quote

from ...settings import SmsConfig  # re-exported: built by the doors

DEFAULT_ENDPOINT = SmsConfig.endpoint


class SmsError(Exception):
    """The provider did not take the message (retried by the outbox)."""


def percent_encode(value: str) -> str:
    """RFC 3986 encoding as the signature wants it (only A-Z a-z 0-9 - _ . ~ kept)."""
    return quote(str(value), safe="-_.~", encoding="utf-8")


def canonical_query(params: Mapping[str, str]) -> str:
    return "&".join(f"{percent_encode(k)}={percent_encode(v)}"
                    for k, v in sorted(params.items()))


def string_to_sign(method: str, params: Mapping[str, str]) -> str:
    return f"{method}&{percent_encode('/')}&{percent_encode(canonical_query(params))}"


def signature(method: str, params: Mapping[str, str], secret: str) -> str:
    """Base64(HMAC-SHA1(secret + "&", StringToSign)); `params` without Signature."""
    digest = hmac.new(f"{secret}&".encode(), string_to_sign(method, params).encode(),
                      hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def send_sms_params(cfg: SmsConfig, phone: str, template_code: str, template_param: dict,
                    *, now: datetime, nonce: str | None = None,
                    out_id: str | None = None) -> dict[str, str]:
    """Every parameter of a signed SendSms request (Signature included)."""
    params = {
        "AccessKeyId": cfg.access_key_id,
        "Action": "SendSms",
        "Format": "JSON",
        "RegionId": cfg.region,
        "SignatureMethod": "HMAC-SHA1",
        "SignatureNonce": nonce or uuid.uuid4().hex,
        "SignatureVersion": "1.0",
        "Timestamp": now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "Version": "2017-05-25",
        "PhoneNumbers": phone,
        "SignName": cfg.sign_name,
        "TemplateCode": template_code,
        "TemplateParam": json.dumps(template_param, ensure_ascii=False, separators=(",", ":")),
    }
    if out_id:
        params["OutId"] = out_id
    params["Signature"] = signature("POST", params, cfg.access_key_secret)
    return params


def send_sms(cfg: SmsConfig, phone: str, template_code: str, template_param: dict, *,
             now: datetime | None = None, out_id: str | None = None) -> str:
    """Send one SMS; returns the provider's BizId. Raises SmsError on any refusal."""
    if not cfg.enabled:
        raise SmsError("SMS is not configured (SMS_ACCESS_KEY_ID, SMS_ACCESS_KEY_SECRET, "
                       "SMS_SIGN_NAME)")
    if not template_code:
        raise SmsError("no SMS template code for this message")
    params = send_sms_params(cfg, phone, template_code, template_param,
                             now=now or datetime.now(UTC), out_id=out_id)
    body = "&".join(f"{percent_encode(k)}={percent_encode(v)}" for k, v in params.items())
    req = urllib.request.Request(cfg.endpoint, data=body.encode(), method="POST", headers={
        "Content-Type": "application/x-www-form-urlencoded; charset=utf-8",
        "Accept": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=cfg.timeout_s) as resp:  # noqa: S310
            raw = resp.read(65536)
    except urllib.error.HTTPError as exc:
        detail = exc.read(4096).decode(errors="replace") if exc.fp else ""
        raise SmsError(f"HTTP {exc.code} {detail[:200]}".strip()) from None
    except (urllib.error.URLError, OSError) as exc:
        raise SmsError(f"unreachable: {getattr(exc, 'reason', exc)}") from None
    try:
        answer = json.loads(raw)
    except ValueError:
        raise SmsError("answer is not JSON") from None
    if not isinstance(answer, dict) or answer.get("Code") != "OK":
        code = answer.get("Code") if isinstance(answer, dict) else "?"
        msg = answer.get("Message", "") if isinstance(answer, dict) else ""
        raise SmsError(f"refused: {code} {msg}".strip())
    return str(answer.get("BizId", ""))
