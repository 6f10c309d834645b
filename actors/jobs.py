"""Fine-tuning jobs in OpenAI's shapes, durable in SQL: the request, the status, the events.

A job goes ``validating_files → queued → running → succeeded | failed | cancelled``; when the
GPU broker takes its GPUs back it is ``preempted`` and then ``queued`` again, and resumes from
its checkpoint. ``JobStatus`` is that vocabulary, and ``JobStore`` the record;
``training.finetuner.FineTuner`` (a control-plane actor) moves jobs through it. Every read is
scoped to the tenant: another tenant's job is "not found", exactly like a missing one.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import JSON, Column, DateTime, ForeignKey, Index, Integer, String, Table, Text, insert, select
from sqlalchemy import update as sql_update

from actors.db import engine_for, metadata
from actors.files import FileStore
from actors.models import ModelRegistry
from cluster import NAME, ConflictError, InvalidRequestError, NotFoundError, Settings, validate_tenant_id

JobStatus = Literal["validating_files", "queued", "running", "preempted", "succeeded", "failed", "cancelled"]
FIRST: JobStatus = "validating_files"
FINAL: tuple[JobStatus, ...] = ("succeeded", "failed", "cancelled")
JOB_ID = r"^ftjob-[0-9a-f]{24}$"

fine_tune_jobs = Table(
    "fine_tune_jobs",
    metadata,
    Column("job_id", String(64), primary_key=True),
    Column("tenant_id", String(63), nullable=False, index=True),
    Column("model", String(128), nullable=False),  # the base model
    Column("suffix", String(64), nullable=False),
    Column("training_file", String(64), nullable=False),
    Column("validation_file", String(64)),
    Column("hyperparameters", JSON, nullable=False),
    Column("seed", Integer, nullable=False),
    Column("status", String(24), nullable=False),
    Column("error", JSON),  # {"code", "message", "param"} of a failed job
    Column("fine_tuned_model", String(300)),
    Column("version", Integer),  # the model version it made
    Column("metrics", JSON),
    Column("trained_tokens", Integer),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("started_at", DateTime(timezone=True)),
    Column("finished_at", DateTime(timezone=True)),
)
fine_tune_events = Table(
    "fine_tune_events",
    metadata,
    Column("event_id", Integer, primary_key=True, autoincrement=True),
    Column("job_id", String(64), ForeignKey("fine_tune_jobs.job_id"), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("level", String(8), nullable=False),
    Column("message", Text, nullable=False),
    Column("data", JSON),
    Index("ix_fine_tune_events_job_id", "job_id", "event_id"),
)


class Hyperparameters(BaseModel):
    """What a tenant may choose of the recipe (``training/recipe.yaml`` holds the rest)."""

    model_config = ConfigDict(extra="forbid")

    n_epochs: int = Field(3, ge=1, le=1000, description="Passes over the training examples.")
    learning_rate: float = Field(3e-3, gt=0, le=1, description="AdamW learning rate.")
    batch_size: int = Field(8, ge=1, le=1024, description="Examples per optimizer step (all workers).")
    lora_r: Literal[4, 8, 16, 32, 64] = Field(16, description="LoRA rank.")
    lora_alpha: int = Field(32, ge=1, le=4096, description="LoRA scaling numerator.")


class JobRequest(BaseModel):
    """``POST /v1/fine_tuning/jobs``."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(min_length=1, max_length=128, description="The base model to fine-tune.")
    training_file: str = Field(pattern=r"^file-[0-9a-f]{32}$", description="An uploaded fine-tune file.")
    validation_file: str | None = Field(
        None, pattern=r"^file-[0-9a-f]{32}$", description="Held-out examples; else a split of training."
    )
    hyperparameters: Hyperparameters = Field(default_factory=Hyperparameters)
    suffix: str = Field(
        "ft", pattern=NAME.pattern, max_length=40, description="Names the model ft:<base>:<tenant>:<suffix>."
    )
    seed: int | None = Field(None, ge=0, le=2**31 - 1, description="Makes the run reproducible.")


def check_request(settings: Settings, files: FileStore, tenant_id: str, body: JobRequest) -> None:
    """What a job request names must exist for the tenant and fit the engines (4xx errors naming it)."""
    settings.llm.base_model(body.model)
    if body.hyperparameters.lora_r > settings.llm.max_lora_rank:
        raise InvalidRequestError(
            f"lora_r {body.hyperparameters.lora_r} is above the engines' max_lora_rank "
            f"{settings.llm.max_lora_rank}",
            param="hyperparameters.lora_r",
        )
    for param in ("training_file", "validation_file"):
        file_id = getattr(body, param)
        if file_id is not None:
            try:
                files.get(tenant_id, file_id)
            except NotFoundError as e:
                raise NotFoundError(f"no file {file_id!r}", param=param) from e


def migration_request(
    registry: ModelRegistry, tenant_id: str, model: str, base: str
) -> tuple[JobRequest, str]:
    """The job that re-runs what made the served version of ``model`` (its recipe choices, files and
    seed) on the base model ``base``, and a line saying so. The result is a version of
    ``ft:<base>:<tenant>:<suffix>``, deployed only if it passes the same gate."""
    described = registry.describe(tenant_id, model)
    versions = {v["version"]: v for v in described["versions"]}
    made = [v for v in versions.values() if v["lineage"] and v["job_id"]]
    chosen = versions.get(described["deployed_version"] or 0) or (made[-1] if made else None)
    if chosen is None or not chosen["lineage"] or not chosen["job_id"]:
        raise ConflictError(f"{model} was not made by a fine-tuning job: nothing to re-run", param="model")
    if base == described["base_model"]:
        raise InvalidRequestError(f"{model} is already on {base}", param="base")
    lineage = chosen["lineage"]
    request = JobRequest(
        model=base,
        training_file=lineage["training_file"],
        validation_file=lineage["validation_file"],
        hyperparameters=Hyperparameters.model_validate(lineage["hyperparameters"]),
        suffix=model.rsplit(":", 1)[1],
        seed=lineage["seed"],
    )
    return request, f"migration of {model} version {chosen['version']} to {base}"


def _now() -> datetime:
    return datetime.now(UTC)


def _aware(at: datetime | None) -> datetime | None:
    return at if at is None or at.tzinfo else at.replace(tzinfo=UTC)


class JobStore:
    """The jobs and their events in SQL."""

    def __init__(self, database_url: str) -> None:
        self.engine = engine_for(database_url)

    @classmethod
    def from_settings(cls, settings: Settings) -> JobStore:
        return cls(settings.control_db_url)

    def create(self, tenant_id: str, request: JobRequest, origin: str | None = None) -> dict[str, Any]:
        """Record a new job; ``origin`` says where it comes from (a migration) in its first event."""
        validate_tenant_id(tenant_id)
        job_id = f"ftjob-{secrets.token_hex(12)}"
        seed = request.seed if request.seed is not None else secrets.randbelow(2**31)
        with self.engine.begin() as db:
            db.execute(
                insert(fine_tune_jobs).values(
                    job_id=job_id,
                    tenant_id=tenant_id,
                    model=request.model,
                    suffix=request.suffix,
                    training_file=request.training_file,
                    validation_file=request.validation_file,
                    hyperparameters=request.hyperparameters.model_dump(),
                    seed=seed,
                    status=FIRST,
                    created_at=_now(),
                )
            )
            message = f"created fine-tuning job ({origin})" if origin else "created fine-tuning job"
            _event(db, job_id, "info", message, {"status": FIRST})
        return self.get(tenant_id, job_id)

    def get(self, tenant_id: str | None, job_id: str) -> dict[str, Any]:
        """One job; with ``tenant_id``, another tenant's is not found. ``None``: any tenant's (internal)."""
        query = select(fine_tune_jobs).where(fine_tune_jobs.c.job_id == job_id)
        if tenant_id is not None:
            query = query.where(fine_tune_jobs.c.tenant_id == tenant_id)
        with self.engine.connect() as db:
            row = db.execute(query).first()
        if row is None:
            raise NotFoundError(f"no fine-tuning job {job_id!r}", param="job_id")
        return _job(row)

    def list_jobs(self, tenant_id: str, *, limit: int = 20, after: str | None = None) -> list[dict[str, Any]]:
        """The tenant's jobs, newest first; ``after`` a job id: the ones created before it."""
        query = select(fine_tune_jobs).where(fine_tune_jobs.c.tenant_id == tenant_id)
        if after is not None:
            anchor = self.get(tenant_id, after)["created_at"]
            query = query.where(fine_tune_jobs.c.created_at < anchor)
        query = query.order_by(fine_tune_jobs.c.created_at.desc(), fine_tune_jobs.c.job_id).limit(limit)
        with self.engine.connect() as db:
            return [_job(r) for r in db.execute(query)]

    def unfinished(self) -> list[dict[str, Any]]:
        """Every tenant's jobs not yet succeeded, failed or cancelled, oldest first (a restart's work)."""
        query = (
            select(fine_tune_jobs)
            .where(fine_tune_jobs.c.status.not_in(FINAL))
            .order_by(fine_tune_jobs.c.created_at)
        )
        with self.engine.connect() as db:
            return [_job(r) for r in db.execute(query)]

    def events(
        self, tenant_id: str, job_id: str, *, limit: int = 100, after: int = 0
    ) -> list[dict[str, Any]]:
        """The job's events, oldest first, from event id ``after`` on."""
        self.get(tenant_id, job_id)
        query = (
            select(fine_tune_events)
            .where(fine_tune_events.c.job_id == job_id, fine_tune_events.c.event_id > after)
            .order_by(fine_tune_events.c.event_id)
            .limit(limit)
        )
        with self.engine.connect() as db:
            return [
                {
                    "id": r.event_id,
                    "created_at": _aware(r.at),
                    "level": r.level,
                    "message": r.message,
                    "data": r.data,
                }
                for r in db.execute(query)
            ]

    def update(
        self,
        job_id: str,
        message: str | None = None,
        data: Any = None,
        *,
        status: JobStatus | None = None,
        **values: Any,
    ) -> None:
        """Change the job's fields (a status change is an event), with an event when ``message``."""
        if status is not None:
            values["status"] = status
        with self.engine.begin() as db:
            if values:
                query = sql_update(fine_tune_jobs).where(fine_tune_jobs.c.job_id == job_id)
                db.execute(query.values(**values))
            if message is not None:
                level = "error" if status == "failed" else "info"
                if status is not None:
                    data = {"status": status, **(data or {})}
                _event(db, job_id, level, message, data)

    def event(self, job_id: str, message: str, data: Any = None, level: str = "info") -> None:
        with self.engine.begin() as db:
            _event(db, job_id, level, message, data)


def _event(db: Any, job_id: str, level: str, message: str, data: Any) -> None:
    row = {"job_id": job_id, "at": _now(), "level": level, "message": message, "data": data}
    db.execute(insert(fine_tune_events).values(**row))


def _job(row: Any) -> dict[str, Any]:
    """A job as OpenAI's fine-tuning job object (times as datetimes; the route makes them unix)."""
    return {
        "id": row.job_id,
        "object": "fine_tuning.job",
        "tenant_id": row.tenant_id,
        "model": row.model,
        "suffix": row.suffix,
        "training_file": row.training_file,
        "validation_file": row.validation_file,
        "hyperparameters": row.hyperparameters,
        "seed": row.seed,
        "status": row.status,
        "error": row.error,
        "fine_tuned_model": row.fine_tuned_model,
        "version": row.version,
        "metrics": row.metrics,
        "trained_tokens": row.trained_tokens,
        "created_at": _aware(row.created_at),
        "started_at": _aware(row.started_at),
        "finished_at": _aware(row.finished_at),
    }
