"""Commands for the device side: embedded broker, simulated piles, Mosquitto auth
files (filled in by the ingest work)."""

from flask import Flask


def init_app(app: Flask) -> None:
    """Register the device-side commands."""
