"""Helpers shared by the benchmarks: percentiles, a served Engram app, timed HTTP loads."""

from __future__ import annotations

import atexit
import os
import shutil
import socket
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

from cluster import Settings


def percentiles(ms: list[float]) -> dict[str, float]:
    ordered = sorted(ms)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {"p50_ms": round(statistics.median(ordered), 2), "p95_ms": round(p95, 2), "n": len(ordered)}


def timed(fn: Callable[[int], object], n: int, concurrency: int = 1) -> dict[str, float]:
    """Latencies of ``n`` calls of ``fn(i)`` issued by ``concurrency`` threads."""

    def one(i: int) -> float:
        started = time.perf_counter()
        fn(i)
        return (time.perf_counter() - started) * 1000

    with ThreadPoolExecutor(concurrency) as pool:
        return percentiles(list(pool.map(one, range(n))))


def scratch(prefix: str) -> str:
    """A new temporary folder for this run's storage, removed when the benchmark exits."""
    folder = tempfile.mkdtemp(prefix=prefix)
    atexit.register(shutil.rmtree, folder, True)
    return folder


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def served(settings: Settings) -> Iterator[str]:
    """The Engram Serve application on a local Ray, for the length of the block."""
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    import ray
    from ray import serve

    from serving import start_serving

    url = start_serving(settings)
    try:
        yield url
    finally:
        serve.shutdown()
        ray.shutdown()
