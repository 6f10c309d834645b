"""Ingest-to-searchable latency through the HTTP API, with the always-on builder.

Posts one signal at a time (each with a unique word) to a served Engram and polls search
until a memory carrying that signal comes back. Prints JSON with p50/p95 seconds, and the
builder's polling interval, its lower bound.

    .venv/bin/python -m bench.freshness --signals 30
"""

from __future__ import annotations

import argparse
import json
import time

import httpx

from bench.common import free_port, percentiles, scratch, served
from cluster import load_settings

ADMIN = "bench-admin-key-0123456789"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--signals", type=int, default=30)
    parser.add_argument("--interval", type=float, default=1.0, help="builder_interval_s")
    args = parser.parse_args()
    settings = load_settings(
        storage_root=scratch("engram-fresh-"),
        api={"admin_key": ADMIN, "port": free_port(), "builder_interval_s": args.interval},
    )
    latencies = []
    with served(settings) as url, httpx.Client(base_url=url, timeout=60) as http:
        created = http.post(
            "/admin/tenants", json={"tenant_id": "fresh"}, headers={"Authorization": f"Bearer {ADMIN}"}
        )
        created.raise_for_status()
        key = {"Authorization": f"Bearer {created.json()['api_key']['key']}"}
        for i in range(args.signals + 2):
            word = f"zq{i:04d}marker"
            signal = {
                "signal_id": f"fresh-{i}",
                "user_id": "u1",
                "source": "chat",
                "role": "user",
                "session_id": f"s{i // 5}",
                "text": f"Remember the code word {word} for later",
                "occurred_at": f"2024-06-{1 + i % 28:02d}T10:00:00Z",
            }
            started = time.perf_counter()
            http.post("/v1/signals", json={"signals": [signal]}, headers=key).raise_for_status()
            while True:
                body = {"user_id": "u1", "query": word, "k": 5}
                results = http.post("/v1/memories/search", json=body, headers=key).json()["results"]
                if any(f"fresh-{i}" in r["sources"] for r in results):
                    break
                time.sleep(0.02)
            if i >= 2:  # the first two include the builder's model warm-up
                latencies.append((time.perf_counter() - started) * 1000)
    stats = percentiles(latencies)
    print(
        json.dumps(
            {
                "signals": len(latencies),
                "builder_interval_s": args.interval,
                "ingest_to_searchable_p50_s": round(stats["p50_ms"] / 1000, 2),
                "ingest_to_searchable_p95_s": round(stats["p95_ms"] / 1000, 2),
            }
        )
    )


if __name__ == "__main__":
    main()
