"""Every outcome code the source uses has its text, and that text has Chinese.

The codes are found by reading the source (not by running it): the literal first
argument of every domain error raised, the action of every alert-history entry
written, and every command outcome set. A new code without an entry in
chargers/outcomes.py or chargers/labels.py, or without a translation in the compiled
catalogue, fails here."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from babel.messages.mofile import read_mo

from chargers import labels, outcomes
from chargers.services import errors

ROOT = Path(__file__).resolve().parent.parent / "chargers"
MO = ROOT / "translations" / "zh" / "LC_MESSAGES" / "messages.mo"
ERRORS = {name for name, obj in vars(errors).items()
          if isinstance(obj, type) and issubclass(obj, errors.DomainError)}


def _modules() -> dict[Path, ast.Module]:
    return {p: ast.parse(p.read_text(encoding="utf-8"), str(p))
            for p in sorted(ROOT.rglob("*.py")) if "migrations" not in p.parts}


MODULES = _modules()


def _name(func: ast.expr) -> str:
    return func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")


def _functions(tree: ast.Module) -> dict[str, ast.FunctionDef]:
    return {n.name: n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)}


def _strings(node: ast.expr) -> set[str]:
    """The literal strings an expression can be: a constant, either side of `a if c
    else b`, or the values of `{...}[key]`."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return {node.value}
    if isinstance(node, ast.IfExp):
        return _strings(node.body) | _strings(node.orelse)
    if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Dict):
        return set().union(*(_strings(v) for v in node.value.values))
    return set()


def _resolve(arg: ast.expr, index: int, func: ast.FunctionDef | None, tree: ast.Module) -> set[str]:
    """What a (possibly named) argument can be: literals, a local assigned from
    literals, or a parameter whose callers in the module pass literals."""
    found = _strings(arg)
    if found or not isinstance(arg, ast.Name) or func is None:
        return found
    for node in ast.walk(func):
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == arg.id for t in node.targets):
            found |= _strings(node.value)
    params = [a.arg for a in func.args.args]
    if arg.id in params:
        at = params.index(arg.id)
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and _name(node.func) == func.name and len(node.args) > at:
                found |= _strings(node.args[at])
    return found


def _enclosing(tree: ast.Module) -> dict[int, ast.FunctionDef]:
    out = {}
    for f in _functions(tree).values():
        for node in ast.walk(f):
            out.setdefault(id(node), f)
    return out


def error_codes() -> tuple[set[str], list[str]]:
    """(codes raised with a literal, sites that raise something else)."""
    codes, other = set(), []
    for path, tree in MODULES.items():
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and _name(node.func) in ERRORS and node.args:
                found = _strings(node.args[0])
                if found:
                    codes |= found
                else:
                    other.append(f"{path.relative_to(ROOT)}:{node.lineno}")
            # A code handed to a helper that raises it (`missing` of scope.check_alley and
            # scope.get_in_alley).
            if isinstance(node, ast.FunctionDef):
                names = [a.arg for a in node.args.args]
                defaults = node.args.defaults
                for name, default in zip(names[len(names) - len(defaults):], defaults, strict=True):
                    if name == "missing":
                        codes |= _strings(default)
                for name, default in zip((a.arg for a in node.args.kwonlyargs),
                                         node.args.kw_defaults, strict=True):
                    if name == "missing" and default is not None:
                        codes |= _strings(default)
            if isinstance(node, ast.Call) and _name(node.func) in ("check_alley", "get_in_alley"):
                for arg in node.args[2 if _name(node.func) == "check_alley" else 3:]:
                    codes |= _strings(arg)
                for kw in node.keywords:
                    if kw.arg == "missing":
                        codes |= _strings(kw.value)
    return codes, other


def event_codes() -> tuple[set[str], set[str], list[str]]:
    """(alert-history actions written, prefixes of actions built as f-strings,
    sites whose action could not be read)."""
    codes, prefixes, unread = set(), set(), []
    for path, tree in MODULES.items():
        enclosing = _enclosing(tree)
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and _name(node.func) == "record" and node.args):
                continue
            if getattr(node.func.value, "id", None) == "batch":
                continue  # the ingest's message ledger, not an alert's history
            arg = node.args[0]
            if isinstance(arg, ast.JoinedStr) and isinstance(arg.values[0], ast.Constant):
                prefixes.add(arg.values[0].value)
                continue
            found = _resolve(arg, 0, enclosing.get(id(node)), tree)
            if found:
                codes |= found
            else:
                unread.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    return codes, prefixes, unread


def outcome_codes() -> set[str]:
    """Command outcomes the services set (`cmd.outcome = ...`)."""
    codes = set()
    for tree in MODULES.values():
        for node in ast.walk(tree):
            if isinstance(node, ast.Assign) and any(
                    isinstance(t, ast.Attribute) and t.attr == "outcome" for t in node.targets):
                codes |= _strings(node.value)
    return codes


@pytest.fixture(scope="module")
def chinese() -> dict[str, str]:
    with open(MO, "rb") as f:
        return {m.id: m.string for m in read_mo(f) if m.id and isinstance(m.id, str)}


def _source(text) -> str:
    """The msgid of a lazy string."""
    return text._args[0] if hasattr(text, "_args") else str(text)


def test_the_scan_finds_codes_where_they_are():
    codes, other = error_codes()
    assert {"pile.ports_range", "alert.not_found", "contact.not_found", "alley.not_found"} <= codes
    # Only scope's helpers raise a code they were handed (found above through `missing`).
    assert {o.split(":")[0] for o in other} == {"services/scope.py"}, other
    events, prefixes, unread = event_codes()
    assert {"raised", "flap", "cutoff_sent", "notified", "escalated", "cleared_online",
            "cleared_by_device", "acknowledged", "resolved"} <= events
    assert prefixes == {"command_"} and unread == []
    assert outcome_codes() == {"no_ack", "unsent", "late"}


def test_every_error_code_has_english_and_chinese(chinese):
    codes, _other = error_codes()
    missing = sorted(codes - set(outcomes.MESSAGES))
    assert missing == [], "add these codes to chargers/outcomes.py MESSAGES"
    untranslated = sorted(c for c in codes if not chinese.get(_source(outcomes.MESSAGES[c])))
    assert untranslated == [], "extract, update, translate, compile: see babel.cfg"


def test_every_history_action_has_a_label_in_chinese(chinese):
    from chargers.services.devices.commands import FINAL

    events, prefixes, _unread = event_codes()
    events |= {f"{p}{status}" for p in prefixes for status in FINAL}
    assert sorted(events - set(labels.EVENT_LABELS)) == [], "add to labels.EVENT_LABELS"
    assert sorted(e for e in events if not chinese.get(_source(labels.EVENT_LABELS[e]))) == []


def test_every_command_outcome_has_words_in_both_languages(chinese):
    for code in outcome_codes():
        assert code in labels.COMMAND_OUTCOME_LABELS
        english = outcomes.MESSAGES[f"command.{code}"]  # the API's `detail`
        assert chinese.get(_source(english))
        label = labels.COMMAND_OUTCOME_LABELS[code]
        assert label is None or chinese.get(_source(label))


def test_no_code_in_the_catalogue_is_left_unused():
    codes, _other = error_codes()
    used = codes | {f"command.{c}" for c in outcome_codes()}
    assert sorted(set(outcomes.MESSAGES) - used) == []


def test_codes_render_in_the_page_language_and_english_for_the_api(app):
    with app.test_request_context("/?lang=zh"):
        assert outcomes.render("pile.ports_range", {"n": 32}) == "插口数：1 到 32。"
        assert outcomes.english("pile.ports_range", {"n": 32}) == "Ports: 1 to 32."
        assert outcomes.render("no.such_code") == "no.such_code"  # shown, never an error
    exc = errors.Invalid("pile.ports_range", n=32)
    assert (exc.family, exc.code, exc.params, exc.message) == (
        "invalid", "pile.ports_range", {"n": 32}, "Ports: 1 to 32.")


def test_no_sentence_is_matched_to_translate_it():
    """Words are chosen from codes; nothing reads a sentence back (no regular
    expressions where codes are turned into words)."""
    for path in (ROOT / "web" / "staff" / "wording.py", ROOT / "labels.py", ROOT / "outcomes.py"):
        tree = MODULES[path]
        imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        imported |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        assert "re" not in imported, path
