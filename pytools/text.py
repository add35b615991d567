"""Text from the database made safe for a terminal: no character of it can move the cursor,
clear the screen, set the window title or reorder what is shown."""

from __future__ import annotations

import unicodedata

_NAMED = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}


def _is_control(char: str) -> bool:
    """C0 and C1 controls and DEL (Cc), bidi and other invisible format characters such as
    U+202E (Cf), line and paragraph separators (Zl, Zp), and unassigned code points (Cn)."""
    return unicodedata.category(char) in ("Cc", "Cf", "Zl", "Zp", "Cn", "Cs")


def _escape(char: str) -> str:
    if char in _NAMED:
        return _NAMED[char]
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def escape_controls(text: str) -> str:
    """`text` with each control or format character written as a visible escape (ESC as \\x1b,
    U+202E as \\u202e, a newline as \\n); everything else, backslashes included, unchanged."""
    if text.isprintable():  # the common case: nothing to escape (a space is printable)
        return text
    return "".join(_escape(char) if _is_control(char) else char for char in text)
