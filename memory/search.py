"""Search a user's memories by vector or keyword (ranking and hybrid fusion build on this)."""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from typing import Any, Literal, cast

from lancedb.query import LanceQueryBuilder, LanceVectorQueryBuilder

from cluster.paths import validate_user_id
from memory.embed import Embedder, get_embedder
from memory.store import TenantStore, in_list, quote

Mode = Literal["vector", "keyword"]
RESULT_COLUMNS = [
    "memory_id",
    "user_id",
    "kind",
    "text",
    "slot",
    "value",
    "importance",
    "confidence",
    "support",
    "sources",
    "valid_from",
    "valid_to",
]


@lru_cache(maxsize=2)
def query_embedder(name: str) -> Embedder:
    """The embedder for queries, loaded once per process."""
    return get_embedder(name)


def memory_filter(user_id: str, kinds: list[str] | None = None, as_of: datetime | None = None) -> str:
    """Filter of one user's memories: current ones, or those valid at ``as_of``."""
    parts = [f"user_id = {quote(validate_user_id(user_id))}"]
    if kinds:
        parts.append(in_list("kind", kinds))
    if as_of is None:
        parts.append("valid_to IS NULL")
    else:
        at = f"TIMESTAMP '{as_of:%Y-%m-%d %H:%M:%S}'"
        parts.append(f"valid_from <= {at} AND (valid_to IS NULL OR valid_to > {at})")
    return " AND ".join(parts)


def search(
    store: TenantStore,
    user_id: str,
    query: str,
    *,
    k: int = 10,
    mode: Mode = "vector",
    kinds: list[str] | None = None,
    as_of: datetime | None = None,
    embedder: str = "all-minilm-l6-v2",
) -> list[dict[str, Any]]:
    """Top ``k`` memories of ``user_id`` for ``query``, each with its ``score`` and ``sources``."""
    if not store.has("memories"):
        return []
    table = store.memories()
    where = memory_filter(user_id, kinds, as_of)
    q: LanceQueryBuilder
    if mode == "vector":
        vector = query_embedder(embedder).embed([query])[0]
        dense = cast(LanceVectorQueryBuilder, table.search(vector, vector_column_name="vector"))
        q = dense.distance_type("cosine")
        score_column, to_score = "_distance", lambda d: 1.0 - float(d)
    else:
        q = table.search(query, query_type="fts", fts_columns="text")
        score_column, to_score = "_score", float
    rows = q.where(where, prefilter=True).select(RESULT_COLUMNS).limit(k).to_arrow().to_pylist()
    for row in rows:
        row["score"] = to_score(row.pop(score_column))
    return rows


def list_memories(
    store: TenantStore,
    user_id: str | None = None,
    *,
    kinds: list[str] | None = None,
    current_only: bool = False,
    limit: int = 100,
    offset: int = 0,
) -> list[dict[str, Any]]:
    """Memories (without vectors) ordered by user and time, a page at a time."""
    if not store.has("memories"):
        return []
    parts = []
    if user_id is not None:
        parts.append(f"user_id = {quote(validate_user_id(user_id))}")
    if kinds:
        parts.append(in_list("kind", kinds))
    if current_only:
        parts.append("valid_to IS NULL")
    columns = [*RESULT_COLUMNS, "session_id", "keyphrases", "context", "channel", "role"]
    q = store.memories().search()
    if parts:
        q = q.where(" AND ".join(parts))
    table = q.select(columns).limit(None).to_arrow()
    table = table.sort_by([("user_id", "ascending"), ("valid_from", "ascending"), ("memory_id", "ascending")])
    return table.slice(offset, limit).to_pylist()


def get_memory(store: TenantStore, memory_id: str) -> dict[str, Any] | None:
    if not store.has("memories"):
        return None
    rows = store.memories().search().where(f"memory_id = {quote(memory_id)}").limit(1).to_arrow()
    if rows.num_rows == 0:
        return None
    return rows.drop_columns(["vector"]).to_pylist()[0]


def list_quarantine(store: TenantStore, *, limit: int = 100, offset: int = 0) -> list[dict[str, Any]]:
    """Quarantined rows, newest first."""
    if not store.has("quarantine"):
        return []
    table = store.quarantine().search().limit(None).to_arrow()
    table = table.sort_by([("received_at", "descending"), ("origin", "ascending"), ("line", "ascending")])
    return table.slice(offset, limit).to_pylist()
