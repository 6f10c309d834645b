"""memory.export: a tenant's tables as Parquet datasets that read back row for row."""

from __future__ import annotations

from pathlib import Path

import pyarrow.dataset as pads
import pytest

from cluster import Storage
from cluster.settings import Settings
from memory import TenantStore, build_in_process, export_table, get_embedder, ingest_rows


def _signals(n: int) -> list[dict[str, object]]:
    return [
        {
            "signal_id": f"s{i}",
            "user_id": f"u{i % 2}",
            "source": "chat",
            "role": "user",
            "session_id": "x",
            "text": f"I moved to city {i}" if i % 2 else f"I like sport number {i}",
            "occurred_at": f"2024-05-{1 + i:02d}T10:00:00Z",
        }
        for i in range(n)
    ]


def test_tables_export_in_parts_and_a_new_export_replaces_the_old(settings: Settings, tmp_path: Path) -> None:
    store = TenantStore(Storage.of(settings), "acme")
    target = Storage(str(tmp_path / "out"))
    assert export_table(store, "memories", target).files == []  # nothing built yet: no files

    ingest_rows(store, _signals(8), settings.ingest)
    build_in_process(store, settings, get_embedder(settings.embedding.model), limit=100)
    memories = store.memories().to_arrow()
    assert memories.num_rows >= 3

    report = export_table(store, "memories", target, rows_per_file=2)
    assert report.rows == memories.num_rows and len(report.files) >= 2
    assert sorted(Path(f).name for f in report.files)[0] == "part-00000.parquet"
    exported = pads.dataset(tmp_path / "out" / "memories").to_table()
    assert exported.schema == memories.schema  # vectors, validity and supersession included
    assert sorted(exported["memory_id"].to_pylist()) == sorted(memories["memory_id"].to_pylist())

    again = export_table(store, "memories", target)  # one file now: the earlier parts are gone
    assert len(again.files) == 1 and len(list((tmp_path / "out" / "memories").iterdir())) == 1

    profiles = export_table(store, "profiles", target)
    assert profiles.rows == 2 == pads.dataset(tmp_path / "out" / "profiles").count_rows()

    with pytest.raises(ValueError, match="'signals' is not an exported table"):
        export_table(store, "signals", target)
