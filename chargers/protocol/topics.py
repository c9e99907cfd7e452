"""Topics of the device protocol: `{prefix}/{pile}/{kind}`. Parsing and building
only; no paho, no database."""

from __future__ import annotations

from dataclasses import dataclass

# Kinds a pile publishes (device → backend).
# COMMAND_KIND is the backend's own topic; the ingest sees it under the same
# subscription in MQTT 3.1.1 and skips it without counting.
from .codes import COMMAND_KIND, DEVICE_KINDS, PILE_ID_RE  # noqa: E402


class TopicError(ValueError):
    """The topic is not one of ours; `reason` is `bad_topic` or `unknown_kind`."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class Topic:
    pile_id: str
    kind: str


def parse(topic: str, prefix: str) -> Topic:
    """Split `{prefix}/{pile}/{kind}`; raise TopicError for anything else.

    `cmd` parses (the caller skips it); any other kind outside the protocol is
    `unknown_kind`; a wrong shape or pile id is `bad_topic`.
    """
    head = prefix.rstrip("/") + "/"
    if not topic.startswith(head):
        raise TopicError("bad_topic", f"topic outside {prefix!r}")
    parts = topic[len(head):].split("/")
    if len(parts) != 2:
        raise TopicError("bad_topic", "expected {prefix}/{pile}/{kind}")
    pile_id, kind = parts
    if not PILE_ID_RE.match(pile_id):
        raise TopicError("bad_topic", "pile id must be 1-64 of [A-Za-z0-9_-]")
    if kind not in DEVICE_KINDS and kind != COMMAND_KIND:
        raise TopicError("unknown_kind", f"unknown kind {kind[:32]!r}")
    return Topic(pile_id, kind)


def build(prefix: str, pile_id: str, kind: str) -> str:
    """The topic of `kind` for `pile_id`."""
    return f"{prefix.rstrip('/')}/{pile_id}/{kind}"


def subscription(prefix: str) -> str:
    """The one filter the backend subscribes to: everything under the prefix, so
    that malformed topics are seen and counted too."""
    return f"{prefix.rstrip('/')}/#"
