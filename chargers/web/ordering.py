"""Orders people expect: "2号桩" before "10号桩" (digits compared as numbers)."""

from __future__ import annotations

import re

_DIGITS = re.compile(r"(\d+)")


def natural_key(text: str) -> tuple:
    """A sort key comparing runs of digits by value, the rest case-insensitively."""
    return tuple(int(part) if part.isdigit() else part.casefold()
                 for part in _DIGITS.split(text or ""))


def by_label(items: list, attr: str = "label") -> list:
    """Items sorted naturally by their label (then id, so the order is stable)."""
    return sorted(items, key=lambda x: (natural_key(getattr(x, attr)), getattr(x, "id", "")))
