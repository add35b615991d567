"""Rows as a table for people, or JSON or CSV for scripts.

Data may hold terminal control characters (a slug with ESC [2J, a U+202E): a table shows each
as a visible escape (\\x1b, \\u202e); JSON escapes them itself (and DEL here); CSV carries
the data exactly, except when it goes straight to a terminal, where it is escaped like a table.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from pytools.text import escape_controls

FORMATS = ("table", "json", "csv")


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat(sep=" ", timespec="seconds")
    return escape_controls(str(value))


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    return value


def to_json(value: Any) -> str:
    """Any nesting of dicts and lists, with dates as ISO strings and numerics as numbers."""
    # json escapes every other control character (and, ensure_ascii, all of non-ASCII)
    return json.dumps(value, indent=2, default=_jsonable).replace("\x7f", "\\u007f")


def _csv_line(values: Sequence[Any]) -> str:
    """One CSV record without its terminator; with "\\r\\n" as csv's terminator, a value holding
    a \\r is quoted too (with "\\n" only, a bare \\r in a value would end the record)."""
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerow(values)
    return out.getvalue()[:-2]


def records(kinds: Sequence[tuple[str, Sequence[dict[str, Any]]]]) -> list[dict[str, Any]]:
    """Rows of several kinds as one table, for a format that holds one (CSV): a first column
    `record` names each row's kind, and the columns are all of theirs, in order of appearance;
    a row lacks the others (empty)."""
    columns: dict[str, None] = {"record": None}
    for _, rows in kinds:
        for row in rows:
            columns.update(dict.fromkeys(row))
    return [
        {column: {"record": kind, **row}.get(column) for column in columns}
        for kind, rows in kinds
        for row in rows
    ]


def render(rows: Sequence[dict[str, Any]], fmt: str, max_width: int = 80, *, terminal: bool = False) -> str:
    """`terminal`: the text goes to a terminal, so CSV too escapes control characters."""
    if fmt == "json":
        return to_json(list(rows))
    if not rows:
        return "" if fmt == "csv" else "(none)"
    columns = list(rows[0].keys())
    if fmt == "csv":
        lines = [_csv_line(columns)]
        for row in rows:
            values = [_jsonable(row[c]) for c in columns]
            if terminal:
                values = [escape_controls(v) if isinstance(v, str) else v for v in values]
            lines.append(_csv_line(values))
        return "\n".join(lines)
    cells = [[_cell(row[c]) for c in columns] for row in rows]
    cut = sum(len(c) > max_width for r in cells for c in r)
    cells = [[c if len(c) <= max_width else c[: max_width - 3] + "..." for c in r] for r in cells]
    widths = [max(len(col), *(len(r[i]) for r in cells)) for i, col in enumerate(columns)]
    lines = [
        "  ".join(col.ljust(w) for col, w in zip(columns, widths, strict=True)),
        "  ".join("-" * w for w in widths),
    ]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    if cut:
        lines.append(
            f"({cut} value{'s' if cut > 1 else ''} cut to {max_width} characters, ending in ...: "
            "--format json or --format csv shows every value whole)"
        )
    return "\n".join(lines)
