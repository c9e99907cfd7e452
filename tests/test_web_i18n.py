"""The Chinese catalogue: complete, and the committed .mo is compiled from the .po
(a fresh clone needs no build step to show Chinese)."""

from __future__ import annotations

from pathlib import Path

from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

ZH = Path(__file__).resolve().parent.parent / "chargers" / "translations" / "zh" / "LC_MESSAGES"


def test_every_message_is_translated_and_none_fuzzy():
    with open(ZH / "messages.po", "rb") as f:
        catalog = read_po(f, locale="zh")
    untranslated = [m.id for m in catalog if m.id and not (
        all(m.string) if isinstance(m.string, tuple) else m.string)]
    fuzzy = [m.id for m in catalog if m.id and m.fuzzy]
    assert untranslated == [] and fuzzy == []


def test_compiled_catalogue_matches_the_po():
    with open(ZH / "messages.po", "rb") as f:
        po = {m.id: m.string for m in read_po(f, locale="zh") if m.id and not m.fuzzy}
    with open(ZH / "messages.mo", "rb") as f:
        mo = {m.id: m.string for m in read_mo(f) if m.id}
    assert mo == po, "run: pybabel compile -d chargers/translations"


def test_messages_use_the_catalogue(client, app):
    html = client.get("/login").get_data(as_text=True)
    assert "工作人员登录" in html and "Staff login" not in html
    assert "Staff login" in client.get("/login?lang=en").get_data(as_text=True)
