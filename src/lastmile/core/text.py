"""Free text that people type (names, reasons, notes): which characters it may hold.

Refused everywhere: the C0 and C1 control characters and DEL (NUL truncates
strings in C libraries and PostgreSQL refuses it; ESC starts terminal escape
sequences in logs and CLIs), lone surrogates (not encodable as UTF-8), the
Unicode line and paragraph separators, and the bidirectional embeddings,
overrides and isolates (U+202A..U+202E, U+2066..U+2069) that make text display
in an order other than the stored one ("Trojan Source"). Multi-line text
(notes, instructions) may also hold tab, line feed and carriage return.
The left-to-right and right-to-left marks stay allowed: they only hint at
direction and are needed in mixed-script names.
"""

from __future__ import annotations

import unicodedata

BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_REFUSED_CATEGORIES = frozenset({"Cc", "Cs", "Zl", "Zp"})
LINE_BREAKS = frozenset("\t\n\r")


def first_forbidden(value: str, *, multiline: bool = False) -> int | None:
    """Index of the first character free text may not hold, or None when all are fine."""
    if value.isascii() and value.isprintable():
        return None  # the usual case, at C speed: printable ASCII holds none of them
    allowed = LINE_BREAKS if multiline else frozenset()
    for index, ch in enumerate(value):
        if ch in allowed:
            continue
        if ch in BIDI_CONTROLS or unicodedata.category(ch) in _REFUSED_CATEGORIES:
            return index
    return None


def describe(value: str, index: int) -> str:
    """``U+202E at position 3``: names the character without printing it."""
    return f"U+{ord(value[index]):04X} at position {index}"
