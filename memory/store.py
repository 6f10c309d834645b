"""The LanceDB store of one tenant: signals, quarantine, memories and profiles tables.

Every table lives under ``tenants/<tenant>/lance/`` of the storage root (``cluster.storage``:
a local folder or an object store, with its options); filters are built with ``quote`` from
validated values.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import Coroutine, Iterable
from concurrent.futures import Future
from datetime import timedelta
from typing import Any, TypeVar

import lancedb
import pyarrow as pa
import pyarrow.compute as pc
from lancedb.index import FTS, Bitmap, BTree
from lancedb.table import AsyncTable, Table

from cluster import Storage, area_key, schemas, validate_tenant_id

log = logging.getLogger(__name__)

# Scalar and full-text indexes per table: column -> index config.
_INDEXES: dict[str, dict[str, Any]] = {
    "signals": {"signal_id": BTree(), "user_id": BTree()},
    "quarantine": {"quarantine_id": BTree()},
    "memories": {
        "memory_id": BTree(),
        "user_id": BTree(),
        "kind": Bitmap(),
        "text": FTS(with_position=False),
    },
    "profiles": {"user_id": BTree()},
}

# The order each write lays rows out in, per table. A search reads one user's memories: side by
# side, they are a few runs of rows per write instead of one scattered read per memory (100k
# memories over 1,000 users: the dense leg takes 4 ms with each user's rows in one run, 8.5 ms
# with them scattered).
_CLUSTER: dict[str, list[tuple[str, str]]] = {
    "memories": [("user_id", "ascending"), ("valid_from", "ascending")],
}
# Writes add runs of a user's rows (up to two each); a refresh lays the rows of a user found in
# more runs than this out again as one run. bench.search_latency (its users in 5 runs before,
# 1 after): the ranked search in-process 8.5 -> 6.7 ms p50; a refresh of its 100k rows reads
# their user ids in 44 ms, and clustering all of them took 3 s.
MAX_RUNS = 3
# Rows rewritten per commit when clustering (a user's rows always go in one commit).
_CLUSTER_CHUNK_ROWS = 50_000


T = TypeVar("T")


class Reads:
    """An event loop in a daemon thread for this process's async LanceDB reads: a query on
    LanceDB's async API skips the sync builder's round trips (it costs 3 ms where the sync
    one costs 5), and queries submitted together run at once. Started on first use; a
    forked child starts its own."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock = threading.Lock()
        os.register_at_fork(after_in_child=self._forget)

    def _forget(self) -> None:
        self._loop, self._lock = None, threading.Lock()

    def submit(self, coroutine: Coroutine[Any, Any, T]) -> Future[T]:
        with self._lock:
            if self._loop is None:
                self._loop = asyncio.new_event_loop()
                threading.Thread(target=self._loop.run_forever, name="lancedb-reads", daemon=True).start()
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop)

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return self.submit(coroutine).result()


READS = Reads()


def quote(value: str) -> str:
    """A SQL string literal for a LanceDB filter."""
    return "'" + value.replace("'", "''") + "'"


def in_list(column: str, values: Iterable[str]) -> str:
    """``column IN ('a', 'b')``; ``FALSE`` for no values."""
    items = ", ".join(quote(v) for v in values)
    return f"{column} IN ({items})" if items else "FALSE"


class TenantStore:
    """Opens (and creates on first use) one tenant's tables, and keeps them open.

    The connection looks for a newer version of a table on every read
    (``read_consistency_interval=0``), so a kept table sees what other processes commit as
    soon as they commit it, as a table opened anew would, without listing the tables and
    loading a manifest on every call."""

    def __init__(self, storage: Storage, tenant_id: str) -> None:
        self.tenant_id = validate_tenant_id(tenant_id)
        self.storage = storage
        self.uri = storage.uri(area_key(tenant_id, "lance"))
        self.options = storage.lance_options()
        self.db = lancedb.connect(
            self.uri, read_consistency_interval=timedelta(0), storage_options=self.options or None
        )
        self._open: dict[str, Table] = {}
        self._readers: dict[str, AsyncTable] = {}

    def __reduce__(self) -> tuple[Any, ...]:
        return (TenantStore, (self.storage, self.tenant_id))

    def _table(self, name: str, schema: pa.Schema) -> Table:
        table = self._open.get(name)
        if table is None:
            if name in self.db.list_tables().tables:
                table = self.db.open_table(name)
            else:
                table = self.db.create_table(name, schema=schema, exist_ok=True)
            self._open[name] = table
        return table

    def signals(self) -> Table:
        return self._table("signals", schemas.SIGNALS)

    def quarantine(self) -> Table:
        return self._table("quarantine", schemas.QUARANTINE)

    def memories(self, dim: int = 384) -> Table:
        """The memories table; ``dim`` (the embedder's) is used only when creating it."""
        return self._table("memories", schemas.memories_schema(dim))

    def profiles(self) -> Table:
        return self._table("profiles", schemas.PROFILES)

    def reader(self, name: str) -> AsyncTable:
        """An existing table on LanceDB's async API, for queries run on ``READS``; kept open, and
        as fresh as the sync tables."""
        table = self._readers.get(name)
        if table is None:
            table = READS.run(self._open_reader(name))
            self._readers[name] = table
        return table

    async def _open_reader(self, name: str) -> AsyncTable:
        db = await lancedb.connect_async(
            self.uri, read_consistency_interval=timedelta(0), storage_options=self.options or None
        )
        return await db.open_table(name)

    def has(self, name: str) -> bool:
        return name in self._open or name in self._readers or name in self.db.list_tables().tables

    def upsert(
        self, name: str, table: Table, rows: pa.Table, key: str, *, update: bool, refresh: bool = True
    ) -> int:
        """merge_insert ``rows`` on ``key``, laid out in the table's cluster order; returns rows
        inserted. ``refresh`` keeps indexes current now; a caller writing several chunks refreshes
        once after the last."""
        if rows.num_rows == 0:
            return 0
        if name in _CLUSTER:
            rows = rows.sort_by(_CLUSTER[name])
        merge = table.merge_insert(key)
        if update:
            merge = merge.when_matched_update_all()
        result = merge.when_not_matched_insert_all().execute(rows)
        if refresh:
            self.refresh_indexes(name, table)
        return int(result.num_inserted_rows)

    def layout(self, table: Table, column: str) -> pa.Table:
        """Per value of ``column``: its ``rows``, and the ``runs`` (stretches of adjacent rows, in
        the table's physical order) they lie in."""
        scanned = table.search().select([column]).with_row_id(True).limit(None).to_arrow()
        values = scanned.sort_by("_rowid")[column].combine_chunks()
        starts = pc.not_equal(values[1:], values[:-1])  # a row whose value differs from the one before
        heads = pc.filter(values, pa.concat_arrays([pa.array([True]), starts])) if len(values) else values
        rows, runs = pc.value_counts(values), pc.value_counts(heads)
        by_rows = pa.table({column: rows.field("values"), "rows": rows.field("counts")})
        by_runs = pa.table({column: runs.field("values"), "runs": runs.field("counts")})
        return by_rows.join(by_runs, column)

    def cluster_memories(self, table: Table) -> int:
        """Lay the memories of each user found in more than ``MAX_RUNS`` runs out again as one run
        (in ``_CLUSTER`` order); returns the rows rewritten.

        Safe beside concurrent writers: a row is rewritten only where its ``updated_at`` (which
        every write of a memory sets) still is what was read, and never inserted, so a memory
        changed or deleted meanwhile keeps its newer state; rows added meanwhile are not touched.
        """
        layout = self.layout(table, "user_id")
        scattered = layout.filter(pc.greater(layout["runs"], MAX_RUNS))
        chunks: list[list[str]] = []
        size = _CLUSTER_CHUNK_ROWS
        for user in scattered.to_pylist():
            if size >= _CLUSTER_CHUNK_ROWS:
                chunks.append([])
                size = 0
            chunks[-1].append(user["user_id"])
            size += user["rows"]
        rewritten = 0
        for users in chunks:
            current = table.search().where(in_list("user_id", users)).limit(None).to_arrow()
            merge = table.merge_insert("memory_id").when_matched_update_all(
                where="target.updated_at = source.updated_at"
            )
            rewritten += int(merge.execute(current.sort_by(_CLUSTER["memories"])).num_updated_rows)
        return rewritten

    def refresh_indexes(self, name: str, table: Table, attempts: int = 3) -> None:
        """Lay scattered users' memories out again, create missing indexes, fold new rows into
        existing ones, compact small files.

        This is maintenance after a committed write: a compaction preempted by a concurrent
        writer (LanceDB's retryable commit conflict) is retried, and if it keeps losing, left
        to the next write rather than failing the caller.
        """
        for attempt in range(attempts):
            try:
                if name == "memories":
                    self.cluster_memories(table)
                existing = {tuple(ix.columns) for ix in table.list_indices()}
                missing = {c: cfg for c, cfg in _INDEXES[name].items() if (c,) not in existing}
                for column, config in missing.items():
                    table.create_index(column, config=config, replace=True)
                if len(missing) < len(_INDEXES[name]):
                    table.optimize(cleanup_older_than=timedelta(days=7))
                return
            except RuntimeError as e:
                if "Retryable commit conflict" not in str(e):
                    raise
                log.info("index refresh of %s lost a commit race (attempt %d): %s", name, attempt + 1, e)
