"""Helpers shared by the benchmarks: percentiles, a served Engram app, timed HTTP loads."""

from __future__ import annotations

import atexit
import base64
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any, TextIO

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


def json_stdout() -> TextIO:
    """Where the benchmark's JSON goes, alone: standard output as it is now. File descriptor 1 is
    sent to standard error from here on, since vLLM and Ray (its processes too) log to it."""
    sys.stdout.flush()
    stdout = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    return stdout


def scratch(prefix: str) -> str:
    """A new temporary folder for this run's storage, removed when the benchmark exits."""
    folder = tempfile.mkdtemp(prefix=prefix)
    atexit.register(shutil.rmtree, folder, True)
    return folder


def storage(where: str, prefix: str) -> dict[str, Any]:
    """Settings for this run's storage: a new local folder, or (``s3``) a new bucket on an
    S3-compatible server (moto) started on loopback in its own process for the length of the run.

    The server's address and test credentials go into the environment, as a cluster's nodes have
    them, before Ray starts; the control plane then needs a database URL and a master key, which
    are made for the run (SQLite in a temporary folder, a random key)."""
    if where == "local":
        return {"storage_root": scratch(prefix)}
    port = free_port()
    server = subprocess.Popen(
        [os.path.join(os.path.dirname(sys.executable), "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    atexit.register(server.terminate)
    endpoint = f"http://127.0.0.1:{port}"
    os.environ.update(
        AWS_ENDPOINT_URL=endpoint,
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",
        AWS_REGION="us-east-1",
        AWS_ALLOW_HTTP="true",
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
    import boto3

    boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket="engram-bench")
    return {
        "storage_root": f"s3://engram-bench/{prefix.strip('-')}",
        "api": {"database_url": f"sqlite:///{scratch(prefix)}/control.db"},
        "security": {"master_key": base64.b64encode(os.urandom(32)).decode()},
    }


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
