"""Tenant models and their adapter versions, durable in SQL.

A fine-tuned model is named ``ft:<base>:<tenant>:<suffix>`` and belongs to one tenant; each
of its versions is a LoRA adapter folder under that tenant's storage
(``tenants/<tenant>/adapters/<base>.<suffix>/v<n>``). One version is deployed: that is the
one a chat request naming the model gets (``VersionState``: ``deployed``; the others are ``ready``
to deploy, or ``retired`` with their files removed). Every switch of the served version is a
``DeploymentAction`` in the model's history. ``resolve`` is tenant-scoped: another tenant's
model is "not found", exactly like a model that does not exist.

Adapters are encrypted at rest with the tenant's data key (``cluster.crypto``): the version
folder holds ``<file>.enc`` files only; engines read a private decrypted copy
(``serving.adapters``). LoRA ids are never reused, even after a tenant's rows are deleted.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import (
    JSON,
    Column,
    DateTime,
    ForeignKey,
    Integer,
    String,
    Table,
    UniqueConstraint,
    insert,
    select,
)
from sqlalchemy import func as sql
from sqlalchemy import update as sql_update

from actors.db import engine_for, metadata
from actors.keys import DataKeys
from cluster import (
    ConflictError,
    InvalidIdError,
    NotFoundError,
    Settings,
    Storage,
    area_key,
    crypto,
    validate_name,
    validate_tenant_id,
)

VersionState = Literal["deployed", "ready", "retired"]
DeploymentAction = Literal["deploy", "rollback"]

models = Table(
    "models",
    metadata,
    Column("model", String(300), primary_key=True),
    Column("tenant_id", String(63), nullable=False, index=True),
    Column("base_model", String(128), nullable=False),
    Column("suffix", String(64), nullable=False),
    Column("deployed_version", Integer),
    Column("created_at", DateTime(timezone=True), nullable=False),
)
model_versions = Table(
    "model_versions",
    metadata,
    # The row id doubles as the adapter's LoRA id in the engines: stable and unique per (model, version).
    Column("lora_id", Integer, primary_key=True, autoincrement=True),
    Column("model", String(300), ForeignKey("models.model"), nullable=False),
    Column("version", Integer, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("job_id", String(64)),  # the fine-tuning job that made it; None when registered by hand
    Column("lineage", JSON),  # base model, file hashes, hyperparameters, seed: how to make it again
    Column("metrics", JSON),  # evaluation of the version (validation loss, perplexity, exact match)
    Column("retired_at", DateTime(timezone=True)),  # its files are removed; it can't be deployed
    UniqueConstraint("model", "version"),
    sqlite_autoincrement=True,  # a deleted row's id is never handed out again (see migration 0004)
)
model_deployments = Table(
    "model_deployments",
    metadata,
    Column("deployment_id", Integer, primary_key=True, autoincrement=True),
    Column("model", String(300), ForeignKey("models.model"), nullable=False, index=True),
    Column("version", Integer, nullable=False),
    Column("action", String(16), nullable=False),  # a DeploymentAction
    Column("at", DateTime(timezone=True), nullable=False),
)


@dataclass(frozen=True)
class Adapter:
    """A served adapter version: everything an engine needs to find and load it."""

    tenant_id: str
    model: str
    base_model: str
    folder: str  # the adapter's folder name under the tenant's adapters area
    version: int
    lora_id: int

    @property
    def key(self) -> str:
        """The adapter's encrypted folder in the tenant's storage."""
        return area_key(self.tenant_id, "adapters", self.folder, f"v{self.version}")

    @property
    def context(self) -> str:
        """What the adapter's files are bound to when encrypted: they open only as this version."""
        return adapter_context(self.tenant_id, self.folder, self.version)


def adapter_context(tenant_id: str, folder: str, version: int) -> str:
    return f"{tenant_id}/adapters/{folder}/v{version}"


def model_name(base_model: str, tenant_id: str, suffix: str) -> str:
    return f"ft:{base_model}:{tenant_id}:{suffix}"


def _parse(model: str) -> tuple[str, str, str] | None:
    parts = model.split(":")
    if len(parts) != 4 or parts[0] != "ft":
        return None
    return parts[1], parts[2], parts[3]


class ModelRegistry:
    def __init__(self, database_url: str, storage: Storage, keys: DataKeys) -> None:
        self.engine = engine_for(database_url)
        self.storage = storage
        self.keys = keys

    @classmethod
    def from_settings(cls, settings: Settings) -> ModelRegistry:
        database = settings.control_db_url
        return cls(database, Storage.of(settings), DataKeys.from_settings(settings))

    def register_adapter(
        self,
        tenant_id: str,
        base_model: str,
        suffix: str,
        source: str | Path,
        *,
        job_id: str | None = None,
        lineage: dict[str, Any] | None = None,
        metrics: dict[str, Any] | None = None,
        deploy: bool | None = None,
    ) -> Adapter:
        """Encrypt a peft adapter folder into the tenant's storage as the model's next version,
        with how it was made (``lineage``) and how it evaluated (``metrics``).

        ``deploy``: serve it from now on; None: only when it is the model's first version.
        """
        validate_tenant_id(tenant_id)
        validate_name(base_model, "base_model")
        validate_name(suffix, "suffix")
        source = Path(source)
        if not (source / "adapter_config.json").is_file():
            raise InvalidIdError(
                f"{source} is not a peft adapter folder (no adapter_config.json)",
                param="source",
            )
        name = model_name(base_model, tenant_id, suffix)
        folder = f"{base_model}.{suffix}"
        data_key = self.keys.key(tenant_id)  # KeyDestroyedError for a deleted tenant: nothing is written
        with self.engine.begin() as db:
            if db.execute(select(models.c.model).where(models.c.model == name)).first() is None:
                db.execute(
                    insert(models).values(
                        model=name,
                        tenant_id=tenant_id,
                        base_model=base_model,
                        suffix=suffix,
                        created_at=datetime.now(UTC),
                    )
                )
            last = db.execute(
                select(sql.max(model_versions.c.version)).where(model_versions.c.model == name)
            ).scalar()
            version = (last or 0) + 1
            target = area_key(tenant_id, "adapters", folder, f"v{version}")
            # replaces what a registration that failed after writing left; visible once the row commits
            crypto.seal_tree(
                source, self.storage, target, data_key, adapter_context(tenant_id, folder, version)
            )
            now = datetime.now(UTC)
            db.execute(
                insert(model_versions).values(
                    model=name,
                    version=version,
                    created_at=now,
                    job_id=job_id,
                    lineage=lineage,
                    metrics=metrics,
                )
            )
            lora_id = db.execute(
                select(model_versions.c.lora_id).where(
                    model_versions.c.model == name, model_versions.c.version == version
                )
            ).scalar_one()
            if deploy or (deploy is None and version == 1):
                _switch(db, name, version, "deploy")
        return Adapter(tenant_id, name, base_model, folder, version, int(lora_id))

    def resolve(self, tenant_id: str, model: str) -> Adapter:
        """The deployed adapter of the caller's model ``model``; NotFoundError otherwise."""
        parsed = _parse(model)
        with self.engine.connect() as db:
            row = db.execute(
                select(models, model_versions.c.lora_id)
                .join(
                    model_versions,
                    (model_versions.c.model == models.c.model)
                    & (model_versions.c.version == models.c.deployed_version),
                )
                .where(models.c.model == model, models.c.tenant_id == tenant_id)
            ).first()
        if parsed is None or row is None:
            raise NotFoundError(f"the model {model!r} does not exist", param="model")
        folder = f"{row.base_model}.{row.suffix}"
        return Adapter(tenant_id, model, row.base_model, folder, row.deployed_version, row.lora_id)

    def list_models(self, tenant_id: str) -> list[dict[str, Any]]:
        """The tenant's own models with a deployed version, oldest first."""
        with self.engine.connect() as db:
            rows = db.execute(
                select(models)
                .where(models.c.tenant_id == tenant_id, models.c.deployed_version.is_not(None))
                .order_by(models.c.created_at, models.c.model)
            ).all()
        return [
            {
                "model": r.model,
                "base_model": r.base_model,
                "version": r.deployed_version,
                "created_at": r.created_at,
            }
            for r in rows
        ]

    # -- lifecycle: versions, deploy, rollback, retire -----------------------------------------

    def describe(self, tenant_id: str, model: str) -> dict[str, Any]:
        """The caller's model with every version, its lineage and metrics; NotFoundError otherwise."""
        with self.engine.connect() as db:
            row = self._owned(db, tenant_id, model)
            versions = db.execute(
                select(model_versions)
                .where(model_versions.c.model == model)
                .order_by(model_versions.c.version)
            ).all()
            history = db.execute(
                select(model_deployments)
                .where(model_deployments.c.model == model)
                .order_by(model_deployments.c.deployment_id)
            ).all()
        return {
            "model": model,
            "base_model": row.base_model,
            "created_at": row.created_at,
            "deployed_version": row.deployed_version,
            "versions": [
                {
                    "version": v.version,
                    "created_at": v.created_at,
                    "job_id": v.job_id,
                    "lineage": v.lineage,
                    "metrics": v.metrics,
                    "state": _state(v.version, v.retired_at, row.deployed_version),
                }
                for v in versions
            ],
            "deployments": [{"version": h.version, "action": h.action, "at": h.at} for h in history],
        }

    def deploy(self, tenant_id: str, model: str, version: int) -> int:
        """Serve ``version`` of the caller's model from the next request on (engines keep running)."""
        with self.engine.begin() as db:
            row = self._owned(db, tenant_id, model)
            self._live_version(db, model, version)
            if row.deployed_version != version:
                _switch(db, model, version, "deploy")
        return version

    def rollback(self, tenant_id: str, model: str) -> int:
        """Serve again the version deployed before the current one (retired ones are passed over).

        Deployments are a stack: a deploy pushes, a rollback pops back to its version, so each
        rollback goes one further back. Returns the version now served."""
        with self.engine.begin() as db:
            row = self._owned(db, tenant_id, model)
            history = db.execute(
                select(model_deployments.c.version, model_deployments.c.action)
                .where(model_deployments.c.model == model)
                .order_by(model_deployments.c.deployment_id)
            ).all()
            stack: list[int] = []
            for version, action in history:
                if action == "rollback":
                    while stack and stack[-1] != version:
                        stack.pop()
                else:
                    stack.append(version)
            retired = set(
                db.execute(
                    select(model_versions.c.version).where(
                        model_versions.c.model == model, model_versions.c.retired_at.is_not(None)
                    )
                ).scalars()
            )
            earlier = [v for v in stack[:-1] if v not in retired and v != row.deployed_version]
            if not earlier:
                raise ConflictError(f"{model} has no earlier deployed version to go back to", param="model")
            _switch(db, model, earlier[-1], "rollback")
            return earlier[-1]

    def retire(self, tenant_id: str, model: str) -> None:
        """Stop serving the caller's model and remove every version's files (the rows stay, retired)."""
        with self.engine.begin() as db:
            row = self._owned(db, tenant_id, model)
            db.execute(
                sql_update(model_versions)
                .where(model_versions.c.model == model, model_versions.c.retired_at.is_(None))
                .values(retired_at=datetime.now(UTC))
            )
            db.execute(sql_update(models).where(models.c.model == model).values(deployed_version=None))
        self.storage.delete_tree(area_key(tenant_id, "adapters", f"{row.base_model}.{row.suffix}"))

    def _owned(self, db: Any, tenant_id: str, model: str) -> Any:
        query = select(models).where(models.c.model == model, models.c.tenant_id == tenant_id)
        row = db.execute(query).first()
        if row is None or _parse(model) is None:
            raise NotFoundError(f"the model {model!r} does not exist", param="model")
        return row

    def _live_version(self, db: Any, model: str, version: int) -> None:
        found = db.execute(
            select(model_versions.c.retired_at).where(
                model_versions.c.model == model, model_versions.c.version == version
            )
        ).first()
        if found is None:
            raise NotFoundError(f"{model} has no version {version}", param="version")
        if found.retired_at is not None:
            raise ConflictError(f"version {version} of {model} is retired", param="version")


def _state(version: int, retired_at: datetime | None, deployed_version: int | None) -> VersionState:
    if retired_at is not None:
        return "retired"
    return "deployed" if version == deployed_version else "ready"


def _switch(db: Any, model: str, version: int, action: DeploymentAction) -> None:
    """Make ``version`` the served one and record it in the deployment history."""
    db.execute(sql_update(models).where(models.c.model == model).values(deployed_version=version))
    record = {"model": model, "version": version, "action": action, "at": datetime.now(UTC)}
    db.execute(insert(model_deployments).values(**record))
