"""Whole numbers read from text that a client or another server sent."""

from __future__ import annotations

# Digits of the largest number read by default: every value up to 10**18 - 1
# fits a PostgreSQL bigint.
MAX_DIGITS = 18


def whole_number(text: str | None, max_digits: int = MAX_DIGITS) -> int | None:
    """Return the number that ``text`` writes in ASCII decimal digits, or None.

    ``str.isdigit`` accepts digits such as "²" that ``int`` rejects, and
    ``int`` rejects over 4300 digits by default, so neither is enough alone.
    """
    if text is None or not (text.isascii() and text.isdigit()) or len(text) > max_digits:
        return None
    return int(text)
