"""Charging sessions as the piles report them (start, meter, stop), what residents
see of each port (availability), time-left estimates and why a session ended.
Imports devices/ and the shared modules (and reads alerts' and billing's models)."""
