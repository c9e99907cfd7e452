"""Revision a7_codes01 reads the notes the backend wrote in English before it stored
codes, once, into codes and data, and writes them back on downgrade."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from flask_babel import refresh

from chargers.models import AlertEvent
from chargers.web.staff.wording import event_text

PATH = (Path(__file__).resolve().parent.parent / "chargers" / "migrations" / "versions"
        / "a7_codes01_outcome_codes.py")


@pytest.fixture(scope="module")
def revision():
    spec = importlib.util.spec_from_file_location("a7_codes01", PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


OLD = [  # (action, alert code, old note, what the page shows in English)
    ("cutoff_sent", "smoke", "stop port 7, disable port 7", "Stop charging · port 7; Disable · port 7"),
    ("command_rejected", "smoke", "reset pile (c-0123abcd): busy", "Reset pile · whole pile · busy"),
    ("command_timeout", "smoke", "stop port 2 (c-99): no ack from the pile", "Stop charging · port 2"),
    ("command_accepted", "smoke", "disable port 2 (c-98): late ack; ok",
     "Disable · port 2 · answered late · ok"),
    ("renotified", "smoke", "level 1+2: no contacts", "level 1+2: nobody (no contacts)"),
    ("notified", "smoke", "level 1: Wang, Li", "level 1: Wang, Li"),
    ("raised", "data_loss", "12 message(s) missing", "12 messages missing"),
    ("flap", "overload", "cleared within 120 s: nobody paged", "cleared within 120 s: nobody paged"),
]


@pytest.mark.parametrize(("action", "code", "note", "shown"), OLD)
def test_old_notes_become_codes_and_read_as_before(app, revision, action, code, note, shown):
    data, words = revision._convert(action, code, note)
    with app.test_request_context("/?lang=en"):
        refresh()
        assert event_text(AlertEvent(action=action, note=words, data=data)) == shown
    assert revision._old_note(action, data, words) == note  # and back on downgrade


def test_words_of_people_and_piles_are_left_as_written(revision):
    assert revision._convert("raised", "smoke", "smoke in the box") is None
    assert revision._convert("cleared_by_device", "overload", "cleared within 1 s: nobody paged") is None
    assert revision._convert("raised", "smoke", "12 message(s) missing") is None  # the pile's words
