"""Candidate retrieval: the query understood and embedded, then run against LanceDB.

Three ways to fetch a user's candidate memories, each prefiltered inside LanceDB (the filter
runs before the top-k, so a busy neighbour can never crowd a user's own memories out):

- ``vector``: cosine nearest neighbours of the query embedding;
- ``keyword``: BM25 over the table's native full-text index on ``text``;
- ``hybrid``: both legs at once (the BM25 leg overlaps the query embedding), fused by
  reciprocal rank or by a weighted sum of normalized scores (``fuse``).

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
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, Literal, NamedTuple, cast

import numpy as np
import pyarrow as pa
from lancedb.query import FullTextOperator, MatchQuery
from lancedb.table import AsyncTable

from cluster import EngramError, RetrievalSettings, validate_user_id
from memory.dates import DateMention, resolve_dates
from memory.embed import Embedder, get_embedder
from memory.stages import vectors_of
from memory.store import READS, in_list, quote

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


@lru_cache(maxsize=4)
def query_embedder(name: str, int8: bool = False) -> Embedder:
    """The embedder for queries (and other single texts), loaded once per process: on one
    thread, which embeds a query as fast as two and leaves the other cores to the keyword legs
    running beside it; ``int8``: its int8 form (``RetrievalSettings.query_int8``)."""
    return get_embedder(name, threads=1, int8=int8)


def query_vector(model: str, text: str, cache_size: int = 4_096, *, int8: bool = False) -> np.ndarray:
    """The (cached, read-only) embedding of ``text`` by the registered embedder ``model``."""
    if cache_size != QUERY_CACHE.maxsize:
        QUERY_CACHE.resize(cache_size)
    key = f"{model}:int8" if int8 else model
    return QUERY_CACHE.get(key, text, lambda: query_embedder(model, int8).embed([text])[0])


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


_COLUMNS = [*RESULT_COLUMNS, "vector"]


async def dense_leg(table: AsyncTable, vector: np.ndarray, where: str, limit: int) -> pa.Table:
    """The ``limit`` nearest memories by cosine distance (``_distance``), prefiltered by ``where``."""
    query = table.query().nearest_to(vector).column("vector").distance_type("cosine").where(where)
    return await query.select([*_COLUMNS, "_distance"]).limit(limit).to_arrow()


async def keyword_leg(table: AsyncTable, keywords: str, where: str, limit: int) -> pa.Table:
    """The ``limit`` best BM25 matches (``_score``) of ``keywords``, prefiltered by ``where``."""
    query = table.query().nearest_to_text(_match(keywords)).where(where)
    return await query.select([*_COLUMNS, "_score"]).limit(limit).to_arrow()


def fetch(
    table: AsyncTable,
    plan: QueryPlan,
    embed: Callable[[], np.ndarray] | None,
    wheres: Sequence[str],
    mode: Literal["vector", "keyword", "hybrid"],
    limit: int,
    settings: RetrievalSettings,
) -> Candidates:
    """Up to ``limit`` candidates per prefiltered query, one per filter in ``wheres``, merged.

    ``embed`` gives the query vector. All legs of all filters run at once on ``READS``; the
    keyword legs start first, so they run while this thread embeds the query. Every row gets
    ``scores`` from the legs that ran: ``dense`` (cosine similarity, computed for every row
    when there is a query vector), ``bm25`` (the BM25 score; 0 when the keyword leg did not
    return the row) and, for hybrid, ``fused`` (see ``fuse``). ``score`` is the one the query
    ranked by. A hybrid query without keywords is a vector query.
    """
    keywords = plan.keywords if mode != "vector" else ""
    matches = [READS.submit(keyword_leg(table, keywords, w, limit)) for w in wheres] if keywords else []
    vector = embed() if embed is not None and mode != "keyword" else None
    nearest = [READS.submit(dense_leg(table, vector, w, limit)) for w in wheres] if vector is not None else []
    dense = [f.result() for f in nearest]
    matched = [f.result() for f in matches]
    found = Candidates()
    for i in range(len(wheres)):
        if not dense:
            one = _candidates(matched[i], None, "bm25") if matched else Candidates()
        elif not matched:  # vector mode, or no keywords
            one = _candidates(dense[i], vector, "dense")
        else:
            one = fuse(
                _candidates(dense[i], vector, "dense"),
                _candidates(matched[i], vector, "bm25"),
                settings,
                limit,
            )
        found = found.merge(one) if i else one
    return found


def fuse(dense: Candidates, bm25: Candidates, settings: RetrievalSettings, limit: int) -> Candidates:
    """The union of both legs by ``memory_id``, scored ``fused`` and cut to ``limit``.

    ``rrf``: reciprocal rank fusion, the sum over legs of 1 / (rrf_k + rank), rank from 1,
    scaled so that first in both legs is 1. ``linear``: dense_weight times the min-max
    normalized cosine similarity plus the rest times the min-max normalized BM25 score (a leg
    whose scores are all equal counts them as 1); a leg that missed a row adds 0.
    """
    legs = [(settings.dense_weight, "dense", dense.rows), (1 - settings.dense_weight, "bm25", bm25.rows)]
    by_id: dict[str, Row] = {}
    fused: dict[str, float] = {}
    for weight, name, rows in legs:
        parts = _rrf(len(rows), settings.rrf_k) if settings.fusion == "rrf" else _minmax(rows, name) * weight
        for row, part in zip(rows, parts, strict=True):
            key = row["memory_id"]
            mine = by_id.setdefault(key, row)
            if mine is not row:
                mine["scores"]["bm25"] = row["scores"]["bm25"]
            mine["scores"].setdefault("bm25", 0.0)
            fused[key] = fused.get(key, 0.0) + float(part)
    for key, row in by_id.items():
        row["scores"]["fused"] = min(1.0, fused[key])
        row["score"] = row["scores"]["fused"]
    ordered = sorted(by_id.values(), key=lambda r: (-r["score"], -r["scores"].get("dense", 0.0)))
    return Candidates(ordered[:limit])


def _rrf(n: int, k: int) -> np.ndarray:
    """Reciprocal rank fusion terms of ranks 1..n, scaled so that first in two legs sums to 1."""
    return (k + 1) / 2 / (k + np.arange(1, n + 1))


def _minmax(rows: list[Row], name: str) -> np.ndarray:
    scores = np.array([r["scores"][name] for r in rows], dtype=np.float64)
    if scores.size == 0 or scores.max() == scores.min():
        return np.ones_like(scores) if scores.size and scores.max() > 0 else np.zeros_like(scores)
    return (scores - scores.min()) / (scores.max() - scores.min())


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


def _candidates(table: pa.Table, query: np.ndarray | None, kind: str) -> Candidates:
    """Rows of a LanceDB result with their ``scores`` and, as ``score``, the one they were ranked by."""
    if table.num_rows == 0:
        return Candidates()
    vectors = vectors_of(table["vector"])
    rows = table.select(RESULT_COLUMNS).to_pylist()
    bm25 = table["_score"].to_pylist() if "_score" in table.column_names else None
    dense = vectors @ query if query is not None else None
    for i, row in enumerate(rows):
        row["vector"] = vectors[i]
        scores: dict[str, float] = {}
        if dense is not None:
            scores["dense"] = float(dense[i])
        if bm25 is not None:
            scores["bm25"] = float(bm25[i] or 0.0)
        row["scores"] = scores
        row["score"] = scores[kind]
    return Candidates(rows)
