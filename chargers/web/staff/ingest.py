"""Staff page of the ingest: rejected messages by reason, the latest ones, and
seq gaps (possible data loss)."""

from __future__ import annotations

from flask import render_template
from flask_login import current_user

from ...services import message_ledger
from . import bp


@bp.get("/ingest")
def ingest_overview():
    return render_template(
        "staff/ingest.html",
        counts=sorted(message_ledger.rejection_counts(current_user).items()),
        rejections=message_ledger.list_rejections(current_user, limit=100),
        gaps=message_ledger.list_seq_gaps(current_user, limit=50),
    )
