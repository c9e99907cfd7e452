"""The MQTT client of the worker (paho-mqtt 2.x): receive, apply in batches, and
acknowledge each message to the broker only after its effect is committed.

- Fixed client id and a persistent session (MQTT 3.1.1 `clean_session=False`, or
  MQTT 5 `clean_start=False` with a session expiry), so the broker keeps our
  subscription and queues messages while the worker is down.
- `manual_ack=True`: paho does not PUBACK on delivery; we do, after commit. A
  crash before the commit leaves the message unacknowledged and the broker sends
  it again; the ledger makes the second copy a no-op.
- Subscriptions are (re)made in on_connect; paho reconnects with backoff, and
  `connect_async` lets the worker start while the broker is still down.
- paho callbacks only queue; a processing thread takes up to BATCH_MAX messages
  (or what arrived within BATCH_WAIT_S), applies them in one app context and one
  transaction, commits, then acks. An `authorize` goes first: urgent messages make
  batches of their own, and a batch of others in hand commits early when one arrives
  (its rest comes next). While the database is down it acks nothing,
  backs off and retries the same batch. Messages the batch deferred (their pile was
  locked by another worker) stay unacknowledged and go first into the next batch.
"""

from __future__ import annotations

import itertools
import json
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

import paho.mqtt.client as mqtt
from flask import Flask
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from .. import settings as app_settings
from ..models import utcnow
from ..mqtt_settings import BrokerAddress, broker_address, login_name
from ..protocol import topics
from ..services.ingest.message_log import excerpt
from . import handlers

log = logging.getLogger(__name__)

BATCH_MAX = 200
BATCH_WAIT_S = 0.05
# A message left for later this many times goes in a batch that waits for pile locks,
# so no message waits on a busy pile for ever. (Deferred messages lead the next batch,
# and their piles come first in its share.)
MAX_DEFERRALS = 3
# After a batch found most of its piles held by another worker, for this long each
# batch takes only PILE_SHARE of its piles (handlers.process): two workers then apply
# disjoint halves side by side. One worker alone never finds a pile held, and takes all.
CONTENTION_S = 2.0
PILE_SHARE = 0.5
# ... and takes up to this many times batch_max messages, so that with half of its piles
# it still applies about a full batch (the per-batch cost is then spread as thinly as
# with one worker: measured 1.14 -> 1.36 x one worker in bench/ingest_throughput.py).
SHARE_BATCH_FACTOR = 2
# With a backlog of BACKLOG_BATCHES batches or more in the inbox (a burst: piles
# sending what they queued while the broker or the worker was away), a batch takes up
# to BACKLOG_BATCH_FACTOR times batch_max: a batch's fixed cost (its reads and its
# write) is most of its time, so larger batches drain the backlog sooner
# (bench/ingest_throughput.py). Below that, batches stay small: a short hiccup's
# messages are seen sooner in two batches than all at the end of one
# (bench/visible_latency.py).
BACKLOG_BATCHES = 4
BACKLOG_BATCH_FACTOR = 2
KEEPALIVE_S = 60
SESSION_EXPIRY_S = 7 * 24 * 3600  # MQTT 5: how long the broker keeps our session
SENDER_PROPERTY = "sender"  # MQTT 5 user property naming the publisher, when a broker adds it


@dataclass(frozen=True)
class Received:
    msg: handlers.Incoming
    mid: int
    qos: int
    generation: int  # which connection delivered it: acks go only on that one
    deferrals: int = 0  # batches that left it for later (its pile locked by another worker)


# Kinds a pile waits on, answered first: a card at a pile waits (10 s at most) for the
# answer to its `authorize` before any power flows.
URGENT_KINDS = ("authorize",)


def urgent(msg: handlers.Incoming) -> bool:
    """Whether the message jumps the inbox's line (its kind is in URGENT_KINDS)."""
    return msg.topic.rsplit("/", 1)[-1] in URGENT_KINDS


class Inbox:
    """The messages paho handed over, in arrival order, except that urgent ones
    (`urgent`) come out first: an `authorize` does not wait behind a thousand meter
    readings. Order across a pile's topics is not guaranteed by the protocol anyway
    (a late lower `seq` is a late message, not a replay)."""

    def __init__(self):
        self._q: queue.PriorityQueue = queue.PriorityQueue()
        self._n = itertools.count()

    def put(self, r: Received) -> None:
        self._q.put((0 if urgent(r.msg) else 1, next(self._n), r))

    def get(self, timeout: float | None = None) -> Received:
        return self._q.get(timeout=timeout)[2]

    def get_nowait(self) -> Received:
        return self._q.get_nowait()[2]

    def get_urgent_nowait(self) -> Received | None:
        """The next message if it is urgent (left in place otherwise)."""
        try:
            item = self._q.get_nowait()
        except queue.Empty:
            return None
        if item[0] == 0:
            return item[2]
        self._q.put(item)  # its place in the order is its counter: unchanged
        return None

    def urgent_waiting(self) -> bool:
        """Whether an urgent message is next (a batch in hand then yields to it)."""
        with self._q.mutex:
            return bool(self._q.queue) and self._q.queue[0][0] == 0

    def qsize(self) -> int:
        return self._q.qsize()

    def empty(self) -> bool:
        return self._q.empty()


def wait_for_broker(app: Flask, stop: threading.Event | None = None,
                    poll_s: float = 0.5) -> BrokerAddress | None:
    """The broker's address; with the embedded broker, wait for the file it writes
    at start. None when `stop` is set first."""
    said = False
    while True:
        address = broker_address(app.config)
        if address is not None:
            return address
        if not said:
            log.info("waiting for the embedded broker to write %s",
                     app.config["EMBEDDED_BROKER_FILE"])
            said = True
        if stop is not None and stop.wait(poll_s):
            return None
        if stop is None:
            time.sleep(poll_s)


def make_paho_client(app: Flask, address: BrokerAddress, client_id: str, *, persistent: bool,
                     manual_ack: bool = False) -> tuple[mqtt.Client, dict]:
    """A configured paho client and the keyword arguments for its connect call."""
    v5 = str(app.config.get("MQTT_PROTOCOL", "3.1.1")) == "5"
    if v5:
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id,
                             protocol=mqtt.MQTTv5, manual_ack=manual_ack)
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = SESSION_EXPIRY_S if persistent else 0
        connect_kwargs = {"clean_start": not persistent, "properties": props}
    else:
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id,
                             protocol=mqtt.MQTTv311, clean_session=not persistent,
                             manual_ack=manual_ack)
        connect_kwargs = {}
    if address.username:
        client.username_pw_set(login_name(address.username, client_id), address.password)
    if address.tls:
        client.tls_set()
    return client, connect_kwargs


class IngestClient:
    """The MQTT door of the worker. start() → runs in background threads; stop()."""

    def __init__(self, app: Flask, *, batch_max: int = BATCH_MAX, batch_wait_s: float = BATCH_WAIT_S,
                 client_id: str | None = None, share_group: str | None = None):
        self.app = app
        # One of several workers: its own client id (and persistent session), and the
        # device topics through the shared subscription `$share/<group>/…`.
        self.client_id = client_id or app.config["MQTT_CLIENT_ID"]
        self.share_group = share_group or None
        self.settings = app_settings.ingest(app.config)
        self.batch_max, self.batch_wait_s = batch_max, batch_wait_s
        self.inbox = Inbox()
        # Deferred by the last batch (another worker held their piles): first in the next.
        self.carry: list[Received] = []
        self.stopping = threading.Event()
        self.connected = threading.Event()
        self.generation = 0
        self.client: mqtt.Client | None = None
        self._login: tuple[str | None, str | None] = (None, None)  # the backend's, in use
        self.v5 = str(app.config.get("MQTT_PROTOCOL", "3.1.1")) == "5"
        self._worker: threading.Thread | None = None
        self.stats = {"accepted": 0, "duplicate": 0, "rejected": 0, "ignored": 0}
        self._contended_until = 0.0  # monotonic time: see CONTENTION_S
        self._last_stats = time.monotonic()
        # Called after every committed batch (the worker wakes the command dispatcher).
        self.after_commit: Callable[[], None] | None = None

    # -- lifecycle ------------------------------------------------------------------

    def start(self) -> bool:
        """Connect (asynchronously, retrying) and start processing. False if stopped
        while waiting for the embedded broker's address."""
        address = wait_for_broker(self.app, self.stopping)
        if address is None:
            return False
        client, kwargs = make_paho_client(self.app, address, self.client_id,
                                          persistent=True, manual_ack=True)
        client.reconnect_delay_set(min_delay=1, max_delay=30)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_subscribe = self._on_subscribe
        client.on_connect_fail = lambda c, u: self._refresh_login(c)
        self.client = client
        self._login = (address.username, address.password)
        log.info("connecting to %s:%d as %s (MQTT %s, persistent session)", address.host,
                 address.port, self.client_id, "5" if self.v5 else "3.1.1")
        client.connect_async(address.host, address.port, keepalive=KEEPALIVE_S, **kwargs)
        client.loop_start()
        self._worker = threading.Thread(target=self._process_loop, name="ingest-batches",
                                        daemon=True)
        self._worker.start()
        return True

    def stop(self, timeout: float = 30) -> None:
        """Finish the batch in hand, then disconnect. Queued but unprocessed messages
        are not acknowledged: the broker keeps them for the next start."""
        self.stopping.set()
        if self._worker is not None:
            self._worker.join(timeout)
        if self.client is not None:
            try:
                self.client.disconnect()
            finally:
                self.client.loop_stop()
        log.info("ingest stopped (%s)", self._stats_text())

    def publish(self, topic: str, payload: dict) -> None:
        """Publish QoS 1 on the live connection (jobs' ctx.publish); paho keeps it
        and sends it after a reconnect when the broker is away."""
        if self.client is None:
            raise RuntimeError("MQTT client not started")
        info = self.client.publish(topic, json.dumps(payload, ensure_ascii=False), qos=1)
        if info.rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
            raise RuntimeError(f"publish to {topic} failed: {mqtt.error_string(info.rc)}")

    # -- paho callbacks (network thread): guarded, they only log and queue ------------

    def _on_connect(self, client, userdata, flags, reason_code, properties):
        try:
            if reason_code.is_failure:
                log.error("broker refused the connection: %s", reason_code)
                self._refresh_login(client)
                return
            self.generation += 1
            log.info("connected (session_present=%s)", int(flags.session_present))
            for sub in self.subscriptions():
                if self.v5 and not sub.startswith("$share/"):
                    # no_local: our own `cmd` publications do not come back to us
                    # (MQTT 5 forbids it on a shared subscription).
                    client.subscribe(sub, options=SubscribeOptions(qos=1, noLocal=True))
                elif self.v5:
                    client.subscribe(sub, options=SubscribeOptions(qos=1))
                else:
                    client.subscribe(sub, qos=1)
            self.connected.set()
        except Exception:
            log.exception("on_connect failed")

    def subscriptions(self) -> list[str]:
        """The device topics; with a share group, through the shared subscription,
        plus every fault on a subscription of our own: the broker hands a shared
        message to one member, possibly a dead one that queues it, and a smoke alarm
        must not wait for that worker's return. Every live worker gets each fault
        then; the ledger applies it once."""
        sub = topics.subscription(self.settings.prefix)
        if not self.share_group:
            return [sub]
        return [f"$share/{self.share_group}/{sub}",
                topics.build(self.settings.prefix, "+", "fault")]

    def _refresh_login(self, client: mqtt.Client) -> None:
        """With the embedded broker (no MQTT_URL), a restarted broker has a new
        backend password in its file: take it before paho reconnects."""
        try:
            if self.app.config.get("MQTT_URL"):
                return
            address = broker_address(self.app.config)
            if address is None or (address.username, address.password) == self._login:
                return
            client.username_pw_set(login_name(address.username, self.client_id), address.password)
            self._login = (address.username, address.password)
            log.info("embedded broker restarted: using its new backend login")
        except Exception:
            log.exception("re-reading the embedded broker's file failed")

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties):
        try:
            bad = [rc for rc in reason_codes if rc.is_failure]
            if bad:
                log.error("subscription refused: %s", bad)
            else:
                log.info("subscribed to %s (QoS 1)", " + ".join(self.subscriptions()))
        except Exception:
            log.exception("on_subscribe failed")

    def _on_disconnect(self, client, userdata, flags, reason_code, properties):
        try:
            self.connected.clear()
            if not self.stopping.is_set():
                log.warning("disconnected from the broker (%s); reconnecting", reason_code)
                self._refresh_login(client)
        except Exception:
            log.exception("on_disconnect failed")

    def _on_message(self, client, userdata, message: mqtt.MQTTMessage):
        try:
            sender = None
            if self.v5 and message.properties is not None:
                for key, value in getattr(message.properties, "UserProperty", None) or []:
                    if key == SENDER_PROPERTY:
                        sender = value
            incoming = handlers.Incoming(message.topic, bytes(message.payload), utcnow(), sender,
                                         retained=bool(message.retain))
            self.inbox.put(Received(incoming, message.mid, message.qos, self.generation))
        except Exception:
            try:
                log.exception("could not queue a message on %r: %s", message.topic[:120],
                              excerpt(bytes(message.payload or b"")))
            except Exception:
                pass

    # -- the processing thread -----------------------------------------------------------

    def _take(self) -> list[Received]:
        """Urgent messages first, in a batch of their own: those the last batch left
        (their pile was held by another worker), then those in the inbox. Else up to
        batch_max messages (SHARE_BATCH_FACTOR times that while sharing piles with
        another worker, BACKLOG_BATCH_FACTOR times with a backlog in the inbox): those
        the last batch left first, else the first within 0.5 s; the rest within
        batch_wait_s."""
        batch = [r for r in self.carry if urgent(r.msg)]
        if batch:
            self.carry = [r for r in self.carry if not urgent(r.msg)]
        batch += self._urgent_now(self.batch_max - len(batch))
        if batch:
            return batch
        batch, self.carry = self.carry, []
        carried = bool(batch)
        if not batch:
            try:
                batch = [self.inbox.get(timeout=0.5)]
            except queue.Empty:
                return []
            if urgent(batch[0].msg):
                return batch + self._urgent_now(self.batch_max - 1)
        deadline = time.monotonic() + self.batch_wait_s
        limit = self.batch_max * max(SHARE_BATCH_FACTOR if self._sharing_piles() else 1,
                                     BACKLOG_BATCH_FACTOR if self._backlog() else 1)
        while len(batch) < limit:
            left = deadline - time.monotonic()
            try:
                nxt = self.inbox.get(timeout=left) if left > 0 else self.inbox.get_nowait()
            except queue.Empty:
                break
            if urgent(nxt.msg):
                if carried:
                    # This batch gave way once already: it goes now (and yields after
                    # its first message), so readings move however often cards come.
                    self.inbox.put(nxt)
                    break
                # One came while the batch gathered: its answer goes first, in a batch
                # of its own, and what was gathered comes next.
                self.carry = batch
                return [nxt] + self._urgent_now(self.batch_max - 1)
            batch.append(nxt)
        return batch

    def _urgent_now(self, room: int) -> list[Received]:
        """Up to `room` urgent messages, those in the inbox now."""
        out: list[Received] = []
        while len(out) < room:
            nxt = self.inbox.get_urgent_nowait()
            if nxt is None:
                break
            out.append(nxt)
        return out

    def _process_loop(self) -> None:
        while not self.stopping.is_set():
            try:
                batch = self._take()
                if batch:
                    self._apply_and_ack(batch)
                self._maybe_log_stats()
            except Exception:  # never let the thread die
                log.exception("ingest loop error")
                self.stopping.wait(1)

    def _backlog(self) -> bool:
        """Whether the inbox holds BACKLOG_BATCHES full batches or more."""
        return self.inbox.qsize() >= BACKLOG_BATCHES * self.batch_max

    def _sharing_piles(self) -> bool:
        """Within CONTENTION_S of a batch that found most of its piles held elsewhere."""
        return time.monotonic() < self._contended_until

    def _apply_and_ack(self, batch: list[Received]) -> None:
        delay = 0.5
        may_defer = all(r.deferrals < MAX_DEFERRALS for r in batch)
        report: dict = {}
        kwargs = {"may_defer": may_defer, "report": report}
        if may_defer and self._sharing_piles():
            kwargs["pile_share"] = PILE_SHARE
        if not any(urgent(r.msg) for r in batch):
            # A batch of readings ends early when an `authorize` arrives: the pile
            # waits for its answer, and the rest of the batch comes next.
            kwargs["yield_to"] = self.inbox.urgent_waiting
        while True:
            try:
                with self.app.app_context():
                    outcomes = handlers.process([r.msg for r in batch], self.settings,
                                                **kwargs)
                break
            except handlers.DatabaseUnavailable as exc:
                log.warning("database unavailable (%s); retrying %d messages in %.1f s",
                            exc, len(batch), delay)
            except Exception:
                log.exception("batch of %d failed; retrying in %.1f s", len(batch), delay)
            if self.stopping.wait(delay):
                return  # leave them unacknowledged: redelivered after restart
            delay = min(delay * 2, 30)
        if report.get("contended"):
            self._contended_until = time.monotonic() + CONTENTION_S
        done = []
        for r, outcome in zip(batch, outcomes, strict=True):
            if outcome == handlers.YIELDED:
                self.carry.append(r)  # unapplied and unacknowledged: first in the next
                self.stats["yielded"] = self.stats.get("yielded", 0) + 1
                continue
            if outcome in (handlers.DEFERRED, handlers.DEFERRED_LATER):
                # Not applied: unacknowledged, first in the next batch.
                self.carry.append(replace(r, deferrals=r.deferrals + 1))
                self.stats["deferred"] = self.stats.get("deferred", 0) + 1
                continue
            done.append(r)
            self.stats[outcome.partition(":")[0]] = self.stats.get(outcome.partition(":")[0], 0) + 1
        self._ack(done)
        if self.after_commit is not None:
            try:
                self.after_commit()
            except Exception:
                log.exception("after-commit hook failed")

    def _ack(self, batch: list[Received]) -> None:
        client = self.client
        for r in batch:
            if r.qos == 0:
                continue
            if r.generation != self.generation:
                # Delivered on an earlier connection: the broker sends it again on this
                # one (same packet id), and that copy is acked when it is processed.
                continue
            try:
                client.ack(r.mid, r.qos)
            except Exception:
                log.exception("ack of mid %d failed", r.mid)

    def _stats_text(self) -> str:
        return ", ".join(f"{k} {v}" for k, v in self.stats.items())

    def _maybe_log_stats(self) -> None:
        if time.monotonic() - self._last_stats >= 60:
            self._last_stats = time.monotonic()
            log.info("ingest totals: %s; queued %d", self._stats_text(), self.inbox.qsize())

