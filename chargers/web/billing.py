"""Residents' billing pages: a session's receipt at an unguessable link, and 'My
account' (card + last 4 phone digits → balance, monthly card, recent receipts; rate
limited, nothing else personal)."""

from __future__ import annotations

from flask import Blueprint, abort, current_app, g, render_template, request

from ..extensions import db, limiter
from ..models import Pile, ResidentAccount, Tariff
from ..services.alerts import notify
from ..services.billing import accounts, ledger, settlement
from ..services.charging import endings
from ..services.devices import alleys
from . import pay
from .forms_billing import LookupForm

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
    return render_template(
        "billing/my_account.html", alley=alley, form=form, tried=tried, acc=acc,
        balance=ledger.balance(acc) if acc else None,
        topup_url=pay.topup_link(acc) if acc else None,
        sessions=accounts.recent_sessions(acc) if acc else [],
        used_s=settlement.monthly_used_seconds(acc) if acc and acc.kind == "monthly"
        and acc.monthly_from else None)
