"""The session messages on PostgreSQL too: the once-only keys, the quiet hours and the
failed charge through the real ingest and settlement (tests/test_messages_sessions.py's
tests, on a throwaway schema)."""

from __future__ import annotations

from tests.pg_schema import on_postgresql

from .test_messages_sessions import (  # noqa: F401  (collected here on PostgreSQL)
    lane,
    test_a_start_arriving_after_its_stop_sends_only_the_end,
    test_a_timeout_then_the_real_stop_tell_once,
    test_failed_charge_is_told_and_costs_nothing,
    test_safety_stop_goes_at_night_others_wait,
    test_start_and_full_each_sent_once_whatever_the_pile_repeats,
)

pg_schema, app_config = on_postgresql("chargers_msg")
