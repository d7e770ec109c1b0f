"""Free text refuses control, separator and bidi-override characters (core.text)."""

from __future__ import annotations

import pytest

from lastmile.core.text import describe, first_forbidden


@pytest.mark.parametrize("ch", ["\x00", "\x1b", "\x7f", "\x85", "\x9f", "\u202a", "\u202e",
                                "\u2066", "\u2069", "\u2028", "\u2029", "\ud800", "\n", "\t"])
def test_single_line_text_refuses_controls_separators_and_bidi_overrides(ch: str) -> None:
    assert first_forbidden(f"ab{ch}c") == 2


def test_multi_line_text_allows_tab_and_line_breaks_but_nothing_else() -> None:
    assert first_forbidden("Ring twice.\r\n\tThen wait.", multiline=True) is None
    assert first_forbidden("Ring\n\x1b[2J", multiline=True) == 5


def test_ordinary_unicode_and_direction_marks_are_fine() -> None:
    assert first_forbidden("Zoë Ørsted — 北京 \u200fשלום\u200e 🍕") is None


def test_the_description_names_the_code_point_without_printing_it() -> None:
    assert describe("ab\u202ec", 2) == "U+202E at position 2"
