"""Staff page of the ingest: rejected messages by reason, the latest ones, and
seq gaps (possible data loss)."""

from __future__ import annotations

from flask import render_template
from flask_login import current_user

from ...services import ingest
from . import bp


@bp.get("/ingest")
def ingest_overview():
    return render_template(
        "staff/ingest.html",
        counts=sorted(ingest.rejection_counts(current_user).items()),
        rejections=ingest.list_rejections(current_user, limit=100),
        gaps=ingest.list_seq_gaps(current_user, limit=50),
    )
