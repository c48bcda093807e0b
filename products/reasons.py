"""Reasons people give for a decision (a review, a withdrawal, a declined request).

A reason that is required must say something: one made only of spaces and
invisible characters — zero-width spaces (U+200B), byte-order marks (U+FEFF),
word joiners (U+2060), any other format or control character — is refused with
``invisible_reason``, apart from an empty one (``missing_reason`` or the
caller's own code).
"""

from __future__ import annotations

import unicodedata

from queries.errors import InvalidInput

_INVISIBLE = ("Cc", "Cf", "Zs", "Zl", "Zp")


def is_invisible(ch: str) -> bool:
    return ch.isspace() or unicodedata.category(ch) in _INVISIBLE


def clean_reason(text: str | None) -> str:
    """``text`` without the invisible characters around it; '' when nothing visible is left."""
    text = text or ""
    start, end = 0, len(text)
    while start < end and is_invisible(text[start]):
        start += 1
    while end > start and is_invisible(text[end - 1]):
        end -= 1
    return text[start:end]


def required_reason(text: str | None, message: str, code: str = "missing_reason") -> str:
    """The reason, cleaned; ``code`` when none was given, ``invisible_reason`` when
    only invisible characters were."""
    cleaned = clean_reason(text)
    if cleaned:
        return cleaned
    if text and text.strip(" \t\r\n"):
        raise InvalidInput(f"{message}: the reason given has no visible character (only spaces or "
                           "zero-width/format characters)", code="invisible_reason")
    raise InvalidInput(message, code=code)
