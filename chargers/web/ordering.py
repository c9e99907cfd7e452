"""The web's name for the one natural-sort key (chargers/ordering.py)."""

from __future__ import annotations

from ..ordering import by_label, natural_key, pile_key

__all__ = ["by_label", "natural_key", "pile_key"]
