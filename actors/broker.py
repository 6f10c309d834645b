"""The GPU broker: who gets the pooled GPUs, durable in SQL, explainable event by event.

Every GPU user is a *workload* asking for a (fractional) number of GPUs: a serving replica (an
LLM or embedding replica) or a training run. The broker admits workloads onto the pool in the
spirit of Kueue (serving first, tenants' nominal quotas, borrowing of idle GPUs, preemption of
borrowers; see ``actors.broker_policy``), and admitted workloads then ask Ray for exactly that
many GPUs (``num_gpus=``), so Ray's scheduler places them on GPU nodes.

``GPUBroker`` keeps every workload and decision event in SQL, reads tenants' nominal GPU quotas
from their quotas (``actors.quotas``), and re-applies the policy after each change.
``start_broker`` runs it as a named, detached actor that Ray restarts after a failure; a
restarted broker reads its state back and carries on. Training runs are
executed by ``actors.broker_runner``; the broker knows nothing of what they train.
"""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import ray
from ray.actor import ActorHandle
from ray.exceptions import RayError
from sqlalchemy import (
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    insert,
    select,
    update,
)
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError

from actors.broker_policy import (
    EPS,
    HOLDING,
    PENDING,
    TERMINAL,
    Decision,
    Kind,
    Plan,
    Priority,
    State,
    Workload,
    gpus_text,
)
from actors.control import BROKER, NAMESPACE, actor_name, control_actor_options
from actors.db import engine_for, metadata, serialized
from actors.quotas import QuotaBook, QuotaExceededError, add_usage
from cluster import (
    BrokerSettings,
    ConflictError,
    InvalidRequestError,
    NotFoundError,
    QuotaSettings,
    Settings,
    area_key,
    validate_name,
    validate_tenant_id,
)

gpu_workloads = Table(
    "gpu_workloads",
    metadata,
    Column("workload_id", String(128), primary_key=True),
    Column("tenant_id", String(63), index=True),  # None for serving: it serves every tenant
    Column("kind", String(16), nullable=False),
    Column("priority", String(16), nullable=False),
    Column("label", String(200)),  # serving: the deployment; training: free text (e.g. the job)
    Column("gpus", Float, nullable=False),
    Column("state", String(16), nullable=False, index=True),
    Column("attempt", Integer, nullable=False),  # admissions so far; a runner acts for one attempt
    Column("preemptions", Integer, nullable=False),
    Column("checkpoint_dir", String(1024)),
    Column("checkpoint_step", Integer),
    Column("checkpoint_path", String(1024)),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("admitted_at", DateTime(timezone=True)),
    Column("preempted_at", DateTime(timezone=True)),
    Column("finished_at", DateTime(timezone=True)),
)
gpu_events = Table(
    "gpu_events",
    metadata,
    Column("event_id", Integer, primary_key=True, autoincrement=True),
    Column("workload_id", String(128), ForeignKey("gpu_workloads.workload_id"), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("event", String(16), nullable=False),
    Column("message", Text, nullable=False),
    Index("ix_gpu_events_workload_id", "workload_id", "event_id"),
)


@dataclass(frozen=True)
class GPUEvent:
    """A decision about a workload, or something its runner reported, with the reason."""

    event_id: int
    workload_id: str
    at: datetime
    event: str
    message: str

    def __str__(self) -> str:
        return f"{self.event}: {self.message}"


@dataclass(frozen=True)
class Lease:
    """What one admission grants a training run: its GPUs, where to checkpoint, how often to ask."""

    workload_id: str
    attempt: int
    gpus: float
    checkpoint_dir: str  # a storage key (``cluster.storage``)
    poll_s: float


def _aware(at: datetime | None) -> datetime | None:
    """SQLite gives naive datetimes back; every stored time is UTC."""
    if at is None:
        return None
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def _workload(row: Any) -> Workload:
    data = dict(row._mapping)
    for key in ("created_at", "updated_at", "admitted_at", "preempted_at", "finished_at"):
        data[key] = _aware(data[key])
    return Workload(**data)


class GPUBroker:
    """The broker's policy over its SQL state; plain and synchronous (``start_broker`` makes it an actor).

    One broker process decides for one database: the broker actor. Everything it knows is in SQL,
    so a new instance on the same database carries on where the last one stopped.
    """

    def __init__(
        self,
        database_url: str,
        *,
        settings: BrokerSettings | None = None,
        quotas: QuotaSettings | None = None,
        capacity_gpus: float | None = None,
    ) -> None:
        self.engine: Engine = engine_for(database_url)
        self.settings = settings or BrokerSettings()
        self.quotas = QuotaBook(database_url, quotas or QuotaSettings())
        if ray.is_initialized() and ray.get_runtime_context().get_actor_id() is not None:
            _start_clock(self.settings.poll_s)  # as the broker actor: also after each restart
        self.capacity_gpus = capacity_gpus if capacity_gpus is not None else self.settings.capacity_gpus

    @classmethod
    def from_settings(cls, settings: Settings, capacity_gpus: float | None = None) -> GPUBroker:
        url = settings.control_db_url
        return cls(
            url,
            settings=settings.broker,
            quotas=settings.quotas,
            capacity_gpus=capacity_gpus,
        )

    # -- capacity and quotas ------------------------------------------------------------------

    def capacity(self) -> float:
        """GPUs in the pool: the configured amount, else every GPU the Ray cluster has now."""
        if self.capacity_gpus is not None:
            return self.capacity_gpus
        return float(ray.cluster_resources().get("GPU", 0)) if ray.is_initialized() else 0.0

    def nominal(self, tenant_id: str) -> float:
        """The tenant's nominal GPU quota (``TenantLimits.nominal_gpus``, set with its other limits)."""
        return self.quotas.get(tenant_id).nominal_gpus

    def poll_interval(self) -> float:
        return self.settings.poll_s

    # -- workloads ----------------------------------------------------------------------------

    def submit(
        self,
        tenant_id: str,
        gpus: float,
        *,
        priority: Priority = "batch",
        workload_id: str | None = None,
        label: str | None = None,
    ) -> Workload:
        """Queue a tenant's training run for ``gpus`` GPUs and schedule; its checkpoints go under
        the storage key ``tenants/<tenant>/checkpoints/<workload_id>``."""
        validate_tenant_id(tenant_id)
        if priority not in ("interactive", "batch"):
            raise InvalidRequestError(
                f"training priority must be interactive or batch, not {priority!r}", param="priority"
            )
        workload_id = workload_id or f"train-{secrets.token_hex(6)}"
        folder = area_key(tenant_id, "checkpoints", workload_id)
        self._insert(workload_id, tenant_id, "training", priority, gpus, label, folder)
        self.schedule()
        return self.workload(workload_id)

    def serving_demand(self, gpus: float, *, deployment: str = "llm", replica_gpus: float = 1.0) -> float:
        """Set what serving's ``deployment`` wants: ``gpus`` in replicas of ``replica_gpus``.

        More replicas than now are queued (and preempt training as needed); fewer release the
        newest replicas, waiting ones first. Returns the GPUs the deployment is admitted now.
        """
        validate_name(deployment, "deployment")
        if replica_gpus <= 0:
            raise InvalidRequestError("replica_gpus must be positive", param="replica_gpus")
        replicas = round(gpus / replica_gpus)
        if gpus < 0 or abs(replicas * replica_gpus - gpus) > EPS:
            raise InvalidRequestError(
                f"serving demand {gpus} is not a whole number of {replica_gpus}-GPU replicas", param="gpus"
            )
        current = self.workloads(kind="serving", label=deployment, live=True)
        for _ in range(replicas - len(current)):
            workload_id = f"serving-{deployment}-{secrets.token_hex(4)}"
            self._insert(workload_id, None, "serving", "serving", replica_gpus, deployment, None)
        release = sorted(current, key=lambda w: (w.state in PENDING, w.created_at), reverse=True)
        for w in release[: max(len(current) - replicas, 0)]:
            self._end(
                w.workload_id,
                "finished",
                "released",
                f"serving demand of {deployment} fell to {gpus_text(gpus)} GPU",
            )
        self.schedule()
        return self.serving_admitted(deployment)

    def serving_admitted(self, deployment: str = "llm") -> float:
        """GPUs the serving ``deployment`` may place replicas on now."""
        return sum(
            w.gpus for w in self.workloads(kind="serving", label=deployment, live=True) if w.state in HOLDING
        )

    def cancel(self, workload_id: str) -> Workload:
        """Stop a workload for good; a running one stops at its runner's next step."""
        w = self.workload(workload_id)
        if w.state in TERMINAL:
            raise ConflictError(f"workload {workload_id} is already {w.state}", param="workload_id")
        self._end(workload_id, "cancelled", "cancelled", f"cancelled while {w.state}")
        self.schedule()
        return self.workload(workload_id)

    def workload(self, workload_id: str, tenant_id: str | None = None) -> Workload:
        """One workload; with ``tenant_id``, another tenant's is not found."""
        with self.engine.connect() as db:
            row = db.execute(select(gpu_workloads).where(gpu_workloads.c.workload_id == workload_id)).first()
        if row is None or (tenant_id is not None and row.tenant_id != tenant_id):
            raise NotFoundError(f"no workload {workload_id!r}", param="workload_id")
        return _workload(row)

    def workloads(
        self,
        *,
        tenant_id: str | None = None,
        kind: Kind | None = None,
        label: str | None = None,
        live: bool = False,
    ) -> list[Workload]:
        """Workloads oldest first, filtered; ``live``: not finished, failed or cancelled."""
        query = select(gpu_workloads).order_by(gpu_workloads.c.created_at, gpu_workloads.c.workload_id)
        if tenant_id is not None:
            query = query.where(gpu_workloads.c.tenant_id == tenant_id)
        if kind is not None:
            query = query.where(gpu_workloads.c.kind == kind)
        if label is not None:
            query = query.where(gpu_workloads.c.label == label)
        if live:
            query = query.where(gpu_workloads.c.state.not_in(TERMINAL))
        with self.engine.connect() as db:
            return [_workload(r) for r in db.execute(query)]

    def events(self, workload_id: str, tenant_id: str | None = None) -> list[GPUEvent]:
        """Why the workload waited, ran, was preempted or resumed, oldest first."""
        self.workload(workload_id, tenant_id)
        with self.engine.connect() as db:
            rows = db.execute(
                select(gpu_events)
                .where(gpu_events.c.workload_id == workload_id)
                .order_by(gpu_events.c.event_id)
            ).all()
        return [GPUEvent(r.event_id, r.workload_id, _aware(r.at) or _now(), r.event, r.message) for r in rows]

    # -- what runners report ------------------------------------------------------------------

    def lease(self, workload_id: str) -> Lease | None:
        """The grant of an admitted training run not yet started; None while it is not admitted."""
        w = self.workload(workload_id)
        if w.state != "admitted" or w.kind != "training" or w.checkpoint_dir is None:
            return None
        return Lease(w.workload_id, w.attempt, w.gpus, w.checkpoint_dir, self.settings.poll_s)

    def started(self, workload_id: str, attempt: int, step: int, node_id: str = "") -> bool:
        """A runner began attempt ``attempt`` at ``step``; False: the attempt is stale, do not run."""
        w = self.workload(workload_id)
        if w.state == "preempting" and w.attempt == attempt:  # preempted before it began: nothing to save
            with self.engine.begin() as db:
                _meter(db, w)
                _set(db, workload_id, state="preempted")
                _event(db, workload_id, "requeued", "preempted before its runner began; requeued")
            self.schedule()
        if w.state != "admitted" or w.attempt != attempt:
            return False
        where = f" on node {node_id[:12]}" if node_id else ""
        if step:
            event, message = "resumed", f"from checkpoint {w.checkpoint_path} at step {step}{where}"
        else:
            event, message = "running", f"from step 0{where}"
        with self.engine.begin() as db:
            _set(db, workload_id, state="running")
            _event(db, workload_id, event, message)
        return True

    def should_stop(self, workload_id: str, attempt: int) -> bool:
        """Whether the runner of ``attempt`` must checkpoint and stop now (preempted, cancelled, stale)."""
        w = self.workload(workload_id)
        return not (w.attempt == attempt and w.state in ("admitted", "running"))

    def checkpointed(self, workload_id: str, attempt: int, step: int, path: str) -> None:
        """A runner saved a checkpoint (progress only, no event)."""
        with self.engine.begin() as db:
            db.execute(
                update(gpu_workloads)
                .where(gpu_workloads.c.workload_id == workload_id, gpu_workloads.c.attempt == attempt)
                .values(checkpoint_step=step, checkpoint_path=path, updated_at=_now())
            )

    def stopped(self, workload_id: str, attempt: int, step: int, path: str) -> None:
        """A runner checkpointed at ``step`` and stopped as asked; a preempted run is requeued."""
        w = self.workload(workload_id)
        if w.attempt != attempt:
            return
        with self.engine.begin() as db:
            if w.state == "preempting":
                _meter(db, w)
                _set(db, workload_id, state="preempted", checkpoint_step=step, checkpoint_path=path)
                message = f"checkpointed at step {step} to {path} and stopped; requeued to resume from there"
                _event(db, workload_id, "requeued", message)
            else:
                _set(db, workload_id, checkpoint_step=step, checkpoint_path=path)
                _event(db, workload_id, "stopped", f"checkpointed at step {step} to {path} while {w.state}")
        self.schedule()

    def finish(
        self,
        workload_id: str,
        attempt: int | None = None,
        *,
        step: int | None = None,
        checkpoint: str | None = None,
        error: str | None = None,
    ) -> None:
        """The run ended: done, or failed with ``error``. A stale attempt's report is ignored."""
        w = self.workload(workload_id)
        stale = attempt is not None and (w.attempt != attempt or w.state not in HOLDING)
        if stale or w.state in TERMINAL:
            return
        if error is not None:
            self._end(workload_id, "failed", "failed", error)
        else:
            at = f" at step {step}" if step is not None else ""
            self._end(workload_id, "finished", "finished", f"finished{at}", step=step, checkpoint=checkpoint)
        self.schedule()

    def interrupted(self, workload_id: str, attempt: int, reason: str) -> None:
        """The attempt was lost without an answer (its worker or node died): requeued to resume from
        its last checkpoint, or failed once it crashed more than ``max_failures`` times."""
        w = self.workload(workload_id)
        if w.attempt != attempt or w.state not in HOLDING:
            return
        with self.engine.connect() as db:
            crashes = 1 + len(
                db.execute(
                    select(gpu_events.c.event_id).where(
                        gpu_events.c.workload_id == workload_id, gpu_events.c.event == "interrupted"
                    )
                ).all()
            )
        limit = self.settings.max_failures
        if crashes > limit:
            self._end(workload_id, "failed", "failed", f"{reason}; crash {crashes}, more than {limit}")
        else:
            step = w.checkpoint_step or 0
            with self.engine.begin() as db:
                _meter(db, w)
                _set(db, workload_id, state="preempted")
                why = f"{reason}; requeued to resume from step {step} (crash {crashes} of {limit} survivable)"
                _event(db, workload_id, "interrupted", why)
        self.schedule()

    # -- the decision step --------------------------------------------------------------------

    def schedule(self) -> None:
        """Apply the policy once to the live workloads and write every decision with its reason.

        Serialized on the database: a second broker on it (one restarting, or one per cluster
        sharing the database) waits, and then decides on what this one wrote."""
        with serialized(self.engine, "gpu-broker") as db:
            self._schedule(db)

    def _schedule(self, db: Connection) -> None:
        live = self.workloads(live=True)
        tenants = {w.tenant_id for w in live if w.tenant_id is not None}
        nominal = {t: self.nominal(t) for t in tenants}
        grace = timedelta(seconds=self.settings.preemption_grace_s)
        now = _now()
        held_back = self._over_job_quotas(live, now)
        offered = [w for w in live if w.workload_id not in held_back]
        decisions = Plan(offered, self.capacity(), nominal, now, grace).run()
        decisions += [Decision(workload_id, "wait", why) for workload_id, why in held_back.items()]
        by_id = {w.workload_id: w for w in live}
        for d in decisions:
            w = by_id[d.workload_id]
            if d.action == "admit":
                _set(db, w.workload_id, state="admitted", attempt=w.attempt + 1, admitted_at=now)
                _event(db, w.workload_id, "admitted", d.message)
            elif d.action == "preempt":
                _set(db, w.workload_id, state="preempting", preempted_at=now, preemptions=w.preemptions + 1)
                _event(db, w.workload_id, "preempted", d.message)
            elif d.action == "requeue":
                _meter(db, w, now)
                _set(db, w.workload_id, state="preempted")
                _event(db, w.workload_id, "requeued", d.message)
            elif _last_event(db, w.workload_id) != ("waiting", d.message):
                _event(db, w.workload_id, "waiting", d.message)

    def _over_job_quotas(self, live: list[Workload], now: datetime) -> dict[str, str]:
        """Pending training runs that their tenant's job quotas keep out of this pass, with why:
        beyond its concurrent fine-tune jobs (oldest of the highest class go first), or every one
        of a tenant that used its GPU-seconds of the period."""
        held: dict[str, str] = {}
        pending = sorted(
            (w for w in live if w.kind == "training" and w.state in PENDING and w.tenant_id),
            key=lambda w: (w.rank, w.created_at, w.workload_id),
        )
        for tenant in dict.fromkeys(w.tenant_id for w in pending if w.tenant_id):
            mine = [w for w in pending if w.tenant_id == tenant]
            running = sum(1 for w in live if w.tenant_id == tenant and w.state in HOLDING)
            for w in mine:
                try:
                    self.quotas.admit_job(tenant, running, now)
                except QuotaExceededError as e:
                    held[w.workload_id] = f"{e}; waits until it is back under that quota"
                    continue
                running += 1  # this one may be admitted in the pass: it takes a slot
        return held

    # -- private ------------------------------------------------------------------------------

    def _insert(
        self,
        workload_id: str,
        tenant_id: str | None,
        kind: Kind,
        priority: Priority,
        gpus: float,
        label: str | None,
        checkpoint_dir: str | None,
    ) -> None:
        validate_name(workload_id, "workload_id")
        cpu_only = gpus == 0 and kind == "training"  # a run on CPUs: only job quotas hold it back
        if not cpu_only and not 0 < gpus <= 1 and not (gpus > 1 and float(gpus).is_integer()):
            raise InvalidRequestError(
                f"a workload asks for a fraction of one GPU or whole GPUs, not {gpus}", param="gpus"
            )
        now = _now()
        try:
            with self.engine.begin() as db:
                db.execute(
                    insert(gpu_workloads).values(
                        workload_id=workload_id,
                        tenant_id=tenant_id,
                        kind=kind,
                        priority=priority,
                        label=label,
                        gpus=float(gpus),
                        state="queued",
                        attempt=0,
                        preemptions=0,
                        checkpoint_dir=checkpoint_dir,
                        created_at=now,
                        updated_at=now,
                    )
                )
                who = f"tenant {tenant_id}'s {priority}" if tenant_id else "serving"
                _event(db, workload_id, "submitted", f"{who} workload asks for {gpus_text(gpus)} GPU")
        except IntegrityError as e:
            raise ConflictError(f"workload {workload_id!r} already exists", param="workload_id") from e

    def _end(
        self,
        workload_id: str,
        state: State,
        event: str,
        message: str,
        *,
        step: int | None = None,
        checkpoint: str | None = None,
    ) -> None:
        values: dict[str, Any] = {"state": state, "finished_at": _now()}
        if step is not None:
            values.update(checkpoint_step=step, checkpoint_path=checkpoint)
        w = self.workload(workload_id)
        with self.engine.begin() as db:
            _meter(db, w, values["finished_at"])
            _set(db, workload_id, **values)
            _event(db, workload_id, event, message)


def cancel_tenant(db: Connection, tenant_id: str) -> int:
    """Cancel every live workload of a tenant being deleted, inside the caller's transaction; its
    runners stop at their next poll. Returns how many were cancelled."""
    live = db.execute(
        select(gpu_workloads.c.workload_id).where(
            gpu_workloads.c.tenant_id == tenant_id, gpu_workloads.c.state.not_in(TERMINAL)
        )
    ).all()
    for row in live:
        _set(db, row.workload_id, state="cancelled", finished_at=_now())
        _event(db, row.workload_id, "cancelled", "cancelled: the tenant was deleted")
    return len(live)


def _start_clock(poll_s: float) -> None:
    """Re-run the policy at least every second from inside the broker actor, so that a preempted run
    that never stops is requeued once its grace passes even when nothing else happens. The ticks
    are calls to the actor itself, so they queue with every other call: one decision at a time."""
    me = ray.get_runtime_context().current_actor
    period = max(poll_s, 1.0)

    def tick() -> None:
        while True:
            time.sleep(period)  # a clock: there is nothing to wait on but time
            try:
                ray.get(me.schedule.remote())
            except RayError:  # the actor is going away; its successor starts its own clock
                return

    threading.Thread(target=tick, name="broker-clock", daemon=True).start()


def _meter(db: Connection, w: Workload, until: datetime | None = None) -> None:
    """A training run gives its GPUs back: its tenant used ``gpus x`` the time since admission."""
    if w.kind != "training" or w.tenant_id is None or w.state not in HOLDING or w.admitted_at is None:
        return
    until = until or _now()
    seconds = max((until - w.admitted_at).total_seconds(), 0.0) * w.gpus
    add_usage(db, w.tenant_id, "gpu_seconds", seconds, until)


def _now() -> datetime:
    return datetime.now(UTC)


def _set(db: Connection, workload_id: str, **values: Any) -> None:
    db.execute(
        update(gpu_workloads)
        .where(gpu_workloads.c.workload_id == workload_id)
        .values(updated_at=_now(), **values)
    )


def _event(db: Connection, workload_id: str, event: str, message: str) -> None:
    db.execute(insert(gpu_events).values(workload_id=workload_id, at=_now(), event=event, message=message))


def _last_event(db: Connection, workload_id: str) -> tuple[str, str] | None:
    row = db.execute(
        select(gpu_events.c.event, gpu_events.c.message)
        .where(gpu_events.c.workload_id == workload_id)
        .order_by(gpu_events.c.event_id.desc())
        .limit(1)
    ).first()
    return None if row is None else (row.event, row.message)


# -- the broker actor --------------------------------------------------------------------------


def start_broker(
    settings: Settings,
    *,
    capacity_gpus: float | None = None,
    name: str | None = None,
    namespace: str = NAMESPACE,
) -> ActorHandle:
    """The broker actor on the settings' control database: named (``broker_name``), detached,
    restarted by Ray after a failure (state from SQL).

    A broker already running under the name is returned as it is. Its methods are ``GPUBroker``'s.
    """
    actor: Any = ray.remote(GPUBroker)
    actor = actor.options(**control_actor_options(name or broker_name(settings), namespace))
    handle: ActorHandle = actor.remote(
        settings.control_db_url,
        settings=settings.broker,
        quotas=settings.quotas,
        capacity_gpus=capacity_gpus,
    )
    return handle


def broker_name(settings: Settings) -> str:
    """The broker actor's name: one broker per control database."""
    return actor_name(BROKER, settings.control_db_url)


def get_broker(name: str, namespace: str = NAMESPACE) -> ActorHandle:
    """The running broker actor called ``name`` (ValueError when there is none)."""
    return ray.get_actor(name, namespace=namespace)


def replan(settings: Settings) -> None:
    """Ask the running broker actor to decide again now (a tenant's quota changed); without one,
    the next broker reads the quotas when it starts."""
    try:
        handle = get_broker(broker_name(settings)) if ray.is_initialized() else None
    except ValueError:
        return
    if handle is not None:
        ray.get(handle.schedule.remote())
