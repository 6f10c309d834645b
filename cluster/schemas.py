"""The records every layer shares: Arrow schemas of a tenant's tables (signals, quarantine, memories,
profiles) and the vocabulary of their fields (memory kinds, signal sources and roles).

It sits in the foundation because the settings name memory kinds too (half-lives, time to live);
every other place that names a kind (the extractor, ranking, the HTTP models, file building)
imports ``MemoryKind`` from here. A new kind is added here and by the code that produces it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Final, Literal, get_args

import pyarrow as pa

# What a memory is:
# - episode: a signal kept as said, with its neighbours as context (the bulk of retrieval);
# - fact: a statement about the user on a slot ("Lives in Berlin"): a newer one on the slot supersedes it;
# - preference: a like, dislike or favourite on a slot, superseded the same way;
# - summary: one chat session in a few lines.
MemoryKind = Literal["episode", "fact", "preference", "summary"]
MEMORY_KINDS: Final[tuple[MemoryKind, ...]] = get_args(MemoryKind)
# Kinds that state something current about the user on a slot (``valid_to`` closes an old one):
# what extractors produce, what profiles list as current facts, what fine-tune files are made of.
SLOTTED_KINDS: Final[tuple[MemoryKind, ...]] = ("fact", "preference")

Source = Literal["chat", "email", "document", "calendar", "event", "feedback"]
SOURCES: Final[tuple[Source, ...]] = get_args(Source)
Role = Literal["user", "assistant", "system"]
ROLES: Final[tuple[Role, ...]] = get_args(Role)

TIMESTAMP = pa.timestamp("us", tz="UTC")
MIN_TIME: Final = datetime(1970, 1, 1, tzinfo=UTC)
MAX_TIME: Final = datetime(2100, 1, 1, tzinfo=UTC)


def check_time(value: datetime) -> datetime:
    """A time in UTC within the range Engram stores (naive times are taken as UTC)."""
    value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if not MIN_TIME <= value < MAX_TIME:
        raise ValueError("time must lie between 1970 and 2100")
    return value


SIGNALS = pa.schema(
    [
        pa.field("signal_id", pa.string(), nullable=False),
        pa.field("tenant_id", pa.string(), nullable=False),
        pa.field("user_id", pa.string(), nullable=False),
        pa.field("source", pa.string(), nullable=False),
        pa.field("role", pa.string()),
        pa.field("session_id", pa.string()),
        pa.field("text", pa.string(), nullable=False),
        pa.field("occurred_at", TIMESTAMP, nullable=False),
        pa.field("metadata", pa.string()),  # a JSON object
        pa.field("received_at", TIMESTAMP, nullable=False),
        pa.field("processed_at", TIMESTAMP),  # set once the memory pipeline has taken the signal in
    ]
)

QUARANTINE = pa.schema(
    [
        pa.field("quarantine_id", pa.string(), nullable=False),
        pa.field("tenant_id", pa.string(), nullable=False),
        pa.field("user_id", pa.string()),  # when the row names one, so forgetting a user reaches it
        pa.field("row", pa.string(), nullable=False),  # the offending row as JSON (or the raw line)
        pa.field("reason", pa.string(), nullable=False),
        pa.field("field", pa.string()),
        pa.field("origin", pa.string()),  # file name or "api"
        pa.field("line", pa.int64()),
        pa.field("received_at", TIMESTAMP, nullable=False),
    ]
)


def memories_schema(dim: int) -> pa.Schema:
    return pa.schema(
        [
            pa.field("memory_id", pa.string(), nullable=False),
            pa.field("tenant_id", pa.string(), nullable=False),
            pa.field("user_id", pa.string(), nullable=False),
            pa.field("kind", pa.string(), nullable=False),
            pa.field("text", pa.string(), nullable=False),
            pa.field("vector", pa.list_(pa.float32(), dim), nullable=False),
            pa.field("importance", pa.float32(), nullable=False),
            pa.field("confidence", pa.float32(), nullable=False),
            pa.field("support", pa.int32(), nullable=False),
            pa.field("sources", pa.list_(pa.string()), nullable=False),
            pa.field("slot", pa.string()),
            pa.field("value", pa.string()),
            pa.field("session_id", pa.string()),
            pa.field("channel", pa.string()),  # the signal source it came from: chat, email, ...
            pa.field("role", pa.string()),  # who said it, for chat
            pa.field("context", pa.string()),  # who, when, where, neighbouring turns
            pa.field("keyphrases", pa.list_(pa.string())),
            pa.field("event_at", TIMESTAMP),  # the time a resolved date in the text points at
            pa.field("valid_from", TIMESTAMP, nullable=False),
            pa.field("valid_to", TIMESTAMP),
            pa.field("created_at", TIMESTAMP, nullable=False),
            pa.field("updated_at", TIMESTAMP, nullable=False),
            pa.field("expires_at", TIMESTAMP),
        ]
    )


PROFILES = pa.schema(
    [
        pa.field("user_id", pa.string(), nullable=False),
        pa.field("tenant_id", pa.string(), nullable=False),
        pa.field("signals", pa.int64(), nullable=False),
        pa.field("sessions", pa.int64(), nullable=False),
        pa.field("by_source", pa.map_(pa.string(), pa.int64()), nullable=False),
        pa.field("top_topics", pa.list_(pa.string()), nullable=False),
        pa.field("current_facts", pa.map_(pa.string(), pa.string()), nullable=False),
        pa.field("first_active", TIMESTAMP, nullable=False),
        pa.field("last_active", TIMESTAMP, nullable=False),
        pa.field("updated_at", TIMESTAMP, nullable=False),
    ]
)

# The tables other teams read as datasets (``python -m engram.jobs export``).
EXPORTED_TABLES: Final[tuple[str, ...]] = ("memories", "profiles")
