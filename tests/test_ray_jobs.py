"""The batch operations as Ray jobs (``engram.jobs``), submitted the way an operator does: to a local
Ray started with ``ray start --head`` (dashboard and job server on), with ``ray job submit
--working-dir .`` and through ``JobSubmissionClient``, whose status and logs are what is checked.

One combined scenario: migrate, bootstrap, ingest a local file and an object-store URI, build,
export the memories to the object store, a build of an unknown tenant (a failed job whose last log
line is the JSON error), a fine-tune followed to its end.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import BIN, S3_BUCKET, RayHead
from tests.training.test_files import example, jsonl

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(900)]

ROOT = Path(__file__).resolve().parents[1]


def test_batch_operations_run_as_ray_jobs(ray_head: RayHead, s3_server: str, tmp_path: Path) -> None:
    import pyarrow.parquet as pq
    from ray.job_submission import JobStatus, JobSubmissionClient

    from actors import TenantDirectory
    from cluster import Storage, load_settings
    from memory import TenantStore

    client = JobSubmissionClient(ray_head.url)
    store = tmp_path / "store"
    aws = {k: v for k, v in os.environ.items() if k.startswith("AWS_")}
    env_vars = {"ENGRAM_STORAGE_ROOT": str(store), "RAY_AUTH_MODE": "disabled", **aws}
    runtime_env = {"working_dir": str(ROOT), "env_vars": env_vars}

    def run(*args: str, timeout: float = 300) -> tuple[JobStatus, dict[str, Any], str]:
        """Submit ``python -m engram.jobs ARGS``; its end status, last log line (JSON) and log."""
        entrypoint = "python -m engram.jobs " + " ".join(args)
        job = client.submit_job(entrypoint=entrypoint, runtime_env=runtime_env)
        deadline = time.monotonic() + timeout
        while (status := client.get_job_status(job)) not in (JobStatus.SUCCEEDED, JobStatus.FAILED):
            assert time.monotonic() < deadline, f"{entrypoint}: {status} after {timeout} s"
            time.sleep(1)
        logs = client.get_job_logs(job)
        return status, json.loads(logs.strip().splitlines()[-1]), logs

    # migrate, by the CLI an operator types
    submitted = subprocess.run(
        [
            str(BIN / "ray"),
            "job",
            "submit",
            f"--address={ray_head.url}",
            "--working-dir",
            str(ROOT),
            "--runtime-env-json",
            json.dumps({"env_vars": env_vars}),
            "--",
            "python",
            "-m",
            "engram.jobs",
            "migrate",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "RAY_AUTH_MODE": "disabled"},
    )
    assert submitted.returncode == 0, submitted.stdout + submitted.stderr
    assert '"revision"' in submitted.stdout

    status, report, _ = run("bootstrap")
    assert status == JobStatus.SUCCEEDED and "engram-tiny" in report["models"], report

    settings = load_settings(storage_root=str(store))
    TenantDirectory(settings.control_db_url).create_tenant("acme")
    signals = [
        {
            "user_id": "u1",
            "source": "chat",
            "role": "user",
            "text": f"I moved to city {i}",
            "occurred_at": f"2024-05-{1 + i:02d}T10:00:00Z",
        }
        for i in range(6)
    ]
    local = tmp_path / "signals.jsonl"
    local.write_bytes(jsonl(*signals[:3]))
    import boto3

    boto3.client("s3").put_object(Bucket=S3_BUCKET, Key="jobs/signals.jsonl", Body=jsonl(*signals[3:]))
    status, report, logs = run("ingest", "acme", str(local), f"s3://{S3_BUCKET}/jobs/signals.jsonl")
    assert status == JobStatus.SUCCEEDED, logs
    assert [f["accepted"] for f in report["files"]] == [3, 3], report

    status, report, logs = run("build", "acme")
    assert status == JobStatus.SUCCEEDED, logs
    assert report["builds"]["acme"]["signals"] == 6, report
    assert "BuildBatch" in logs  # Ray Data's progress is in the job log

    status, report, logs = run("export", "acme", f"s3://{S3_BUCKET}/exports")
    assert status == JobStatus.SUCCEEDED, logs
    exported = report["tables"]["memories"]
    assert report["location"] == f"s3://{S3_BUCKET}/exports/acme", report
    assert exported["files"] == [f"s3://{S3_BUCKET}/exports/acme/memories/part-00000.parquet"], report
    body = boto3.client("s3").get_object(Bucket=S3_BUCKET, Key="exports/acme/memories/part-00000.parquet")
    rows = pq.read_table(io.BytesIO(body["Body"].read()))
    built = TenantStore(Storage.of(settings), "acme").memories().to_arrow()
    assert exported["rows"] == rows.num_rows == built.num_rows > 0
    assert sorted(rows["memory_id"].to_pylist()) == sorted(built["memory_id"].to_pylist())
    assert report["tables"]["profiles"]["rows"] == 1, report

    status, report, logs = run("build", "acme", "nosuch")  # nothing built: one tenant is unknown
    assert status == JobStatus.FAILED, logs
    assert report["error"]["param"] == "tenant" and "nosuch" in report["error"]["message"], report

    status, report, logs = run("ingest", "acme", str(tmp_path / "missing.jsonl"))
    assert status == JobStatus.FAILED and report["error"]["param"] == "source", report

    facts = tmp_path / "facts.jsonl"
    facts.write_bytes(jsonl(*(example(f"Code {i}?", f"It is {i}.") for i in range(4))))
    args = ("fine-tune", "acme", str(facts), "--model", "engram-tiny", "--epochs", "2", "--batch-size", "2")
    status, report, logs = run(*args, timeout=600)
    assert status == JobStatus.SUCCEEDED, logs
    assert report["job"]["status"] == "succeeded" and report["job"]["fine_tuned_model"], report
    assert "training loss" in logs  # each checkpoint's loss, as it trains
