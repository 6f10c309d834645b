"""Ingest on a real LanceDB: idempotency, quarantine accounting, durability."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from cluster import Storage
from cluster.settings import Settings
from memory import TenantStore, ingest_file, ingest_rows, list_quarantine
from memory.errors import IngestError


def _signal(i: int, **over: object) -> dict[str, object]:
    row: dict[str, object] = {
        "signal_id": f"s{i}",
        "user_id": "u1",
        "source": "chat",
        "role": "user",
        "session_id": "x",
        "text": f"hello number {i}",
        "occurred_at": "2024-05-01T10:00:00Z",
    }
    row.update(over)
    return row


BAD_ROWS: list[tuple[object, str]] = [
    ({k: v for k, v in _signal(100).items() if k != "user_id"}, "user_id"),
    (_signal(101, text="   "), "text"),
    (_signal(102, text="x" * 20_001), "text"),
    (_signal(103, occurred_at="2024-13-45"), "occurred_at"),
    (_signal(104, occurred_at="yesterday-ish"), "occurred_at"),
    (_signal(105, source="fax"), "source"),
    (_signal(106, user_id=42), "user_id"),
    (_signal(107, text=["a"]), "text"),
    (_signal(108, metadata="{}"), "metadata"),
    (_signal(109, role=None), "role"),
    (_signal(110, tenant_id="other"), "tenant_id"),
    (_signal(111, colour="red"), "colour"),
    (_signal(112, user_id="../etc"), "user_id"),
    ("not an object", ""),
]


def test_accounting_quarantine_and_idempotency(settings: Settings) -> None:
    store = TenantStore(Storage.of(settings), "acme")
    good = [_signal(i) for i in range(20)]
    rows: list[object] = [*good, good[3], *(r for r, _ in BAD_ROWS)]
    report = ingest_rows(store, rows, settings.ingest)
    assert report.rows == len(rows)
    assert (report.accepted, report.duplicates, report.quarantined) == (20, 1, len(BAD_ROWS))
    assert report.accepted + report.duplicates + report.quarantined == report.rows
    fields = [r.field or "" for r in report.rejected]
    assert fields == [f for _, f in BAD_ROWS]
    assert report.rejected[0].index == 21
    assert store.signals().count_rows() == 20
    stored = list_quarantine(store, limit=100)
    assert len(stored) == len(BAD_ROWS)
    assert {q["reason"] for q in stored} == {r.reason for r in report.rejected}

    again = ingest_rows(store, rows, settings.ingest)
    assert (again.accepted, again.duplicates, again.quarantined) == (0, 21, len(BAD_ROWS))
    assert store.signals().count_rows() == 20
    assert store.quarantine().count_rows() == len(BAD_ROWS)


def test_signal_id_is_derived_from_content(settings: Settings) -> None:
    store = TenantStore(Storage.of(settings), "acme")
    row = {k: v for k, v in _signal(1).items() if k != "signal_id"}
    first = ingest_rows(store, [row, dict(row)], settings.ingest)
    assert (first.accepted, first.duplicates) == (1, 1)
    changed = ingest_rows(store, [{**row, "text": "something else"}], settings.ingest)
    assert changed.accepted == 1
    ids = store.signals().search().select(["signal_id"]).limit(None).to_arrow()["signal_id"].to_pylist()
    assert all(i.startswith("sig-") for i in ids) and len(set(ids)) == 2


def test_jsonl_and_parquet_files(settings: Settings, tmp_path: Path) -> None:
    store = TenantStore(Storage.of(settings), "acme")
    jsonl = tmp_path / "signals.jsonl"
    jsonl.write_text(
        json.dumps(_signal(1)) + "\n{broken json\n\n" + json.dumps(_signal(2, occurred_at=1714557600)) + "\n"
    )
    report = ingest_file(store, jsonl, settings.ingest)
    assert (report.rows, report.accepted, report.quarantined) == (3, 2, 1)
    assert list_quarantine(store)[0]["line"] == 2

    parquet = tmp_path / "signals.parquet"
    pq.write_table(pa.Table.from_pylist([_signal(3), _signal(4, source="nope")]), parquet)
    report = ingest_file(store, parquet, settings.ingest)
    assert (report.rows, report.accepted, report.quarantined) == (2, 1, 1)

    with pytest.raises(IngestError):
        ingest_file(store, tmp_path / "signals.csv", settings.ingest)


def test_tenants_are_separate(settings: Settings) -> None:
    a = TenantStore(Storage.of(settings), "a")
    b = TenantStore(Storage.of(settings), "b")
    ingest_rows(a, [_signal(1)], settings.ingest)
    assert not b.has("signals") or b.signals().count_rows() == 0
    assert a.uri.endswith("/tenants/a/lance")
