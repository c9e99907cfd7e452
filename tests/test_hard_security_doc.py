"""docs/security.md (issue 20, item 10) stays true to the code: every test and module it
names exists, and it fits on one page."""

from __future__ import annotations

import re

from .ingest_support import ROOT

DOC = (ROOT / "docs" / "security.md").read_text()


def test_every_named_test_exists():
    named = set(re.findall(r"`(test_[a-z0-9_]+\.py)`", DOC))
    assert len(named) >= 15
    missing = [n for n in sorted(named) if not (ROOT / "tests" / n).exists()]
    assert missing == []


def test_every_named_module_exists():
    modules = set(re.findall(r"`((?:web|services|ingest)/[a-z_]+\.py)`", DOC))
    assert modules and [m for m in sorted(modules) if not (ROOT / "chargers" / m).exists()] == []


def test_one_page():
    assert len(DOC.splitlines()) <= 60
