"""Every code list of the device protocol (../shared/contract/device-protocol.md), defined
once: ingest validation, the simulator, services, forms, API schemas and page labels
import them from here."""

from __future__ import annotations

import re

PILE_ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"  # the pile's MQTT client id and username
PILE_ID_RE = re.compile(PILE_ID_PATTERN)
MAX_PORTS = 32  # `boot.ports` is 1-32; ports are numbered from 1
MAX_PAYLOAD_BYTES = 4096

DEVICE_KINDS = ("online", "boot", "heartbeat", "status", "meter", "session", "fault", "ack")
COMMAND_KIND = "cmd"  # the backend's own topic (backend → device)

PORT_STATUSES = ("available", "occupied", "charging", "finishing", "faulted", "unavailable")
FAULT_CODES = ("over_current", "overload", "over_temperature", "smoke", "ground_fault",
               "over_voltage", "under_voltage", "meter_failure", "relay_stuck", "communication",
               "other")
# Fire risks: the backend treats them as critical and cuts power without waiting.
FIRE_CODES = ("smoke", "over_temperature")
STOP_REASONS = ("full", "unplugged", "user", "remote", "fault", "power_loss", "timeout", "balance")
SESSION_EVENTS = ("start", "stop")
COMMAND_ACTIONS = ("stop", "enable", "disable", "reset")
ACK_RESULTS = ("accepted", "rejected")
