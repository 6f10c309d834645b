"""Per-tenant quotas and metered usage, durable in SQL.

A tenant's quota is a ``TenantLimits`` (``cluster.settings``, the one definition of a quota): the
settings' defaults (``Settings.quotas``) with the fields an admin set for it on top; ``None`` is
unlimited. The ``quotas`` table has one nullable column per field of ``TenantLimits`` (null: the
default), made from the fields themselves. The GPU broker reads ``nominal_gpus`` from here.
Usage is metered in hourly buckets per metric (``requests``, ``prompt_tokens``,
``completion_tokens``, ``gpu_seconds``), added to with one upsert per bucket, so any number of
gateways and workers can meter at once.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, get_args

from sqlalchemy import BigInteger, Column, DateTime, Float, String, Table, delete, select
from sqlalchemy import func as sql
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from actors.db import engine_for, metadata
from actors.tenants import tenants
from cluster import EngramError, NotFoundError, QuotaSettings, TenantLimits, validate_tenant_id

Metric = Literal["requests", "prompt_tokens", "completion_tokens", "gpu_seconds"]
METRICS: tuple[Metric, ...] = get_args(Metric)
LIMITS: tuple[str, ...] = tuple(TenantLimits.model_fields)  # the quota's fields, in order


def _column(name: str) -> Column[Any]:
    """The nullable SQL column of one ``TenantLimits`` field: its override, null for the default."""
    annotation = TenantLimits.model_fields[name].annotation
    numbers = set(get_args(annotation)) or {annotation}
    return Column(name, Float if float in numbers else BigInteger)


quotas = Table(
    "quotas",
    metadata,
    Column("tenant_id", String(63), primary_key=True),
    *(_column(name) for name in LIMITS),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)
usage = Table(
    "usage",
    metadata,
    Column("tenant_id", String(63), primary_key=True),
    Column("metric", String(32), primary_key=True),
    Column("hour", DateTime(timezone=True), primary_key=True),
    Column("value", Float, nullable=False),
)


class QuotaExceededError(EngramError, RuntimeError):
    """A tenant is at one of its limits; ``param`` names the quota, ``retry_after`` (s) when waiting helps."""


def hour_of(at: datetime) -> datetime:
    at = at.astimezone(UTC) if at.tzinfo else at.replace(tzinfo=UTC)
    return at.replace(minute=0, second=0, microsecond=0)


def _aware(at: datetime) -> datetime:
    """SQLite gives naive datetimes back; every stored time is UTC."""
    return at if at.tzinfo else at.replace(tzinfo=UTC)


class QuotaBook:
    def __init__(self, database_url: str, defaults: QuotaSettings) -> None:
        self.engine = engine_for(database_url)
        self.defaults = defaults

    # --- quotas ---------------------------------------------------------------------------

    def get(self, tenant_id: str) -> TenantLimits:
        """The tenant's effective quota: defaults, with what an admin set on top."""
        with self.engine.connect() as db:
            row = db.execute(select(quotas).where(quotas.c.tenant_id == tenant_id)).first()
        quota = self.defaults.limits()
        if row is None:
            return quota
        overrides = {name: getattr(row, name) for name in LIMITS if getattr(row, name) is not None}
        return quota.model_copy(update=overrides)

    def set(self, tenant_id: str, limits: dict[str, Any]) -> TenantLimits:
        """Replace the tenant's overrides by ``limits`` (fields left out or None go back to the defaults).

        The nominal GPU quota counts from the broker's next decision (at most a second away)."""
        validate_tenant_id(tenant_id)
        unknown = sorted(set(limits) - set(LIMITS))
        if unknown:
            raise ValueError(f"unknown quota fields {unknown}; valid: {', '.join(LIMITS)}")
        checked = TenantLimits.model_validate(self.defaults.limits().model_dump() | _given(limits))
        row = {name: getattr(checked, name) if name in _given(limits) else None for name in LIMITS}
        row["updated_at"] = datetime.now(UTC)
        with self.engine.begin() as db:
            known = db.execute(select(tenants.c.tenant_id).where(tenants.c.tenant_id == tenant_id)).first()
            if known is None:
                raise NotFoundError(f"no tenant {tenant_id!r}", param="tenant_id")
            db.execute(delete(quotas).where(quotas.c.tenant_id == tenant_id))
            db.execute(quotas.insert().values(tenant_id=tenant_id, **row))
        return self.get(tenant_id)

    # --- usage ----------------------------------------------------------------------------

    def record(self, entries: Iterable[tuple[str, Metric, float, datetime]]) -> None:
        """Add each ``(tenant_id, metric, amount, at)`` to its hourly bucket, in one transaction."""
        totals: dict[tuple[str, str, datetime], float] = {}
        for tenant_id, metric, amount, at in entries:
            if metric not in METRICS:
                raise ValueError(f"unknown usage metric {metric!r}; valid: {', '.join(METRICS)}")
            key = (tenant_id, metric, hour_of(at))
            totals[key] = totals.get(key, 0.0) + float(amount)
        if not totals:
            return
        with self.engine.begin() as db:
            for (tenant, name, hour), value in totals.items():
                _add(db, tenant, name, hour, value)

    def usage(self, tenant_id: str, since: datetime, until: datetime) -> dict[str, float]:
        """Each metric's total over the hours from ``since``'s hour up to (not including) ``until``."""
        with self.engine.connect() as db:
            rows = db.execute(
                select(usage.c.metric, sql.sum(usage.c.value))
                .where(usage.c.tenant_id == tenant_id, usage.c.hour >= hour_of(since), usage.c.hour < until)
                .group_by(usage.c.metric)
            ).all()
        totals: dict[str, float] = dict.fromkeys(METRICS, 0.0)
        totals.update({metric: float(value) for metric, value in rows})
        return totals

    def hourly(self, tenant_id: str, since: datetime, until: datetime) -> list[dict[str, Any]]:
        """Usage per hour and metric, oldest first."""
        with self.engine.connect() as db:
            rows = db.execute(
                select(usage.c.hour, usage.c.metric, usage.c.value)
                .where(usage.c.tenant_id == tenant_id, usage.c.hour >= hour_of(since), usage.c.hour < until)
                .order_by(usage.c.hour, usage.c.metric)
            ).all()
        return [{"hour": _aware(r.hour), "metric": r.metric, "value": float(r.value)} for r in rows]

    # --- limits of work that runs for long ---------------------------------------------------

    def admit_job(self, tenant_id: str, running_jobs: int, now: datetime | None = None) -> None:
        """Raise QuotaExceededError unless the tenant may start one more fine-tune job now."""
        quota = self.get(tenant_id)
        if quota.concurrent_jobs is not None and running_jobs >= quota.concurrent_jobs:
            raise QuotaExceededError(
                f"tenant {tenant_id} runs {running_jobs} of its {quota.concurrent_jobs} concurrent "
                "fine-tune jobs",
                param="concurrent_jobs",
            )
        self.check_gpu_seconds(tenant_id, now)

    def check_gpu_seconds(self, tenant_id: str, now: datetime | None = None) -> None:
        """Raise QuotaExceededError when the tenant used its GPU-seconds of the rolling period."""
        limit = self.get(tenant_id).gpu_seconds
        if limit is None:
            return
        now = now or datetime.now(UTC)
        days = self.defaults.gpu_period_days
        used = self.usage(tenant_id, now - timedelta(days=days), now + timedelta(hours=1))["gpu_seconds"]
        if used >= limit:
            raise QuotaExceededError(
                f"tenant {tenant_id} used {used:.0f} of its {limit:.0f} GPU-seconds in the last {days} days",
                param="gpu_seconds",
            )

    def forget(self, tenant_id: str) -> None:
        """Remove the tenant's quota and usage rows (tenant deletion)."""
        with self.engine.begin() as db:
            db.execute(delete(quotas).where(quotas.c.tenant_id == tenant_id))
            db.execute(delete(usage).where(usage.c.tenant_id == tenant_id))


def add_usage(db: Connection, tenant_id: str, metric: Metric, amount: float, at: datetime) -> None:
    """Meter ``amount`` of ``metric`` at ``at`` inside the caller's transaction."""
    _add(db, tenant_id, metric, hour_of(at), float(amount))


def _add(db: Connection, tenant_id: str, metric: str, hour: datetime, value: float) -> None:
    """``value`` added to one bucket with one upsert (SQLite or PostgreSQL)."""
    dialect = postgresql if db.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(usage).values(tenant_id=tenant_id, metric=metric, hour=hour, value=value)
    db.execute(
        statement.on_conflict_do_update(
            index_elements=["tenant_id", "metric", "hour"],
            set_={"value": usage.c.value + statement.excluded.value},
        )
    )


def _given(limits: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in limits.items() if value is not None}
