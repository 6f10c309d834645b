"""A TenantStore keeps its tables (sync and async) open and still sees what another process
commits at once."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from lancedb.table import Table

from cluster import Storage
from cluster.settings import Settings
from memory import TenantStore, ingest_rows
from memory.manage import forget_user
from memory.stages import rows_to_table
from memory.store import MAX_RUNS, READS

ROOT = Path(__file__).resolve().parents[2]


def _signals(user: str, n: int) -> list[dict[str, object]]:
    return [
        {
            "signal_id": f"{user}-{i}",
            "user_id": user,
            "source": "chat",
            "role": "user",
            "session_id": "x",
            "text": f"note {i} of {user}",
            "occurred_at": "2024-05-01T10:00:00Z",
        }
        for i in range(n)
    ]


def _in_another_process(settings: Settings, code: str) -> None:
    setup = (
        "from cluster import Storage, load_settings; from memory import TenantStore, ingest_rows; "
        "from memory.manage import forget_user; from tests.memory.test_store import _signals; "
        f"settings = load_settings(storage_root={settings.storage_root!r}); "
        "store = TenantStore(Storage.of(settings), 'acme'); "
    )
    subprocess.run([sys.executable, "-c", setup + code], cwd=ROOT, check=True, timeout=120)


def test_a_kept_table_sees_other_writers_commits_at_once(settings: Settings) -> None:
    store = TenantStore(Storage.of(settings), "acme")
    ingest_rows(store, _signals("u1", 3), settings.ingest)
    kept = store.signals()
    reader = store.reader("signals")  # the async handle search runs its queries on
    assert store.signals() is kept and store.reader("signals") is reader  # opened once
    assert kept.count_rows() == 3 == READS.run(reader.count_rows())

    _in_another_process(settings, "ingest_rows(store, _signals('u2', 4), settings.ingest)")
    assert kept.count_rows() == 4 + 3 == READS.run(reader.count_rows())
    assert kept.count_rows("user_id = 'u2'") == 4

    # another process forgets u1: rows gone and older versions removed; the kept table reads on
    _in_another_process(settings, "forget_user(store, 'u1')")
    assert kept.count_rows() == 4 == READS.run(reader.count_rows())
    assert kept.count_rows("user_id = 'u1'") == 0
    assert sorted(r["signal_id"] for r in kept.search().limit(10).to_list()) == [f"u2-{i}" for i in range(4)]

    forget_user(store, "u2")
    assert kept.count_rows() == 0
    assert store.has("signals") and not store.has("memories")


def _count_in_child(root: str) -> None:
    store = TenantStore(Storage(root), "acme")
    assert READS.run(store.reader("signals").count_rows()) == 2


def test_a_forked_child_runs_its_own_read_loop(settings: Settings) -> None:
    import multiprocessing

    store = TenantStore(Storage.of(settings), "acme")
    ingest_rows(store, _signals("u1", 2), settings.ingest)
    assert READS.run(store.reader("signals").count_rows()) == 2  # the parent's loop is running
    child = multiprocessing.get_context("fork").Process(target=_count_in_child, args=(settings.storage_root,))
    child.start()
    child.join(60)
    if child.is_alive():  # hung on the parent's loop, which does not run in the child
        child.kill()
    assert child.exitcode == 0


def _memories(users: list[str], per_user: int, text: str, *, start: int = 0) -> pa.Table:
    """Memories ``start`` to ``start + per_user`` of ``users``, interleaved (u1, u2, u3, u1, ...) as
    a pipeline batch may hold them, written at hour ``start`` of 2025-01-01."""
    at = datetime(2025, 1, 1, tzinfo=UTC)
    vectors = np.random.default_rng(start).random((len(users) * per_user, 8), dtype=np.float32)
    rows = [
        {
            "memory_id": f"{user}-{i}",
            "tenant_id": "acme",
            "user_id": user,
            "kind": "episode",
            "text": f"{text} {i}",
            "vector": vectors[n],
            "importance": 0.5,
            "confidence": 1.0,
            "support": 1,
            "sources": [f"s-{user}-{i}"],
            "valid_from": at + timedelta(hours=i),
            "created_at": at + timedelta(hours=start),
            "updated_at": at + timedelta(hours=start),
        }
        for n, (i, user) in enumerate((i, user) for i in range(start, start + per_user) for user in users)
    ]
    return rows_to_table(rows, 8)


def _runs(store: TenantStore, user: str) -> int:
    """How many runs of consecutive rows hold the user's memories."""
    layout = store.layout(store.memories(), "user_id")
    return int(layout.filter(pc.field("user_id") == user)["runs"][0].as_py())


def test_a_write_lays_each_users_memories_side_by_side(settings: Settings) -> None:
    store = TenantStore(Storage.of(settings), "acme")
    users = ["u1", "u2", "u3"]
    table = store.memories(8)
    assert store.upsert("memories", table, _memories(users, 50, "first"), "memory_id", update=True) == 150
    assert [_runs(store, u) for u in users] == [1, 1, 1]
    # a second write updates 20 rows of each user and inserts 30: the kept rows stay one run, and
    # LanceDB writes the updated rows apart from the new ones, a run each
    later = pc.field("valid_from") >= datetime(2025, 1, 2, 6, tzinfo=UTC)
    second = _memories(users, 80, "second").filter(later)
    assert store.upsert("memories", table, second, "memory_id", update=True) == 90
    assert all(_runs(store, u) <= 3 for u in users)
    assert table.count_rows() == 240
    assert table.count_rows("text LIKE 'second%'") == 150


def _snapshot(table: Table) -> list[dict[str, object]]:
    rows = table.to_arrow().sort_by("memory_id").to_pylist()
    return [{**row, "vector": list(row["vector"])} for row in rows]


def _scatter(store: TenantStore, users: list[str], writes: int) -> Table:
    """``writes`` writes of 10 new memories per user each: a run per user per write."""
    table = store.memories(8)
    for w in range(writes):
        store.upsert(
            "memories",
            table,
            _memories(users, 10, f"write {w}", start=10 * w),
            "memory_id",
            update=True,
            refresh=False,
        )
    return table


def test_a_refresh_lays_a_scattered_users_memories_out_again_as_one_run(settings: Settings) -> None:
    store = TenantStore(Storage.of(settings), "acme")
    users = ["u1", "u2", "u3"]
    table = _scatter(store, users, MAX_RUNS + 2)
    assert [_runs(store, u) for u in users] == [MAX_RUNS + 2] * 3
    assert store.layout(table, "user_id").sort_by("user_id").to_pylist() == [
        {"user_id": u, "rows": 50, "runs": MAX_RUNS + 2} for u in users
    ]
    before = _snapshot(table)
    store.refresh_indexes("memories", table)
    assert [_runs(store, u) for u in users] == [1, 1, 1]
    assert _snapshot(table) == before  # the same memories, only laid out anew
    # users within MAX_RUNS runs are left where they are
    _scatter(store, ["u4"], MAX_RUNS)
    assert store.cluster_memories(table) == 0


def test_clustering_keeps_what_a_concurrent_writer_commits(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = TenantStore(Storage.of(settings), "acme")
    table = _scatter(store, ["u1", "u2"], MAX_RUNS + 1)
    other = TenantStore(Storage.of(settings), "acme")  # another writer, its own connection
    rewrite = table.merge_insert

    def write_then_rewrite(on: str) -> Any:
        # between clustering's read and its commit: u1-0 and u1-1 change, u1-2 is deleted, u1-99 is
        # added, and u2 is forgotten
        changed = _memories(["u1"], 2, "changed")  # as written at first, but for a later updated_at
        at = changed.schema.get_field_index("updated_at")
        later = pa.array([datetime(2026, 1, 1, tzinfo=UTC)] * 2, changed.schema.field(at).type)
        changed = changed.set_column(at, changed.schema.field(at), later)
        other.upsert("memories", other.memories(), changed, "memory_id", update=True, refresh=False)
        other.memories().delete("memory_id = 'u1-2' OR user_id = 'u2'")
        other.upsert(
            "memories",
            other.memories(),
            _memories(["u1"], 1, "added", start=99),
            "memory_id",
            update=True,
            refresh=False,
        )
        return rewrite(on)

    monkeypatch.setattr(table, "merge_insert", write_then_rewrite)
    assert store.cluster_memories(table) == 37  # u1's 40 rows, less the 3 changed meanwhile
    rows = {r["memory_id"]: r for r in table.to_arrow().to_pylist()}
    assert len(rows) == 40 and not any(m.startswith("u2") for m in rows)
    assert [rows["u1-0"]["text"], rows["u1-1"]["text"], rows["u1-99"]["text"]] == [
        "changed 0",
        "changed 1",
        "added 99",
    ]
    assert "u1-2" not in rows
