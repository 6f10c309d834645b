"""Consolidate stage: one user's new signals merged into that user's memories.

Pure logic over plain rows (dicts in the memories schema, ``vector`` as a numpy array):

- an episode memory per signal, with its context (who, when, session, neighbouring turns);
  exact and near-duplicate episodes merge: support and importance rise, sources are unioned;
- facts and preferences form a timeline per slot: a newer value supersedes the older one by
  closing its ``valid_to`` (old values are kept for "as of" queries); a repeated value merges;
- a summary memory per session of two or more signals.

Everything a merge changes is derived from the union of sources, so feeding the same signal
twice changes nothing: re-running after a crash is idempotent.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from memory.ids import memory_id

Row = dict[str, Any]

_EPISODE_IMPORTANCE = {"user": 0.5, "assistant": 0.3, "system": 0.2, None: 0.5}
_FACT_IMPORTANCE = {"fact": 0.7, "preference": 0.6}
_SUMMARY_MIN_SIGNALS = 2


@dataclass(frozen=True)
class Policy:
    tenant_id: str
    now: datetime
    near_duplicate_threshold: float = 0.95
    ttl_days: dict[str, int] = field(default_factory=dict)


def consolidate_user(new: list[Row], existing: list[Row], policy: Policy) -> list[Row]:
    """Memories to upsert for one user, given new signal rows and the user's relevant memories.

    ``new`` rows carry: signal_id, user_id, source, role, session_id, text (cleaned),
    text_key, occurred_at, vector, keyphrases, event_at, extractions (kind/slot/value/text/confidence).
    ``existing`` are the user's stored facts and preferences, recent episodes, and the
    episodes and summaries of the sessions the new rows touch.
    """
    state = _State(policy, {m["memory_id"]: m for m in existing})
    ordered = sorted(new, key=lambda r: (r["occurred_at"], r["signal_id"]))
    _episodes(state, ordered)
    _facts(state, ordered)
    _summaries(state, ordered)
    return list(state.changed.values())


class _State:
    def __init__(self, policy: Policy, rows: dict[str, Row]) -> None:
        self.policy = policy
        self.rows = rows
        self.changed: dict[str, Row] = {}

    def put(self, row: Row) -> None:
        row["updated_at"] = self.policy.now
        self.rows[row["memory_id"]] = row
        self.changed[row["memory_id"]] = row

    def create(self, signal: Row, kind: str, key: tuple[str, ...], **values: Any) -> Row:
        ttl = self.policy.ttl_days.get(kind)
        valid_from = values.pop("valid_from", signal["occurred_at"])
        row: Row = {
            "memory_id": memory_id(self.policy.tenant_id, signal["user_id"], kind, *key),
            "tenant_id": self.policy.tenant_id,
            "user_id": signal["user_id"],
            "kind": kind,
            "vector": signal["vector"],
            "sources": [signal["signal_id"]],
            "support": 1,
            "slot": None,
            "value": None,
            "session_id": signal["session_id"],
            "channel": signal["source"],
            "role": signal["role"],
            "keyphrases": signal["keyphrases"],
            "event_at": signal["event_at"],
            "valid_from": valid_from,
            "valid_to": None,
            "created_at": self.policy.now,
            "expires_at": valid_from + timedelta(days=ttl) if ttl else None,
            **values,
        }
        self.put(row)
        return row

    def merge(self, target: Row, signal: Row, confidence: float | None = None) -> None:
        """Add ``signal`` as support of ``target``; a no-op when it already is."""
        if signal["signal_id"] in target["sources"]:
            return
        target = dict(target)
        target["sources"] = sorted({*target["sources"], signal["signal_id"]})
        target["support"] = len(target["sources"])
        target["importance"] = min(1.0, float(target["importance"]) + 0.05)
        if confidence is not None:
            target["confidence"] = max(float(target["confidence"]), confidence)
        self.put(target)


def _context(signal: Row, previous: Row | None, following: Row | None) -> str:
    who = signal["role"] or "user"
    parts = [f"{who} via {signal['source']}", f"at {signal['occurred_at']:%Y-%m-%d %H:%M} UTC"]
    if signal["session_id"]:
        parts.append(f"in session {signal['session_id']}")
    for label, turn in (("after", previous), ("before", following)):
        if turn is not None:
            parts.append(f"{label} {turn['role'] or 'user'}: {turn['text'][:160]}")
    return "; ".join(parts)


def _neighbours(state: _State, ordered: list[Row]) -> dict[str, tuple[Row | None, Row | None]]:
    """Previous and next turn of each new signal within its session (stored episodes included)."""
    sessions: dict[str, list[Row]] = defaultdict(list)
    for row in state.rows.values():
        if row["kind"] == "episode" and row["session_id"]:
            sessions[row["session_id"]].append(
                {
                    "signal_id": row["sources"][0],
                    "occurred_at": row["valid_from"],
                    "text": row["text"],
                    "role": row["role"],
                }
            )
    for signal in ordered:
        if signal["session_id"]:
            sessions[signal["session_id"]].append(signal)
    result: dict[str, tuple[Row | None, Row | None]] = {}
    for turns in sessions.values():
        unique = {t["signal_id"]: t for t in turns}
        timeline = sorted(unique.values(), key=lambda t: (t["occurred_at"], t["signal_id"]))
        for i, turn in enumerate(timeline):
            previous = timeline[i - 1] if i > 0 else None
            following = timeline[i + 1] if i + 1 < len(timeline) else None
            result[turn["signal_id"]] = (previous, following)
    return result


def _episodes(state: _State, ordered: list[Row]) -> None:
    if not ordered:
        return
    neighbours = _neighbours(state, ordered)
    pool_ids = [m["memory_id"] for m in state.rows.values() if m["kind"] == "episode"]
    dim = len(ordered[0]["vector"])
    pool = np.zeros((len(pool_ids) + len(ordered), dim), dtype=np.float32)
    for i, mid in enumerate(pool_ids):
        pool[i] = state.rows[mid]["vector"]
    threshold = state.policy.near_duplicate_threshold
    for signal in ordered:
        vector = np.asarray(signal["vector"], dtype=np.float32)
        key_id = memory_id(state.policy.tenant_id, signal["user_id"], "episode", signal["text_key"])
        target_id = key_id if key_id in state.rows else None
        if target_id is None and pool_ids:
            sims = pool[: len(pool_ids)] @ vector
            best = int(np.argmax(sims))
            if sims[best] >= threshold:
                target_id = pool_ids[best]
        if target_id is not None:
            state.merge(state.rows[target_id], signal)
            continue
        previous, following = neighbours.get(signal["signal_id"], (None, None))
        state.create(
            signal,
            "episode",
            (signal["text_key"],),
            text=signal["text"],
            context=_context(signal, previous, following),
            importance=_EPISODE_IMPORTANCE.get(signal["role"], 0.5),
            confidence=1.0,
        )
        pool[len(pool_ids)] = vector
        pool_ids.append(key_id)


def _matrix(vectors: list[Any]) -> np.ndarray:
    return np.stack([np.asarray(v, dtype=np.float32) for v in vectors])


def _facts(state: _State, ordered: list[Row]) -> None:
    for signal in ordered:
        t = signal["occurred_at"]
        for e in signal["extractions"]:
            versions = sorted(
                (m for m in state.rows.values() if m["kind"] == e["kind"] and m["slot"] == e["slot"]),
                key=lambda m: (m["valid_from"], m["memory_id"]),
            )
            covering = next(
                (
                    v
                    for v in reversed(versions)
                    if v["valid_from"] <= t and (v["valid_to"] is None or t < v["valid_to"])
                ),
                None,
            )
            if covering is not None and covering["value"].casefold() == e["value"].casefold():
                state.merge(covering, signal, e["confidence"])
                continue
            if covering is not None:
                valid_to = covering["valid_to"]
                state.put({**covering, "valid_to": t})
            else:
                later = [v["valid_from"] for v in versions if v["valid_from"] > t]
                valid_to = min(later) if later else None
            state.create(
                signal,
                e["kind"],
                (e["slot"], e["value"].casefold(), t.isoformat()),
                text=e["text"],
                slot=e["slot"],
                value=e["value"],
                valid_to=valid_to,
                context=f"stated via {signal['source']} at {t:%Y-%m-%d %H:%M} UTC: {signal['text'][:200]}",
                importance=_FACT_IMPORTANCE[e["kind"]],
                confidence=e["confidence"],
            )


def _summaries(state: _State, ordered: list[Row]) -> None:
    touched = sorted({s["session_id"] for s in ordered if s["session_id"]})
    for session in touched:
        episodes = [m for m in state.rows.values() if m["kind"] == "episode" and m["session_id"] == session]
        sources = sorted({s for m in episodes for s in m["sources"]})
        if len(sources) < _SUMMARY_MIN_SIGNALS:
            continue
        episodes.sort(key=lambda m: (m["valid_from"], m["memory_id"]))
        topics = Counter(p for m in episodes for p in (m["keyphrases"] or []))
        top = [p for p, _ in topics.most_common(5)]
        said = [m["text"][:120] for m in episodes if m["role"] in ("user", None)][:3]
        first = episodes[0]
        day = f"{first['valid_from']:%d %B %Y}"
        text = f"{first['channel'].capitalize()} session on {day} ({len(sources)} messages)."
        if top:
            text += f" Topics: {', '.join(top)}."
        if said:
            text += " User said: " + " | ".join(said)
        mean = np.mean(_matrix([m["vector"] for m in episodes]), axis=0)
        norm = float(np.linalg.norm(mean)) or 1.0
        summary_id = memory_id(state.policy.tenant_id, first["user_id"], "summary", session)
        existing = state.rows.get(summary_id)
        if existing is not None and existing["sources"] == sources:
            continue
        state.create(
            {
                **first,
                "signal_id": sources[0],
                "occurred_at": first["valid_from"],
                "event_at": None,
                "source": first["channel"],
                "keyphrases": top,
                "vector": (mean / norm).astype(np.float32),
            },
            "summary",
            (session,),
            text=text,
            sources=sources,
            support=len(sources),
            context=f"summary of session {session}",
            importance=min(1.0, 0.4 + 0.1 * math.log2(len(sources))),
            confidence=0.8,
            created_at=existing["created_at"] if existing else state.policy.now,
        )
