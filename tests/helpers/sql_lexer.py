"""A small lexer for the package's SQL files, enough to find what a session setting can change
in how PostgreSQL reads them: a backslash anywhere but in an E'' string.

Under `standard_conforming_strings = off` a backslash in a plain '...' literal (or N'...',
U&'...') is an escape, so the literal means something else. Dollar-quoted text is read
literally whatever the setting, but a routine's body is itself SQL (and a $sql$ string in it
is SQL run by EXECUTE), so dollar-quoted text is lexed again as SQL, down to any depth.
Comments are skipped; a backslash outside any literal is reported too (SQL has no use for it)."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

_IDENT = re.compile(r"[A-Za-z_\u0080-\U0010ffff][A-Za-z0-9_$\u0080-\U0010ffff]*")
_DOLLAR = re.compile(r"\$([A-Za-z_\u0080-\U0010ffff][A-Za-z0-9_\u0080-\U0010ffff]*)?\$")


@dataclass(frozen=True)
class Finding:
    line: int
    what: str
    text: str


def _line(source: str, offset: int) -> int:
    return source.count("\n", 0, offset) + 1


def backslashes_outside_e_strings(sql: str, first_line: int = 1) -> list[Finding]:
    """Each place in `sql` where a backslash is read differently under
    standard_conforming_strings = off, or where the lexer cannot be sure it is not."""
    found: list[Finding] = []
    i, n = 0, len(sql)

    def at(offset: int) -> int:
        return first_line + _line(sql, offset) - 1

    while i < n:
        c = sql[i]
        if sql.startswith("--", i):
            end = sql.find("\n", i)
            i = n if end < 0 else end + 1
        elif sql.startswith("/*", i):
            depth, i = 1, i + 2
            while i < n and depth:
                if sql.startswith("/*", i):
                    depth, i = depth + 1, i + 2
                elif sql.startswith("*/", i):
                    depth, i = depth - 1, i + 2
                else:
                    i += 1
        elif c == '"':
            end = i + 1
            while True:
                end = sql.find('"', end)
                if end < 0 or not sql.startswith('""', end):
                    break
                end += 2
            i = n if end < 0 else end + 1
        elif c == "'":
            i = _plain_string(sql, i, found, at, "a plain '...' literal")
        elif c == "$" and (m := _DOLLAR.match(sql, i)):
            delimiter = m.group(0)
            end = sql.find(delimiter, m.end())
            if end < 0:
                found.append(Finding(at(i), "an unterminated dollar quote", delimiter))
                return found
            found.extend(backslashes_outside_e_strings(sql[m.end() : end], at(m.end())))
            i = end + len(delimiter)
        elif m := _IDENT.match(sql, i):
            word, i = m.group(0), m.end()
            if i < n and sql[i] == "'":
                if word in ("E", "e"):
                    i = _e_string(sql, i, found, at)
                elif word in ("B", "b", "X", "x"):
                    i = _plain_string(sql, i, found, at, "a bit-string literal")
                else:  # N'...' is a plain literal; anything else (U&' is caught below) too
                    i = _plain_string(sql, i, found, at, f"a {word}'...' literal")
            elif word in ("U", "u") and sql.startswith("&'", i):
                i = _plain_string(sql, i + 1, found, at, "a U&'...' literal", always=True)
        elif c == "\\":
            found.append(Finding(at(i), "a backslash outside any literal", sql[i : i + 20]))
            i += 1
        else:
            i += 1
    return found


def _plain_string(
    sql: str, start: int, found: list[Finding], at: Callable[[int], int], what: str, *, always: bool = False
) -> int:
    """Skip a '...' literal from its opening quote; report it if it holds a backslash."""
    end = start + 1
    while True:
        end = sql.find("'", end)
        if end < 0 or not sql.startswith("''", end):
            break
        end += 2
    stop = len(sql) if end < 0 else end + 1
    body = sql[start:stop]
    if always or "\\" in body:
        found.append(Finding(at(start), what, body[:80]))
    return stop


def _e_string(sql: str, start: int, found: list[Finding], at: Callable[[int], int]) -> int:
    """Skip an E'...' literal from its opening quote (backslash escapes, '' doubling)."""
    i = start + 1
    while i < len(sql):
        if sql[i] == "\\" or sql.startswith("''", i):
            i += 2
        elif sql[i] == "'":
            return i + 1
        else:
            i += 1
    found.append(Finding(at(start), "an unterminated E'' literal", sql[start : start + 40]))
    return len(sql)
