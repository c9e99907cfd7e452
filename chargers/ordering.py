"""Orders people expect: "2号桩" before "10号桩" (digits compared as numbers).

The one natural-sort key of the project: every list of piles (pages, drop-downs, the
API, the services that build them) sorts with `natural_key`. Imports nothing of ours,
so services and doors alike may use it."""

from __future__ import annotations

import re

_DIGITS = re.compile(r"(\d+)")


def natural_key(text: str | None) -> tuple:
    """A sort key comparing runs of digits by value, the rest case-insensitively.
    Parts alternate text, number, text… so two keys always compare."""
    return tuple(int(part) if i % 2 else part.casefold()
                 for i, part in enumerate(_DIGITS.split(text or "")))


def pile_key(pile) -> tuple:
    """A pile's place in every list: by label naturally, then by id (naturally)."""
    return (natural_key(getattr(pile, "label", None) or getattr(pile, "id", "")),
            natural_key(str(getattr(pile, "id", ""))))


def by_label(items, attr: str = "label") -> list:
    """Items sorted naturally by their label (then id, so the order is stable)."""
    return sorted(items, key=lambda x: (natural_key(getattr(x, attr)),
                                        natural_key(str(getattr(x, "id", "")))))
