"""Normalize stage: Unicode NFC, whitespace, length cap, PII redaction, exact-duplicate keys."""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Collection

from cluster import PiiKind
from memory.pii import redact

_SPACE = re.compile(r"\s+")


def normalize_text(text: str, max_chars: int) -> str:
    """NFC, runs of whitespace collapsed to one space, cut to ``max_chars`` on a word boundary."""
    text = _SPACE.sub(" ", unicodedata.normalize("NFC", text)).strip()
    if len(text) <= max_chars:
        return text
    cut = text[:max_chars]
    space = cut.rfind(" ")
    return (cut[:space] if space > max_chars // 2 else cut).rstrip() + "…"


def clean(text: str, *, pii: Collection[PiiKind], max_chars: int) -> str:
    """Normalized text with the PII kinds of the tenant's policy redacted."""
    return redact(normalize_text(text, max_chars), pii)[0]


def text_key(user_id: str, text: str) -> str:
    """Exact-duplicate key of a user's text: case and punctuation at the ends do not matter."""
    canonical = text.casefold().strip(" .!?,;:")
    return hashlib.sha256(f"{user_id}\0{canonical}".encode()).hexdigest()[:32]
