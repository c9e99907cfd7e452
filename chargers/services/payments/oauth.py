"""The official account's web OAuth, silent scope (snsapi_base): the resident's browser
inside WeChat is sent to WeChat's authorize page and comes back with a code, which the
server exchanges (with the AppSecret) for the resident's openid under the official
account: what a JSAPI payment needs. No signature is involved."""

from __future__ import annotations

import logging
from urllib.parse import urlencode

import requests

from ...settings import PaymentRule
from ..errors import Invalid

log = logging.getLogger("chargers.payments")


def authorize_url(rules: PaymentRule, redirect_uri: str, state: str) -> str:
    q = urlencode({"appid": rules.wechat.appid, "redirect_uri": redirect_uri,
                   "response_type": "code", "scope": "snsapi_base", "state": state})
    return f"{rules.wechat.oauth_url}?{q}#wechat_redirect"


def openid_for(rules: PaymentRule, code: str) -> str:
    """The openid behind an OAuth code (Invalid `pay.oauth` when WeChat refuses)."""
    if not rules.wechat.app_secret:
        raise Invalid("pay.oauth")
    try:
        r = requests.get(f"{rules.wechat.api_url.rstrip('/')}/sns/oauth2/access_token",
                         params={"appid": rules.wechat.appid, "secret": rules.wechat.app_secret,
                                 "code": code, "grant_type": "authorization_code"},
                         timeout=rules.timeout_s)
        data = r.json()
    except (requests.RequestException, ValueError) as exc:
        log.warning("wechat oauth: %s", type(exc).__name__)
        raise Invalid("pay.oauth") from None
    if not data.get("openid"):
        log.warning("wechat oauth refused: errcode %s", data.get("errcode"))
        raise Invalid("pay.oauth")
    return str(data["openid"])
