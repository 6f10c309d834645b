"""The memory pipeline on Ray Data: a tenant's unprocessed signals become memories and profiles.

A pass takes up to ``max_signals_per_run`` unprocessed signals and runs
normalize -> embed -> annotate -> extract -> consolidate (grouped by user), writes the
changed memories with ``merge_insert`` on their deterministic ids, rebuilds the touched
users' profiles, and only then marks the signals processed. A pass that dies part-way
leaves its signals unprocessed; the next pass redoes them and, since every merge is
idempotent, ends where one clean pass would have. ``build`` loops until nothing is left.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pyarrow as pa
import pyarrow.compute as pc
import ray

from cluster.runtime import embedding_actor_resources, ensure_ray
from cluster.settings import Settings
from memory import stages
from memory.consolidate import Policy
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
    store = TenantStore(settings.storage_root, tenant_id)
    report = BuildReport(tenant_id=store.tenant_id)
    while True:
        pending = pending_signals(store, settings.pipeline.max_signals_per_run)
        if pending.num_rows == 0:
            break
        _run_pass(store, pending, settings, report)
        report.passes += 1
    report.seconds = time.perf_counter() - started
    return report


def _run_pass(store: TenantStore, pending: pa.Table, settings: Settings, report: BuildReport) -> None:
    now = datetime.now(UTC)
    cfg = settings.pipeline
    rows = cfg.batch_rows
    blocks = [pending.slice(i, rows) for i in range(0, pending.num_rows, rows)]
    ds = ray.data.from_arrow(blocks)
    ds = ds.map_batches(
        stages.normalize_batch,
        batch_format="pyarrow",
        batch_size=rows,
        fn_kwargs={"pii": settings.pii.policy_for(store.tenant_id), "max_chars": cfg.max_memory_chars},
    )
    ds = ds.map_batches(
        stages.EmbedBatch,
        batch_format="pyarrow",
        batch_size=rows,
        fn_constructor_kwargs={
            "model": settings.embedding.model,
            "batch_size": settings.embedding.batch_size,
            "threads": settings.embedding.threads,
        },
        compute=ray.data.ActorPoolStrategy(size=settings.embedding.num_actors),
        **embedding_actor_resources(settings.embedding),
    )
    ds = ds.map_batches(stages.annotate_batch, batch_format="pyarrow", batch_size=rows)
    ds = ds.map_batches(
        stages.extract_batch, batch_format="pyarrow", batch_size=rows, fn_kwargs={"extractor": cfg.extractor}
    )
    policy = Policy(store.tenant_id, now, cfg.near_duplicate_threshold, dict(cfg.ttl_days))
    users = pc.unique(pending["user_id"]).to_pylist()
    grouped = ds.groupby("user_id", num_partitions=max(1, min(len(users), 8))).map_groups(
        stages.consolidate_group,
        batch_format="pyarrow",
        fn_kwargs={"store": store, "policy": policy, "window_days": cfg.episode_window_days},
    )
    t0 = time.perf_counter()
    upsert_s = 0.0
    memories = None
    for batch in grouped.iter_batches(batch_format="pyarrow", batch_size=8192):
        if batch.num_rows == 0:
            continue
        memories = memories or store.memories(batch["vector"].type.list_size)
        u0 = time.perf_counter()
        store.upsert("memories", memories, batch, "memory_id", update=True)
        upsert_s += time.perf_counter() - u0
        report.memories_written += batch.num_rows
        for kind, count in zip(*_counts(batch["kind"]), strict=True):
            report.by_kind[kind] = report.by_kind.get(kind, 0) + count
    t1 = time.perf_counter()
    profiles = build_profiles(store, users, top_topics=cfg.profile_top_topics, now=now)
    store.upsert("profiles", store.profiles(), profiles, "user_id", update=True)
    t2 = time.perf_counter()
    processed = pending.set_column(
        pending.schema.get_field_index("processed_at"),
        "processed_at",
        pa.array([now] * pending.num_rows, pending.schema.field("processed_at").type),
    )
    store.upsert("signals", store.signals(), processed, "signal_id", update=True)
    report.signals += pending.num_rows
    log.info(
        "pass: stream %.1fs (upsert %.1fs) profiles %.1fs mark %.1fs",
        t1 - t0,
        upsert_s,
        t2 - t1,
        time.perf_counter() - t2,
    )
    report.users += len(users)


def _counts(column: pa.ChunkedArray) -> tuple[list[str], list[int]]:
    counts = pc.value_counts(column).to_pylist()
    return [c["values"] for c in counts], [c["counts"] for c in counts]
