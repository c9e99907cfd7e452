"""The embedded MQTT broker (amqtt): the fallback of `flask --app wsgi broker` where
the Mosquitto binary is missing (chargers/broker/mosquitto.py runs Mosquitto
otherwise). Every line that touches amqtt lives in this module, and it refuses to
start on any amqtt but the version it was written for (AMQTT_VERSION). It is never
anonymous: amqtt keeps QoS 1 messages for an offline persistent session only when
the session is authenticated (anonymous, it dropped 100 of 100). Piles log in with
their id and secret (checked against the database, the same `$7$` hash Mosquitto
reads); the backend with credentials generated at every start and written, with
the address, to EMBEDDED_BROKER_FILE (mode 600) for the worker and the simulator.

amqtt 0.12.1 is corrected where it would lose, leak or mislabel messages
(`ChargersBroker`, `ChargersHandler`; each has a test in tests/test_devices_broker.py):
- it took over or wiped an existing session of the same client id *before*
  checking the password, so a bad login could drop the backend's queue; here a
  connection is authenticated first;
- a QoS 1 message sent to a client was forgotten when no PUBACK came within 5 s
  or the connection dropped; the worker acknowledges only after its commit, so a
  worker killed mid-batch lost messages. Here it stays in flight until acknowledged
  and is resent (DUP) on the next connection of the session;
- it redelivered the messages queued for an offline session with RETAIN set,
  which would make every one of them look like a retained `online` state; MQTT
  says queued messages go out with retain 0;
- a subscription made while a message was being delivered made amqtt drop that
  message for the remaining subscribers ("dictionary changed size during iteration");
  the same error in its connect path dropped a reconnecting session's connection, so
  the subscription table iterates over a snapshot of its keys;
- on connect it sent a client the retained messages of *every* filter anyone had
  subscribed to, past the ACL; here only the client's own, ACL-checked;
- messages published before the backend's first connect were not kept for it; the
  broker creates the backend's persistent session at start, subscribed to
  `{prefix}/#`, and drops that placeholder subscription once the backend makes its own;
- a TCP connection closed before its CONNECT (every /healthz probe) logged a warning.

Client ids are bound to logins, as Mosquitto's `use_username_as_clientid` does for
the generated configuration: a pile connects only with its own id as client id, and
never with one of the backend's (services.devices.mqtt_auth.is_backend).

Sessions live in memory: a restart of this broker loses queued messages (Mosquitto
with `persistence true` does not). There is no size cap on messages here; the
ingest refuses oversized payloads itself.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import secrets
import signal
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

from amqtt.broker import Broker
from amqtt.contexts import Action
from amqtt.errors import AMQTTError, BrokerError, MQTTError, NoDataError
from amqtt.mqtt.connack import NOT_AUTHORIZED, ConnackPacket
from amqtt.mqtt.constants import QOS_1, QOS_2
from amqtt.mqtt.protocol.broker_handler import BrokerProtocolHandler
from amqtt.plugins.base import BaseAuthPlugin, BaseTopicPlugin
from amqtt.session import OUTGOING, Session
from amqtt.utils import format_client_message, gen_client_id
from flask import Flask

from ..mqtt_settings import backend_client_ids
from ..services.devices import mqtt_auth
from . import BACKEND_USER, DEFAULT_PORT, BrokerInfo, candidate_ports, remove_info_file, write_private_json

log = logging.getLogger("chargers.broker.amqtt")

# The corrections below replace amqtt internals of this exact release.
AMQTT_VERSION = "0.12.1"
# What a connection closed before its CONNECT (a /healthz TCP probe) is called here.
_PROBE = "closed before CONNECT"


def check_amqtt_version() -> None:
    """Refuse to run on an amqtt this module was not written for."""
    installed = version("amqtt")
    if installed != AMQTT_VERSION:
        raise RuntimeError(f"the embedded broker is written for amqtt {AMQTT_VERSION}, not {installed}; "
                           f"install amqtt=={AMQTT_VERSION} (requirements.txt) or Mosquitto")


class _QuietProbes(logging.Filter):
    """amqtt logs "Failed to initialize client session" at WARNING for a connection
    closed before its CONNECT: every health check would add one."""

    def filter(self, record: logging.LogRecord) -> bool:
        return _PROBE not in record.getMessage()


class PileAuthPlugin(BaseAuthPlugin):
    """Authenticates piles against the database and the backend against the
    credentials generated at start. Anonymous logins are refused."""

    @dataclass
    class Config:
        check_pile: Any = None  # (pile_id, secret) -> bool, blocking (runs in a thread)
        backend_user: str = BACKEND_USER
        backend_password: str = ""
        backend_client_ids: tuple[str, ...] = ()

    async def authenticate(self, *, session: Session) -> bool | None:
        """True for the backend's credentials or a pile's id + secret."""
        cfg = self.context.config
        username, password = session.username, session.password
        if isinstance(password, bytes):
            password = password.decode("utf-8", "replace")
        if not username or not password:
            return False
        if mqtt_auth.is_backend(username, cfg.backend_user):
            return bool(cfg.backend_password) and hmac.compare_digest(
                password.encode(), cfg.backend_password.encode())
        # The contract: client id == username == pile id. Tying them keeps one pile
        # from taking over another's session, or the backend's.
        if session.client_id != username or username in cfg.backend_client_ids:
            return False
        try:
            return bool(await asyncio.to_thread(cfg.check_pile, username, password))
        except Exception:  # a DB hiccup refuses this login, never kills the broker
            log.exception("checking pile %s failed", username)
            return False


class PileAclPlugin(BaseTopicPlugin):
    """The same access rule as the Mosquitto ACL (services.devices.mqtt_auth.allowed)."""

    @dataclass
    class Config:
        prefix: str = "chargers/v1"
        backend_user: str = BACKEND_USER

    async def topic_filtering(self, *, session: Session | None = None, topic: str | None = None,
                              action: Action | None = None) -> bool | None:
        """Whether `session`'s user may publish to, subscribe to or receive `topic`."""
        cfg = self.context.config
        ok = mqtt_auth.allowed(session.username if session else None, topic or "", str(action),
                               prefix=cfg.prefix, backend_user=cfg.backend_user)
        if not ok and action != Action.RECEIVE:
            log.warning("denied %s %s to %s", action, topic, session.username if session else None)
        return ok


class ChargersHandler(BrokerProtocolHandler):
    """amqtt's broker-side protocol handler, but a QoS 1 message sent to a client
    stays in the session until that client's PUBACK: amqtt 0.12.1 gave up after
    5 s, or when the connection dropped, and forgot the message. The backend
    acknowledges only after its commit, so a worker killed mid-batch lost messages."""

    async def _handle_qos1_message_flow(self, app_message) -> None:
        if app_message.direction != OUTGOING:
            await super()._handle_qos1_message_flow(app_message)
            return
        packet_id = app_message.packet_id
        self.session.inflight_out.setdefault(packet_id, app_message)
        publish_packet = app_message.build_publish_packet(dup=app_message.publish_packet is not None)
        waiter: asyncio.Future = asyncio.get_running_loop().create_future()
        self._puback_waiters[packet_id] = waiter
        try:
            await self._send_packet(publish_packet)
            app_message.publish_packet = publish_packet
            # No timeout: the subscriber acknowledges when it has committed. If the
            # connection goes first, the message stays in flight for the next one.
            app_message.puback_packet = await waiter
        finally:
            if self._puback_waiters.get(packet_id) is waiter:
                del self._puback_waiters[packet_id]
        self.session.inflight_out.pop(packet_id, None)

    async def _retry_deliveries(self) -> None:
        """Resend (DUP) what is still in flight from the last connection, in order,
        without waiting for the PUBACKs (amqtt waited up to 10 s, then forgot them)."""
        pending = list(self.session.inflight_out.values())
        if pending:
            log.info("%s: resending %d unacknowledged message(s)", self.session.client_id, len(pending))
        for message in pending:
            task = asyncio.ensure_future(self._handle_message_flow(message))
            _background.add(task)
            task.add_done_callback(_background.discard)


# Keeps resend tasks referenced until they finish (asyncio holds only weak ones).
_background: set[asyncio.Task] = set()


class _SnapshotDict(dict):
    """A dict whose iteration walks a copy of its keys. amqtt iterates its
    subscription table across awaits (e.g. publishing retained messages to a
    reconnecting session) while other connections subscribe: "dictionary changed
    size during iteration" then killed that connection (seen with `make run`, the
    backend's own session, as 22 piles connected at once)."""

    def __iter__(self):
        return iter(list(super().keys()))


class ChargersBroker(Broker):
    """amqtt's Broker with the corrections described in the module docstring."""

    def __init__(self, config: dict, *, backend_client_id: str, backend_user: str, prefix: str):
        super().__init__(config)
        self._subscriptions = _SnapshotDict(self._subscriptions)
        self._backend_client_id = backend_client_id
        self._backend_user = backend_user
        self._placeholder: str | None = f"{prefix}/#"

    async def start(self) -> None:
        """Start listening, then create the backend's persistent session."""
        await super().start()
        session = Session()
        session.client_id = self._backend_client_id
        session.username = self._backend_user
        session.clean_session = False
        session.transitions.disconnect()
        self._sessions[session.client_id] = (session, ChargersHandler(self.plugins_manager, session))
        await super().add_subscription((self._placeholder, 1), session)

    async def add_subscription(self, subscription: tuple[str, int], session: Session) -> int:
        """Subscribe; the backend's first own subscription retires the placeholder."""
        result = await super().add_subscription(subscription, session)
        placeholder = self._placeholder
        if placeholder and session.client_id == self._backend_client_id and result in (0, 1, 2):
            self._placeholder = None
            if subscription[0] != placeholder and self._del_subscription(placeholder, session):
                if not self._subscriptions.get(placeholder):
                    self._subscriptions.pop(placeholder, None)
        return result

    async def stream_connected(self, reader, writer, listener_name: str) -> None:
        """One TCP connection; at shutdown its task is cancelled, which Python 3.11's
        StreamReaderProtocol would log as an error with a traceback."""
        try:
            await super().stream_connected(reader, writer, listener_name)
        except asyncio.CancelledError:
            pass

    async def _initialize_client_session(self, reader, writer, remote_address, remote_port):
        """amqtt's version, but a client must authenticate before its client id can
        touch (wipe or take over) an existing session."""
        try:
            handler, client_session = await ChargersHandler.init_from_connect(
                reader, writer, self.plugins_manager)
        except AMQTTError as exc:
            raise AMQTTError(exc) from exc
        except MQTTError as exc:
            await writer.close()
            raise MQTTError(exc) from exc
        except NoDataError as exc:  # nothing came: a TCP probe such as /healthz
            log.debug("connection from %s:%s %s", remote_address, remote_port, _PROBE)
            raise AMQTTError(_PROBE) from exc

        if not await self._authenticate(client_session, None):
            where = format_client_message(address=remote_address, port=remote_port)
            log.info("refused login of %r (client id %r) from %s", client_session.username,
                     client_session.client_id, where)
            await ConnackPacket.build(0, NOT_AUTHORIZED).to_stream(writer)
            await writer.close()
            raise MQTTError("not authorized")

        # From here on, as amqtt 0.12.1 does it.
        if client_session.clean_session:
            if client_session.client_id:
                await self._delete_session(client_session.client_id)
            else:
                client_session.client_id = gen_client_id()
            client_session.parent = 0
        elif client_session.client_id in self._sessions:
            existing, _ = self._sessions[client_session.client_id]
            for attr in ("will_flag", "will_message", "will_topic", "will_qos", "will_retain",
                         "keep_alive", "username", "password"):
                setattr(existing, attr, getattr(client_session, attr))
            client_session = existing
            client_session.parent = 1
        else:
            client_session.parent = 0
        return handler, client_session

    async def _run_broadcast(self, running_tasks) -> None:
        """Deliver one published message to every matching subscription: amqtt's
        version, but over snapshots, because amqtt awaits inside the loop and a
        subscription made meanwhile raised "dictionary changed size during
        iteration", losing the message for every remaining subscriber."""
        broadcast = await self._broadcast_queue.get()
        for k_filter, subscriptions in list(self._subscriptions.items()):
            if not self._matches(broadcast["topic"], k_filter):
                continue
            for target_session, sub_qos in list(subscriptions):
                qos = broadcast.get("qos", sub_qos)
                if not await self._topic_filtering(target_session, topic=broadcast["topic"],
                                                   action=Action.RECEIVE):
                    continue
                # Kept for an offline persistent (authenticated) session, QoS 1/2 only.
                if (target_session.transitions.state != "connected"
                        and not target_session.clean_session
                        and qos in (QOS_1, QOS_2)
                        and not target_session.is_anonymous):
                    await self._retain_broadcast_message(broadcast, qos, target_session)
                    continue
                if target_session.transitions.state != "connected":
                    continue
                handler = self._get_handler(target_session)
                if handler:
                    running_tasks.append(asyncio.ensure_future(
                        handler.mqtt_publish(broadcast["topic"], broadcast["data"], qos, retain=False)))

    async def _publish_retained_messages_for_subscription(self, subscription: tuple[str, int],
                                                          session: Session) -> None:
        """Send retained messages matching one of `session`'s own subscriptions.
        amqtt calls this on connect with every filter anyone subscribed to and
        skipped the ACL, so a pile got other piles' retained `online` states."""
        topic_filter = subscription[0]
        granted = [q for s, q in self._subscriptions.get(topic_filter, [])
                   if s.client_id == session.client_id]
        handler = self._get_handler(session)
        if not granted or not handler:
            return
        tasks = []
        for topic, retained in list(self._retained_messages.items()):
            if not self._matches(topic, topic_filter):
                continue
            if not await self._topic_filtering(session, topic=topic, action=Action.RECEIVE):
                continue
            qos = min(granted[0], retained.qos if retained.qos is not None else granted[0])
            tasks.append(asyncio.ensure_future(
                handler.mqtt_publish(retained.topic, retained.data, qos, retain=True)))
        if tasks:
            await asyncio.wait(tasks)

    async def _publish_session_retained_messages(self, session: Session) -> None:
        """Deliver what was queued while `session` was away, in order, retain 0,
        without waiting for the PUBACKs (they come after the backend's commits; the
        connection's own packets must be served meanwhile)."""
        handler = self._get_handler(session)
        if not handler:
            return
        while not session.retained_messages.empty():
            queued = session.retained_messages.get_nowait()
            task = asyncio.ensure_future(
                handler.mqtt_publish(queued.topic, queued.data, queued.qos, retain=False))
            _background.add(task)
            task.add_done_callback(_background.discard)


def pile_checker(app: Flask) -> Callable[[str, str], bool]:
    """A thread-safe (pile_id, secret) -> bool over the app's database."""

    def check(pile_id: str, secret: str) -> bool:
        from ..extensions import db

        with app.app_context():
            try:
                return mqtt_auth.check_pile_secret(pile_id, secret)
            finally:
                db.session.remove()

    return check


async def start_broker(app: Flask, host: str = "127.0.0.1", port: int = DEFAULT_PORT,
                       ) -> tuple[ChargersBroker, BrokerInfo]:
    """Start the broker on `host:port`, or on a free port when that one is taken;
    returns the running broker and its address and backend credentials."""
    check_amqtt_version()
    logging.getLogger("amqtt.broker").addFilter(_QuietProbes())
    password = secrets.token_urlsafe(24)
    prefix = app.config["MQTT_TOPIC_PREFIX"]
    client_id = app.config["MQTT_CLIENT_ID"]
    candidates = candidate_ports(host, port)
    last_error: Exception | None = None
    for candidate in candidates:
        config = {
            "listeners": {"default": {"type": "tcp", "bind": f"{host}:{candidate}"}},
            "plugins": {
                f"{__name__}.PileAuthPlugin": {
                    "check_pile": pile_checker(app), "backend_user": BACKEND_USER,
                    "backend_password": password,
                    "backend_client_ids": backend_client_ids(app.config)},
                f"{__name__}.PileAclPlugin": {"prefix": prefix, "backend_user": BACKEND_USER},
            },
        }
        broker = ChargersBroker(config, backend_client_id=client_id, backend_user=BACKEND_USER,
                                prefix=prefix)
        try:
            await broker.start()
        except BrokerError as exc:  # lost a race for the port; try the next
            last_error = exc
            continue
        return broker, BrokerInfo(host, candidate, BACKEND_USER, password)
    raise RuntimeError(f"embedded broker could not listen on {host}: {last_error}")


def serve(app: Flask, host: str = "127.0.0.1", port: int = DEFAULT_PORT,
          echo: Callable[[str], None] = print) -> None:
    """Run the broker until SIGINT/SIGTERM; write EMBEDDED_BROKER_FILE while it runs."""
    info_file = Path(app.config["EMBEDDED_BROKER_FILE"])

    async def main() -> None:
        # A stale file from a killed run would send clients to a dead port.
        info_file.unlink(missing_ok=True)
        # Handlers first: whoever sees the file may stop us at once, and must get a
        # clean stop (file removed), not a default SIGTERM death.
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        broker, info = await start_broker(app, host, port)
        write_private_json(info_file, info.as_dict())
        note = "" if info.port == port else f" ({host}:{port} is taken)"
        echo(f"embedded MQTT broker (amqtt) listening on {info.host}:{info.port}{note}; "
             f"backend login in {info_file}")
        try:
            await stop.wait()
        finally:
            remove_info_file(info_file, info.port)
            await broker.shutdown()
            echo("embedded MQTT broker stopped")

    asyncio.run(main())
