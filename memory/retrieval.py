"""Candidate retrieval: the query understood and embedded, then run against LanceDB.

Three ways to fetch a user's candidate memories, each prefiltered inside LanceDB (the filter
runs before the top-k, so a busy neighbour can never crowd a user's own memories out):

- ``vector``: cosine nearest neighbours of the query embedding;
- ``keyword``: BM25 over the table's native full-text index on ``text``;
- ``hybrid``: both legs in one LanceDB hybrid query, fused by a LanceDB reranker
  (``RRFReranker`` or ``LinearCombinationReranker``).

Query understanding: dates named in the query ("last summer", "in May 2023") are resolved
by ``memory.dates.resolve_dates`` into spans; they widen the validity filter to facts that
were valid during the span, add candidates from inside the span, and leave the keyword
query (the BM25 leg should not match on "May" or "2023"). Query embeddings are cached per
process, keyed by model and text.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, Literal, NamedTuple, cast

import numpy as np
import pyarrow as pa
from lancedb.query import FullTextOperator, LanceHybridQueryBuilder, LanceVectorQueryBuilder, MatchQuery
from lancedb.rerankers import LinearCombinationReranker, Reranker, RRFReranker
from lancedb.table import Table

from cluster.errors import EngramError
from cluster.paths import validate_user_id
from cluster.settings import RetrievalSettings
from memory.dates import DateMention, resolve_dates
from memory.embed import Embedder, get_embedder
from memory.stages import vectors_of
from memory.store import in_list, quote

Mode = Literal["vector", "keyword", "hybrid", "ranked"]
MODES: tuple[Mode, ...] = ("vector", "keyword", "hybrid", "ranked")
Row = dict[str, Any]

# Memory columns a search result carries (the vector only until ranking is done with it).
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
    "event_at",
    "valid_from",
    "valid_to",
]
_WORD = re.compile(r"\w+")


class SearchError(EngramError, ValueError):
    """A search request is invalid (unknown mode, k out of range, empty query)."""


# --- query embeddings -----------------------------------------------------------------------


class CacheInfo(NamedTuple):
    hits: int
    misses: int
    size: int
    maxsize: int


class EmbeddingCache:
    """A thread-safe LRU of query embeddings keyed by (model, text)."""

    def __init__(self, maxsize: int) -> None:
        self.maxsize = maxsize
        self._items: OrderedDict[tuple[str, str], np.ndarray] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, model: str, text: str, compute: Callable[[], np.ndarray]) -> np.ndarray:
        key = (model, text)
        with self._lock:
            found = self._items.get(key)
            if found is not None:
                self._items.move_to_end(key)
                self.hits += 1
                return found
            self.misses += 1
        vector = compute()
        vector.setflags(write=False)
        with self._lock:
            if self.maxsize > 0:
                self._items[key] = vector
                while len(self._items) > self.maxsize:
                    self._items.popitem(last=False)
        return vector

    def resize(self, maxsize: int) -> None:
        with self._lock:
            self.maxsize = maxsize
            while len(self._items) > maxsize:
                self._items.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self.hits = self.misses = 0

    def info(self) -> CacheInfo:
        with self._lock:
            return CacheInfo(self.hits, self.misses, len(self._items), self.maxsize)


QUERY_CACHE = EmbeddingCache(maxsize=4_096)


@lru_cache(maxsize=2)
def query_embedder(name: str) -> Embedder:
    """The embedder for queries, loaded once per process."""
    return get_embedder(name)


def query_vector(model: str, text: str, cache_size: int = 4_096) -> np.ndarray:
    """The (cached, read-only) embedding of ``text`` by the registered embedder ``model``."""
    if cache_size != QUERY_CACHE.maxsize:
        QUERY_CACHE.resize(cache_size)
    return QUERY_CACHE.get(model, text, lambda: query_embedder(model).embed([text])[0])


# --- query understanding --------------------------------------------------------------------


@dataclass(frozen=True)
class QueryPlan:
    """What a query asks for: the text to embed, the BM25 terms, and the time spans it names."""

    text: str
    keywords: str
    spans: tuple[DateMention, ...] = ()

    @property
    def since(self) -> datetime | None:
        """Start of the earliest span named in the query."""
        return min((s.start for s in self.spans), default=None)


def understand(query: str, now: datetime, *, dates: bool) -> QueryPlan:
    """Resolve the dates named in ``query`` against ``now`` (when ``dates``), and its BM25 terms."""
    spans = tuple(resolve_dates(query, now)) if dates else ()
    rest = query
    for mention in spans:
        rest = rest.replace(mention.phrase, " ", 1)
    return QueryPlan(text=query, keywords=" ".join(_WORD.findall(rest)), spans=spans)


# --- the prefilter --------------------------------------------------------------------------


def utc(at: datetime | None) -> datetime | None:
    """``at`` in UTC; a naive datetime is taken as UTC."""
    if at is None:
        return None
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def timestamp(at: datetime) -> str:
    """A LanceDB (DataFusion) timestamp literal of ``at``, to the microsecond, in UTC."""
    at = cast(datetime, utc(at))
    return f"TIMESTAMP '{at:%Y-%m-%d %H:%M:%S.%f}'"


@dataclass(frozen=True)
class Scope:
    """Which of a user's memories a search may see.

    Current memories by default; with ``as_of``, those valid at that time; with
    ``include_superseded``, superseded ones too. ``since`` (a date named in the query) also
    admits memories superseded after it. Memories past their ``expires_at`` never count.
    """

    user_id: str
    at: datetime
    kinds: tuple[str, ...] | None = None
    as_of: datetime | None = None
    include_superseded: bool = False
    since: datetime | None = None

    def where(self) -> str:
        at = timestamp(self.at)
        parts = [f"user_id = {quote(validate_user_id(self.user_id))}"]
        if self.kinds is not None:
            parts.append(in_list("kind", self.kinds))
        if self.as_of is not None:
            parts.append(f"valid_from <= {at}")
        if not self.include_superseded:
            # Valid at ``at``; or, for a query naming a past time, at some point since then.
            after = timestamp(min(self.since, self.at)) if self.since is not None else at
            parts.append(f"(valid_to IS NULL OR valid_to > {after})")
        parts.append(f"(expires_at IS NULL OR expires_at > {at})")
        return " AND ".join(parts)


def within(spans: tuple[DateMention, ...]) -> str:
    """Filter of memories that happened (or were stated) inside one of ``spans``."""
    parts = []
    for span in spans:
        start, end = timestamp(span.start), timestamp(span.end)
        parts.append(
            f"(event_at >= {start} AND event_at < {end}) OR (valid_from >= {start} AND valid_from < {end})"
        )
    return "(" + " OR ".join(f"({p})" for p in parts) + ")"


# --- LanceDB queries ------------------------------------------------------------------------


@dataclass
class Candidates:
    """Candidate rows (with ``vector`` as numpy) and their raw scores, best first."""

    rows: list[Row] = field(default_factory=list)

    def merge(self, other: Candidates) -> Candidates:
        """Union by memory_id; a memory found twice keeps the higher of each score."""
        by_id = {r["memory_id"]: r for r in self.rows}
        for row in other.rows:
            mine = by_id.get(row["memory_id"])
            if mine is None:
                by_id[row["memory_id"]] = row
                continue
            for name, value in row["scores"].items():
                mine["scores"][name] = max(mine["scores"].get(name, 0.0), value)
            mine["score"] = max(mine["score"], row["score"])
        merged = sorted(by_id.values(), key=lambda r: -r["score"])
        return Candidates(merged)


def reranker(settings: RetrievalSettings) -> Reranker:
    """The LanceDB reranker that fuses the vector and BM25 legs."""
    if settings.fusion == "linear":
        return LinearCombinationReranker(weight=settings.dense_weight, return_score="all")
    return RRFReranker(K=settings.rrf_k, return_score="all")


def fetch(
    table: Table,
    plan: QueryPlan,
    vector: np.ndarray | None,
    where: str,
    mode: Literal["vector", "keyword", "hybrid"],
    limit: int,
    settings: RetrievalSettings,
) -> Candidates:
    """Up to ``limit`` candidates of one prefiltered LanceDB query.

    Every row gets ``scores`` from the legs that ran: ``dense`` (cosine similarity, computed
    for every row when there is a query vector), ``bm25`` (the BM25 score; 0 when the keyword
    leg did not return the row) and, for hybrid, ``fused`` (the reranker's score; RRF scaled so
    that first in both legs is 1). ``score`` is the one the query ranked by.
    """
    keywords = _match(plan.keywords) if plan.keywords else None
    if mode == "keyword" or vector is None:
        if keywords is None:
            return Candidates()
        fts = table.search(keywords, query_type="fts")
        result = fts.where(where, prefilter=True).select([*RESULT_COLUMNS, "vector", "_score"])
        return _candidates(result.limit(limit).to_arrow(), vector, "bm25")
    if mode == "vector" or keywords is None:
        dense = cast(LanceVectorQueryBuilder, table.search(vector, vector_column_name="vector"))
        query = dense.distance_type("cosine").where(where, prefilter=True)
        result = query.select([*RESULT_COLUMNS, "vector", "_distance"]).limit(limit).to_arrow()
        return _candidates(result, vector, "dense")
    hybrid = cast(
        LanceHybridQueryBuilder,
        table.search(query_type="hybrid", vector_column_name="vector", fts_columns="text"),
    )
    fused = (
        hybrid.vector(vector)
        .text(keywords)
        .distance_type("cosine")
        .where(where, prefilter=True)
        .rerank(reranker(settings))
        .limit(limit)
        .to_arrow()
    )
    scale = (settings.rrf_k + 1) / 2 if settings.fusion == "rrf" else 1.0
    return _candidates(fused, vector, "fused", scale)


def _match(keywords: str) -> MatchQuery:
    """BM25 over ``text`` for any of the words (no query syntax: words only, exact terms)."""
    return MatchQuery(
        keywords,
        "text",
        boost=1.0,
        fuzziness=0,
        max_expansions=50,
        operator=FullTextOperator.OR,
        prefix_length=0,
        document_granularity=None,
    )


def _candidates(table: pa.Table, query: np.ndarray | None, kind: str, scale: float = 1.0) -> Candidates:
    """Rows of a LanceDB result with their ``scores`` and, as ``score``, the one they were ranked by."""
    if table.num_rows == 0:
        return Candidates()
    vectors = vectors_of(table["vector"])
    rows = table.select(RESULT_COLUMNS).to_pylist()
    bm25 = table["_score"].to_pylist() if "_score" in table.column_names else None
    fused = table["_relevance_score"].to_pylist() if kind == "fused" else None
    dense = vectors @ query if query is not None else None
    for i, row in enumerate(rows):
        row["vector"] = vectors[i]
        scores: dict[str, float] = {}
        if dense is not None:
            scores["dense"] = float(dense[i])
        if bm25 is not None:
            scores["bm25"] = float(bm25[i] or 0.0)
        if fused is not None:
            scores["fused"] = min(1.0, float(fused[i] or 0.0) * scale)
        row["scores"] = scores
        row["score"] = scores[kind]
    return Candidates(rows)
