"""Where the broker is and how to log in: from MQTT_URL, or from the file the
embedded broker writes when it starts (MQTT_URL empty)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit


@dataclass(frozen=True)
class BrokerAddress:
    host: str
    port: int
    username: str | None = None
    password: str | None = None
    tls: bool = False


def parse_url(url: str) -> BrokerAddress:
    """`mqtt://user:pass@host:port` (or `mqtts://`) into its parts."""
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "mqtts", "tcp"):
        raise ValueError(f"MQTT_URL must start with mqtt:// (got {parts.scheme!r})")
    tls = parts.scheme == "mqtts"
    return BrokerAddress(
        host=parts.hostname or "127.0.0.1",
        port=parts.port or (8883 if tls else 1883),
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        tls=tls,
    )


def login_name(username: str | None, client_id: str) -> str | None:
    """The username a backend connection logs in with: its client id when that is
    `username` or `<username>-<suffix>`, else `username`. The generated broker
    configuration binds client ids to logins (Mosquitto's use_username_as_clientid),
    so each backend process (worker, `jobs run`) needs a login of its own."""
    if username and (client_id == username or client_id.startswith(f"{username}-")):
        return client_id
    return username


def broker_address(config) -> BrokerAddress | None:
    """The configured broker; None when the embedded broker has not started yet."""
    if config.get("MQTT_URL"):
        return parse_url(config["MQTT_URL"])
    path = Path(config["EMBEDDED_BROKER_FILE"])
    try:
        info = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return BrokerAddress(info["host"], int(info["port"]), info.get("username"), info.get("password"))
