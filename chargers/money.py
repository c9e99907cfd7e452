"""Money as people read and type it: yuan with two decimals, stored as integer fen.

The one place that turns typed yuan into fen (`parse_yuan`) and fen into yuan text or
an exact Decimal (`yuan_text`, `yuan_decimal`). Decimal throughout: no float ever
touches an amount. Refusals are codes (`MoneyError.code`); the web door words them.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

# "1,234.50" and "1，234.50": a separator every three digits, nothing else.
_GROUPED = re.compile(r"^[0-9]{1,3}([,，][0-9]{3})+(\.[0-9]*)?$")
_PLAIN = re.compile(r"^[0-9]*(\.[0-9]*)?$")
_PREFIXES = ("¥", "￥", "CNY", "RMB")
_SUFFIXES = ("元",)


class MoneyError(ValueError):
    """A typed amount that is not yuan: `code` says why (not_a_number, too_precise,
    negative, bad_separator, too_large)."""

    def __init__(self, code: str):
        super().__init__(code)
        self.code = code


def parse_yuan(text: str | int | Decimal | None, *, allow_negative: bool = False,
               max_fen: int | None = None) -> int | None:
    """Typed yuan → integer fen, exactly: "50", "50.5", "50.00", "¥50", "1,234.50" and
    "50元" read as yuan; empty → None. More than two decimals, a minus where none is
    allowed, a thousands separator in the wrong place or anything else unreadable
    raises MoneyError."""
    if text is None:
        return None
    s = str(text).strip().replace(" ", "").replace("\u00a0", "")
    if not s:
        return None
    negative, s = _strip_signs(s)
    value = _number(s)
    if negative and value != 0 and not allow_negative:
        raise MoneyError("negative")
    fen = int(value * 100)
    fen = -fen if negative else fen
    if max_fen is not None and abs(fen) > max_fen:
        raise MoneyError("too_large")
    return fen


def _strip_signs(s: str) -> tuple[bool, str]:
    """(negative, the rest without sign, currency sign or unit): "-¥5", "¥-5", "5元"."""
    negative = False
    if s[0] in "-−":
        negative, s = True, s[1:]
    elif s[0] == "+":
        s = s[1:]
    for p in _PREFIXES:
        if s.upper().startswith(p):
            s = s[len(p):]
            break
    if s and s[0] in "-−" and not negative:  # "¥-5"
        negative, s = True, s[1:]
    for suffix in _SUFFIXES:
        if s.endswith(suffix):
            s = s[: -len(suffix)]
    return negative, s


def _number(s: str) -> Decimal:
    """The digits of an amount as an exact Decimal, at most two decimals; thousands
    separators only where they belong."""
    s = s.replace("．", ".")
    if "," in s or "，" in s:
        if not _GROUPED.match(s):
            raise MoneyError("bad_separator")
        s = s.replace(",", "").replace("，", "")
    if not s or s == "." or not _PLAIN.match(s):
        raise MoneyError("not_a_number")
    try:
        value = Decimal(s)
    except InvalidOperation as exc:  # pragma: no cover - the pattern above guards it
        raise MoneyError("not_a_number") from exc
    if "." in s and len(s.split(".", 1)[1].rstrip("0")) > 2:
        raise MoneyError("too_precise")
    return value


def yuan_decimal(fen: int | None) -> Decimal | None:
    """Integer fen → yuan as an exact Decimal with two places (1234 → Decimal('12.34'))."""
    if fen is None:
        return None
    return (Decimal(int(fen)) / 100).quantize(Decimal("0.01"))


def yuan_plain(fen: int | None) -> str:
    """Integer fen → "12.34" (no sign of currency; what a form field or a CSV holds)."""
    value = yuan_decimal(fen)
    return "" if value is None else f"{value:.2f}"


def yuan_text(fen: int | None, *, signed: bool = False) -> str:
    """Integer fen → "¥12.34" ("-¥12.34" below zero; "+¥12.34" too when `signed`);
    None → "—"."""
    if fen is None:
        return "—"
    fen = int(fen)
    sign = "-" if fen < 0 else ("+" if signed and fen > 0 else "")
    fen = abs(fen)
    return f"{sign}¥{fen // 100}.{fen % 100:02d}"
