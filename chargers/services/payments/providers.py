"""Thin adapters around the providers' SDKs: WeChat Pay v3 (`wechatpayv3`) and Alipay
(`python-alipay-sdk`). The SDKs sign requests, verify responses and notifications and
decrypt WeChat's AES-GCM resources; this module only builds their clients from the
settings, points them at the configured gateway (the SDK attribute `_core._gate_way`
for WeChat, `_gateway` for Alipay: neither SDK takes it as a parameter) and turns
their answers into small plain results.

Network or provider failures raise ProviderError; nothing here touches the database.
"""

from __future__ import annotations

import gzip
import io
import json
import logging
import secrets
import time
import zipfile
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo

import requests

from ...constants import PayChannel, PayProvider
from ...settings import PROVIDER_ZONE, AlipayRule, PaymentRule, WeChatPayRule

log = logging.getLogger("chargers.payments")
CST = ZoneInfo(PROVIDER_ZONE)  # the providers' clock and bill dates


class ProviderError(Exception):
    """The provider could not be reached or answered something unexpected."""


def provider_of(channel: str) -> str:
    return PayProvider.ALIPAY if channel == PayChannel.ALIPAY_WAP else PayProvider.WECHAT


def fen_to_yuan(fen: int) -> str:
    return f"{Decimal(fen) / 100:.2f}"


def yuan_to_fen(text: str) -> int:
    return int((Decimal(str(text).strip().lstrip("`") or "0") * 100).to_integral_value())


@dataclass
class PayState:
    """A payment as the provider reports it: `paid`, `unpaid`, `closed` or `missing`."""

    state: str
    txn: str = ""
    amount_cents: int | None = None
    paid_at: datetime | None = None
    mchid: str = ""
    appid: str = ""


@dataclass
class RefundState:
    """A refund as the provider reports it: `processing`, `succeeded` or `failed`."""

    state: str
    refund_id: str = ""


@dataclass
class Notice:
    """A notification after the SDK looked at it: `outcome` is None when it verified,
    was for us, recent and a success (then `order_no`, `txn`, `amount_cents`). A
    refund's result has `kind` "refund", `refund_no` and `refund_state` (`succeeded`
    or `failed`); `amount_cents` is then the refund's amount (None: not stated)."""

    outcome: str | None
    order_no: str = ""
    txn: str = ""
    amount_cents: int | None = None
    paid_at: datetime | None = None
    detail: str = ""
    extra: dict = field(default_factory=dict)
    kind: str = "pay"
    refund_no: str = ""
    refund_state: str = ""


def _read(path: str) -> str:
    return Path(path).read_text()


# --- WeChat Pay v3 ---------------------------------------------------------------


@lru_cache(maxsize=8)
def wechat_client(rule: WeChatPayRule, notify_url: str, timeout_s: int):
    """The SDK's client for this merchant in public-key mode (the only one started:
    settings.PLATFORM_CERT_REFUSED), pointed at `rule.gateway`."""
    from wechatpayv3 import WeChatPay, WeChatPayType

    client = WeChatPay(
        wechatpay_type=WeChatPayType.NATIVE, mchid=rule.mchid,
        private_key=_read(rule.private_key_path), cert_serial_no=rule.cert_serial,
        appid=rule.appid, apiv3_key=rule.apiv3_key, notify_url=notify_url,
        logger=None, timeout=(timeout_s, timeout_s),
        public_key=_read(rule.public_key_path), public_key_id=rule.public_key_id)
    client._core._gate_way = rule.gateway.rstrip("/")
    return client


class WeChat:
    provider = PayProvider.WECHAT

    def __init__(self, rules: PaymentRule):
        self.rule = rules.wechat
        self.client = wechat_client(self.rule, f"{rules.notify_url}/pay/notify/wechat",
                                    rules.timeout_s)

    def _call(self, what: str, fn, *args, **kwargs):
        try:
            code, body = fn(*args, **kwargs)
        except requests.RequestException as exc:
            raise ProviderError(f"wechat {what}: {type(exc).__name__}") from None
        except Exception as exc:  # the SDK raises bare Exception (e.g. a bad signature)
            raise ProviderError(f"wechat {what}: {exc}") from None
        data = {}
        if isinstance(body, str) and body:
            try:
                data = json.loads(body)
            except ValueError:
                data = {}
        return code, data, body

    def create(self, channel: str, order_no: str, amount_cents: int, description: str,
               expire_at: datetime, *, openid: str = "", client_ip: str = "") -> dict:
        """Place the order; the page's next step: {"jsapi": {...}} (the parameters of
        WeixinJSBridge getBrandWCPayRequest, signed by the SDK), {"h5_url"} or
        {"code_url"}."""
        from wechatpayv3 import WeChatPayType

        kind = {PayChannel.WECHAT_JSAPI: WeChatPayType.JSAPI, PayChannel.WECHAT_H5: WeChatPayType.H5,
                PayChannel.WECHAT_NATIVE: WeChatPayType.NATIVE}[channel]
        kwargs = {"pay_type": kind, "time_expire": expire_at.astimezone(CST).isoformat(timespec="seconds")}
        if kind == WeChatPayType.JSAPI:
            kwargs["payer"] = {"openid": openid}
        if kind == WeChatPayType.H5:
            kwargs["scene_info"] = {"payer_client_ip": client_ip or "127.0.0.1",
                                    "h5_info": {"type": "Wap"}}
        code, data, _ = self._call("order", self.client.pay, description=description,
                                   out_trade_no=order_no, amount={"total": amount_cents,
                                                                  "currency": "CNY"}, **kwargs)
        if code != 200:
            raise ProviderError(f"wechat order: {code} {data.get('code', '')}")
        if kind == WeChatPayType.JSAPI:
            ts, nonce = str(int(time.time())), secrets.token_hex(16)
            package = f"prepay_id={data['prepay_id']}"
            return {"jsapi": {"appId": self.rule.appid, "timeStamp": ts, "nonceStr": nonce,
                              "package": package, "signType": "RSA",
                              "paySign": self.client.sign([self.rule.appid, ts, nonce, package])}}
        if kind == WeChatPayType.H5:
            return {"h5_url": data["h5_url"]}
        return {"code_url": data["code_url"]}

    def query(self, order_no: str) -> PayState:
        code, data, _ = self._call("query", self.client.query, out_trade_no=order_no)
        if code == 404:
            return PayState("missing")
        if code != 200:
            raise ProviderError(f"wechat query: {code} {data.get('code', '')}")
        st = data.get("trade_state")
        state = {"SUCCESS": "paid", "CLOSED": "closed", "REVOKED": "closed",
                 "PAYERROR": "closed", "REFUND": "paid"}.get(st, "unpaid")
        amount = (data.get("amount") or {}).get("total")
        return PayState(state, data.get("transaction_id", ""), amount,
                        _wechat_time(data.get("success_time")), data.get("mchid", ""),
                        data.get("appid", ""))

    def close(self, order_no: str) -> None:
        code, data, _ = self._call("close", self.client.close, out_trade_no=order_no)
        if code not in (200, 204):
            raise ProviderError(f"wechat close: {code} {data.get('code', '')}")

    def refund(self, order_no: str, refund_no: str, amount_cents: int, total_cents: int,
               reason: str) -> RefundState:
        code, data, _ = self._call("refund", self.client.refund, out_refund_no=refund_no,
                                   amount={"refund": amount_cents, "total": total_cents,
                                           "currency": "CNY"},
                                   out_trade_no=order_no, reason=reason or None)
        if code != 200:
            raise ProviderError(f"wechat refund: {code} {data.get('code', '')}")
        return _wechat_refund(data)

    def query_refund(self, order_no: str, refund_no: str) -> RefundState:
        code, data, _ = self._call("refund query", self.client.query_refund, refund_no)
        if code == 404:  # never reached WeChat: nothing was refunded
            return RefundState("failed")
        if code != 200:
            raise ProviderError(f"wechat refund query: {code} {data.get('code', '')}")
        return _wechat_refund(data)

    def bill(self, day) -> list[dict]:
        """The trade bill (交易账单, ALL) of a provider's day, as dicts by the bill's
        column names (the leading ` of each value removed)."""
        code, data, _ = self._call("bill", self.client.trade_bill, bill_date=day.isoformat())
        if code == 400 and data.get("code") == "NO_STATEMENT_EXIST":
            return []
        if code != 200:
            raise ProviderError(f"wechat bill: {code} {data.get('code', '')}")
        code, _data, raw = self._call("bill download", self.client.download_bill,
                                      data["download_url"])
        if code != 200:
            raise ProviderError(f"wechat bill download: {code}")
        raw = raw if isinstance(raw, bytes) else raw.encode()
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
        return parse_wechat_bill(raw.decode("utf-8-sig"))

    def read_notice(self, headers, body: bytes | str, now: datetime, max_age_s: int) -> Notice:
        """Verify (signature, then AES-GCM decryption, by the SDK), then the age, the
        merchant and the state."""
        try:
            data = self.client.callback(headers, body)
        except Exception as exc:  # unknown algorithm, malformed serial …
            return Notice("bad_signature", detail=str(exc)[:200])
        if not data:
            return Notice("bad_signature")
        try:
            ts = int(headers.get("Wechatpay-Timestamp", "0"))
        except ValueError:
            return Notice("malformed", detail="timestamp")
        res = data.get("resource") or {}
        order_no = str(res.get("out_trade_no", ""))[:64]
        if abs(now.timestamp() - ts) > max_age_s:
            return Notice("expired", order_no, detail=f"signed {int(now.timestamp() - ts)} s ago")
        event = str(data.get("event_type") or "")
        if event.startswith("REFUND."):
            # 退款结果通知: REFUND.SUCCESS / REFUND.ABNORMAL / REFUND.CLOSED; the resource
            # names the merchant (no appid), both our numbers and the refund's amount.
            if res.get("mchid") != self.rule.mchid:
                return Notice("other_merchant", order_no, detail=f"mchid {res.get('mchid')}")
            st = _wechat_refund({"status": res.get("refund_status")}).state
            if st == "processing" or event != f"REFUND.{res.get('refund_status')}":
                return Notice("malformed", order_no,
                              detail=f"{event} {res.get('refund_status')}"[:200])
            amount = (res.get("amount") or {}).get("refund")
            return Notice(None, order_no, res.get("refund_id", ""),
                          amount if isinstance(amount, int) else None, kind="refund",
                          refund_no=str(res.get("out_refund_no", ""))[:64], refund_state=st,
                          extra={"id": data.get("id")})
        if res.get("mchid") != self.rule.mchid or res.get("appid") != self.rule.appid:
            return Notice("other_merchant", order_no,
                          detail=f"mchid {res.get('mchid')} appid {res.get('appid')}")
        if data.get("event_type") != "TRANSACTION.SUCCESS" or res.get("trade_state") != "SUCCESS":
            return Notice("not_success", order_no, detail=str(res.get("trade_state")))
        amount = (res.get("amount") or {}).get("total")
        return Notice(None, order_no, res.get("transaction_id", ""),
                      amount if isinstance(amount, int) else None,
                      _wechat_time(res.get("success_time")), extra={"id": data.get("id")})


def _wechat_refund(data: dict) -> RefundState:
    st = data.get("status")
    state = {"SUCCESS": "succeeded", "CLOSED": "failed", "ABNORMAL": "failed"}.get(st, "processing")
    return RefundState(state, data.get("refund_id", ""))


def _wechat_time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text).astimezone(UTC)
    except ValueError:
        return None


WECHAT_BILL_COLUMNS = (
    "交易时间", "公众账号ID", "商户号", "特约商户号", "设备号", "微信订单号", "商户订单号",
    "用户标识", "交易类型", "交易状态", "付款银行", "货币种类", "应结订单金额", "代金券金额",
    "微信退款单号", "商户退款单号", "退款金额", "充值券退款金额", "退款类型", "退款状态",
    "商品名称", "商户数据包", "手续费", "费率", "订单金额", "申请退款金额", "费率备注")


def parse_wechat_bill(text: str) -> list[dict]:
    """The lines of a WeChat Pay trade bill: a header row, one row per trade or refund
    (each value prefixed by `), then the totals (总交易单数 …), which are dropped."""
    import csv

    rows = list(csv.reader(io.StringIO(text)))
    if not rows:
        return []
    header = [h.strip() for h in rows[0]]
    out = []
    for row in rows[1:]:
        if not row or row[0].startswith("总") or not row[0].startswith("`"):
            if row and row[0].startswith("总"):
                break
            continue
        out.append({h: v.strip().lstrip("`") for h, v in zip(header, row, strict=False)})
    return out


# --- Alipay ----------------------------------------------------------------------


@lru_cache(maxsize=8)
def alipay_client(rule: AlipayRule, notify_url: str, timeout_s: int):
    """The SDK's client for this app, pointed at `rule.gateway`."""
    from alipay import AliPay
    from alipay.utils import AliPayConfig

    client = AliPay(appid=rule.app_id, app_notify_url=notify_url,
                    app_private_key_string=_read(rule.app_private_key_path),
                    alipay_public_key_string=_read(rule.public_key_path), sign_type="RSA2",
                    config=AliPayConfig(timeout=timeout_s))
    client._gateway = rule.gateway
    return client


class Alipay:
    provider = PayProvider.ALIPAY

    def __init__(self, rules: PaymentRule):
        self.rule = rules.alipay
        self.timeout_s = rules.timeout_s
        self.client = alipay_client(self.rule, f"{rules.notify_url}/pay/notify/alipay",
                                    rules.timeout_s)

    def _call(self, what: str, fn, *args, **kwargs) -> dict:
        from alipay.exceptions import AliPayException

        try:
            return fn(*args, **kwargs)
        except AliPayException as exc:
            raise ProviderError(f"alipay {what}: {exc.code}") from None
        except Exception as exc:  # urllib errors, a bad signature (AliPayValidationError)
            raise ProviderError(f"alipay {what}: {type(exc).__name__}") from None

    def pay_url(self, order_no: str, amount_cents: int, subject: str, return_url: str,
                expire_at: datetime) -> str:
        """The wap pay page the resident's browser is sent to (signed by the SDK)."""
        signed = self.client.api_alipay_trade_wap_pay(
            subject=subject, out_trade_no=order_no, total_amount=fen_to_yuan(amount_cents),
            return_url=return_url, quit_url=return_url,
            time_expire=expire_at.astimezone(CST).strftime("%Y-%m-%d %H:%M:%S"))
        return f"{self.rule.gateway}?{signed}"

    def query(self, order_no: str) -> PayState:
        r = self._call("query", self.client.api_alipay_trade_query, out_trade_no=order_no)
        if r.get("code") != "10000":
            if r.get("sub_code") == "ACQ.TRADE_NOT_EXIST":
                return PayState("missing")
            raise ProviderError(f"alipay query: {r.get('code')} {r.get('sub_code')}")
        st = r.get("trade_status")
        state = {"TRADE_SUCCESS": "paid", "TRADE_FINISHED": "paid",
                 "TRADE_CLOSED": "closed"}.get(st, "unpaid")
        paid_at = _alipay_time(r.get("send_pay_date"))
        return PayState(state, r.get("trade_no", ""), yuan_to_fen(r.get("total_amount", "0")),
                        paid_at)

    def close(self, order_no: str) -> None:
        r = self._call("close", self.client.api_alipay_trade_close, out_trade_no=order_no)
        if r.get("code") != "10000" and r.get("sub_code") != "ACQ.TRADE_NOT_EXIST":
            raise ProviderError(f"alipay close: {r.get('code')} {r.get('sub_code')}")

    def refund(self, order_no: str, refund_no: str, amount_cents: int, total_cents: int,
               reason: str) -> RefundState:
        r = self._call("refund", self.client.api_alipay_trade_refund,
                       refund_amount=fen_to_yuan(amount_cents), out_trade_no=order_no,
                       out_request_no=refund_no, refund_reason=reason or "refund")
        if r.get("code") != "10000":
            raise ProviderError(f"alipay refund: {r.get('code')} {r.get('sub_code')}")
        # Alipay answers a refund synchronously: fund_change Y is a refund made (a
        # signed answer, verified by the SDK); N is not a failure (e.g. a repeated
        # request): the refund query decides.
        state = "succeeded" if r.get("fund_change") == "Y" else "processing"
        return RefundState(state, r.get("trade_no", ""))

    def query_refund(self, order_no: str, refund_no: str) -> RefundState:
        r = self._call("refund query", self.client.api_alipay_trade_fastpay_refund_query,
                       refund_no, out_trade_no=order_no)
        if r.get("code") != "10000":
            raise ProviderError(f"alipay refund query: {r.get('code')} {r.get('sub_code')}")
        if r.get("refund_status") == "REFUND_SUCCESS":
            return RefundState("succeeded", r.get("trade_no", ""))
        if not r.get("refund_amount"):
            return RefundState("failed")
        return RefundState("processing")

    def bill(self, day) -> list[dict]:
        """The trade statement (业务明细) of a provider's day: the zip behind
        alipay.data.dataservice.bill.downloadurl.query, GBK CSV, `#` comment lines."""
        r = self._call("bill", self.client.server_api,
                       "alipay.data.dataservice.bill.downloadurl.query",
                       {"bill_type": "trade", "bill_date": day.isoformat()})
        if r.get("code") != "10000":
            if r.get("sub_code") == "isp.bill_not_exist":
                return []
            raise ProviderError(f"alipay bill: {r.get('code')} {r.get('sub_code')}")
        try:
            raw = requests.get(r["bill_download_url"], timeout=self.timeout_s).content
        except requests.RequestException as exc:
            raise ProviderError(f"alipay bill download: {type(exc).__name__}") from None
        return parse_alipay_bill(raw)

    def read_notice(self, form: dict, now: datetime, max_age_s: int) -> Notice:
        """Verify the RSA2 signature (the SDK), then the age, the app and the state."""
        data = {k: v for k, v in form.items()}
        sign = data.pop("sign", "")
        order_no = str(data.get("out_trade_no", ""))[:64]
        try:
            ok = bool(sign) and self.client.verify(dict(data), sign)
        except Exception as exc:
            return Notice("bad_signature", order_no, detail=str(exc)[:200])
        if not ok:
            return Notice("bad_signature", order_no)
        at = _alipay_time(data.get("notify_time"))
        if at is None:
            return Notice("malformed", order_no, detail="notify_time")
        if abs((now - at).total_seconds()) > max_age_s:
            return Notice("expired", order_no,
                          detail=f"notified {int((now - at).total_seconds())} s ago")
        if data.get("app_id") != self.rule.app_id:
            return Notice("other_merchant", order_no, detail=f"app_id {data.get('app_id')}")
        if data.get("out_biz_no") and (data.get("refund_fee") or data.get("gmt_refund")):
            # A refund made (异步通知 of a refund: out_biz_no is our refund number,
            # refund_fee the trade's refunded total; trade_status TRADE_SUCCESS after a
            # partial refund, TRADE_CLOSED after a full one).
            return Notice(None, order_no, data.get("trade_no", ""), None, kind="refund",
                          refund_no=str(data["out_biz_no"])[:64], refund_state="succeeded",
                          detail=f"refund_fee {data.get('refund_fee', '')}",
                          extra={"id": data.get("notify_id")})
        if data.get("trade_status") not in ("TRADE_SUCCESS", "TRADE_FINISHED"):
            return Notice("not_success", order_no, detail=str(data.get("trade_status")))
        try:
            amount = yuan_to_fen(data.get("total_amount", ""))
        except Exception:
            return Notice("malformed", order_no, detail="total_amount")
        return Notice(None, order_no, data.get("trade_no", ""), amount,
                      _alipay_time(data.get("gmt_payment")) or at,
                      extra={"id": data.get("notify_id")})


def _alipay_time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=CST).astimezone(UTC)
    except ValueError:
        return None


ALIPAY_BILL_COLUMNS = (
    "支付宝交易号", "商户订单号", "业务类型", "商品名称", "创建时间", "完成时间", "门店编号",
    "门店名称", "操作员", "终端号", "对方账户", "订单金额（元）", "商家实收（元）",
    "支付宝红包（元）", "集分宝（元）", "支付宝优惠（元）", "商家优惠（元）", "券核销金额（元）",
    "券名称", "商家红包消费金额（元）", "卡消费金额（元）", "退款批次号/请求号", "服务费（元）",
    "分润（元）", "备注")


def parse_alipay_bill(raw: bytes) -> list[dict]:
    """The lines of the 业务明细 CSV inside an Alipay statement zip (GBK; lines starting
    with # are comments; the detail ends at `#-----…业务明细列表结束`)."""
    import csv

    with zipfile.ZipFile(io.BytesIO(raw)) as z:
        names = [n for n in z.namelist() if "汇总" not in n and n.endswith(".csv")]
        if not names:
            return []
        text = z.read(names[0]).decode("gbk")
    rows = [r for r in csv.reader(io.StringIO(text))]
    header, out = None, []
    for row in rows:
        if not row or row[0].startswith("#"):
            if header is not None and row and "结束" in row[0]:
                break
            continue
        if header is None:
            header = [h.strip() for h in row]
            continue
        out.append({h: v.strip() for h, v in zip(header, row, strict=False)})
    return out


def for_channel(rules: PaymentRule, channel: str):
    return for_provider(rules, provider_of(channel))


def for_provider(rules: PaymentRule, provider: str):
    if provider == PayProvider.ALIPAY:
        if not rules.alipay.enabled:
            raise ProviderError("alipay is not configured")
        return Alipay(rules)
    if not rules.wechat.enabled:
        raise ProviderError("wechat pay is not configured")
    return WeChat(rules)


def bill_day(now: datetime) -> datetime:
    """The provider's previous day (bills are by Asia/Shanghai date)."""
    return (now.astimezone(CST) - timedelta(days=1)).date()
