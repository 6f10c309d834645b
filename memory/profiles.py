"""User profiles: aggregated features of each user for downstream consumers.

Computed from the stored tables for a set of users at once (three scans with pyarrow
aggregations), so a profile always reflects everything stored, and rebuilding is idempotent.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import datetime

import pyarrow as pa

from cluster import SLOTTED_KINDS, schemas
from memory.store import TenantStore, in_list


def build_profiles(store: TenantStore, user_ids: list[str], *, top_topics: int, now: datetime) -> pa.Table:
    """One profile row per user: activity, sources, sessions, top topics and current facts."""
    users = in_list("user_id", user_ids)
    signals = (
        store.signals()
        .search()
        .where(users)
        .select(["user_id", "source", "session_id", "occurred_at"])
        .limit(None)
        .to_arrow()
    )
    activity = signals.group_by("user_id").aggregate(
        [
            ("source", "count"),
            ("session_id", "count_distinct"),
            ("occurred_at", "min"),
            ("occurred_at", "max"),
        ]
    )
    by_source: dict[str, list[tuple[str, int]]] = defaultdict(list)
    for row in signals.group_by(["user_id", "source"]).aggregate([("source", "count")]).to_pylist():
        by_source[row["user_id"]].append((row["source"], row["source_count"]))

    memories = store.memories()
    episodes = (
        memories.search()
        .where(f"{users} AND kind = 'episode' AND (role IS NULL OR role = 'user')")  # the user's own words
        .select(["user_id", "keyphrases", "support"])
        .limit(None)
        .to_arrow()
    )
    topics: dict[str, Counter[str]] = defaultdict(Counter)
    for user, phrases, support in zip(
        episodes["user_id"].to_pylist(),
        episodes["keyphrases"].to_pylist(),
        episodes["support"].to_pylist(),
        strict=True,
    ):
        for phrase in phrases or []:
            topics[user][phrase] += support
    facts = (
        memories.search()
        .where(f"{users} AND {in_list('kind', SLOTTED_KINDS)} AND valid_to IS NULL")
        .select(["user_id", "slot", "value"])
        .limit(None)
        .to_arrow()
    )
    current: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for row in facts.to_pylist():
        current[row["user_id"]].append((row["slot"], row["value"]))

    rows = [
        {
            "user_id": a["user_id"],
            "tenant_id": store.tenant_id,
            "signals": a["source_count"],
            "sessions": a["session_id_count_distinct"],
            "by_source": sorted(by_source[a["user_id"]]),
            "top_topics": [t for t, _ in topics[a["user_id"]].most_common(top_topics)],
            "current_facts": sorted(current[a["user_id"]]),
            "first_active": a["occurred_at_min"],
            "last_active": a["occurred_at_max"],
            "updated_at": now,
        }
        for a in activity.to_pylist()
    ]
    return pa.Table.from_pylist(rows, schema=schemas.PROFILES)
