"""The memory pipeline: a tenant's unprocessed signals become memories and profiles.

A pass takes up to ``max_signals_per_run`` unprocessed signals and runs
normalize -> embed -> annotate -> extract -> consolidate (per user), writes the
changed memories with ``merge_insert`` on their deterministic ids, rebuilds the touched
users' profiles, and only then marks the signals processed. A pass that dies part-way
leaves its signals unprocessed; the next pass redoes them and, since every merge is
idempotent, ends where one clean pass would have. ``build`` loops until nothing is left.

``build`` runs the stages on Ray Data: blocks of whole users (``stages.user_blocks``) go
through an actor pool that holds the embedding model and runs every stage of a block.
``build_in_process`` runs the same stages in the calling process with an embedder
it already holds: the always-on builder uses it for small, frequent passes, where
starting a Ray Data job would cost more than the work.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import cast

import pyarrow as pa
import pyarrow.compute as pc
import ray
from lancedb.table import Table

from cluster import (
    Settings,
    Storage,
    embedding_actor_resources,
    embedding_actors,
    embedding_device,
    ensure_ray,
)
from memory import stages
from memory.consolidate import Policy
from memory.embed import Embedder
from memory.profiles import build_profiles
from memory.store import TenantStore

log = logging.getLogger(__name__)


@dataclass
class BuildReport:
    tenant_id: str
    signals: int = 0
    memories_written: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)
    users: int = 0
    passes: int = 0
    seconds: float = 0.0


def pending_signals(store: TenantStore, limit: int) -> pa.Table:
    """Signals not yet taken in by the pipeline, oldest first."""
    if not store.has("signals"):
        return pa.table({})
    table = store.signals().search().where("processed_at IS NULL").limit(limit).to_arrow()
    return table.sort_by([("occurred_at", "ascending"), ("signal_id", "ascending")])


def build(tenant_id: str, settings: Settings) -> BuildReport:
    """Run the pipeline over all of the tenant's unprocessed signals."""
    started = time.perf_counter()
    ensure_ray(settings)
    store = TenantStore(Storage.of(settings), tenant_id)
    report = BuildReport(tenant_id=store.tenant_id)
    while True:
        pending = pending_signals(store, settings.pipeline.max_signals_per_run)
        if pending.num_rows == 0:
            break
        _run_pass(store, pending, settings, report)
        report.passes += 1
    report.seconds = time.perf_counter() - started
    return report


def plan(store: TenantStore, pending: pa.Table, settings: Settings, now: datetime) -> ray.data.Dataset:
    """The Ray Data plan of one pass: blocks of whole users in, their changed memory rows out."""
    blocks = stages.user_blocks(pending, settings.pipeline.batch_rows)
    actors = min(len(blocks), embedding_actors(settings.embedding))
    return ray.data.from_arrow(blocks).map_batches(
        stages.BuildBatch,
        batch_format="pyarrow",
        batch_size=None,  # a block is a batch: blocks never split a user
        fn_constructor_kwargs={
            "model": settings.embedding.model,
            "batch_size": settings.embedding.batch_size,
            "threads": settings.embedding.threads,
            "device": embedding_device(settings.embedding),
            "stages": _stages(store, settings, now),
        },
        # start them all at once, but go ahead with the first that is up (CPUs may be taken)
        compute=ray.data.ActorPoolStrategy(min_size=1, max_size=actors, initial_size=actors),
        **embedding_actor_resources(settings.embedding),
    )


def _run_pass(store: TenantStore, pending: pa.Table, settings: Settings, report: BuildReport) -> None:
    now = datetime.now(UTC)
    batches = plan(store, pending, settings, now).iter_batches(batch_format="pyarrow", batch_size=8192)
    _commit(store, pending, (cast(pa.Table, b) for b in batches), settings, now, report)


def build_in_process(store: TenantStore, settings: Settings, embedder: Embedder, limit: int) -> BuildReport:
    """One pass of the same stages over up to ``limit`` pending signals, in this process."""
    started = time.perf_counter()
    report = BuildReport(tenant_id=store.tenant_id)
    pending = pending_signals(store, limit)
    if pending.num_rows:
        now = datetime.now(UTC)
        changed = [_stages(store, settings, now).run(pending, embedder)]
        _commit(store, pending, changed, settings, now, report)
        report.passes = 1
    report.seconds = time.perf_counter() - started
    return report


def _stages(store: TenantStore, settings: Settings, now: datetime) -> stages.Stages:
    cfg = settings.pipeline
    ttl = {str(kind): days for kind, days in cfg.ttl_days.items()}
    return stages.Stages(
        pii=settings.pii.policy_for(store.tenant_id),
        max_chars=cfg.max_memory_chars,
        extractor=cfg.extractor,
        store=store,
        policy=Policy(store.tenant_id, now, cfg.near_duplicate_threshold, ttl),
        window_days=cfg.episode_window_days,
    )


def _commit(
    store: TenantStore,
    pending: pa.Table,
    changed: Iterable[pa.Table],
    settings: Settings,
    now: datetime,
    report: BuildReport,
) -> None:
    """Write changed memories, rebuild the touched profiles, then mark the signals processed."""
    started = time.perf_counter()
    memories: Table | None = None
    for batch in changed:
        if batch.num_rows == 0:
            continue
        if memories is None:
            memories = store.memories(batch["vector"].type.list_size)
        store.upsert("memories", memories, batch, "memory_id", update=True, refresh=False)
        report.memories_written += batch.num_rows
        for kind, count in zip(*_counts(batch["kind"]), strict=True):
            report.by_kind[kind] = report.by_kind.get(kind, 0) + count
    if memories is not None:
        store.refresh_indexes("memories", memories)
    written = time.perf_counter()
    users = pc.unique(pending["user_id"]).to_pylist()
    profiles = build_profiles(store, users, top_topics=settings.pipeline.profile_top_topics, now=now)
    store.upsert("profiles", store.profiles(), profiles, "user_id", update=True)
    processed_at = pa.array([now] * pending.num_rows, pending.schema.field("processed_at").type)
    processed = pending.set_column(
        pending.schema.get_field_index("processed_at"), "processed_at", processed_at
    )
    store.upsert("signals", store.signals(), processed, "signal_id", update=True)
    report.signals += pending.num_rows
    report.users += len(users)
    log.info(
        "pass of %d signals: stages and memory writes %.1f s, profiles and bookkeeping %.1f s",
        pending.num_rows,
        written - started,
        time.perf_counter() - written,
    )


def _counts(column: pa.ChunkedArray) -> tuple[list[str], list[int]]:
    counts = pc.value_counts(column).to_pylist()
    return [c["values"] for c in counts], [c["counts"] for c in counts]
