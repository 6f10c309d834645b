"""Consolidation logic on plain rows: supersession, merging, idempotency, summaries."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from memory.consolidate import Policy, consolidate_user

T0 = datetime(2024, 1, 1, tzinfo=UTC)
POLICY = Policy("acme", now=datetime(2024, 6, 1, tzinfo=UTC), near_duplicate_threshold=0.95)


def _vec(seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=8).astype(np.float32)
    return v / np.linalg.norm(v)


def _signal(
    i: int,
    text: str,
    days: int,
    *,
    extractions: list[dict[str, Any]] | None = None,
    session: str | None = "s1",
    role: str | None = "user",
    vector: np.ndarray | None = None,
) -> dict:
    return {
        "signal_id": f"sig{i}",
        "user_id": "u1",
        "source": "chat",
        "role": role,
        "session_id": session,
        "text": text,
        "text_key": text.lower(),
        "occurred_at": T0 + timedelta(days=days),
        "vector": _vec(i) if vector is None else vector,
        "keyphrases": [text.split()[-1].lower()],
        "event_at": None,
        "extractions": extractions or [],
    }


def _fact(value: str, slot: str = "home_city") -> list[dict[str, Any]]:
    return [{"kind": "fact", "slot": slot, "value": value, "text": f"Lives in {value}", "confidence": 0.9}]


def _apply(stored: dict[str, dict], new: list[dict]) -> list[dict]:
    changed = consolidate_user(new, list(stored.values()), POLICY)
    for row in changed:
        stored[row["memory_id"]] = row
    return changed


def test_newer_fact_supersedes_and_old_one_is_kept() -> None:
    stored: dict[str, dict] = {}
    _apply(stored, [_signal(1, "I live in Berlin", 0, extractions=_fact("Berlin"))])
    _apply(stored, [_signal(2, "I moved to Munich", 30, extractions=_fact("Munich"), session="s2")])
    facts = sorted((m for m in stored.values() if m["kind"] == "fact"), key=lambda m: m["valid_from"])
    assert [f["value"] for f in facts] == ["Berlin", "Munich"]
    assert facts[0]["valid_to"] == T0 + timedelta(days=30)
    assert facts[1]["valid_to"] is None
    assert facts[1]["sources"] == ["sig2"]


def test_late_arriving_older_fact_slots_into_history() -> None:
    stored: dict[str, dict] = {}
    _apply(stored, [_signal(2, "I moved to Munich", 30, extractions=_fact("Munich"))])
    _apply(stored, [_signal(1, "I live in Berlin", 0, extractions=_fact("Berlin"), session="s0")])
    facts = {m["value"]: m for m in stored.values() if m["kind"] == "fact"}
    assert facts["Berlin"]["valid_to"] == facts["Munich"]["valid_from"]
    assert facts["Munich"]["valid_to"] is None


def test_repeated_fact_merges_and_reprocessing_is_idempotent() -> None:
    stored: dict[str, dict] = {}
    first = _signal(1, "I live in Berlin", 0, extractions=_fact("Berlin"))
    second = _signal(2, "Berlin is where I live", 10, extractions=_fact("Berlin"), session="s2")
    _apply(stored, [first])
    _apply(stored, [second])
    fact = next(m for m in stored.values() if m["kind"] == "fact")
    assert fact["sources"] == ["sig1", "sig2"] and fact["support"] == 2
    snapshot = {k: dict(v) for k, v in stored.items()}
    assert _apply(stored, [second]) == []  # the same signal again changes nothing
    assert {k: v["sources"] for k, v in stored.items()} == {k: v["sources"] for k, v in snapshot.items()}


def test_near_duplicate_episodes_merge_and_distinct_ones_do_not() -> None:
    stored: dict[str, dict] = {}
    v = _vec(7)
    close = v + 0.01 * _vec(8)
    close /= np.linalg.norm(close)
    _apply(
        stored,
        [
            _signal(1, "I love hiking", 0, vector=v),
            _signal(2, "I love hiking!!", 1, vector=close),
            _signal(3, "Totally unrelated", 2),
        ],
    )
    episodes = [m for m in stored.values() if m["kind"] == "episode"]
    assert len(episodes) == 2
    merged = next(m for m in episodes if m["support"] == 2)
    assert merged["sources"] == ["sig1", "sig2"] and merged["importance"] > 0.5


def test_exact_duplicate_text_merges_across_builds() -> None:
    stored: dict[str, dict] = {}
    _apply(stored, [_signal(1, "Good morning", 0)])
    _apply(stored, [_signal(2, "Good morning", 5, session="s2")])
    episodes = [m for m in stored.values() if m["kind"] == "episode"]
    assert len(episodes) == 1 and episodes[0]["sources"] == ["sig1", "sig2"]


def test_session_summary_and_episode_context() -> None:
    stored: dict[str, dict] = {}
    turns = [
        _signal(1, "How was your trip to Lisbon", 0, role="assistant"),
        _signal(2, "It was great, lots of pastries", 0.01),
        _signal(3, "I want to go back in spring", 0.02),
    ]
    _apply(stored, turns)
    summary = next(m for m in stored.values() if m["kind"] == "summary")
    assert summary["sources"] == ["sig1", "sig2", "sig3"] and summary["support"] == 3
    assert "3 messages" in summary["text"] and "pastries" in summary["text"]
    assert abs(float(np.linalg.norm(summary["vector"])) - 1) < 1e-5
    middle = next(m for m in stored.values() if m["kind"] == "episode" and m["sources"] == ["sig2"])
    assert "after assistant: How was your trip to Lisbon" in middle["context"]
    assert "before user: I want to go back in spring" in middle["context"]
    # a later turn of the same session updates the summary in place
    _apply(stored, [_signal(4, "Maybe Porto too", 0.03)])
    summaries = [m for m in stored.values() if m["kind"] == "summary"]
    assert len(summaries) == 1 and summaries[0]["support"] == 4


def test_ttl_sets_expiry() -> None:
    policy = Policy("acme", now=POLICY.now, ttl_days={"episode": 30})
    rows = consolidate_user([_signal(1, "Hello there", 0, session=None)], [], policy)
    assert rows[0]["expires_at"] == T0 + timedelta(days=30)
