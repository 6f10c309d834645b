"""Signals in: validate rows, store the valid ones idempotently, quarantine the rest.

Every row read is counted exactly once: ``accepted + duplicates + quarantined == rows``.
Valid signals are committed to the tenant's ``signals`` table before a call returns.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from cluster import IngestSettings, InvalidIdError, schemas, validate_user_id
from memory.errors import IngestError
from memory.store import TenantStore

FIELDS = frozenset(
    {"signal_id", "tenant_id", "user_id", "source", "role", "session_id", "text", "occurred_at", "metadata"}
)
_CHUNK_ROWS = 10_000


@dataclass(frozen=True)
class Rejection:
    """A row that was not stored as a signal, with why; ``index`` is its position in the input."""

    index: int
    reason: str
    field: str | None = None


@dataclass
class IngestReport:
    rows: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: list[Rejection] = field(default_factory=list)

    @property
    def quarantined(self) -> int:
        return len(self.rejected)

    def add(self, other: IngestReport) -> None:
        self.rows += other.rows
        self.accepted += other.accepted
        self.duplicates += other.duplicates
        self.rejected.extend(other.rejected)


class _Invalid(Exception):
    def __init__(self, field: str | None, reason: str) -> None:
        super().__init__(reason)
        self.field = field
        self.reason = reason


class _Unparsable:
    """A line of a file that is not a JSON object at all."""

    def __init__(self, line: str, error: str) -> None:
        self.line = line
        self.error = error


def _optional_str(row: dict[str, Any], name: str, max_chars: int) -> str | None:
    value = row.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise _Invalid(name, f"{name} must be a string, not {type(value).__name__}")
    if not value or len(value) > max_chars or not value.isprintable():
        raise _Invalid(name, f"{name} must be 1-{max_chars} printable characters")
    return value


def _timestamp(value: Any) -> datetime:
    if isinstance(value, datetime):
        ts = value
    elif isinstance(value, str):
        try:
            ts = datetime.fromisoformat(value.strip())
        except ValueError:
            raise _Invalid("occurred_at", f"occurred_at is not an ISO 8601 time: {value[:40]!r}") from None
    elif isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        try:
            ts = datetime.fromtimestamp(value, tz=UTC)
        except (OverflowError, OSError, ValueError):
            raise _Invalid("occurred_at", "occurred_at is out of range") from None
    elif value is None:
        raise _Invalid("occurred_at", "occurred_at is required")
    else:
        raise _Invalid("occurred_at", f"occurred_at must be a string or a number, not {type(value).__name__}")
    try:
        return schemas.check_time(ts)
    except ValueError as e:
        raise _Invalid("occurred_at", f"occurred_at: {e}") from None


def derive_signal_id(
    user_id: str, source: str, role: str | None, session_id: str | None, text: str, occurred_at: datetime
) -> str:
    """The id of a signal sent without one: a hash of its content."""
    key = json.dumps([user_id, source, role, session_id, text, occurred_at.isoformat()], ensure_ascii=False)
    return "sig-" + hashlib.sha256(key.encode()).hexdigest()[:32]


def validate_signal(
    raw: Any, tenant_id: str, limits: IngestSettings, received_at: datetime
) -> dict[str, Any]:
    """A storable signal row from ``raw``, or ``_Invalid`` naming the field at fault."""
    if not isinstance(raw, dict):
        raise _Invalid(None, f"a signal must be a JSON object, not {type(raw).__name__}")
    unknown = sorted(str(k) for k in raw if k not in FIELDS)
    if unknown:
        raise _Invalid(unknown[0], f"unknown field {unknown[0]!r}")
    if raw.get("tenant_id") not in (None, tenant_id):
        raise _Invalid("tenant_id", "tenant_id does not match the tenant being written to")
    try:
        user_id = validate_user_id(raw.get("user_id"))
    except InvalidIdError as e:
        reason = "user_id is required" if raw.get("user_id") is None else e.message
        raise _Invalid("user_id", reason) from None
    source = raw.get("source")
    if source not in schemas.SOURCES:
        raise _Invalid("source", f"source must be one of {', '.join(schemas.SOURCES)}")
    role = raw.get("role")
    if role is not None and role not in schemas.ROLES:
        raise _Invalid("role", f"role must be one of {', '.join(schemas.ROLES)}")
    if source == "chat" and role is None:
        raise _Invalid("role", "role is required for chat signals")
    text = raw.get("text")
    if not isinstance(text, str):
        raise _Invalid("text", "text is required and must be a string")
    if not text.strip():
        raise _Invalid("text", "text is empty")
    if len(text) > limits.max_text_chars:
        raise _Invalid("text", f"text is longer than {limits.max_text_chars} characters")
    occurred_at = _timestamp(raw.get("occurred_at"))
    session_id = _optional_str(raw, "session_id", limits.max_id_chars)
    metadata = raw.get("metadata")
    if metadata is not None and not isinstance(metadata, dict):
        raise _Invalid("metadata", "metadata must be a JSON object")
    metadata_json = json.dumps(metadata, ensure_ascii=False, default=str) if metadata else None
    if metadata_json and len(metadata_json.encode()) > limits.max_metadata_bytes:
        raise _Invalid("metadata", f"metadata is larger than {limits.max_metadata_bytes} bytes")
    signal_id = _optional_str(raw, "signal_id", limits.max_id_chars) or derive_signal_id(
        user_id, source, role, session_id, text, occurred_at
    )
    return {
        "signal_id": signal_id,
        "tenant_id": tenant_id,
        "user_id": user_id,
        "source": source,
        "role": role,
        "session_id": session_id,
        "text": text,
        "occurred_at": occurred_at,
        "metadata": metadata_json,
        "received_at": received_at,
        "processed_at": None,
    }


def _as_json(raw: Any) -> str:
    if isinstance(raw, _Unparsable):
        return raw.line
    return json.dumps(raw, ensure_ascii=False, default=str)[:100_000]


def ingest_rows(
    store: TenantStore,
    rows: Iterable[Any],
    limits: IngestSettings,
    *,
    origin: str = "api",
    first_index: int = 0,
) -> IngestReport:
    """Validate and store ``rows`` (dicts as parsed from JSON), committing every chunk before returning."""
    report = IngestReport()
    chunk: list[tuple[int, Any]] = []
    for index, raw in enumerate(rows, start=first_index):
        chunk.append((index, raw))
        if len(chunk) >= _CHUNK_ROWS:
            report.add(_ingest_chunk(store, chunk, limits, origin))
            chunk = []
    if chunk:
        report.add(_ingest_chunk(store, chunk, limits, origin))
    return report


def _ingest_chunk(
    store: TenantStore, chunk: list[tuple[int, Any]], limits: IngestSettings, origin: str
) -> IngestReport:
    received_at = datetime.now(UTC)
    report = IngestReport(rows=len(chunk))
    valid: dict[str, dict[str, Any]] = {}
    bad: list[dict[str, Any]] = []
    for index, raw in chunk:
        try:
            if isinstance(raw, _Unparsable):
                raise _Invalid(None, f"not a JSON object: {raw.error}")
            row = validate_signal(raw, store.tenant_id, limits, received_at)
        except _Invalid as e:
            report.rejected.append(Rejection(index, e.reason, e.field))
            bad.append(_quarantine_row(store.tenant_id, raw, e, origin, index, received_at))
            continue
        if row["signal_id"] in valid:
            report.duplicates += 1
        else:
            valid[row["signal_id"]] = row
    signals = pa.Table.from_pylist(list(valid.values()), schema=schemas.SIGNALS)
    inserted = store.upsert("signals", store.signals(), signals, "signal_id", update=False)
    report.accepted = inserted
    report.duplicates += len(valid) - inserted
    quarantine = pa.Table.from_pylist(bad, schema=schemas.QUARANTINE)
    store.upsert("quarantine", store.quarantine(), quarantine, "quarantine_id", update=False)
    return report


def _quarantine_row(
    tenant_id: str, raw: Any, error: _Invalid, origin: str, index: int, received_at: datetime
) -> dict[str, Any]:
    row = _as_json(raw)
    key = hashlib.sha256(f"{origin}\0{index}\0{row}\0{error.reason}".encode()).hexdigest()[:32]
    user_id = raw.get("user_id") if isinstance(raw, dict) else None
    return {
        "quarantine_id": key,
        "tenant_id": tenant_id,
        "user_id": user_id if isinstance(user_id, str) else None,
        "row": row,
        "reason": error.reason,
        "field": error.field,
        "origin": origin,
        "line": index + 1 if origin != "api" else None,
        "received_at": received_at,
    }


def read_signal_file(path: str | Path) -> Iterator[Any]:
    """Rows of a JSONL or Parquet file; an unparsable JSONL line yields a marker that gets quarantined."""
    path = Path(path)
    if path.suffix == ".parquet":
        try:
            parquet = pq.ParquetFile(path)
        except (OSError, pa.ArrowInvalid) as e:
            raise IngestError(f"cannot read Parquet file {path}: {e}", param="path") from e
        for batch in parquet.iter_batches(batch_size=_CHUNK_ROWS):
            yield from batch.to_pylist()
        return
    if path.suffix not in (".jsonl", ".ndjson", ".json"):
        raise IngestError(f"unsupported signal file {path.name}: use .jsonl or .parquet", param="path")
    try:
        handle = path.open(encoding="utf-8", errors="replace")
    except OSError as e:
        raise IngestError(f"cannot read {path}: {e}", param="path") from e
    with handle:
        for line in handle:
            if not line.strip():
                continue
            try:
                yield json.loads(line)
            except json.JSONDecodeError as e:
                yield _Unparsable(line.rstrip("\n")[:100_000], str(e))


def ingest_file(store: TenantStore, path: str | Path, limits: IngestSettings) -> IngestReport:
    """Ingest a JSONL or Parquet file of signals into the tenant's store."""
    return ingest_rows(store, read_signal_file(path), limits, origin=Path(path).name)
