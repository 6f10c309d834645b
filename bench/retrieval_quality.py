"""Retrieval quality on the synthetic dataset: dense, BM25, hybrid and the full ranking, in one run.

Generates seeded synthetic users (``synthetic.generate``), ingests and builds them with
the real pipeline on a local Ray, then asks every held-out question (with its ``as_of`` when
it has one) in each configuration and prints JSON: recall@5/10/25 of the evidence signals (a
question is a hit at k when any top-k result's ``sources`` holds any of its evidence signal
ids), MRR over the top 25, the same two counting only results that are not session
summaries (``strict_*``: a summary cites every signal of its session, so it "hits" without
saying the answer), the mean tokens (``approx_tokens``) of the top 10 texts and the median
query latency. Besides the four modes it runs ablations of the ranking defaults, and
asks the past-tense questions once more without ``as_of``, leaving the date in the question
to query understanding.

    .venv/bin/python -m bench.retrieval_quality --seed 7 --users 30
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from cluster import MEMORY_KINDS, RetrievalSettings, Settings, Storage, load_settings
from memory.retrieval import Mode
from synthetic import Question, SyntheticData

CUTOFFS = (5, 10, 25)
TENANT = "bench"


@dataclass(frozen=True)
class Config:
    name: str
    mode: Mode
    changes: dict[str, Any]
    what: str


def configs() -> list[Config]:
    """The four modes with the default settings, then one ablation each of the ranking choices."""
    return [
        Config("dense", "vector", {}, "cosine similarity only"),
        Config("bm25", "keyword", {}, "BM25 only"),
        Config("hybrid", "hybrid", {}, "vector + BM25 legs at once, RRF-fused"),
        Config("ranked", "ranked", {}, "the full ranking with the default settings"),
        Config(
            "dense_float_query",
            "vector",
            {"query_int8": False},
            "dense, the query embedded by the full model",
        ),
        Config(
            "ranked_float_query",
            "ranked",
            {"query_int8": False},
            "ranked, the query embedded by the full model",
        ),
        Config("hybrid_linear", "hybrid", {"fusion": "linear"}, "hybrid, linear fusion of min-max scores"),
        Config("ranked_no_mmr", "ranked", {"mmr_lambda": 1.0}, "ranked without MMR"),
        Config("ranked_mmr_0.8", "ranked", {"mmr_lambda": 0.8}, "ranked, weaker MMR"),
        Config("ranked_no_recency", "ranked", {"recency_weight": 0.0}, "ranked without recency"),
        Config(
            "ranked_facts_decay",
            "ranked",
            {"half_life_days": dict.fromkeys(MEMORY_KINDS, 14.0)},
            "ranked, facts and preferences decay like episodes instead of staying fresh while valid",
        ),
        Config("ranked_no_importance", "ranked", {"importance_weight": 0.0}, "ranked without importance"),
        Config("ranked_no_support", "ranked", {"support_weight": 0.0}, "ranked without support"),
        Config("ranked_support_0.2", "ranked", {"support_weight": 0.2}, "ranked, support weighted 4x"),
        Config(
            "ranked_relevance_only",
            "ranked",
            {"recency_weight": 0.0, "importance_weight": 0.0, "support_weight": 0.0, "mmr_lambda": 1.0},
            "ranked by relevance (and dates in the query) alone",
        ),
    ]


# Past-tense questions asked without as_of: only the date in the question can find the old value.
DATE_CONFIGS = [
    Config("hybrid", "hybrid", {}, "hybrid (no query understanding)"),
    Config("ranked", "ranked", {}, "ranked, dates in the query resolved"),
    Config("ranked_no_time_boost", "ranked", {"temporal_weight": 0.0}, "ranked, dates widen validity only"),
    Config("ranked_no_query_dates", "ranked", {"query_dates": False}, "ranked, dates in the query ignored"),
]


def _fingerprint(data: SyntheticData) -> str:
    digest = hashlib.sha256()
    for row in data.signals:
        digest.update(json.dumps(row, sort_keys=True, default=str).encode())
    return digest.hexdigest()


def _prepare(data: SyntheticData, settings: Settings) -> dict[str, Any]:
    """Ingest and build ``data`` into ``settings.storage_root`` unless that store already holds it."""
    import ray

    from memory import TenantStore, build, ingest_rows

    storage, marker = Storage.of(settings), "bench-fingerprint"
    fingerprint = _fingerprint(data).encode()
    if storage.exists(marker) and storage.read_bytes(marker) == fingerprint:
        return {"reused_store": True}
    store = TenantStore(storage, TENANT)
    started = time.perf_counter()
    ingest_rows(store, data.signals, settings.ingest, origin="bench")
    ray.init("local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    ray.data.DataContext.get_current().enable_progress_bars = False
    try:
        report = build(TENANT, settings)
    finally:
        ray.shutdown()
    storage.write_bytes(marker, fingerprint)
    return {
        "reused_store": False,
        "build_seconds": round(time.perf_counter() - started, 1),
        "memories": report.memories_written,
        "by_kind": report.by_kind,
    }


@dataclass(frozen=True)
class Outcome:
    rank: int | None  # 0-based rank of the first result backed by an evidence signal
    strict_rank: int | None  # the same, counting only results that are not session summaries
    top10_tokens: int
    seconds: float


def ask(
    store: Any,
    questions: list[Question],
    config: Config,
    settings: RetrievalSettings,
    now: datetime,
    *,
    use_as_of: bool = True,
    embedder: str = "all-minilm-l6-v2",
) -> list[Outcome]:
    from memory import approx_tokens, search

    cfg = settings.model_copy(update=config.changes)
    outcomes = []
    for q in questions:
        evidence = set(q.evidence_signal_ids)
        started = time.perf_counter()
        results = search(
            store,
            q.user_id,
            q.question,
            k=max(CUTOFFS),
            mode=config.mode,
            as_of=q.as_of if use_as_of else None,
            now=now,
            settings=cfg,
            embedder=embedder,
        )
        seconds = time.perf_counter() - started
        backed = [i for i, r in enumerate(results) if evidence & set(r["sources"])]
        strict = [i for i in backed if results[i]["kind"] != "summary"]
        tokens = sum(approx_tokens(r["text"]) for r in results[:10])
        outcomes.append(Outcome(min(backed, default=None), min(strict, default=None), tokens, seconds))
    return outcomes


def summarize(outcomes: list[Outcome]) -> dict[str, Any]:
    n = max(1, len(outcomes))
    ranks = [o.rank for o in outcomes]
    strict = [o.strict_rank for o in outcomes]
    return {
        **{f"recall@{c}": round(sum(r is not None and r < c for r in ranks) / n, 4) for c in CUTOFFS},
        "mrr": round(sum(1 / (r + 1) for r in ranks if r is not None) / n, 4),
        "strict_recall@10": round(sum(r is not None and r < 10 for r in strict) / n, 4),
        "strict_mrr": round(sum(1 / (r + 1) for r in strict if r is not None) / n, 4),
        "top10_tokens": round(statistics.fmean(o.top10_tokens for o in outcomes), 1) if outcomes else 0.0,
        "p50_ms": round(1000 * statistics.median(o.seconds for o in outcomes), 1) if outcomes else 0.0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--users", type=int, default=30)
    parser.add_argument("--sessions", type=int, default=10, help="chat sessions per user")
    parser.add_argument("--turns", type=int, default=10, help="chat messages per session")
    parser.add_argument("--store", help="storage root to build into and reuse (default: a fresh temp dir)")
    parser.add_argument("--only", nargs="*", help="run only these configurations (names)")
    args = parser.parse_args()
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")

    from memory import TenantStore
    from synthetic import generate

    data = generate(
        users=args.users,
        sessions_per_user=args.sessions,
        turns_per_session=args.turns,
        seed=args.seed,
        malformed_rate=0.0,
    )
    scratch = tempfile.TemporaryDirectory(prefix="engram-retrieval-")  # the store unless --store
    settings = load_settings(storage_root=args.store or scratch.name)
    prepared = _prepare(data, settings)
    store = TenantStore(Storage.of(settings), TENANT)
    # The questions are asked right after the users' last signal: that is "now" for recency.
    last = max(datetime.fromisoformat(str(r["occurred_at"]).replace("Z", "+00:00")) for r in data.signals)
    now = last + timedelta(hours=1)
    past = [q for q in data.questions if q.as_of is not None]
    wanted = set(args.only) if args.only else None
    model = settings.embedding.model
    results: dict[str, Any] = {}
    for config in configs():
        if wanted is None or config.name in wanted:
            outcomes = ask(store, data.questions, config, settings.retrieval, now, embedder=model)
            results[config.name] = {
                "what": config.what,
                "all": summarize(outcomes),
                "current": summarize(
                    [o for o, q in zip(outcomes, data.questions, strict=True) if not q.as_of]
                ),
                "as_of": summarize([o for o, q in zip(outcomes, data.questions, strict=True) if q.as_of]),
            }
    dates: dict[str, Any] = {}
    for config in DATE_CONFIGS:
        if wanted is None or f"dates:{config.name}" in wanted:
            outcomes = ask(store, past, config, settings.retrieval, now, use_as_of=False, embedder=model)
            dates[config.name] = {"what": config.what, **summarize(outcomes)}
    print(
        json.dumps(
            {
                "dataset": {
                    "seed": args.seed,
                    "users": args.users,
                    "signals": len(data.signals),
                    "questions": len(data.questions),
                    "questions_with_as_of": len(past),
                    **prepared,
                },
                "defaults": settings.retrieval.model_dump(),
                "results": results,
                "past_questions_without_as_of": dates,
            },
            indent=2,
        )
    )
    scratch.cleanup()


if __name__ == "__main__":
    main()
