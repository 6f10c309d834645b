"""Ranking on top of retrieval: relevance, recency, importance, support, time match, then MMR.

Each candidate gets components in [0, 1]:

- ``relevance``: ``w * cosine + (1 - w) * bm25 / (bm25 + bm25_half)`` with ``w`` the
  ``dense_weight``: absolute, so it means the same for every query and equal texts tie
  (a rank fusion would split them; min-max scaling would give a lone BM25 hit 0);
- ``recency``: ``0.5 ** (age / half_life)`` with a half-life per kind, age measured from the
  memory's ``valid_from`` to the search's reference time (``as_of`` or now). Kinds without a
  half-life (facts and preferences by default) stay at 1: a fact is as fresh as it is valid,
  and validity (``valid_to``) already retires the old ones;
- ``importance``: the memory's own importance;
- ``support``: ``log(support) / log(saturation)``, capped at 1 (one signal counts 0);
- ``temporal`` (only when the query names a time): 1 when the memory happened inside the
  span (its ``event_at`` or ``valid_from``), or, for facts and preferences, was valid during
  it; else halving every quarter span length of distance.

``score`` is their weighted mean. Maximal marginal relevance then picks the top ``k``:
each next result maximizes ``lambda * score' - (1 - lambda) * max cosine to those above``
(``score'`` min-max scaled over the candidates), so near-duplicates (a fact and the episode
it came from, a repeated statement) do not fill the list. ``scores`` carries every component,
the raw ``dense`` cosine and ``bm25`` score, and ``redundancy`` (that max cosine).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime, timedelta

import numpy as np

from cluster import SLOTTED_KINDS, MemoryKind, RetrievalSettings
from memory.dates import DateMention
from memory.retrieval import QueryPlan, Row

_DAY = timedelta(days=1)


def recency(row: Row, at: datetime, half_life_days: Mapping[MemoryKind, float]) -> float:
    """Halves every half-life of the memory's kind since its ``valid_from``; 1 without one."""
    days = half_life_days.get(row["kind"])
    if days is None:
        return 1.0
    age = (at - row["valid_from"]) / _DAY
    return 0.5 ** (max(0.0, age) / days)


def support(row: Row, saturation: int) -> float:
    """0 for a single signal, 1 from ``saturation`` signals on, logarithmic in between."""
    if saturation <= 1:
        return 1.0
    return min(1.0, math.log(max(1, int(row["support"]))) / math.log(saturation))


def temporal(row: Row, span: DateMention) -> float:
    """How well the memory's time matches ``span``: 1 inside, halving every quarter span (at
    least a day) away, so "last summer" still half-counts mid-September but not October."""
    start, end = span.start, span.end
    if row["kind"] in SLOTTED_KINDS:
        valid_to = row["valid_to"]
        if row["valid_from"] < end and (valid_to is None or valid_to > start):
            return 1.0
    points = [t for t in (row.get("event_at"), row["valid_from"]) if t is not None]
    if any(start <= t < end for t in points):
        return 1.0
    gap = min(start - t if t < start else t - end for t in points)
    return 0.5 ** (gap / max((end - start) / 4, _DAY))


def relevance(scores: dict[str, float], settings: RetrievalSettings) -> float:
    """Cosine similarity and saturated BM25, blended: the same scale for every query."""
    dense = min(1.0, max(0.0, scores.get("dense", 0.0)))
    bm25 = scores.get("bm25", 0.0)
    keyword = bm25 / (bm25 + settings.bm25_half) if bm25 > 0 else 0.0
    return settings.dense_weight * dense + (1 - settings.dense_weight) * keyword


def components(row: Row, plan: QueryPlan, settings: RetrievalSettings, at: datetime) -> dict[str, float]:
    parts = {
        "relevance": relevance(row["scores"], settings),
        "recency": recency(row, at, settings.half_life_days),
        "importance": float(row["importance"]),
        "support": support(row, settings.support_saturation),
    }
    if plan.spans:
        parts["temporal"] = max(temporal(row, span) for span in plan.spans)
    return parts


def rank(rows: list[Row], plan: QueryPlan, settings: RetrievalSettings, at: datetime, k: int) -> list[Row]:
    """The top ``k`` of ``rows`` by weighted score, diversified by MMR; sets ``score`` and ``scores``."""
    weights = {
        "relevance": settings.relevance_weight,
        "recency": settings.recency_weight,
        "importance": settings.importance_weight,
        "support": settings.support_weight,
        "temporal": settings.temporal_weight,
    }
    for row in rows:
        parts = components(row, plan, settings, at)
        total = sum(weights[name] for name in parts) or 1.0
        row["score"] = sum(weights[name] * value for name, value in parts.items()) / total
        found = row["scores"]
        row["scores"] = {"dense": found.get("dense", 0.0), "bm25": found.get("bm25", 0.0), **parts}
    rows = sorted(rows, key=lambda r: (-r["score"], r["memory_id"]))
    return mmr(rows, k, settings.mmr_lambda)


def mmr(rows: list[Row], k: int, lam: float) -> list[Row]:
    """Maximal marginal relevance over ``rows`` (sorted by ``score``), by their ``vector``s.

    Scores are min-max scaled over the candidates first: the weighted scores of a pool differ
    by a few hundredths, the cosines between memories by up to 1, and unscaled they would let
    any dissimilar filler outrank a relevant memory that merely shares its topic.
    """
    if not rows:
        return []
    vectors = np.stack([np.asarray(r["vector"], dtype=np.float32) for r in rows])
    scores = np.array([r["score"] for r in rows], dtype=np.float64)
    # Scores spread over [0, 1] like the cosine redundancy they are traded against.
    spread = float(scores.max() - scores.min())
    scores = (scores - scores.min()) / spread if spread > 0 else np.ones_like(scores)
    redundancy = np.zeros(len(rows))
    remaining = np.ones(len(rows), dtype=bool)
    picked: list[Row] = []
    while len(picked) < k and remaining.any():
        value = np.where(remaining, lam * scores - (1 - lam) * redundancy, -np.inf)
        best = int(np.argmax(value))
        remaining[best] = False
        row = rows[best]
        row["scores"]["redundancy"] = float(redundancy[best])
        picked.append(row)
        redundancy = np.maximum(redundancy, vectors @ vectors[best])
    return picked
