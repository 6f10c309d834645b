"""HTTP memory search latency against its floors, in one run.

One tenant with 100k memories over 1,000 users. Prints JSON: HTTP search p50/p95 at
concurrency 1 and 16 (query embedding included), in-process: the LanceDB hybrid query with
its embedding, and the full ranked search that the route runs, the query embedding alone (by
the embedder search uses), and a no-op Serve route as the HTTP floor.

The 100k memories get real MiniLM vectors: the distinct texts of the synthetic data are
embedded once and reused across users (search cost depends on rows, not on which vectors).

    .venv/bin/python -m bench.search_latency --memories 100000 --users 1000
"""

from __future__ import annotations

import argparse
import json
import random
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from bench.common import free_port, served, storage, timed
from cluster import MemoryKind, Settings, Storage, load_settings
from memory import TenantStore, get_embedder, query_embedder, search
from memory.ids import memory_id
from memory.stages import rows_to_table
from synthetic import generate

ADMIN = "bench-admin-key-0123456789"
# The mix of kinds in the filled table: mostly episodes, as the pipeline makes them.
KINDS: tuple[MemoryKind, ...] = ("episode", "episode", "episode", "fact", "preference", "summary")


def fill(store: TenantStore, settings: Settings, memories: int, users: int) -> tuple[list[str], int]:
    """Write ``memories`` rows over ``users`` users, in writes of 20,000 through the store's own
    upsert (which lays each write out by user, as a pipeline's writes are); returns the queries
    to ask and the distinct texts."""
    data = generate(users=60, sessions_per_user=20, turns_per_session=10, seed=3, malformed_rate=0.0)
    texts = list(dict.fromkeys(str(r["text"]) for r in data.signals if isinstance(r.get("text"), str)))[
        :12_000
    ]
    embedder = get_embedder(settings.embedding.model, batch_size=settings.embedding.batch_size)
    vectors = embedder.embed(texts)
    start = datetime(2024, 1, 1, tzinfo=UTC)
    rows: list[dict[str, Any]] = []
    table = store.memories(vectors.shape[1])
    for i in range(memories):
        j = (i * 7919) % len(texts)
        user = f"u{i % users:04d}"
        at = start + timedelta(hours=i % 8000)
        rows.append(
            {
                "memory_id": memory_id(store.tenant_id, user, "bench", str(i)),
                "tenant_id": store.tenant_id,
                "user_id": user,
                "kind": KINDS[i % len(KINDS)],
                "text": texts[j],
                "vector": vectors[j],
                "importance": 0.5,
                "confidence": 1.0,
                "support": 1,
                "sources": [f"s{i}"],
                "valid_from": at,
                "created_at": at,
                "updated_at": at,
            }
        )
        if len(rows) == 20_000 or i == memories - 1:
            chunk = rows_to_table(rows, vectors.shape[1])
            store.upsert("memories", table, chunk, "memory_id", update=True, refresh=False)
            rows = []
    store.refresh_indexes("memories", table)
    queries = [q.question for q in data.questions][:200] or texts[:200]
    return queries, len(texts)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--memories", type=int, default=100_000)
    parser.add_argument("--users", type=int, default=1_000)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument(
        "--storage", choices=["local", "s3"], default="local", help="where the storage root is"
    )
    args = parser.parse_args()

    where = storage(args.storage, "engram-search-")
    settings = load_settings(
        **where | {"api": {**where.get("api", {}), "admin_key": ADMIN, "port": free_port()}},
        quotas={"requests_per_s": 1e6, "burst": 10**6},
    )
    store = TenantStore(Storage.of(settings), "bench")
    started = time.perf_counter()
    queries, distinct = fill(store, settings, args.memories, args.users)
    fill_s = time.perf_counter() - started
    rng = random.Random(0)
    asks = [(f"u{rng.randrange(args.users):04d}", rng.choice(queries)) for _ in range(args.requests)]

    embedder = query_embedder(settings.embedding.model, settings.retrieval.query_int8)  # what search uses
    timed(lambda i: search(store, *asks[i % len(asks)], k=10, mode="hybrid"), 20)  # warm caches
    direct = timed(lambda i: search(store, *asks[i], k=10, mode="hybrid"), args.requests)
    # what the HTTP route runs: the default mode (hybrid legs, date legs, ranking, MMR)
    timed(lambda i: search(store, *asks[i % len(asks)], k=10), 20)
    direct_ranked = timed(lambda i: search(store, *asks[i], k=10), args.requests)
    embed_only = timed(lambda i: embedder.embed([asks[i][1] + " "]), args.requests)

    with served(settings) as url:
        from fastapi import FastAPI
        from ray import serve

        noop_app = FastAPI()

        @noop_app.get("/")
        def noop() -> dict[str, str]:
            return {}

        noop_deployment = serve.deployment(ray_actor_options={"num_cpus": 0.1})(serve.ingress(noop_app)())
        serve.run(noop_deployment.bind(), name="noop", route_prefix="/noop")
        with httpx.Client(base_url=url, timeout=60, limits=httpx.Limits(max_connections=32)) as http:
            created = http.post(
                "/admin/tenants", json={"tenant_id": "bench"}, headers={"Authorization": f"Bearer {ADMIN}"}
            )
            created.raise_for_status()
            headers = {"Authorization": f"Bearer {created.json()['api_key']['key']}"}

            def ask(i: int) -> None:
                user, query = asks[i % len(asks)]
                r = http.post(
                    "/v1/memories/search", json={"user_id": user, "query": query, "k": 10}, headers=headers
                )
                r.raise_for_status()

            timed(ask, 30)  # warm-up: replicas, caches
            floor = timed(lambda i: http.get("/noop/").raise_for_status(), args.requests)
            c1 = timed(ask, args.requests)
            c16 = timed(ask, args.requests, concurrency=16)

    print(
        json.dumps(
            {
                "storage": args.storage,
                "memories": args.memories,
                "users": args.users,
                "distinct_texts": distinct,
                "fill_s": round(fill_s, 1),
                "http_search_c1": c1,
                "http_search_c16": c16,
                "direct_hybrid_with_embedding": direct,
                "direct_ranked_as_http_runs_it": direct_ranked,
                "query_embedding_only": embed_only,
                "noop_serve_route": floor,
                "http_over_direct_p50": round(c1["p50_ms"] / direct["p50_ms"], 2),
                "http_over_direct_ranked_p50": round(c1["p50_ms"] / direct_ranked["p50_ms"], 2),
            }
        )
    )


if __name__ == "__main__":
    main()
