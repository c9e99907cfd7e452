"""The one CSV writer of the web: every CSV download goes through `response`.

Cells that staff or residents typed (names, notes, receipts, cards) may start with a
character a spreadsheet takes as a formula (`=HYPERLINK(…)`, `+cmd|…`, `@SUM(…)`): per
OWASP's "CSV Injection" advice, a text cell starting with =, +, -, @, a tab or a
carriage return is prefixed with a single quote, so it is shown, never run. Numbers
(int, Decimal, float) stay numbers: a refund of -500 fen is still summable. XLSX
downloads are not written here (openpyxl cells are typed, not parsed).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable
from decimal import Decimal

from flask import Response, current_app

BOM = "\ufeff"  # Excel then reads UTF-8 (Chinese) correctly
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value):
    """A cell a spreadsheet will not run as a formula."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, (int, float, Decimal)):
        return value
    text = str(value)
    return "'" + text if text.startswith(FORMULA_START) else text


def response(name: str, header: list[str], rows: Callable[[], Iterable[list]]) -> Response:
    """A CSV download in UTF-8 with a BOM, streamed, every cell through `safe_cell`.
    `rows` is called while the body is sent, inside an application context of its own
    (held only while the body is read, so an unread download holds nothing)."""
    app = current_app._get_current_object()

    def generate():
        buf = io.StringIO()
        w = csv.writer(buf)
        buf.write(BOM)
        w.writerow([safe_cell(v) for v in header])
        with app.app_context():
            for row in rows():
                w.writerow([safe_cell(v) for v in row])
                if buf.tell() > 64_000:
                    yield buf.getvalue()
                    buf.seek(0)
                    buf.truncate()
        yield buf.getvalue()

    return Response(generate(), content_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})
