"""A local emulator of the payment providers, for tests and `make run` (there is no
network here). It plays the provider's side of what the product calls, following the
providers' public API references:

- WeChat Pay v3: JSAPI / H5 / Native orders, query, close, refund and refund query,
  the trade bill (tradebill + its download, gzip CSV), and notifications signed with
  the platform key (SHA256-RSA2048 over timestamp, nonce, body) whose resource is
  AES-256-GCM encrypted with the merchant's API v3 key. Every answer is signed the
  same way; requests' `Authorization` is checked against the merchant's key.
- Alipay: the wap pay page (alipay.trade.wap.pay), alipay.trade.query / close /
  refund / fastpay.refund.query, the statement (bill.downloadurl.query + zip of GBK
  CSV), and RSA2-signed asynchronous notifications; answers signed over their
  `…_response` object; requests' signature checked against the app's public key.

The WeChat official account the merchant is bound to (its OAuth, which gives JSAPI its
openid, and the subscription messages) is chargers.devtools.wechat_mp, with the same
AppID (`appid` here).

Keys are generated when the emulator starts (never kept). `config()` gives the
product's settings for it, writing the product's key files into a folder.

The pay pages have a "pay" button that marks the trade paid and sends the signed
notification to the order's notify_url (`deliver`, an HTTP POST unless a test
replaces it). A refund's result is notified too (`notify_refund`; by itself a second
later under `make run`): WeChat's REFUND.* notification (signed, AES-GCM encrypted,
associated_data "refund") to the refund's notify_url, and Alipay's asynchronous
notification of a refund made (out_biz_no, refund_fee, gmt_refund). Alipay's refund
answer itself is synchronous (fund_change Y)."""

from __future__ import annotations

import base64
import csv
import gzip
import hashlib
import io
import json
import secrets
import threading
import time
import uuid
import zipfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from flask import Flask, Response, abort, redirect, request

from chargers.settings import PROVIDER_ZONE

CST = ZoneInfo(PROVIDER_ZONE)  # the providers' clock


def _key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _pem_private(k) -> str:
    return k.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                           serialization.NoEncryption()).decode()


def _pem_public(k) -> str:
    return k.public_key().public_bytes(serialization.Encoding.PEM,
                                       serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def _sign(k, text: str) -> str:
    return base64.b64encode(k.sign(text.encode(), padding.PKCS1v15(), hashes.SHA256())).decode()


def _verify(pub, text: str, sig: str) -> bool:
    try:
        pub.verify(base64.b64decode(sig), text.encode(), padding.PKCS1v15(), hashes.SHA256())
        return True
    except (InvalidSignature, ValueError):
        return False


def _yuan(fen: int) -> str:
    return f"{Decimal(fen) / 100:.2f}"


def _fen(text: str) -> int:
    return int((Decimal(text) * 100).to_integral_value())


def fee_of(amount_cents: int, bp: int) -> int:
    """The provider's fee: amount × rate, rounded half up to the fen."""
    return int((Decimal(amount_cents) * bp / 10000).quantize(Decimal(1), ROUND_HALF_UP))


@dataclass
class Trade:
    provider: str
    order_no: str
    amount_cents: int
    notify_url: str
    kind: str = ""
    state: str = "NOTPAY"  # NOTPAY / SUCCESS / CLOSED (WeChat words, for both)
    txn: str = ""
    mchid: str = ""
    appid: str = ""
    openid: str = ""
    return_url: str = ""
    created: datetime = field(default_factory=lambda: datetime.now(UTC))
    paid_at: datetime | None = None
    fee_cents: int = 0


@dataclass
class Refund:
    provider: str
    refund_no: str
    order_no: str
    amount_cents: int
    refund_id: str
    state: str = "PROCESSING"  # PROCESSING / SUCCESS / ABNORMAL
    created: datetime = field(default_factory=lambda: datetime.now(UTC))
    done_at: datetime | None = None
    notify_url: str = ""


class PayEmulator:
    """The providers' side. `base_url` is filled by `serve()` (or set by the caller
    when it serves `app` itself)."""

    def __init__(self, *, fee_bp: int = 60, appid: str = "wx8a2b3c4d5e6f7a8b"):
        self.base_url = ""
        self.fee_bp = fee_bp
        self.lock = threading.Lock()
        # WeChat Pay merchant and platform
        # The merchant and the official account bound to it (its AppID; the account
        # itself, with the OAuth, is chargers.devtools.wechat_mp).
        self.mchid, self.appid = "1900000109", appid
        self.apiv3_key = secrets.token_hex(16)
        self.merchant_key, self.platform_key = _key(), _key()
        self.cert_serial = secrets.token_hex(20).upper()
        self.public_key_id = "PUB_KEY_ID_0119000000" + secrets.token_hex(8).upper()
        # Alipay app and Alipay itself
        self.alipay_app_id, self.alipay_pid = "2021004100000001", "2088100000000001"
        self.app_key, self.alipay_key = _key(), _key()
        self.trades: dict[str, Trade] = {}
        self.refunds: dict[str, Refund] = {}
        self.bill_tokens: dict[str, bytes] = {}
        self.refund_outcome = "SUCCESS"  # what a refund query says once asked
        self.bill_tweaks: dict[str, dict] = {}  # order_no → {"drop"|"amount_cents"|"fee_cents"}
        self.extra_lines: list[Trade] = []  # trades only the provider knows of
        self.deliver = self._http_deliver
        self.delivered: list[tuple[str, int]] = []
        # `make run`: a refund's result notification follows by itself (in a thread,
        # after `refund_notify_delay_s`); tests send it with notify_refund().
        self.auto_notify_refunds = False
        self.refund_notify_delay_s = 1.0
        self.app = self._build_app()

    # --- the product's configuration -------------------------------------------
    def config(self, folder: Path, notify_base: str) -> dict:
        """The product's settings for this emulator; its key files written to `folder`.
        WeChat Pay also needs the official account (WECHAT_MP_*: chargers.devtools.
        wechat_mp.WechatMP.config(), with this emulator's `appid`)."""
        folder.mkdir(parents=True, exist_ok=True)
        files = {"wx_key.pem": _pem_private(self.merchant_key),
                 "wx_platform_pub.pem": _pem_public(self.platform_key),
                 "alipay_app_key.pem": _pem_private(self.app_key),
                 "alipay_pub.pem": _pem_public(self.alipay_key)}
        for name, text in files.items():
            (folder / name).write_text(text)
            (folder / name).chmod(0o600)
        return {
            "PAYMENTS_NOTIFY_URL": notify_base,
            "WECHATPAY_MCHID": self.mchid, "WECHATPAY_APIV3_KEY": self.apiv3_key,
            "WECHATPAY_CERT_SERIAL": self.cert_serial,
            "WECHATPAY_PRIVATE_KEY_PATH": str(folder / "wx_key.pem"),
            "WECHATPAY_PUBLIC_KEY_PATH": str(folder / "wx_platform_pub.pem"),
            "WECHATPAY_PUBLIC_KEY_ID": self.public_key_id,
            "WECHATPAY_GATEWAY": self.base_url,
            "ALIPAY_APP_ID": self.alipay_app_id,
            "ALIPAY_APP_PRIVATE_KEY_PATH": str(folder / "alipay_app_key.pem"),
            "ALIPAY_PUBLIC_KEY_PATH": str(folder / "alipay_pub.pem"),
            "ALIPAY_GATEWAY": f"{self.base_url}/gateway.do",
        }

    def serve(self, host: str = "127.0.0.1", port: int = 0):
        """Serve in a thread; returns the server (call .shutdown())."""
        from werkzeug.serving import make_server

        server = make_server(host, port, self.app, threaded=True)
        self.base_url = f"http://{host}:{server.server_port}"
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return server

    # --- notifications ---------------------------------------------------------
    def _http_deliver(self, url: str, headers: dict, body: bytes) -> int:
        import requests

        try:
            return requests.post(url, data=body, headers=headers, timeout=10).status_code
        except requests.RequestException:
            return 0

    def wechat_notice(self, order_no: str, *, timestamp: int | None = None,
                      mchid: str | None = None, appid: str | None = None,
                      sign_key=None, apiv3_key: str | None = None,
                      amount_cents: int | None = None) -> tuple[dict, bytes]:
        """The signed, encrypted TRANSACTION.SUCCESS notification of a paid trade
        (the keyword arguments forge one: another merchant, an old timestamp, a
        signature by another key, a resource encrypted under another key)."""
        t = self.trades[order_no]
        paid = t.paid_at or datetime.now(UTC)
        resource = {"mchid": mchid or t.mchid, "appid": appid or t.appid,
                    "out_trade_no": t.order_no, "transaction_id": t.txn,
                    "trade_type": t.kind, "trade_state": "SUCCESS", "trade_state_desc": "支付成功",
                    "bank_type": "OTHERS", "attach": "",
                    "success_time": paid.astimezone(CST).isoformat(timespec="seconds"),
                    "payer": {"openid": t.openid or "o_emulated"},
                    "amount": {"total": amount_cents or t.amount_cents,
                               "payer_total": amount_cents or t.amount_cents,
                               "currency": "CNY", "payer_currency": "CNY"}}
        return self._wx_notice(resource, "transaction", "TRANSACTION.SUCCESS", "支付成功",
                               timestamp, sign_key, apiv3_key)

    def alipay_notice(self, order_no: str, *, notify_time: datetime | None = None,
                      app_id: str | None = None, sign_key=None,
                      amount_cents: int | None = None) -> dict:
        """The RSA2-signed trade_status_sync notification of a paid trade (form
        fields); keyword arguments forge one."""
        t = self.trades[order_no]
        paid = (t.paid_at or datetime.now(UTC)).astimezone(CST).strftime("%Y-%m-%d %H:%M:%S")
        at = (notify_time or datetime.now(UTC)).astimezone(CST).strftime("%Y-%m-%d %H:%M:%S")
        amount = _yuan(amount_cents or t.amount_cents)
        form = {"notify_time": at, "notify_type": "trade_status_sync",
                "notify_id": uuid.uuid4().hex, "app_id": app_id or self.alipay_app_id,
                "charset": "utf-8", "version": "1.0", "sign_type": "RSA2",
                "trade_no": t.txn, "out_trade_no": t.order_no, "out_biz_no": "",
                "buyer_id": "2088102177846880", "seller_id": self.alipay_pid,
                "trade_status": "TRADE_SUCCESS", "total_amount": amount,
                "receipt_amount": amount, "buyer_pay_amount": amount,
                "subject": "充值", "gmt_create": paid, "gmt_payment": paid}
        form = {k: v for k, v in form.items() if v != ""}
        unsigned = "&".join(f"{k}={form[k]}" for k in sorted(form) if k not in ("sign", "sign_type"))
        form["sign"] = _sign(sign_key or self.alipay_key, unsigned)
        return form

    def wechat_refund_notice(self, refund_no: str, *, timestamp: int | None = None,
                             mchid: str | None = None, sign_key=None,
                             apiv3_key: str | None = None,
                             amount_cents: int | None = None) -> tuple[dict, bytes]:
        """The signed, encrypted refund result notification (退款结果通知: event_type
        REFUND.SUCCESS / REFUND.ABNORMAL / REFUND.CLOSED, resource original_type
        "refund", associated_data "refund"); keyword arguments forge one."""
        r = self.refunds[refund_no]
        t = self.trades[r.order_no]
        status = r.state if r.state in ("SUCCESS", "ABNORMAL", "CLOSED") else "SUCCESS"
        resource = {"mchid": mchid or t.mchid, "out_trade_no": t.order_no,
                    "transaction_id": t.txn, "out_refund_no": r.refund_no,
                    "refund_id": r.refund_id, "refund_status": status,
                    "user_received_account": "支付用户零钱",
                    "amount": {"total": t.amount_cents, "refund": amount_cents or r.amount_cents,
                               "payer_total": t.amount_cents,
                               "payer_refund": amount_cents or r.amount_cents}}
        if status == "SUCCESS":
            resource["success_time"] = (r.done_at or datetime.now(UTC)).astimezone(CST) \
                .isoformat(timespec="seconds")
        summary = {"SUCCESS": "退款成功", "ABNORMAL": "退款异常", "CLOSED": "退款关闭"}[status]
        return self._wx_notice(resource, "refund", f"REFUND.{status}", summary, timestamp,
                               sign_key, apiv3_key)

    def _wx_notice(self, resource: dict, original_type: str, event_type: str, summary: str,
                   timestamp, sign_key, apiv3_key: str | None) -> tuple[dict, bytes]:
        """A WeChat Pay v3 notification: `resource` encrypted with AEAD_AES_256_GCM under
        the API v3 key (associated data = its original type), the body signed."""
        nonce = secrets.token_hex(6)
        ct = AESGCM((apiv3_key or self.apiv3_key).encode()).encrypt(
            nonce.encode(), json.dumps(resource, ensure_ascii=False).encode(),
            original_type.encode())
        body = json.dumps({"id": str(uuid.uuid4()),
                           "create_time": datetime.now(CST).isoformat(timespec="seconds"),
                           "resource_type": "encrypt-resource", "event_type": event_type,
                           "summary": summary,
                           "resource": {"original_type": original_type,
                                        "algorithm": "AEAD_AES_256_GCM",
                                        "ciphertext": base64.b64encode(ct).decode(),
                                        "associated_data": original_type, "nonce": nonce}},
                          ensure_ascii=False)
        headers = self._wx_headers(body, timestamp=timestamp, key=sign_key)
        headers["Content-Type"] = "application/json"
        return headers, body.encode()

    def alipay_refund_notice(self, refund_no: str, *, notify_time: datetime | None = None,
                             app_id: str | None = None, sign_key=None) -> dict:
        """The RSA2-signed asynchronous notification Alipay sends after a refund is made
        (trade_status_sync with out_biz_no = the refund request number, refund_fee =
        the trade's refunded total, gmt_refund; trade_status TRADE_CLOSED once all is
        refunded, else TRADE_SUCCESS)."""
        r = self.refunds[refund_no]
        t = self.trades[r.order_no]
        done = sum(x.amount_cents for x in self.refunds.values()
                   if x.order_no == t.order_no and x.state == "SUCCESS")
        at = (notify_time or datetime.now(UTC)).astimezone(CST).strftime("%Y-%m-%d %H:%M:%S")
        paid = (t.paid_at or datetime.now(UTC)).astimezone(CST).strftime("%Y-%m-%d %H:%M:%S")
        refunded = (r.done_at or datetime.now(UTC)).astimezone(CST)
        form = {"notify_time": at, "notify_type": "trade_status_sync",
                "notify_id": uuid.uuid4().hex, "app_id": app_id or self.alipay_app_id,
                "charset": "utf-8", "version": "1.0", "sign_type": "RSA2",
                "trade_no": t.txn, "out_trade_no": t.order_no, "out_biz_no": r.refund_no,
                "buyer_id": "2088102177846880", "seller_id": self.alipay_pid,
                "trade_status": "TRADE_CLOSED" if done >= t.amount_cents else "TRADE_SUCCESS",
                "total_amount": _yuan(t.amount_cents), "refund_fee": _yuan(done),
                "subject": "充值", "gmt_create": paid, "gmt_payment": paid,
                "gmt_refund": refunded.strftime("%Y-%m-%d %H:%M:%S.")
                + f"{refunded.microsecond // 1000:03d}"}
        unsigned = "&".join(f"{k}={form[k]}" for k in sorted(form) if k not in ("sign", "sign_type"))
        form["sign"] = _sign(sign_key or self.alipay_key, unsigned)
        return form

    def notify_refund(self, refund_no: str) -> int | None:
        """The refund ends as `refund_outcome` says and its result is sent to the
        refund's notify_url (WeChat: every end; Alipay: only a refund made). Returns
        the endpoint's HTTP status (None: nothing sent)."""
        r = self.refunds[refund_no]
        with self.lock:
            self._settle_refund(r)
        if r.state == "PROCESSING" or not r.notify_url:
            return None
        if r.provider == "wechat":
            headers, body = self.wechat_refund_notice(refund_no)
        elif r.state == "SUCCESS":
            headers = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}
            body = urlencode(self.alipay_refund_notice(refund_no)).encode()
        else:
            return None
        status = self.deliver(r.notify_url, headers, body)
        self.delivered.append((refund_no, status))
        return status

    def _later(self, refund_no: str) -> None:
        if self.auto_notify_refunds:
            def go():
                time.sleep(self.refund_notify_delay_s)
                self.notify_refund(refund_no)
            threading.Thread(target=go, daemon=True).start()

    def pay(self, order_no: str, *, notify: bool = True) -> int | None:
        """The resident pays: the trade becomes SUCCESS and its notification is sent
        (returns the notify endpoint's HTTP status)."""
        with self.lock:
            t = self.trades[order_no]
            if t.state == "SUCCESS":
                pass
            elif t.state != "NOTPAY":
                return None
            else:
                t.state, t.paid_at = "SUCCESS", datetime.now(UTC)
                t.txn = ("4200" if t.provider == "wechat" else "2026") + secrets.token_hex(12)
                t.fee_cents = fee_of(t.amount_cents, self.fee_bp)
        if not notify:
            return None
        return self.notify(order_no)

    def notify(self, order_no: str) -> int:
        t = self.trades[order_no]
        if t.provider == "wechat":
            headers, body = self.wechat_notice(order_no)
        else:
            form = self.alipay_notice(order_no)
            headers = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}
            body = urlencode(form).encode()
        status = self.deliver(t.notify_url, headers, body)
        self.delivered.append((order_no, status))
        return status

    # --- WeChat Pay signing ----------------------------------------------------
    def _wx_headers(self, body: str, *, timestamp: int | None = None, key=None) -> dict:
        ts, nonce = str(timestamp if timestamp is not None else int(time.time())), uuid.uuid4().hex
        return {"Wechatpay-Timestamp": ts, "Wechatpay-Nonce": nonce,
                "Wechatpay-Signature": _sign(key or self.platform_key, f"{ts}\n{nonce}\n{body}\n"),
                "Wechatpay-Serial": self.public_key_id,
                "Wechatpay-Signature-Type": "WECHATPAY2-SHA256-RSA2048",
                "Request-ID": uuid.uuid4().hex}

    def _wx(self, status: int, data: dict | None = None) -> Response:
        body = json.dumps(data, ensure_ascii=False) if data is not None else ""
        r = Response(body, status=status, content_type="application/json")
        r.headers.update(self._wx_headers(body))
        return r

    def _wx_authorized(self) -> bool:
        auth = request.headers.get("Authorization", "")
        if not auth.startswith("WECHATPAY2-SHA256-RSA2048 "):
            return False
        parts = dict(p.split("=", 1) for p in auth.split(" ", 1)[1].split(","))
        parts = {k.strip(): v.strip().strip('"') for k, v in parts.items()}
        if parts.get("mchid") != self.mchid or parts.get("serial_no") != self.cert_serial:
            return False
        path = request.full_path if request.query_string else request.path
        body = request.get_data(as_text=True)
        text = f"{request.method}\n{path}\n{parts['timestamp']}\n{parts['nonce_str']}\n{body}\n"
        return _verify(self.merchant_key.public_key(), text, parts.get("signature", ""))

    def _wx_trade_json(self, t: Trade) -> dict:
        state = "REFUND" if t.state == "SUCCESS" and any(
            r.order_no == t.order_no and r.state == "SUCCESS" for r in self.refunds.values()) \
            else t.state
        out = {"appid": t.appid, "mchid": t.mchid, "out_trade_no": t.order_no,
               "trade_type": t.kind, "trade_state": state, "trade_state_desc": state,
               "amount": {"total": t.amount_cents, "currency": "CNY"}}
        if t.state == "SUCCESS":
            out.update(transaction_id=t.txn, payer={"openid": t.openid or "o_emulated"},
                       success_time=t.paid_at.astimezone(CST).isoformat(timespec="seconds"))
            out["amount"].update(payer_total=t.amount_cents, payer_currency="CNY")
        return out

    def _wx_refund_json(self, r: Refund) -> dict:
        self._settle_refund(r)
        return {"refund_id": r.refund_id, "out_refund_no": r.refund_no,
                "out_trade_no": r.order_no, "channel": "ORIGINAL", "status": r.state,
                "amount": {"refund": r.amount_cents,
                           "total": self.trades[r.order_no].amount_cents, "currency": "CNY"},
                "create_time": r.created.astimezone(CST).isoformat(timespec="seconds")}

    def _settle_refund(self, r: Refund) -> None:
        """A refund stays PROCESSING until first asked about, then ends as told
        (`refund_outcome`)."""
        if r.state == "PROCESSING" and self.refund_outcome != "PROCESSING":
            r.state = self.refund_outcome
            r.done_at = datetime.now(UTC)

    # --- Alipay signing --------------------------------------------------------
    def _ali(self, method: str, data: dict) -> Response:
        name = method.replace(".", "_") + "_response"
        inner = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
        sig = _sign(self.alipay_key, inner)
        return Response(f'{{"{name}":{inner},"sign":"{sig}"}}',
                        content_type="application/json;charset=utf-8")

    def _ali_error(self, method: str, sub_code: str, sub_msg: str) -> Response:
        return self._ali(method, {"code": "40004", "msg": "Business Failed",
                                  "sub_code": sub_code, "sub_msg": sub_msg})

    def _ali_verified(self, params: dict) -> bool:
        sig = params.get("sign", "")
        unsigned = "&".join(f"{k}={params[k]}" for k in sorted(params) if k != "sign")
        return _verify(self.app_key.public_key(), unsigned, sig)

    # --- bills -----------------------------------------------------------------
    def _day_lines(self, provider: str, day) -> tuple[list[Trade], list[Refund]]:
        trades = [t for t in list(self.trades.values()) + self.extra_lines
                  if t.provider == provider and t.paid_at
                  and t.paid_at.astimezone(CST).date() == day
                  and not self.bill_tweaks.get(t.order_no, {}).get("drop")]
        refunds = [r for r in self.refunds.values() if r.provider == provider
                   and r.state == "SUCCESS" and r.done_at
                   and r.done_at.astimezone(CST).date() == day]
        return trades, refunds

    def _tweaked(self, t: Trade) -> tuple[int, int]:
        tw = self.bill_tweaks.get(t.order_no, {})
        amount = tw.get("amount_cents", t.amount_cents)
        fee = t.fee_cents if amount == t.amount_cents else fee_of(amount, self.fee_bp)
        return amount, tw.get("fee_cents", fee)

    def wechat_bill(self, day) -> bytes:
        from chargers.services.payments.providers import WECHAT_BILL_COLUMNS

        out = io.StringIO()
        w = csv.writer(out, lineterminator="\r\n")
        w.writerow(WECHAT_BILL_COLUMNS)
        trades, refunds = self._day_lines("wechat", day)
        total = fees = 0
        for t in trades:
            amount, fee = self._tweaked(t)
            total, fees = total + amount, fees + fee
            row = [t.paid_at.astimezone(CST).strftime("%Y-%m-%d %H:%M:%S"), t.appid, t.mchid,
                   "0", "", t.txn, t.order_no, t.openid or "o_emulated", t.kind, "SUCCESS",
                   "OTHERS", "CNY", _yuan(amount), "0.00", "0", "0", "0.00", "0.00", "", "",
                   "充值", "", _yuan(fee), f"{Decimal(self.fee_bp) / 100:.2f}%", _yuan(amount),
                   "0.00", ""]
            w.writerow(["`" + v for v in row])
        for r in refunds:
            t = self.trades[r.order_no]
            fee = -fee_of(r.amount_cents, self.fee_bp)
            fees += fee
            row = [r.done_at.astimezone(CST).strftime("%Y-%m-%d %H:%M:%S"), t.appid, t.mchid, "0",
                   "", t.txn, t.order_no, t.openid or "o_emulated", t.kind, "REFUND", "OTHERS",
                   "CNY", "0.00", "0.00", r.refund_id, r.refund_no, _yuan(r.amount_cents), "0.00",
                   "ORIGINAL", "SUCCESS", "充值", "", _yuan(fee),
                   f"{Decimal(self.fee_bp) / 100:.2f}%", "0.00", _yuan(r.amount_cents), ""]
            w.writerow(["`" + v for v in row])
        w.writerow(["总交易单数", "应结订单总金额", "退款总金额", "充值券退款总金额", "手续费总金额",
                    "订单总金额", "申请退款总金额"])
        w.writerow(["`" + v for v in (str(len(trades) + len(refunds)), _yuan(total),
                                      _yuan(sum(r.amount_cents for r in refunds)), "0.00",
                                      _yuan(fees), _yuan(total),
                                      _yuan(sum(r.amount_cents for r in refunds)))])
        return gzip.compress(out.getvalue().encode("utf-8"))

    def alipay_bill(self, day) -> bytes:
        from chargers.services.payments.providers import ALIPAY_BILL_COLUMNS

        out = io.StringIO()
        w = csv.writer(out, lineterminator="\r\n")
        stamp = day.strftime("%Y%m%d")
        out.write(f"#支付宝业务明细查询\r\n#账号：[{self.alipay_pid}0156]\r\n"
                  f"#起始日期：[{day:%Y年%m月%d日} 00:00:00]   终止日期：[{day:%Y年%m月%d日} 23:59:59]\r\n"
                  "#-----------------------------------------业务明细列表"
                  "----------------------------------------\r\n")
        w.writerow(ALIPAY_BILL_COLUMNS)
        trades, refunds = self._day_lines("alipay", day)
        for t in trades:
            amount, fee = self._tweaked(t)
            at = t.paid_at.astimezone(CST).strftime("%Y-%m-%d %H:%M:%S")
            w.writerow([t.txn, t.order_no, "交易", "充值", at, at, "", "", "", "",
                        "buyer@example.com", _yuan(amount), _yuan(amount), "0.00", "0.00",
                        "0.00", "0.00", "0.00", "", "0.00", "0.00", "", _yuan(-fee), "0.00", ""])
        for r in refunds:
            t = self.trades[r.order_no]
            at = r.done_at.astimezone(CST).strftime("%Y-%m-%d %H:%M:%S")
            w.writerow([t.txn, t.order_no, "退款", "充值", at, at, "", "", "", "",
                        "buyer@example.com", _yuan(-r.amount_cents), _yuan(-r.amount_cents),
                        "0.00", "0.00", "0.00", "0.00", "0.00", "", "0.00", "0.00", r.refund_no,
                        _yuan(fee_of(r.amount_cents, self.fee_bp)), "0.00", ""])
        out.write("#-----------------------------------------业务明细列表结束"
                  "------------------------------------\r\n"
                  f"#交易合计：{len(trades)}笔\r\n#退款合计：{len(refunds)}笔\r\n"
                  f"#导出时间：[{datetime.now(CST):%Y年%m月%d日 %H:%M:%S}]\r\n")
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as z:
            z.writestr(f"{self.alipay_pid}0156_{stamp}_业务明细.csv", out.getvalue().encode("gbk"))
            z.writestr(f"{self.alipay_pid}0156_{stamp}_业务明细(汇总).csv",
                       "#支付宝业务汇总查询\r\n".encode("gbk"))
        return buf.getvalue()

    # --- the HTTP side ---------------------------------------------------------
    def _build_app(self) -> Flask:
        app = Flask("payemu")
        emu = self

        def new_trade(kind: str, data: dict) -> Trade | Response:
            no = data.get("out_trade_no", "")
            if data.get("mchid") != emu.mchid or data.get("appid") != emu.appid:
                return emu._wx(400, {"code": "INVALID_REQUEST", "message": "mchid/appid"})
            if not no or not data.get("notify_url") or not data.get("amount", {}).get("total"):
                return emu._wx(400, {"code": "PARAM_ERROR", "message": "missing field"})
            with emu.lock:
                if no in emu.trades:
                    return emu._wx(400, {"code": "INVALID_REQUEST", "message": "重复的订单号"})
                t = Trade("wechat", no, int(data["amount"]["total"]), data["notify_url"], kind=kind,
                          mchid=data["mchid"], appid=data["appid"],
                          openid=(data.get("payer") or {}).get("openid", ""))
                emu.trades[no] = t
            return t

        @app.before_request
        def check_signature():
            if request.path.startswith("/v3/") and not request.path.startswith("/v3/billdownload"):
                if not emu._wx_authorized():
                    return emu._wx(401, {"code": "SIGN_ERROR", "message": "签名错误"})
            return None

        @app.post("/v3/pay/transactions/<kind>")
        def wx_order(kind: str):
            if kind not in ("jsapi", "h5", "native"):
                abort(404)
            data = request.get_json(force=True)
            if kind == "jsapi" and not (data.get("payer") or {}).get("openid"):
                return emu._wx(400, {"code": "PARAM_ERROR", "message": "payer.openid"})
            if kind == "h5" and not data.get("scene_info"):
                return emu._wx(400, {"code": "PARAM_ERROR", "message": "scene_info"})
            t = new_trade(kind.upper(), data)
            if isinstance(t, Response):
                return t
            page = f"{emu.base_url}/emu/wechat/pay/{t.order_no}"
            if kind == "jsapi":
                return emu._wx(200, {"prepay_id": "wx" + secrets.token_hex(14)})
            if kind == "h5":
                return emu._wx(200, {"h5_url": page})
            return emu._wx(200, {"code_url": page})

        @app.get("/v3/pay/transactions/out-trade-no/<no>")
        def wx_query(no: str):
            t = emu.trades.get(no)
            if t is None or t.provider != "wechat" or request.args.get("mchid") != emu.mchid:
                return emu._wx(404, {"code": "ORDER_NOT_EXIST", "message": "订单不存在"})
            return emu._wx(200, emu._wx_trade_json(t))

        @app.post("/v3/pay/transactions/out-trade-no/<no>/close")
        def wx_close(no: str):
            t = emu.trades.get(no)
            if t is None:
                return emu._wx(204)
            with emu.lock:
                if t.state == "SUCCESS":
                    return emu._wx(400, {"code": "ORDER_PAID", "message": "订单已支付"})
                t.state = "CLOSED"
            return emu._wx(204)

        @app.post("/v3/refund/domestic/refunds")
        def wx_refund():
            data = request.get_json(force=True)
            t = emu.trades.get(data.get("out_trade_no", ""))
            if t is None or t.state != "SUCCESS":
                return emu._wx(404, {"code": "RESOURCE_NOT_EXISTS", "message": "订单不存在"})
            amount = int(data["amount"]["refund"])
            done = sum(r.amount_cents for r in emu.refunds.values()
                       if r.order_no == t.order_no and r.state != "ABNORMAL")
            if amount + done > t.amount_cents:
                return emu._wx(400, {"code": "INVALID_REQUEST", "message": "退款金额超过订单金额"})
            with emu.lock:
                r = emu.refunds.get(data["out_refund_no"])
                if r is None:
                    r = Refund("wechat", data["out_refund_no"], t.order_no, amount,
                               "50" + secrets.token_hex(14),
                               notify_url=data.get("notify_url") or t.notify_url)
                    emu.refunds[r.refund_no] = r
                    emu._later(r.refund_no)
            return emu._wx(200, {"refund_id": r.refund_id, "out_refund_no": r.refund_no,
                                 "out_trade_no": r.order_no, "status": "PROCESSING",
                                 "amount": {"refund": r.amount_cents, "total": t.amount_cents}})

        @app.get("/v3/refund/domestic/refunds/<no>")
        def wx_refund_query(no: str):
            r = emu.refunds.get(no)
            if r is None:
                return emu._wx(404, {"code": "RESOURCE_NOT_EXISTS", "message": "退款单不存在"})
            return emu._wx(200, emu._wx_refund_json(r))

        @app.get("/v3/bill/tradebill")
        def wx_bill():
            day = datetime.strptime(request.args["bill_date"], "%Y-%m-%d").date()
            raw = emu.wechat_bill(day)
            token = secrets.token_hex(12)
            emu.bill_tokens[token] = raw
            return emu._wx(200, {"hash_type": "SHA1",
                                 "hash_value": hashlib.sha1(raw).hexdigest(),
                                 "download_url": f"{emu.base_url}/v3/billdownload/file?token={token}"})

        @app.get("/v3/billdownload/file")
        def wx_bill_file():
            raw = emu.bill_tokens.get(request.args.get("token", ""))
            if raw is None:
                abort(404)
            return Response(raw, content_type="application/octet-stream")

        @app.route("/emu/wechat/pay/<no>", methods=["GET", "POST"])
        def wx_page(no: str):
            t = emu.trades.get(no)
            if t is None:
                abort(404)
            if request.method == "POST":
                emu.pay(no)
            back = request.args.get("redirect_url", "")
            return _page("微信支付（模拟）", t, f"/emu/wechat/pay/{no}", back, "#07c160")

        @app.route("/gateway.do", methods=["GET", "POST"])
        def alipay_gateway():
            params = request.values.to_dict()
            method = params.get("method", "")
            if params.get("app_id") != emu.alipay_app_id or not emu._ali_verified(params):
                return emu._ali_error(method or "error", "isv.invalid-signature", "验签出错")
            biz = json.loads(params.get("biz_content") or "{}")
            no = biz.get("out_trade_no", "")
            t = emu.trades.get(no)
            if method == "alipay.trade.wap.pay":
                with emu.lock:
                    if t is None:
                        t = Trade("alipay", no, _fen(biz["total_amount"]),
                                  params.get("notify_url", ""), kind="QUICK_WAP_WAY",
                                  return_url=params.get("return_url", ""))
                        emu.trades[no] = t
                return _page("支付宝（模拟）", t, f"/emu/alipay/pay/{no}", t.return_url, "#1677ff")
            if method == "alipay.trade.query":
                if t is None:
                    return emu._ali_error(method, "ACQ.TRADE_NOT_EXIST", "交易不存在")
                status = {"NOTPAY": "WAIT_BUYER_PAY", "SUCCESS": "TRADE_SUCCESS",
                          "CLOSED": "TRADE_CLOSED"}[t.state]
                data = {"code": "10000", "msg": "Success", "out_trade_no": no,
                        "trade_no": t.txn, "trade_status": status,
                        "total_amount": _yuan(t.amount_cents)}
                if t.paid_at:
                    data["send_pay_date"] = t.paid_at.astimezone(CST).strftime("%Y-%m-%d %H:%M:%S")
                return emu._ali(method, data)
            if method == "alipay.trade.close":
                if t is None:
                    return emu._ali_error(method, "ACQ.TRADE_NOT_EXIST", "交易不存在")
                if t.state == "SUCCESS":
                    return emu._ali_error(method, "ACQ.TRADE_STATUS_ERROR", "交易状态不合法")
                t.state = "CLOSED"
                return emu._ali(method, {"code": "10000", "msg": "Success", "out_trade_no": no,
                                         "trade_no": t.txn})
            if method == "alipay.trade.refund":
                if t is None or t.state != "SUCCESS":
                    return emu._ali_error(method, "ACQ.TRADE_NOT_EXIST", "交易不存在")
                amount = _fen(biz["refund_amount"])
                req_no = biz.get("out_request_no") or no
                with emu.lock:
                    r = emu.refunds.get(req_no)
                    if r is None:
                        done = sum(x.amount_cents for x in emu.refunds.values()
                                   if x.order_no == no and x.state != "ABNORMAL")
                        if amount + done > t.amount_cents:
                            return emu._ali_error(method, "ACQ.REFUND_AMT_NOT_EQUAL_TOTAL",
                                                  "退款金额超限")
                        if emu.refund_outcome == "ABNORMAL":  # refused there: nothing kept
                            return emu._ali_error(method, "ACQ.SYSTEM_ERROR", "系统错误")
                        r = Refund("alipay", req_no, no, amount, t.txn, notify_url=t.notify_url)
                        emu.refunds[req_no] = r
                        fresh = True
                        # Alipay refunds synchronously: fund_change Y is a refund made.
                        if emu.refund_outcome == "SUCCESS":
                            r.state, r.done_at = "SUCCESS", datetime.now(UTC)
                    else:
                        fresh = False
                if fresh and r.state == "SUCCESS":
                    emu._later(r.refund_no)
                refunded = sum(x.amount_cents for x in emu.refunds.values()
                               if x.order_no == no and x.state == "SUCCESS")
                return emu._ali(method, {"code": "10000", "msg": "Success", "trade_no": t.txn,
                                         "out_trade_no": no,
                                         "fund_change": "Y" if fresh and r.state == "SUCCESS"
                                         else "N", "refund_fee": _yuan(refunded)})
            if method == "alipay.trade.fastpay.refund.query":
                r = emu.refunds.get(biz.get("out_request_no", ""))
                if r is None:
                    return emu._ali(method, {"code": "10000", "msg": "Success"})
                emu._settle_refund(r)
                data = {"code": "10000", "msg": "Success", "trade_no": t.txn if t else "",
                        "out_trade_no": r.order_no, "out_request_no": r.refund_no,
                        "refund_amount": _yuan(r.amount_cents),
                        "total_amount": _yuan(emu.trades[r.order_no].amount_cents)}
                if r.state == "SUCCESS":
                    data["refund_status"] = "REFUND_SUCCESS"
                elif r.state == "ABNORMAL":
                    data.pop("refund_amount")
                return emu._ali(method, data)
            if method == "alipay.data.dataservice.bill.downloadurl.query":
                day = datetime.strptime(biz["bill_date"], "%Y-%m-%d").date()
                token = secrets.token_hex(12)
                emu.bill_tokens[token] = emu.alipay_bill(day)
                url = f"{emu.base_url}/emu/alipay/bill?token={token}"
                return emu._ali(method, {"code": "10000", "msg": "Success",
                                         "bill_download_url": url})
            return emu._ali_error(method or "error", "isv.invalid-method", "不存在的方法名")

        @app.get("/emu/alipay/bill")
        def alipay_bill_file():
            raw = emu.bill_tokens.get(request.args.get("token", ""))
            if raw is None:
                abort(404)
            return Response(raw, content_type="application/zip")

        @app.post("/emu/alipay/pay/<no>")
        def alipay_pay(no: str):
            t = emu.trades.get(no)
            if t is None:
                abort(404)
            emu.pay(no)
            if t.return_url:
                return redirect(t.return_url)
            return _page("支付宝（模拟）", t, f"/emu/alipay/pay/{no}", "", "#1677ff")

        def _page(title: str, t: Trade, action: str, back: str, color: str) -> str:
            paid = t.state == "SUCCESS"
            button = ("<p class=ok>已支付 ✓</p>" if paid else
                      f"<form method=post action='{action}'><button>支付 ¥{_yuan(t.amount_cents)}"
                      "</button></form>" if t.state == "NOTPAY" else "<p>订单已关闭</p>")
            link = f"<p><a href='{back}'>返回商户</a></p>" if back and paid else ""
            return (f"<!doctype html><meta charset=utf-8><meta name=viewport "
                    f"content='width=device-width,initial-scale=1'><title>{title}</title>"
                    f"<style>body{{font-family:sans-serif;text-align:center;padding:2em}}"
                    f"button{{background:{color};color:#fff;border:0;border-radius:6px;"
                    f"font-size:1.2em;padding:.7em 2em}}.ok{{color:{color};font-size:1.3em}}"
                    f"</style><h1>{title}</h1><p>商户订单号 {t.order_no}</p>"
                    f"<p style='font-size:2em'>¥{_yuan(t.amount_cents)}</p>{button}{link}"
                    "<p style='color:#888'>本页由本地模拟器提供，不会扣款。</p>")

        return app


def load_or_create(folder: Path, appid: str = "wx-demo-app") -> PayEmulator:
    """An emulator whose keys and ids are kept in `folder` (made on first use, 0600), so
    that `make run`'s web, worker and emulator processes agree across restarts; `appid`
    is the demo official account's (WECHAT_MP_APP_ID)."""
    folder.mkdir(parents=True, exist_ok=True)
    state = folder / "emulator-keys.json"
    emu = PayEmulator(appid=appid)
    if state.exists():
        data = json.loads(state.read_text())
        emu.merchant_key = serialization.load_pem_private_key(data["merchant"].encode(), None)
        emu.platform_key = serialization.load_pem_private_key(data["platform"].encode(), None)
        emu.app_key = serialization.load_pem_private_key(data["app"].encode(), None)
        emu.alipay_key = serialization.load_pem_private_key(data["alipay"].encode(), None)
        emu.apiv3_key, emu.cert_serial = data["apiv3_key"], data["cert_serial"]
        emu.public_key_id = data["public_key_id"]
    else:
        state.write_text(json.dumps({
            "merchant": _pem_private(emu.merchant_key), "platform": _pem_private(emu.platform_key),
            "app": _pem_private(emu.app_key), "alipay": _pem_private(emu.alipay_key),
            "apiv3_key": emu.apiv3_key, "cert_serial": emu.cert_serial,
            "public_key_id": emu.public_key_id}))
        state.chmod(0o600)
    return emu


def main() -> None:  # pragma: no cover - `python -m chargers.devtools.payemu`
    """`make run`: `--write-config` writes the product's settings for the emulator to
    <folder>/payemu.env (sourced before the processes start); without it, serve the
    emulator on PAYEMU_PORT (5090). Keys live in instance/payemu (never committed)."""
    import argparse
    import os

    port = int(os.environ.get("PAYEMU_PORT", "5090"))
    web = os.environ.get("WEB_PORT", "").strip() or "5000"
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--write-config", action="store_true")
    ap.add_argument("--folder", default="instance/payemu")
    args = ap.parse_args()
    emu = load_or_create(Path(args.folder), os.environ.get("WECHAT_MP_APP_ID") or "wx-demo-app")
    emu.base_url = f"http://127.0.0.1:{port}"
    emu.auto_notify_refunds = True
    if args.write_config:
        cfg = emu.config(Path(args.folder), os.environ.get("PAYMENTS_NOTIFY_URL")
                         or f"http://127.0.0.1:{web}")
        Path(args.folder, "payemu.env").write_text(
            "".join(f"{k}={v}\n" for k, v in cfg.items()))
        print(f"payment emulator settings: {args.folder}/payemu.env (emulator on {emu.base_url})")
        return
    emu.app.run(host="127.0.0.1", port=port, threaded=True)


if __name__ == "__main__":  # pragma: no cover
    main()
