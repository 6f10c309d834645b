"""A training set made of a tenant's own memories (opt-in, per request): question/answer pairs.

Each current memory with a slot and a value (a fact such as ``home_city = Lisbon``, or a
preference) of the chosen users becomes one chat example: *"What is the home city of alice?"* →
*"Lisbon"*. Only the calling tenant's store is read, so nothing of another tenant can enter it;
the result is stored like an upload (validated, sealed) by ``FileStore``.
"""

from __future__ import annotations

import json
from typing import Any

from cluster import InvalidIdError, InvalidRequestError, MemoryKind, validate_user_id
from memory import TenantStore, list_memories

PAGE = 1_000


def question(slot: str, user_id: str) -> str:
    return f"What is the {slot.replace('_', ' ')} of {user_id}?"


def memory_examples(
    store: TenantStore, user_ids: list[str], kinds: list[MemoryKind], max_examples: int
) -> list[dict[str, Any]]:
    """``{"messages": [...]}`` rows from the users' current memories that have a slot and a value."""
    rows: list[dict[str, Any]] = []
    try:
        users = list(dict.fromkeys(validate_user_id(u) for u in user_ids))
    except InvalidIdError as e:
        raise InvalidIdError(e.message, param="user_ids") from e
    for user_id in users:
        offset = 0
        while True:
            page = list_memories(store, user_id, kinds=kinds, current_only=True, limit=PAGE, offset=offset)
            for memory in page:
                if memory.get("slot") and memory.get("value"):
                    messages = [
                        {"role": "user", "content": question(memory["slot"], user_id)},
                        {"role": "assistant", "content": str(memory["value"])},
                    ]
                    rows.append({"messages": messages})
            if len(page) < PAGE:
                break
            offset += PAGE
    unique = list({json.dumps(r, sort_keys=True): r for r in rows}.values())
    if not unique:
        raise InvalidRequestError(
            "these users have no current memories with a slot and a value to learn from", param="user_ids"
        )
    if len(unique) > max_examples:
        raise InvalidRequestError(
            f"{len(unique)} examples, over the limit of {max_examples}: choose fewer users", param="user_ids"
        )
    return unique


def to_jsonl(rows: list[dict[str, Any]]) -> bytes:
    return b"".join(json.dumps(r, ensure_ascii=False).encode() + b"\n" for r in rows)
