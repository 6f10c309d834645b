"""Batch operations as Ray jobs: ``ray job submit --working-dir . -- python -m engram.jobs <op> ...``.

One entry point for every batch operation an operator runs on a cluster:

- ``migrate``: bring the control database to the newest schema.
- ``bootstrap [MODEL ...]``: publish the embedded base models under the storage root.
- ``ingest TENANT SOURCE ...``: store signals from JSONL or Parquet files, local paths or
  object-store URIs (``s3://bucket/signals.parquet``).
- ``build TENANT ...``: run the memory pipeline (Ray Data) over the tenants' new signals.
- ``export TENANT TARGET``: write the tenant's memories and profiles as Parquet datasets under a
  folder or object-store prefix (``TARGET/<tenant>/memories/part-*.parquet``).
- ``fine-tune TENANT FILE --model M``: upload a fine-tune file, submit the job to the fine-tuner
  and follow it to the end (``--no-wait`` returns once it is queued).

Settings come from ``--config`` or the node's environment (``ENGRAM_CONFIG``, ``ENGRAM_*``), as for
``engram serve``. Progress goes to the job log as it happens (Ray Data's progress, each training
step's loss); the last line of the log is the operation's report as JSON, ``{"error": ...}`` on a
failure. The exit status is 0 only when everything asked for succeeded: an unknown tenant, a
rejected file or a failed fine-tune exit non-zero.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from cluster import (
    EXPORTED_TABLES,
    EngramError,
    NotFoundError,
    Settings,
    Storage,
    is_object_store,
    load_settings,
)

log = logging.getLogger("engram.jobs")

FAILED = 1  # the operation ran and failed (a fine-tune that failed, rows that were all rejected)
REFUSED = 2  # it could not start: bad arguments, an unknown tenant, a missing file, bad settings


def parser() -> argparse.ArgumentParser:
    """The arguments of every operation (``python -m engram.jobs --help``)."""
    root = argparse.ArgumentParser(prog="python -m engram.jobs", description=__doc__.split("\n\n")[0])
    config_help = "YAML settings file (default: ENGRAM_CONFIG, ENGRAM_* variables)"
    root.add_argument("--config", help=config_help)
    # --config also after the operation's name; there it replaces the one before it, if any
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", default=argparse.SUPPRESS, help=config_help)
    ops = root.add_subparsers(dest="op", required=True, metavar="OPERATION")

    def op(name: str, help: str) -> argparse.ArgumentParser:
        return ops.add_parser(name, help=help, parents=[common])

    op("migrate", "bring the control database to the newest schema")
    boot = op("bootstrap", "publish the embedded base models under the storage root")
    boot.add_argument("models", nargs="*", help="base model ids (default: every embedded one)")
    ingest = op("ingest", "store signals from JSONL or Parquet files")
    ingest.add_argument("tenant", help="tenant id")
    ingest.add_argument("sources", nargs="+", help="local paths or object-store URIs")
    build = op("build", "run the memory pipeline for tenants")
    build.add_argument("tenants", nargs="+", help="tenant ids")
    export = op("export", "write a tenant's memories and profiles as Parquet")
    export.add_argument("tenant", help="tenant id")
    export.add_argument("target", help="a local folder or an object-store URI (s3://bucket/prefix)")
    export.add_argument("--table", choices=EXPORTED_TABLES, action="append", help="only these tables")
    tune = op("fine-tune", "fine-tune a tenant's model and follow the job")
    tune.add_argument("tenant", help="tenant id")
    tune.add_argument("file", help="JSONL of chat examples: a local path or an object-store URI")
    tune.add_argument("--model", required=True, help="base model id")
    tune.add_argument("--suffix", default="ft", help="names the model ft:<base>:<tenant>:<suffix>")
    tune.add_argument("--epochs", type=int, help="n_epochs")
    tune.add_argument("--batch-size", type=int, help="batch_size")
    tune.add_argument("--learning-rate", type=float, help="learning_rate")
    tune.add_argument("--no-wait", action="store_true", help="return once the job is queued")
    return root


def read_source(source: str, settings: Settings) -> tuple[str, bytes]:
    """The name and bytes of a file given as a local path or an object-store URI (read with the
    storage settings' credentials and endpoint)."""
    folder, _, name = source.rstrip("/").rpartition("/")
    if not is_object_store(source):
        path = Path(source)
        try:
            return path.name, path.read_bytes()
        except OSError as e:
            raise NotFoundError(f"cannot read {source}: {e.strerror or e}", param="source") from e
    try:
        return name, Storage(folder, settings.storage).read_bytes(name)
    except (FileNotFoundError, OSError) as e:
        raise NotFoundError(f"cannot read {source}: {e}", param="source") from e


@contextmanager
def local_file(source: str, settings: Settings) -> Iterator[Path]:
    """A local path holding ``source``: the file itself, or a copy of an object-store file in named
    scratch for the length of the block."""
    if not is_object_store(source):
        path = Path(source)
        try:
            path.stat()
        except OSError as e:
            raise NotFoundError(f"cannot read {source}: {e.strerror or e}", param="source") from e
        yield path
        return
    name, data = read_source(source, settings)
    with tempfile.TemporaryDirectory(prefix="engram-ingest-") as scratch:  # named scratch
        local = Path(scratch) / name
        local.write_bytes(data)
        yield local


def known_tenant(settings: Settings, tenant_id: str) -> str:
    """``tenant_id`` if the control plane has it; NotFoundError otherwise."""
    from actors import TenantDirectory

    if not TenantDirectory(settings.control_db_url).exists(tenant_id):
        raise NotFoundError(f"no tenant {tenant_id!r}", param="tenant")
    return tenant_id


def migrate(settings: Settings, args: argparse.Namespace) -> tuple[int, dict[str, Any]]:
    from actors import schema_revision

    database, revision = schema_revision(settings.control_db_url)
    return 0, {"database": database, "revision": revision}


def bootstrap(settings: Settings, args: argparse.Namespace) -> tuple[int, dict[str, Any]]:
    from training import base_model_location

    embedded = [name for name, spec in settings.llm.base_models.items() if spec.path is None]
    for name in args.models:
        spec = settings.llm.base_model(name, param="models")
        if spec.path is not None:
            raise NotFoundError(
                f"{name!r} is not an embedded model (its path is {spec.path})", param="models"
            )
    published = {}
    for name in args.models or embedded:
        log.info("publishing %s", name)
        published[name] = str(base_model_location(settings, name))
    return 0, {"models": published}


def ingest(settings: Settings, args: argparse.Namespace) -> tuple[int, dict[str, Any]]:
    from memory import TenantStore, ingest_file

    store = TenantStore(Storage.of(settings), known_tenant(settings, args.tenant))
    files = []
    for source in args.sources:
        with local_file(source, settings) as local:
            report = ingest_file(store, local, settings.ingest)
        log.info(
            "%s: %d rows, %d accepted, %d quarantined",
            source,
            report.rows,
            report.accepted,
            report.quarantined,
        )
        files.append({"source": source, **_plain(report)})
    accepted = sum(f["accepted"] for f in files)
    return (0 if accepted or not any(f["rows"] for f in files) else FAILED), {"files": files}


def build(settings: Settings, args: argparse.Namespace) -> tuple[int, dict[str, Any]]:
    from memory import build as run_build

    tenants = [known_tenant(settings, t) for t in args.tenants]  # all known before any runs
    reports = {}
    for tenant in tenants:
        log.info("building %s", tenant)
        reports[tenant] = _plain(run_build(tenant, settings))
    return 0, {"builds": reports}


def export(settings: Settings, args: argparse.Namespace) -> tuple[int, dict[str, Any]]:
    from memory import TenantStore, export_table

    tenant = known_tenant(settings, args.tenant)
    store = TenantStore(Storage.of(settings), tenant)
    target = Storage(f"{args.target.rstrip('/')}/{tenant}", settings.storage)
    tables = {}
    for name in args.table or EXPORTED_TABLES:
        report = export_table(store, name, target)
        log.info("%s: %d rows in %d files", name, report.rows, len(report.files))
        tables[name] = {"rows": report.rows, "files": report.files}
    return 0, {"location": target.uri(), "tables": tables}


def fine_tune(settings: Settings, args: argparse.Namespace) -> tuple[int, dict[str, Any]]:
    import ray

    from actors import FINAL, FileStore, JobRequest, JobStore, check_request
    from training import fine_tuner, upload

    tenant = known_tenant(settings, args.tenant)
    name, data = read_source(args.file, settings)
    files = FileStore(settings)
    record = upload(files, tenant, name, "fine-tune", data)
    log.info("uploaded %s as %s (%d examples)", args.file, record["file_id"], record["examples"])
    chosen = {"n_epochs": args.epochs, "batch_size": args.batch_size, "learning_rate": args.learning_rate}
    body = JobRequest(
        model=args.model,
        training_file=record["file_id"],
        suffix=args.suffix,
        hyperparameters={k: v for k, v in chosen.items() if v is not None},
    )
    check_request(settings, files, tenant, body)
    submitted: Any = fine_tuner(settings).submit.remote(tenant, body.model_dump(), "ray-job")
    job: dict[str, Any] = ray.get(submitted)
    log.info("submitted %s", job["id"])
    if args.no_wait:
        return 0, {"job": _job(job)}
    jobs, seen = JobStore.from_settings(settings), 0
    while True:
        for event in jobs.events(tenant, job["id"], limit=1000, after=seen):
            seen = event["id"]
            log.info("%s", event["message"])
        job = jobs.get(tenant, job["id"])
        if job["status"] in FINAL and not jobs.events(tenant, job["id"], limit=1, after=seen):
            break
        time.sleep(1.0)
    return (0 if job["status"] == "succeeded" else FAILED), {"job": _job(job)}


OPERATIONS: dict[str, Callable[[Settings, argparse.Namespace], tuple[int, dict[str, Any]]]] = {
    "migrate": migrate,
    "bootstrap": bootstrap,
    "ingest": ingest,
    "build": build,
    "export": export,
    "fine-tune": fine_tune,
}


def _plain(report: Any) -> dict[str, Any]:
    return {k: v for k, v in vars(report).items() if isinstance(v, int | float | str | bool | type(None))}


def _job(job: dict[str, Any]) -> dict[str, Any]:
    keep = ("id", "status", "model", "fine_tuned_model", "error", "metrics")
    return {k: job[k] for k in keep if k in job}


def _error(kind: str, message: str, param: str | None) -> dict[str, Any]:
    return {"error": {"type": kind, "message": message, "param": param}}


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    try:
        settings = load_settings(args.config)
        if args.op in ("build", "fine-tune"):
            from cluster import ensure_ray

            ensure_ray(settings)  # the job's cluster (RAY_ADDRESS), or a local Ray
        status, report = OPERATIONS[args.op](settings, args)
    except EngramError as e:
        status, report = REFUSED, _error(type(e).__name__, e.message, e.param)
    except ValidationError as e:  # a job request the arguments made invalid (a bad --suffix)
        first = e.errors()[0]
        field = ".".join(map(str, first["loc"]))
        status, report = REFUSED, _error("InvalidRequestError", first["msg"], field)
    except Exception as e:  # anything else failed the operation: its traceback in the log, JSON last
        log.exception("%s failed", args.op)
        status, report = FAILED, _error(type(e).__name__, str(e), None)
    print(json.dumps({"op": args.op, **report}, default=str), flush=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
