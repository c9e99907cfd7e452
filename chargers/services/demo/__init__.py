"""The demo: two alleys of Suzhou with their piles (seed.py), the residents and the
cards they charge with, shared with the simulator (cards.py, pure), and a few weeks of
the alleys' past made through the services (history.py)."""

from .seed import DEMO_ADMIN, DEMO_ALLEYS, AlleySummary, DemoRules, seed

__all__ = ["DEMO_ADMIN", "DEMO_ALLEYS", "AlleySummary", "DemoRules", "seed"]
