"""Commands of the MQTT side: worker, jobs, simulate, mqtt-auth (filled in by the
ingest work)."""

from flask import Flask


def init_app(app: Flask) -> None:
    """Register the MQTT-side commands."""
