"""PII redaction: payment cards (Luhn-checked), email addresses and phone numbers.

Runs on every signal, so the patterns are compiled once and each kind is skipped early when
the text cannot hold it (no ``@`` for emails, fewer than seven digits for cards and phones).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection

from cluster import PiiKind

__all__ = ["PiiKind", "redact"]

_PLACEHOLDERS: dict[PiiKind, str] = {"card": "[CARD]", "email": "[EMAIL]", "phone": "[PHONE]"}

# 13-19 digits, single spaces or dashes allowed between them. No card number starts with 0,
# and a leading "+" marks an international phone number, not a card.
_CARD = re.compile(r"(?<![\d+])[1-9](?:[ -]?\d){12,18}(?!\d)")

_EMAIL = re.compile(
    r"(?<![\w.%+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*\.[A-Za-z]{2,}(?![\w-])"
)

_PHONE = re.compile(
    r"""
    (?<![\w.+-])
    (?:
        # international: +CC, then groups split by one separator; a group may be in parens
        \+\d{1,3}(?:[ .-]?(?:\(\d{1,4}\)|\d{1,12})){1,6}
      | # North American: (555) 123-4567, 555-123-4567, 555.123.4567, 1-555-123-4567
        (?:1[ .-])?(?:\(\d{3}\)[ ]?|\d{3}[ .-])\d{3}[ .-]\d{4}
      | # national with trunk 0: 030 1234567, 0176 12345678, 020 7946 0958
        0\d{2,4}(?:[ -]\d{2,8}){1,3}
    )
    (?![\w]|[.-]\d)
    """,
    re.VERBOSE,
)

_DIGIT = re.compile(r"\d")
_MIN_PHONE_DIGITS = 7
_MAX_PHONE_DIGITS = 15


def redact(text: str, kinds: Collection[PiiKind]) -> tuple[str, dict[str, int]]:
    """Replace the PII ``kinds`` in ``text`` by placeholders; return the text and counts per kind."""
    counts: dict[str, int] = {}
    if not text or not kinds:
        return text, counts
    if "email" in kinds and "@" in text:
        text, n = _EMAIL.subn(_PLACEHOLDERS["email"], text)
        if n:
            counts["email"] = n
    if ("card" in kinds or "phone" in kinds) and len(_DIGIT.findall(text)) >= _MIN_PHONE_DIGITS:
        # Cards first, so a card number is never counted as a phone number.
        if "card" in kinds:
            text = _substitute(_CARD, text, _is_card, "card", counts)
        if "phone" in kinds:
            text = _substitute(_PHONE, text, _is_phone, "phone", counts)
    return text, counts


def _substitute(
    pattern: re.Pattern[str],
    text: str,
    accept: Callable[[str], bool],
    kind: PiiKind,
    counts: dict[str, int],
) -> str:
    """Replace the matches of ``pattern`` that ``accept`` approves, counting them under ``kind``."""
    placeholder = _PLACEHOLDERS[kind]
    found = 0

    def replace(match: re.Match[str]) -> str:
        nonlocal found
        candidate = match.group()
        if not accept(candidate):
            return candidate
        found += 1
        return placeholder

    text = pattern.sub(replace, text)
    if found:
        counts[kind] = found
    return text


def _is_card(candidate: str) -> bool:
    digits = [int(c) for c in candidate if c.isdigit()]
    if len(set(digits)) == 1:
        return False
    return _luhn_ok(digits)


def _luhn_ok(digits: list[int]) -> bool:
    total = 0
    for i, d in enumerate(reversed(digits)):
        if i % 2:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def _is_phone(candidate: str) -> bool:
    digits = sum(c.isdigit() for c in candidate)
    return _MIN_PHONE_DIGITS <= digits <= _MAX_PHONE_DIGITS
