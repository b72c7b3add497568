"""Reading whole numbers that people type or edit in query strings and form fields."""

from __future__ import annotations


def bounded_int(raw: object, low: int, high: int, max_digits: int = 10) -> int | None:
    """The ASCII whole number in `raw` (spaces around allowed) if it is within [low, high].

    None for anything else: empty, signs, decimals, other scripts' digits, or more than
    `max_digits` digits (no huge number is ever built from a hostile string).
    """
    text = str(raw or "").strip()
    if not text.isascii() or not text.isdigit() or len(text) > max_digits:
        return None
    value = int(text)
    return value if low <= value <= high else None
