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


def test_catalogue_holds_every_message_of_the_source():
    """A string added to a template or a view but never extracted would show in English
    on the Chinese page: the .po must hold every message the source uses."""
    from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
    from babel.messages.frontend import parse_mapping_cfg

    root = ZH.parents[2]  # chargers/
    with open(root.parent / "babel.cfg", encoding="utf-8") as f:
        method_map, options_map = parse_mapping_cfg(f)
    keywords = {**DEFAULT_KEYWORDS, "_l": None}
    used = {msg if isinstance(msg, str) else msg[0]
            for _file, _line, msg, _comments, _context in
            extract_from_dir(str(root), method_map, options_map, keywords=keywords)}
    with open(ZH / "messages.po", "rb") as f:
        known = {m.id if isinstance(m.id, str) else m.id[0] for m in read_po(f, locale="zh") if m.id}
    assert sorted(used - known) == [], "extract, update, translate, compile: see babel.cfg"
