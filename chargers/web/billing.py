"""Residents' billing pages: a session's receipt at an unguessable link, and 'My
account' (card + last 4 phone digits → balance, monthly card, recent receipts; rate
limited, nothing else personal), where residents also choose how they hear from us: the
page carries a signed, short-lived proof of the lookup (MY_ACCOUNT_MAX_AGE_S) that the
channels form posts back."""

from __future__ import annotations

from flask import Blueprint, abort, current_app, flash, g, render_template, request
from flask_babel import gettext as _
from itsdangerous import BadSignature, URLSafeTimedSerializer

from ..extensions import db, limiter
from ..models import Pile, ResidentAccount, Tariff, utcnow
from ..outcomes import render as outcome
from ..services.alerts import notify
from ..services.billing import accounts, ledger, reminders, settlement
from ..services.charging import endings
from ..services.devices import alleys
from ..services.errors import DomainError
from . import pay
from .forms_billing import ChannelsForm, LookupForm

bp = Blueprint("billing", __name__)


@bp.get("/r/<token>")
def receipt(token: str):
    """One settled session's receipt."""
    s = settlement.receipt(token)
    if s is None:
        abort(404)
    pile = db.session.get(Pile, s.pile_id)
    g.tz = pile.alley.timezone
    tariff = db.session.get(Tariff, s.tariff_id) if s.tariff_id else None
    payer = db.session.get(ResidentAccount, s.account_id) if s.account_id else None
    charge = settlement.charge_posting(s.id)
    after = (ledger.balance_after(payer.id, charge.id)
             if payer is not None and charge is not None else None)
    return render_template("billing/receipt.html", s=s, b=s.bill or {}, pile=pile,
                           alley=pile.alley, tariff=tariff, ended=endings.of_session(s),
                           payer=payer, balance_after=after,
                           service_contacts=notify.public_contacts(pile.alley_id))


def _card_key() -> str:
    """The rate-limit key of the card being looked up, whatever address tries it."""
    return ("account-card:" + (request.view_args or {}).get("slug", "")[:64] + ":"
            + (request.form.get("card") or "").strip().lower()[:64])


@bp.route("/a/<slug>/account", methods=["GET", "POST"])
@limiter.limit(lambda: current_app.config["ACCOUNT_LOOKUP_RATE_LIMIT"], methods=["POST"])
# Ten thousand last-4 guesses spread over many addresses still meet this one.
@limiter.limit(lambda: current_app.config["ACCOUNT_LOOKUP_CARD_RATE_LIMIT"], methods=["POST"],
               key_func=_card_key)
def my_account(slug: str):
    """Look up one's own account by card and the phone's last 4 digits."""
    alley = alleys.get_alley(None, slug)
    g.tz = alley.timezone
    form = LookupForm()
    acc = None
    tried = False
    if form.validate_on_submit():
        tried = True
        acc = accounts.lookup(alley, form.card.data.strip(), form.phone_last4.data)
    return _my_account_page(alley, form, tried, acc)


MY_ACCOUNT_MAX_AGE_S = 30 * 60  # how long the channels form of a lookup stays good


def _proof() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.secret_key, salt="my-account-channels")


def _my_account_page(alley, form, tried: bool, acc: ResidentAccount | None,
                     channels_form: ChannelsForm | None = None):
    if acc is not None and channels_form is None:
        ch = reminders.channels(acc.id)
        channels_form = ChannelsForm(formdata=None, obj=None, data={
            "proof": _proof().dumps({"a": acc.id, "s": alley.slug}),
            "wechat": bool(ch and ch.wechat), "sms": bool(ch and ch.sms),
            "email": ch.email if ch else "", "night": bool(ch and ch.night),
            "language": ch.language if ch else ""})
    sessions = accounts.recent_sessions(acc) if acc else []
    return render_template(
        "billing/my_account.html", alley=alley, form=form, tried=tried, acc=acc,
        channels_form=channels_form, channels=reminders.channels(acc.id) if acc else None,
        balance=ledger.balance(acc) if acc else None,
        topup_url=pay.topup_link(acc) if acc else None,
        sessions=sessions, session_endings={s.id: endings.of_session(s) for s in sessions},
        charging=accounts.charging_now(acc) if acc else [],
        used_s=settlement.monthly_used_seconds(acc) if acc and acc.kind == "monthly"
        and acc.monthly_from else None)


@bp.post("/a/<slug>/account/channels")
@limiter.limit(lambda: current_app.config["ACCOUNT_LOOKUP_RATE_LIMIT"])
def my_channels(slug: str):
    """A resident chooses how they hear from us (after looking their account up)."""
    alley = alleys.get_alley(None, slug)
    g.tz = alley.timezone
    cf = ChannelsForm()
    acc = None
    if cf.validate_on_submit():
        try:
            proof = _proof().loads(cf.proof.data, max_age=MY_ACCOUNT_MAX_AGE_S)
        except BadSignature:
            proof = None
        if isinstance(proof, dict) and proof.get("s") == alley.slug:
            acc = db.session.get(ResidentAccount, proof.get("a"))
    if acc is None or acc.alley_id != alley.id:
        flash(_("Please look your account up again."), "error")
        return _my_account_page(alley, LookupForm(formdata=None), False, None)
    try:
        reminders.save_channels(acc, None, cf.email.data or "", cf.sms.data, utcnow(),
                                wechat=cf.wechat.data, night=cf.night.data,
                                language=cf.language.data)  # absent: unchanged
    except DomainError as exc:
        flash(outcome(exc.code, exc.params), "error")
        return _my_account_page(alley, LookupForm(formdata=None), True, acc, cf)
    flash(_("Saved: how you hear from us."), "ok")
    return _my_account_page(alley, LookupForm(formdata=None), True, acc)
