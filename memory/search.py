"""The one way to search a user's memories: ``search``, plus listing and reading them.

``search`` runs in four modes over a tenant's memories table, always prefiltered by user,
kind and validity inside LanceDB:

- ``"vector"``: cosine similarity of the query embedding;
- ``"keyword"``: BM25 on the native full-text index;
- ``"hybrid"``: both, fused (reciprocal rank fusion by default);
- ``"ranked"`` (the default): hybrid candidates, then dates in the query, recency,
  importance and support, then MMR diversity (``memory.ranking``).

Each result holds ``memory_id``, ``text``, ``kind``, ``score``, ``scores`` (the components of
the score), ``sources`` (signal ids), ``valid_from`` and ``valid_to``, and also ``user_id``,
``slot``, ``value``, ``importance``, ``confidence``, ``support`` and ``event_at``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import numpy as np

from cluster import MEMORY_KINDS, MemoryKind, RetrievalSettings, validate_user_id
from memory import ranking
from memory.retrieval import (
    MODES,
    RESULT_COLUMNS,
    Mode,
    Scope,
    SearchError,
    fetch,
    query_vector,
    understand,
    utc,
    within,
)
from memory.stages import vectors_of
from memory.store import TenantStore, in_list, quote

MAX_K = 1_000
_DEFAULTS = RetrievalSettings()


def search(
    store: TenantStore,
    user_id: str,
    query: str,
    *,
    k: int = 10,
    mode: Mode = "ranked",
    kinds: list[MemoryKind] | None = None,
    as_of: datetime | None = None,
    include_superseded: bool = False,
    now: datetime | None = None,
    settings: RetrievalSettings | None = None,
    embedder: str = "all-minilm-l6-v2",
) -> list[dict[str, Any]]:
    """Top ``k`` memories of ``user_id`` for ``query``, best first.

    ``kinds`` limits the memory kinds; ``as_of`` returns what was valid at that time (and
    known by then) instead of what is current; ``include_superseded`` also returns memories
    a newer one replaced. ``now`` (default: the current time) is the reference for dates in
    the query and, without ``as_of``, for recency. ``embedder`` must be the model that built
    the memories (``Settings.embedding.model``); ``settings`` defaults to ``Settings().retrieval``.
    """
    if mode not in MODES:
        raise SearchError(f"mode must be one of {', '.join(MODES)}, got {mode!r}", param="mode")
    if not 1 <= k <= MAX_K:
        raise SearchError(f"k must be between 1 and {MAX_K}, got {k}", param="k")
    if not query.strip():
        raise SearchError("query must not be empty", param="query")
    validate_user_id(user_id)
    unknown = sorted(set(kinds or ()) - set(MEMORY_KINDS))
    if unknown:
        raise SearchError(
            f"unknown memory kinds {unknown}; valid kinds: {', '.join(MEMORY_KINDS)}", param="kinds"
        )
    if not store.has("memories"):
        return []
    cfg = settings or _DEFAULTS
    now = utc(now) or datetime.now(UTC)
    as_of = utc(as_of)
    at = as_of or now
    plan = understand(query, now, dates=mode == "ranked" and cfg.query_dates)
    scope = Scope(
        user_id,
        at,
        kinds=tuple(kinds) if kinds else None,
        as_of=as_of,
        include_superseded=include_superseded,
        since=plan.since,
    )

    def embed() -> np.ndarray:
        return query_vector(embedder, plan.text, cfg.query_cache_size, int8=cfg.query_int8)

    table = store.reader("memories")
    wheres = [scope.where()]
    if mode in ("vector", "keyword"):
        return [_result(r) for r in fetch(table, plan, embed, wheres, mode, k, cfg).rows]
    if mode == "ranked" and plan.spans:  # also the best candidates from inside the named dates
        wheres.append(f"{wheres[0]} AND {within(plan.spans)}")
    found = fetch(table, plan, embed, wheres, "hybrid", max(cfg.candidates, k), cfg)
    if mode == "hybrid":
        return [_result(r) for r in found.rows[:k]]
    return [_result(r) for r in ranking.rank(found.rows, plan, cfg, at, k)]


def _result(row: dict[str, Any]) -> dict[str, Any]:
    row.pop("vector", None)
    row["score"] = float(row["score"])
    return row


def list_memories(
    store: TenantStore,
    user_id: str | None = None,
    *,
    kinds: list[MemoryKind] | None = None,
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


def get_memory(store: TenantStore, memory_id: str, *, with_vector: bool = False) -> dict[str, Any] | None:
    """One memory by id (its ``vector`` as numpy only when asked), or None."""
    if not store.has("memories"):
        return None
    rows = store.memories().search().where(f"memory_id = {quote(memory_id)}").limit(1).to_arrow()
    if rows.num_rows == 0:
        return None
    row = rows.drop_columns(["vector"]).to_pylist()[0]
    if with_vector:
        row["vector"] = vectors_of(rows["vector"])[0]
    return row


def list_quarantine(store: TenantStore, *, limit: int = 100, offset: int = 0) -> list[dict[str, Any]]:
    """Quarantined rows, newest first."""
    if not store.has("quarantine"):
        return []
    table = store.quarantine().search().limit(None).to_arrow()
    table = table.sort_by([("received_at", "descending"), ("origin", "ascending"), ("line", "ascending")])
    return table.slice(offset, limit).to_pylist()
