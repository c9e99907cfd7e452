"""Prometheus metrics, computed from the database at scrape time so that any web
process answers for the whole system (the worker is another process).

Read only: nothing here writes or commits."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from sqlalchemy import func, select

from ..extensions import db
from ..models import Alert, Notification, Pile
from .alerts.lifecycle import OPEN
from .charging import availability
from .devices import alleys
from .ingest import message_log


class _DatabaseCollector:
    def collect(self):
        counters = message_log.ingest_counts()
        accepted = CounterMetricFamily("chargers_ingest_messages", "Device messages applied",
                                       labels=["kind"])
        rejected = CounterMetricFamily("chargers_ingest_rejected", "Device messages rejected",
                                       labels=["reason"])
        duplicates = CounterMetricFamily("chargers_ingest_duplicates_dropped",
                                         "Redelivered messages dropped as duplicates")
        duplicates.add_metric([], counters.pop("duplicate", 0))
        for key, count in sorted(counters.items()):
            family, _, label = key.partition(":")
            if family == "rejected":
                rejected.add_metric([label], count)
            elif family == "accepted":
                accepted.add_metric([label], count)
        yield accepted
        yield rejected
        yield duplicates

        ports = GaugeMetricFamily("chargers_ports", "Ports by resident-facing state",
                                  labels=["alley", "state"])
        for view in availability.alley_views(alleys.list_alleys()):
            for state, n in view.counts().items():
                ports.add_metric([view.slug, state], n)
        yield ports

        online = GaugeMetricFamily("chargers_piles", "Piles by online state", labels=["online"])
        for is_online, n in db.session.execute(
            select(Pile.online, func.count()).group_by(Pile.online)
        ):
            online.add_metric(["true" if is_online else "false"], n)
        yield online

        active = GaugeMetricFamily("chargers_alerts_open", "Open alerts by severity",
                                   labels=["severity"])
        for severity, n in db.session.execute(
            select(Alert.severity, func.count())
            .where(Alert.status.in_(OPEN))
            .group_by(Alert.severity)
        ):
            active.add_metric([severity], n)
        yield active

        from .payments import notifications

        notices = CounterMetricFamily("chargers_payment_notifications",
                                      "Payment notifications by provider and outcome "
                                      "(posted, replayed, or a rejection)",
                                      labels=["provider", "outcome"])
        for (provider, outcome), n in sorted(notifications.counts().items()):
            notices.add_metric([provider, outcome], n)
        yield notices
        # The outbox by channel and state: a WeChat user who refused, a template missing,
        # an SMS provider down show here as `failed` (each row keeps its last error).
        outbox = GaugeMetricFamily("chargers_notifications",
                                   "Outbox messages by channel, reason and status",
                                   labels=["channel", "reason", "status"])
        for channel, reason, status, n in db.session.execute(
            select(Notification.channel, Notification.reason, Notification.status, func.count())
            .group_by(Notification.channel, Notification.reason, Notification.status)
        ):
            outbox.add_metric([channel, reason, status], n)
        yield outbox


def render() -> bytes:
    """The text exposition of every chargers_ metric."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_DatabaseCollector())
    return generate_latest(registry)
