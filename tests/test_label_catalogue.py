"""Every label table has its Chinese (issue 19 item 3): each entry of the tables in
chargers/labels.py (and the money errors of web/money.py) is a msgid of the zh catalogue
with a translation, so no code or English word reaches a Chinese page through them."""

from __future__ import annotations

from pathlib import Path

from babel.messages.pofile import read_po

import chargers.labels as labels
from chargers.web.money import MONEY_ERRORS

PO = Path(__file__).resolve().parent.parent / "chargers/translations/zh/LC_MESSAGES/messages.po"


def _msgid(value) -> str | None:
    """The msgid of a lazy_gettext string (None for a non-label entry)."""
    if value is None or isinstance(value, str | int | frozenset):
        return None
    return value._args[0] if getattr(value, "_args", None) else None


def test_every_label_table_entry_has_a_chinese_translation():
    with PO.open("rb") as f:
        catalogue = read_po(f)
    tables = {name: table for name, table in vars(labels).items()
              if name.isupper() and isinstance(table, dict)}
    tables["MONEY_ERRORS"] = MONEY_ERRORS
    assert {"JOB_LABELS", "BILLING_LABELS", "PREVIEW_SAMPLE_LABELS",
            "PRICING_RULE_LABELS"} <= set(tables)
    missing, checked = [], 0
    for name, table in tables.items():
        for code, value in table.items():
            msgid = _msgid(value)
            if msgid is None:
                continue
            checked += 1
            message = catalogue.get(msgid)
            if message is None or not message.string:
                missing.append(f"{name}[{code!r}]: {msgid!r}")
    assert checked > 150
    assert not missing, "\n".join(missing)


def test_every_kind_of_resident_message_has_its_words():
    """The account pages name each message a resident got by its kind: every kind
    (settings.RESIDENT_KINDS) has its label, so no code reaches the page."""
    from chargers.settings import RESIDENT_KINDS

    assert set(RESIDENT_KINDS) <= set(labels.REMINDER_LABELS)
    assert all(isinstance(labels.CONFIG_KEY_UNITS[k][1], int) for k in labels.CONFIG_KEY_UNITS)
