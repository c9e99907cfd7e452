"""The device protocol's code lists (../shared/contract/device-protocol.md) as plain
tuples for ingest validation, the simulator, forms and API schemas; the codes
themselves are defined once, in chargers.constants."""

from __future__ import annotations

import re

from ..constants import FIRE_CODES as _FIRE_CODES
from ..constants import (
    AckResult,
    AuthorizeReason,
    AuthorizeResult,
    CommandAction,
    FaultCode,
    PortStatus,
    StopReason,
)

PILE_ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"  # the pile's MQTT client id and username
PILE_ID_RE = re.compile(PILE_ID_PATTERN)
MAX_PORTS = 32  # `boot.ports` is 1-32; ports are numbered from 1
MAX_PAYLOAD_BYTES = 4096

DEVICE_KINDS = ("online", "boot", "heartbeat", "status", "meter", "session", "fault", "ack",
                "config", "authorize")
COMMAND_KIND = "cmd"  # the backend's own topic (backend → device)

# Plain strings made from chargers.constants (the one place of every code list), so
# that validation and the API documents see exactly the protocol's words.
PORT_STATUSES = tuple(c.value for c in PortStatus)
FAULT_CODES = tuple(c.value for c in FaultCode)
# Fire risks: the backend treats them as critical and cuts power without waiting.
FIRE_CODES = tuple(c.value for c in _FIRE_CODES)
STOP_REASONS = tuple(c.value for c in StopReason)
SESSION_EVENTS = ("start", "stop")
# What staff may send by hand; `config` goes only from services/devices/config.py.
COMMAND_ACTIONS = tuple(c.value for c in CommandAction
                        if c not in (CommandAction.CONFIG, CommandAction.AUTHORIZE,
                                     CommandAction.START))
ACK_RESULTS = tuple(c.value for c in AckResult)

# v1.1 features a pile may announce in `boot.features`.
FEATURES = ("authorize", "config", "start")
OFFLINE_POLICIES = ("accept", "reject")
AUTHORIZE_RESULTS = tuple(c.value for c in AuthorizeResult)
AUTHORIZE_REASONS = tuple(c.value for c in AuthorizeReason)
