"""A tenant's memories and profiles as Parquet datasets, for the teams that read them as data.

Every row of each table goes out as it is stored (superseded memories too, with ``valid_to`` and
``superseded_by``; embeddings as ``vector``), streamed in batches, so a table of any size exports
in bounded memory. Each table becomes ``<table>/part-NNNNN.parquet`` under the target: a folder
or an object-store prefix that Ray Data, pandas, Spark or DuckDB read as one dataset.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pyarrow.parquet as pq

from cluster import EXPORTED_TABLES, Storage
from memory.store import TenantStore

_BATCH = 8192


@dataclass
class ExportReport:
    """What one table's export wrote."""

    table: str
    rows: int = 0
    files: list[str] = field(default_factory=list)


def export_table(
    store: TenantStore, name: str, target: Storage, rows_per_file: int = 500_000
) -> ExportReport:
    """Write the table ``name`` under ``target`` as ``name/part-NNNNN.parquet``, replacing what an
    earlier export left there; a table the tenant does not have yet exports as no files."""
    if name not in EXPORTED_TABLES:
        raise ValueError(f"{name!r} is not an exported table ({', '.join(EXPORTED_TABLES)})")
    report = ExportReport(name)
    target.delete_tree(name)
    if not store.has(name):
        return report
    table = store.memories() if name == "memories" else store.profiles()
    reader = table.search().limit(None).to_batches(min(_BATCH, rows_per_file))
    batches = iter(reader)
    batch = next(batches, None)
    while batch is not None:
        key = f"{name}/part-{len(report.files):05d}.parquet"
        with target.open_output(key) as out, pq.ParquetWriter(out, reader.schema) as writer:
            written = 0
            while batch is not None and written < rows_per_file:
                writer.write_batch(batch)
                written += batch.num_rows
                batch = next(batches, None)
        report.rows += written
        report.files.append(target.uri(key))
    return report
