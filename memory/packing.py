"""Context packing: the best memories that fit a prompt's token budget.

``pack_context`` walks the search results in rank order and keeps each one whose rendered
line still fits, so a memory is left out only when it does not fit beside the better-ranked
ones kept before it. The budget is checked on the joined text itself, so a tokenizer that
merges across line breaks can never push the result over it. ``approx_tokens`` stands in
for the LLM's tokenizer until one is plugged in.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

Memory = dict[str, Any]
TokenCounter = Callable[[str], int]

_PIECE = re.compile(r"[^\W\d_]+|\d+|[^\w\s]|_")


def approx_tokens(text: str) -> int:
    """About the tokens a BPE/WordPiece LLM tokenizer gives ``text``, erring high.

    A word is one token per 6 letters (rounded up), a number one per 2 digits, and every
    other symbol one token: close to (and mostly above) GPT- and Llama-style tokenizers on
    English text, so a budget met here is met there.
    """
    count = 0
    for piece in _PIECE.findall(text):
        if piece[0].isdigit():
            count += (len(piece) + 1) // 2
        elif piece[0].isalpha():
            count += (len(piece) + 5) // 6
        else:
            count += 1
    return count


def render_memory(memory: Memory) -> str:
    """One prompt line: ``- [2024-05-03, fact] Lives in Berlin`` (with the end of a superseded one)."""
    valid_from, valid_to = memory.get("valid_from"), memory.get("valid_to")
    when = f"{valid_from:%Y-%m-%d}" if valid_from is not None else "undated"
    if valid_to is not None:
        when += f" until {valid_to:%Y-%m-%d}"
    return f"- [{when}, {memory.get('kind', 'memory')}] {' '.join(str(memory['text']).split())}"


@dataclass(frozen=True)
class PackedContext:
    """Memories chosen for a prompt, their rendered text and its token count."""

    memories: list[Memory]
    text: str
    tokens: int


def pack_context(
    memories: Sequence[Memory],
    budget: int,
    *,
    count_tokens: TokenCounter = approx_tokens,
    render: Callable[[Memory], str] = render_memory,
    separator: str = "\n",
) -> PackedContext:
    """The highest-ranked ``memories`` whose rendered lines, joined, take at most ``budget`` tokens."""
    if budget < 0:
        raise ValueError(f"budget must not be negative, got {budget}")
    kept: list[Memory] = []
    text = ""
    tokens = 0
    for memory in memories:
        line = render(memory)
        candidate = f"{text}{separator}{line}" if kept else line
        if count_tokens(line) > budget:
            continue
        used = count_tokens(candidate)
        if used <= budget:
            kept.append(memory)
            text, tokens = candidate, used
    return PackedContext(kept, text, tokens)
