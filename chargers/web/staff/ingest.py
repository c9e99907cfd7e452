"""Staff page of the ingest: rejected messages by reason, the latest ones, and
seq gaps (possible data loss)."""

from __future__ import annotations

from flask import current_app, render_template
from flask_login import current_user

from ...protocol.codes import PILE_ID_RE
from ...services.ingest import message_log
from . import bp


def pile_named_by(topic: str, prefix: str) -> str | None:
    """The pile a topic names (`{prefix}/{pile}/…`), even when the rest of the topic or
    the message was bad; None when it names none."""
    head = prefix.rstrip("/") + "/"
    if not topic or not topic.startswith(head):
        return None
    first = topic[len(head):].split("/", 1)[0]
    return first if PILE_ID_RE.match(first) else None


@bp.get("/ingest")
def ingest_overview():
    prefix = current_app.config["MQTT_TOPIC_PREFIX"]
    rejections = message_log.list_rejections(current_user, limit=100)
    return render_template(
        "staff/ingest.html",
        counts=sorted(message_log.rejection_counts(current_user).items()),
        rejections=rejections,
        pile_names={r.id: r.pile_id or pile_named_by(r.topic, prefix) for r in rejections},
        gaps=message_log.list_seq_gaps(current_user, limit=50),
    )
