"""The memory pipeline's stages: Arrow batches in, Arrow batches out.

normalize -> embed -> annotate (keyphrases, dates) -> extract -> consolidate (per user), run
in that order over one batch by ``Stages.run``; a batch always holds all new signals of its
users (``user_blocks``), so consolidation needs nothing from other batches.
The logic lives in plain modules (normalize, dates, keyphrases, extract, consolidate); this
module only moves columns between Arrow and Python.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from cluster import PiiKind, schemas
from memory.consolidate import Policy, consolidate_user
from memory.dates import annotate, resolve_dates
from memory.embed import Device, Embedder, get_embedder
from memory.extract import get_extractor
from memory.keyphrases import keyphrases
from memory.normalize import clean, text_key
from memory.store import TenantStore, in_list, quote

EXTRACTION = pa.struct(
    [
        ("kind", pa.string()),
        ("slot", pa.string()),
        ("value", pa.string()),
        ("text", pa.string()),
        ("confidence", pa.float32()),
    ]
)


def normalize_batch(batch: pa.Table, pii: list[PiiKind], max_chars: int) -> pa.Table:
    """Cleaned, redacted ``text`` and ``text_key``, the key of exact duplicates."""
    texts = [clean(t, pii=pii, max_chars=max_chars) for t in batch["text"].to_pylist()]
    keys = [text_key(u, t) for u, t in zip(batch["user_id"].to_pylist(), texts, strict=True)]
    batch = batch.set_column(batch.schema.get_field_index("text"), "text", pa.array(texts, pa.string()))
    return batch.append_column("text_key", pa.array(keys, pa.string()))


def embed_batch(batch: pa.Table, embedder: Embedder) -> pa.Table:
    """Adds ``vector``; each distinct text of the batch is embedded once."""
    texts = batch["text"].to_pylist()
    unique = list(dict.fromkeys(texts))
    rows = np.zeros((0, embedder.dim), dtype=np.float32)
    if unique:
        index = {t: i for i, t in enumerate(unique)}
        rows = embedder.embed(unique)[[index[t] for t in texts]]
    flat = pa.array(np.ascontiguousarray(rows, dtype=np.float32).ravel(), pa.float32())
    return batch.append_column("vector", pa.FixedSizeListArray.from_arrays(flat, embedder.dim))


def annotate_batch(batch: pa.Table, top_k: int = 5) -> pa.Table:
    """Keyphrases; relative dates resolved against ``occurred_at`` and written into the text."""
    phrases, texts, events = [], [], []
    for text, at in zip(batch["text"].to_pylist(), batch["occurred_at"].to_pylist(), strict=True):
        phrases.append(keyphrases(text, top_k))
        mentions = resolve_dates(text, at)
        texts.append(annotate(text, mentions) if mentions else text)
        events.append(mentions[0].start if mentions else None)
    batch = batch.set_column(batch.schema.get_field_index("text"), "text", pa.array(texts, pa.string()))
    return batch.append_column("keyphrases", pa.array(phrases, pa.list_(pa.string()))).append_column(
        "event_at", pa.array(events, schemas.TIMESTAMP)
    )


@lru_cache(maxsize=4)
def _extractor(name: str) -> Any:
    return get_extractor(name)


def extract_batch(batch: pa.Table, extractor: str) -> pa.Table:
    """Facts and preferences found in each signal, by the named extractor."""
    found = []
    ex = _extractor(extractor)
    for text, role, source in zip(
        batch["text"].to_pylist(), batch["role"].to_pylist(), batch["source"].to_pylist(), strict=True
    ):
        found.append(
            [
                {"kind": e.kind, "slot": e.slot, "value": e.value, "text": e.text, "confidence": e.confidence}
                for e in ex.extract(text, role=role, source=source)
            ]
        )
    return batch.append_column("extractions", pa.array(found, pa.list_(EXTRACTION)))


def vectors_of(column: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """A fixed-size-list column as an (n, dim) float32 matrix."""
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    dim = array.type.list_size
    return array.flatten().to_numpy(zero_copy_only=False).reshape(-1, dim).astype(np.float32, copy=False)


def rows_to_table(rows: list[dict[str, Any]], dim: int) -> pa.Table:
    """Memory rows (``vector`` as numpy) as a table in the memories schema."""
    schema = schemas.memories_schema(dim)
    vectors = (
        np.stack([np.asarray(r["vector"], dtype=np.float32) for r in rows]) if rows else np.zeros((0, dim))
    )
    rest = schema.remove(schema.get_field_index("vector"))
    table = pa.Table.from_pylist([{k: r.get(k) for k in rest.names} for r in rows], schema=rest)
    flat = pa.array(vectors.astype(np.float32).ravel(), pa.float32())
    column = pa.FixedSizeListArray.from_arrays(flat, dim)
    return table.add_column(schema.get_field_index("vector"), schema.field("vector"), column)


def _table_rows(table: pa.Table) -> list[dict[str, Any]]:
    vectors = vectors_of(table["vector"]) if "vector" in table.column_names else None
    rows = table.drop_columns(["vector"]).to_pylist() if vectors is not None else table.to_pylist()
    if vectors is not None:
        for row, vector in zip(rows, vectors, strict=True):
            row["vector"] = vector
    return rows


def existing_memories(store: TenantStore, user_id: str, sessions: list[str], since: datetime) -> list[dict]:
    """A user's stored memories that consolidation needs: facts and preferences, recent
    episodes, and the episodes and summaries of the given sessions."""
    if not store.has("memories"):
        return []
    where = (
        f"user_id = {quote(user_id)} AND (kind IN ('fact', 'preference')"
        f" OR (kind = 'episode' AND valid_from >= TIMESTAMP '{since:%Y-%m-%d %H:%M:%S}')"
        f" OR {in_list('session_id', sessions)})"
    )
    return _table_rows(store.memories().search().where(where).limit(None).to_arrow())


def consolidate_group(batch: pa.Table, store: TenantStore, policy: Policy, window_days: int) -> pa.Table:
    """All new signals of one user in, that user's changed memories out."""
    dim = batch["vector"].type.list_size
    new = _table_rows(batch)
    user_id = new[0]["user_id"]
    sessions = sorted({r["session_id"] for r in new if r["session_id"]})
    since = min(r["occurred_at"] for r in new) - timedelta(days=window_days)
    existing = existing_memories(store, user_id, sessions, since)
    return rows_to_table(consolidate_user(new, existing, policy), dim)


def user_blocks(pending: pa.Table, rows: int) -> list[pa.Table]:
    """``pending`` by user and time, cut into blocks of at most ``rows`` (or one user, if that
    user alone has more) that never split a user."""
    table = pending.sort_by(
        [("user_id", "ascending"), ("occurred_at", "ascending"), ("signal_id", "ascending")]
    )
    users = np.asarray(table["user_id"].to_pylist(), dtype=object)
    bounds = [*(np.flatnonzero(users[1:] != users[:-1]) + 1).tolist(), table.num_rows]
    blocks: list[pa.Table] = []
    begin = last = 0
    for bound in bounds:
        if bound - begin > rows and last > begin:
            blocks.append(table.slice(begin, last - begin))
            begin = last
        last = bound
    if table.num_rows > begin:
        blocks.append(table.slice(begin, table.num_rows - begin))
    return blocks


@dataclass(frozen=True)
class Stages:
    """What a pass's stages need besides the embedder: the tenant's PII policy and store, the
    consolidation policy, and the pipeline settings they read."""

    pii: list[PiiKind]
    max_chars: int
    extractor: str
    store: TenantStore
    policy: Policy
    window_days: int

    def run(self, batch: pa.Table, embedder: Embedder) -> pa.Table:
        """The changed memories of the users of ``batch``, which holds all their new signals."""
        batch = normalize_batch(batch, pii=self.pii, max_chars=self.max_chars)
        batch = extract_batch(annotate_batch(embed_batch(batch, embedder)), self.extractor)
        changed = [
            consolidate_group(
                batch.filter(pc.equal(batch["user_id"], user)), self.store, self.policy, self.window_days
            )
            for user in pc.unique(batch["user_id"]).to_pylist()
        ]
        return pa.concat_tables(changed) if changed else rows_to_table([], embedder.dim)


class BuildBatch:
    """The actor-pool stage: ``Stages.run`` with one embedding model per actor, loaded once.

    All stages of a batch share the actor: the batch is serialized once, and nothing else
    competes for the cores while the encoder runs."""

    def __init__(
        self, model: str, batch_size: int, threads: int | None, device: Device, stages: Stages
    ) -> None:
        self.embedder = get_embedder(model, batch_size=batch_size, threads=threads, device=device)
        self.stages = stages

    def __call__(self, batch: pa.Table) -> pa.Table:
        return self.stages.run(batch, self.embedder)
