"""Severity of an alert, from its code; a deployment may change the mapping
(config ALERT_SEVERITY, e.g. "communication=minor", passed in by the caller)."""

from __future__ import annotations

from collections.abc import Mapping

SEVERITIES = ("critical", "major", "minor", "warning")
# Sort key: critical first.
RANK = {name: i for i, name in enumerate(SEVERITIES)}

DEFAULT_SEVERITY = {
    # Fire risks (the device protocol names these two).
    "smoke": "critical",
    "over_temperature": "critical",
    "over_current": "major",
    "overload": "major",
    "ground_fault": "major",
    "relay_stuck": "major",
    "offline": "major",
    "over_voltage": "minor",
    "under_voltage": "minor",
    "meter_failure": "minor",
    "communication": "warning",
    "other": "warning",
    # Not a device fault: a jump in the pile's `seq` (messages possibly lost).
    "data_loss": "minor",
    # Residents' reports (services/alerts/reports.py): a burning smell pages at once.
    "report_burning": "critical",
    "report_no_power": "major",
    "report_damaged": "major",
    "report_other": "minor",
    # The risk grade of a session (services/safety/): a battery or charger, not the pile.
    "battery_risk_high": "major",
    "battery_risk": "minor",
    # The alley's feeder stayed over its limit (services/budget/overload.py).
    "over_budget": "major",
}
# Alert codes that are about the link, not the hardware, or only a resident's word:
# they never make a port unavailable to residents (staff look and decide).
NOT_HARDWARE = ("offline", "data_loss", "report_burning", "report_no_power",
                "report_damaged", "report_other", "battery_risk_high", "battery_risk",
                "over_budget")


def severity_for(code: str, overrides: Mapping[str, str] | None = None) -> str:
    """The severity of `code` in this deployment, given its overrides (unknown codes
    are warnings)."""
    overrides = overrides or {}
    value = overrides.get(code) or DEFAULT_SEVERITY.get(code, "warning")
    return value if value in RANK else DEFAULT_SEVERITY.get(code, "warning")
