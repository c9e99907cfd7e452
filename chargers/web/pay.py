"""Residents' online top-up (充值) and the providers' doors: the top-up page reached
from 'My account' (a signed link naming the account, valid 30 minutes), the order page
that polls our order for the result, the providers' notification endpoints and the
WeChat OAuth return. Views translate only: rules live in services/payments."""

from __future__ import annotations

import logging
from urllib.parse import quote

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_wtf import FlaskForm
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from wtforms import HiddenField
from wtforms.validators import Optional

from .. import settings
from ..constants import PayChannel
from ..extensions import csrf, db
from ..models import Alley, ResidentAccount, utcnow
from ..services.devices import alleys
from ..services.devices.qrcodes import text_qr_svg
from ..services.errors import Invalid
from ..services.payments import limits, notifications, oauth, orders, refunds
from .money import YuanField

bp = Blueprint("pay", __name__)
log = logging.getLogger("chargers.payments")
LINK_MAX_AGE_S = 30 * 60


def _signer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="topup")


def topup_link(account: ResidentAccount) -> str | None:
    """The top-up page's address for an account just looked up (None when no channel
    is configured or the account is not prepaid/monthly)."""
    if not orders.can_top_up(account, settings.payments(current_app.config)):
        return None
    alley = db.session.get(Alley, account.alley_id)
    return url_for("pay.topup", slug=alley.slug, token=_signer().dumps(account.id))


def _linked(token: str) -> ResidentAccount:
    """The account a top-up link (or the OAuth `state`) names: expired → a refusal,
    forged or unknown → 404."""
    try:
        account_id = _signer().loads(token, max_age=LINK_MAX_AGE_S)
    except SignatureExpired:
        raise Invalid("pay.link_expired") from None
    except BadSignature:
        abort(404)
    acc = db.session.get(ResidentAccount, account_id)
    if acc is None:
        abort(404)
    return acc


def _account(slug: str, token: str) -> tuple[Alley, ResidentAccount]:
    alley = alleys.get_alley(None, slug)
    acc = _linked(token)
    if acc.alley_id != alley.id:
        abort(404)
    g.tz = alley.timezone
    return alley, acc


class TopupForm(FlaskForm):
    amount = YuanField(validators=[Optional()], min_fen=1, max_fen=10_000_000)
    preset = HiddenField()
    channel = HiddenField()


@bp.route("/a/<slug>/topup/<token>", methods=["GET", "POST"])
def topup(slug: str, token: str):
    """充值: preset amounts or any amount within the limits, the channels this browser
    can pay with; inside WeChat, the OAuth first (for the openid)."""
    alley, acc = _account(slug, token)
    rules = settings.payments(current_app.config)
    ua = request.headers.get("User-Agent", "")
    channels = orders.channels_for(ua, rules)
    openid = orders.openid_of(acc.id)
    if (PayChannel.WECHAT_JSAPI in channels and not openid and rules.wechat.app_secret
            and request.method == "GET"):
        back = url_for("pay.oauth_back", _external=True)
        return redirect(oauth.authorize_url(rules, back, token))
    form = TopupForm()
    lim = limits.of(alley, rules)
    error = None
    if request.method == "POST" and form.validate_on_submit():
        amount = form.amount.data if form.amount.data is not None else (
            int(form.preset.data) if (form.preset.data or "").isdigit() else None)
        channel = form.channel.data
        if channel not in channels:
            raise Invalid("pay.channel")
        if not lim.allows(amount):
            log.info("top-up of account %d refused: %r fen outside %d..%d", acc.id, amount,
                     lim.min_cents, lim.max_cents)
            return render_template("pay/topup.html", alley=alley, acc=acc, form=form, lim=lim,
                                   presets=orders.PRESETS_CENTS, channels=channels, error=True,
                                   needs_openid=PayChannel.WECHAT_JSAPI in channels
                                   and not openid), 422
        placed = orders.place(acc.id, amount, channel, rules, utcnow(), openid=openid,
                              client_ip=request.remote_addr or "",
                              return_url=url_for("pay.order", order_no="ORDERNO",
                                                 _external=True).replace("ORDERNO", "{order_no}"))
        order_url = url_for("pay.order", order_no=placed.order.order_no)
        # The provider's page is opened from our order page (a link the script follows
        # at once), not by redirecting the form's POST: CSP form-action 'self' would
        # stop a redirect to another site, and the order page is where the result shows.
        go = placed.next.get("pay_url")
        if "h5_url" in placed.next:
            sep = "&" if "?" in placed.next["h5_url"] else "?"
            go = (f"{placed.next['h5_url']}{sep}redirect_url="
                  + quote(url_for("pay.order", order_no=placed.order.order_no, _external=True),
                          safe=""))
        code_url = placed.next.get("code_url")
        return render_template("pay/order.html", alley=alley, order=placed.order,
                               state=orders.public_state(placed.order), jsapi=placed.next.get("jsapi"),
                               qr=text_qr_svg(code_url) if code_url else None,
                               code_url=code_url, go=go, order_url=order_url)
    elif request.method == "POST":
        error = True
    return render_template("pay/topup.html", alley=alley, acc=acc, form=form, lim=lim,
                           presets=orders.PRESETS_CENTS, channels=channels, error=error,
                           needs_openid=PayChannel.WECHAT_JSAPI in channels and not openid)


@bp.get("/pay/o/<order_no>")
def order(order_no: str):
    """An order's page: what we know of it, polled until paid or closed (the provider's
    redirect back proves nothing)."""
    o = orders.get(order_no)
    alley = db.session.get(Alley, o.alley_id)
    g.tz = alley.timezone
    return render_template("pay/order.html", alley=alley, order=o, state=orders.public_state(o),
                           jsapi=None, qr=None, code_url=None, go=None,
                           refunds=refunds.of_order(o.id),
                           order_url=url_for("pay.order", order_no=o.order_no))


@bp.get("/pay/o/<order_no>/state")
def order_state(order_no: str):
    o = orders.get(order_no)
    resp = jsonify({"order": o.order_no, "state": orders.public_state(o),
                    "amount_cents": o.amount_cents})
    resp.headers["Cache-Control"] = "no-store"
    return resp


@bp.post("/pay/notify/wechat")
@csrf.exempt
def notify_wechat():
    rules = settings.payments(current_app.config)
    h = notifications.wechat(request.headers, request.get_data(), rules, utcnow())
    if h.acknowledged:
        return Response(status=204)
    return jsonify({"code": "FAIL", "message": h.outcome}), 400


@bp.post("/pay/notify/alipay")
@csrf.exempt
def notify_alipay():
    rules = settings.payments(current_app.config)
    h = notifications.alipay(request.form.to_dict(), rules, utcnow())
    return Response("success" if h.acknowledged else "fail", content_type="text/plain")


@bp.get("/pay/oauth/wechat")
def oauth_back():
    """WeChat's OAuth return: the code becomes the openid, kept on the account."""
    token = request.args.get("state", "")
    acc = _linked(token)
    rules = settings.payments(current_app.config)
    openid = oauth.openid_for(rules, request.args.get("code", ""))
    orders.remember_openid(acc.id, openid)
    alley = db.session.get(Alley, acc.alley_id)
    return redirect(url_for("pay.topup", slug=alley.slug, token=token))
