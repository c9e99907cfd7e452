"""Each code list lives once (chargers.constants): the protocol's tuples are made from
it, the labels cover it, and the converted services name statuses through it, not as
string literals."""

from __future__ import annotations

import re
from pathlib import Path

from chargers import constants, labels
from chargers.protocol import codes

ROOT = Path(__file__).resolve().parents[1] / "chargers"
# Modules that name every status through chargers.constants (more follow as they are
# touched; the scan keeps them so).
CONVERTED = ["services/alerts/cutoff.py", "services/alerts/lifecycle.py",
             "services/devices/commands.py", "services/devices/presence.py",
             "services/charging/availability.py", "services/charging/sessions.py",
             "services/charging/time_left.py", "services/billing/settlement.py",
             "services/billing/balance_guard.py", "services/maintenance/inspections.py",
             "services/jobruns.py", "jobs/__init__.py", "ingest/handlers.py",
             "services/budget/admission.py", "services/budget/feeder.py",
             "services/budget/queue.py", "services/desk.py", "services/alerts/notify.py",
             "services/billing/reminders.py"]
STATUS_LITERAL = re.compile(r"""\b(status|cutoff|result)\s*(==|!=|=)\s*["']""")


def test_protocol_tuples_are_the_constants():
    assert codes.PORT_STATUSES == tuple(constants.PortStatus)
    assert codes.FAULT_CODES == tuple(constants.FaultCode)
    assert codes.STOP_REASONS == tuple(constants.StopReason)
    # `config`, `authorize` and `start` are sent only by services (devices/config.py,
    # budget/), never by hand.
    assert codes.COMMAND_ACTIONS == tuple(a for a in constants.CommandAction
                                          if a not in (constants.CommandAction.CONFIG,
                                                       constants.CommandAction.AUTHORIZE,
                                                       constants.CommandAction.START))
    assert set(codes.FIRE_CODES) == set(constants.FIRE_CODES)
    assert all(type(c) is str for c in codes.PORT_STATUSES)  # plain words for the API documents


def test_every_code_has_a_label():
    assert set(labels.PORT_STATUS_LABELS) == set(constants.PortStatus)
    assert set(constants.FaultCode) <= set(labels.CODE_LABELS)
    assert set(labels.COMMAND_STATUS_LABELS) == set(constants.CommandStatus)
    assert set(labels.CUTOFF_LABELS) == set(constants.CutoffState)
    assert set(labels.SEVERITY_LABELS) == set(constants.Severity)
    assert set(constants.CommandAction) == set(labels.ACTION_LABELS)


def test_converted_modules_name_no_status_as_a_literal():
    found = []
    for rel in CONVERTED:
        for n, line in enumerate((ROOT / rel).read_text().splitlines(), 1):
            if STATUS_LITERAL.search(line) and "status=" not in line.replace(" ", "")[:0]:
                found.append(f"{rel}:{n}: {line.strip()}")
    assert found == []


def test_the_power_budget_codes_have_labels():
    assert set(labels.AUTHORIZE_RESULT_LABELS) == set(constants.AuthorizeResult)
    assert set(labels.AUTHORIZE_REASON_LABELS) == set(constants.AuthorizeReason)
    assert set(labels.QUEUE_STATE_LABELS) == set(constants.QueueState)
    assert codes.AUTHORIZE_RESULTS == tuple(constants.AuthorizeResult)
    assert codes.AUTHORIZE_REASONS == tuple(constants.AuthorizeReason)
