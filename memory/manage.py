"""Changing stored memories: correct, delete, and forget a user entirely.

Forgetting rewrites the tables without the user's rows and then removes every older
table version, so nothing of the user can be read back from storage afterwards.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from cluster import NotFoundError, validate_user_id
from memory.search import get_memory
from memory.stages import rows_to_table
from memory.store import TenantStore, quote

EDITABLE = frozenset({"text", "importance", "confidence", "valid_to", "expires_at"})


def _memory_row(store: TenantStore, memory_id: str) -> dict[str, Any]:
    row = get_memory(store, memory_id, with_vector=True)
    if row is None:
        raise NotFoundError(f"no memory {memory_id!r}", param="memory_id")
    return row


def update_memory(store: TenantStore, memory_id: str, changes: dict[str, Any]) -> dict[str, Any]:
    """Apply a correction; a new ``text`` comes with its new ``vector``. Returns the row, without vector."""
    if not store.has("memories"):
        raise NotFoundError(f"no memory {memory_id!r}", param="memory_id")
    unknown = set(changes) - EDITABLE - {"vector"}
    if unknown:
        raise ValueError(f"fields {sorted(unknown)} cannot be changed")
    if ("text" in changes) != ("vector" in changes):
        raise ValueError("a corrected text needs its new vector")
    row = {**_memory_row(store, memory_id), **changes, "updated_at": datetime.now(UTC)}
    store.upsert(
        "memories", store.memories(), rows_to_table([row], len(row["vector"])), "memory_id", update=True
    )
    row.pop("vector")
    return row


def delete_memory(store: TenantStore, memory_id: str) -> None:
    if not store.has("memories") or store.memories().count_rows(f"memory_id = {quote(memory_id)}") == 0:
        raise NotFoundError(f"no memory {memory_id!r}", param="memory_id")
    store.memories().delete(f"memory_id = {quote(memory_id)}")


def forget_user(store: TenantStore, user_id: str) -> dict[str, int]:
    """Delete every memory, signal, quarantined row and profile of a user, and all older versions."""
    where = f"user_id = {quote(validate_user_id(user_id))}"
    removed: dict[str, int] = {}
    for name in ("memories", "signals", "quarantine", "profiles"):
        if not store.has(name):
            continue
        table = store.db.open_table(name)
        removed[name] = table.count_rows(where)
        if removed[name]:
            table.delete(where)
        # rewrite data files without deleted rows, fold indexes, drop every older version
        table.optimize(cleanup_older_than=timedelta(0), delete_unverified=True)
    return removed


def profile(store: TenantStore, user_id: str) -> dict[str, Any]:
    where = f"user_id = {quote(validate_user_id(user_id))}"
    if not store.has("profiles"):
        raise NotFoundError(f"no profile for user {user_id!r}", param="user_id")
    rows = store.profiles().search().where(where).limit(1).to_arrow()
    if rows.num_rows == 0:
        raise NotFoundError(f"no profile for user {user_id!r}", param="user_id")
    return _plain(rows.to_pylist()[0])


def _plain(row: dict[str, Any]) -> dict[str, Any]:
    """Map columns (lists of pairs in Arrow) as JSON objects."""
    return {k: dict(v) if k in ("by_source", "current_facts") else v for k, v in row.items()}
