"""One local Ray per test session; a fresh storage root per test; real S3 and PostgreSQL servers.

The S3-compatible server (moto) and PostgreSQL are started on 127.0.0.1 when a test first asks
for them, and stopped at the end of the session. The S3 server's address and credentials are put
in the environment now, before any Ray starts, so Ray's workers find them as a cluster's nodes
would (``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID``, ...).
"""

from __future__ import annotations

import base64
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from cluster.settings import Settings, load_settings

os.environ.setdefault("RAY_AUTH_MODE", "disabled")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# Chosen once per test session; a scenario run in a fresh Python inherits it.
S3_PORT = int(os.environ.setdefault("ENGRAM_TESTS_S3_PORT", str(free_port())))
S3_BUCKET = "engram-tests"
os.environ.update(
    AWS_ENDPOINT_URL=f"http://127.0.0.1:{S3_PORT}",
    AWS_ACCESS_KEY_ID="testing",
    AWS_SECRET_ACCESS_KEY="testing",
    AWS_REGION="us-east-1",
    AWS_DEFAULT_REGION="us-east-1",
    AWS_ALLOW_HTTP="true",
)
# Debian's PostgreSQL (scripts/setup.sh installs it where it is missing): the newest major version.
PG_BIN = max(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name), default=Path())


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """GPU-marked tests run only where torch sees a GPU."""
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a GPU; none is present")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def ray_local() -> Iterator[None]:
    """A local Ray set up as the one Engram starts (``cluster.runtime.RAY_ENV``)."""
    import ray

    from cluster.runtime import apply_ray_env

    apply_ray_env()
    ray.init("local", num_cpus=2, include_dashboard=False, log_to_driver=False, namespace="engram-tests")
    ray.data.DataContext.get_current().enable_progress_bars = False
    yield
    ray.shutdown()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(storage_root=str(tmp_path / "store"))


@pytest.fixture(scope="session")
def s3_server() -> Iterator[str]:
    """A moto S3 server on 127.0.0.1 with the tests' bucket; its endpoint URL."""
    import boto3
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=S3_PORT, verbose=False)
    server.start()
    endpoint = os.environ["AWS_ENDPOINT_URL"]
    boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket=S3_BUCKET)
    yield endpoint
    server.stop()


def s3_objects(prefix: str) -> list[str]:
    """Every object key under ``s3://engram-tests/<prefix>``."""
    import boto3

    client = boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL"])
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=S3_BUCKET, Prefix=prefix)
    return [item["Key"] for page in pages for item in page.get("Contents", [])]


@pytest.fixture
def s3_root(s3_server: str) -> str:
    """A fresh storage root on the S3 server."""
    return f"s3://{S3_BUCKET}/{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="session")
def postgres() -> Iterator[str]:
    """A throwaway PostgreSQL 15 server on 127.0.0.1 (as the ``postgres`` user when run as root);
    a URL template with ``{db}`` for the database name."""
    folder = Path(tempfile.mkdtemp(prefix="engram-pg-"))
    port = free_port()
    as_postgres = os.geteuid() == 0
    if as_postgres:
        shutil.chown(folder, "postgres", "postgres")

    def run(*command: str) -> None:
        line = " ".join(command)
        subprocess.run(
            ["su", "postgres", "-c", line] if as_postgres else ["sh", "-c", line],
            check=True,
            capture_output=True,
            timeout=120,
        )

    run(f"{PG_BIN}/initdb", "-D", f"{folder}/data", "-A", "trust", "-U", "postgres", "--no-sync")
    options = f"'-c listen_addresses=127.0.0.1 -p {port} -k {folder} -c fsync=off -c max_connections=200'"
    run(f"{PG_BIN}/pg_ctl", "-D", f"{folder}/data", "-l", f"{folder}/log", "-w", "-o", options, "start")
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/{{db}}"
    finally:
        run(f"{PG_BIN}/pg_ctl", "-D", f"{folder}/data", "-m", "immediate", "-w", "stop")
        shutil.rmtree(folder, ignore_errors=True)


def new_database(template: str) -> str:
    """A new, empty database on the server of ``template``; its URL."""
    from sqlalchemy import create_engine, text

    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(template.format(db="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as db:
        db.execute(text(f"CREATE DATABASE {name}"))
    admin.dispose()
    return template.format(db=name)


@pytest.fixture
def postgres_url(postgres: str) -> str:
    """A fresh database on the PostgreSQL server."""
    return new_database(postgres)


def master_key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


def object_store_settings(root: str, database_url: str, **overrides: Any) -> Settings:
    """Settings with the storage root on the S3 server and the control plane at ``database_url``."""
    return load_settings(
        storage_root=root,
        api={"database_url": database_url, **overrides.pop("api", {})},
        security={"master_key": master_key()},
        **overrides,
    )


BIN = Path(sys.executable).parent  # the environment's ray, serve, python


@dataclass(frozen=True)
class RayHead:
    """A head node started as an operator starts one; its dashboard (job server, Serve REST) URL,
    and what its nodes' environment gives Engram (storage root, admin key)."""

    url: str
    storage_root: str
    admin_key: str


@pytest.fixture(scope="session")
def ray_head(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RayHead]:
    """``eval "$(engram ray-env)" && ray start --head --block`` with the dashboard on, the nodes'
    ENGRAM_STORAGE_ROOT and ENGRAM_ADMIN_KEY set; stopped with it at the end of the session."""
    from ray.job_submission import JobStatus, JobSubmissionClient

    from cluster.runtime import RAY_ENV

    temp = tmp_path_factory.mktemp("ray-head")
    sessions = tempfile.mkdtemp(prefix="rh-", dir="/tmp")  # short: a socket path is at most 107 bytes
    head = RayHead(
        url=f"http://127.0.0.1:{free_port()}",
        storage_root=str(temp / "store"),
        admin_key="head-admin-key-0123456789",
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_ADDRESS", "ENGRAM_"))}
    env |= RAY_ENV | {"RAY_AUTH_MODE": "disabled", "PATH": f"{BIN}:{env['PATH']}"}
    env |= {"ENGRAM_STORAGE_ROOT": head.storage_root, "ENGRAM_ADMIN_KEY": head.admin_key}
    command = [
        str(BIN / "ray"),
        "start",
        "--head",
        "--block",
        f"--port={free_port()}",
        "--num-cpus=4",
        "--include-dashboard=true",
        "--dashboard-host=127.0.0.1",
        f"--dashboard-port={head.url.rsplit(':', 1)[1]}",
        f"--temp-dir={sessions}",
        "--disable-usage-stats",
        # every port of its own: a Ray the suite started in-process (ray.init) holds the defaults
        # (the dashboard agent's 52365 above all, without which no job can be submitted)
        f"--ray-client-server-port={free_port()}",
        f"--dashboard-agent-listen-port={free_port()}",
        f"--dashboard-agent-grpc-port={free_port()}",
        f"--runtime-env-agent-port={free_port()}",
        f"--metrics-export-port={free_port()}",
    ]
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    try:
        # ready once a job runs: the job server answers before its node's agent takes jobs
        # ("No available agent to submit job"), and ray job submit does not retry that
        deadline, job = time.monotonic() + 180, None
        while job is None:
            try:
                job = JobSubmissionClient(head.url).submit_job(entrypoint="python -c pass")
            except Exception:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise
                time.sleep(1)
        client = JobSubmissionClient(head.url)
        while (status := client.get_job_status(job)) != JobStatus.SUCCEEDED:
            assert status != JobStatus.FAILED, client.get_job_logs(job)
            assert time.monotonic() < deadline, f"the head's first job is {status} after 180 s"
            time.sleep(1)
        yield head
    finally:
        process.terminate()  # ray start --block stops every process it started
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, 9)
        shutil.rmtree(sessions, ignore_errors=True)
