"""The synthetic generator: deterministic, well-formed where it should be, honest ground truth."""

from __future__ import annotations

import itertools
import json
import re
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest

from cluster.settings import Settings
from memory.extract import Extraction, RuleExtractor
from memory.ingest import validate_signal
from synthetic import MALFORMED_KINDS, SyntheticData, generate, users_of, write_jsonl
from synthetic import vocab as synthetic_vocab

SOURCES = ("chat", "email", "document", "calendar", "event", "feedback")
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+\.[\w.]+")
_PHONE = re.compile(r"\+\d{1,2} [\d -]{7,}\d|\(\d{3}\) \d{3}-\d{4}")
_CARD = re.compile(r"\b\d{4}[ -]?\d{4}[ -]?\d{4}[ -]?\d{4}\b")


@pytest.fixture(scope="module")
def data() -> SyntheticData:
    return generate(users=10, sessions_per_user=10, turns_per_session=10, seed=11)


@pytest.fixture(scope="module")
def bench_data() -> SyntheticData:
    """The benchmark's shape: 100 users x 20 sessions x 10 turns, about 21,000 rows."""
    return generate(users=100, sessions_per_user=20, turns_per_session=10, seed=1, malformed_rate=0.0)


def _malformed_kind(row: dict[str, object]) -> str | None:
    """Which deliberate defect ``row`` has, or None for a valid row."""
    text = row.get("text")
    checks = [
        ("missing_user_id", "user_id" not in row),
        ("user_id_not_string", "user_id" in row and not isinstance(row["user_id"], str)),
        ("text_not_string", not isinstance(text, str)),
        ("empty_text", text == ""),
        ("blank_text", isinstance(text, str) and text != "" and not text.strip()),
        ("oversize_text", isinstance(text, str) and len(text) > 20_000),
        ("unknown_source", row.get("source") not in SOURCES),
        ("metadata_not_object", "metadata" in row and not isinstance(row["metadata"], dict)),
        ("unparseable_time", row.get("occurred_at") == "yesterday-ish"),
        ("impossible_time", str(row.get("occurred_at", "")).startswith("2024-13")),
    ]
    found = [kind for kind, bad in checks if bad]
    return found[0] if found else None


def _valid(data: SyntheticData) -> list[dict[str, object]]:
    return [row for row in data.signals if _malformed_kind(row) is None]


def _luhn(digits: str) -> bool:
    total = 0
    for i, c in enumerate(reversed(digits)):
        d = int(c) * (2 if i % 2 else 1)
        total += d - 9 if d > 9 else d
    return total % 10 == 0


def _has_pii(text: str) -> bool:
    cards = (re.sub(r"\D", "", m) for m in _CARD.findall(text))
    return bool(_EMAIL.search(text) or _PHONE.search(text) or any(_luhn(c) for c in cards))


def _extract(extractor: RuleExtractor, row: dict[str, object]) -> list[Extraction]:
    role = row.get("role")
    return extractor.extract(
        str(row["text"]), role=None if role is None else str(role), source=str(row["source"])
    )


def test_same_seed_same_data_and_other_seed_other_data() -> None:
    first = generate(users=4, sessions_per_user=5, turns_per_session=8, seed=3)
    again = generate(users=4, sessions_per_user=5, turns_per_session=8, seed=3)
    other = generate(users=4, sessions_per_user=5, turns_per_session=8, seed=4)
    assert first == again
    assert json.dumps(first.signals) == json.dumps(again.signals)
    assert first.signals != other.signals


def test_rows_are_json_and_shaped_like_signals(data: SyntheticData, tmp_path: Path) -> None:
    path = tmp_path / "out" / "signals.jsonl"
    assert write_jsonl(data.signals, path) == len(data.signals)
    lines = path.read_text(encoding="utf-8").splitlines()
    assert [json.loads(line) for line in lines] == data.signals
    allowed = {"signal_id", "user_id", "source", "role", "session_id", "text", "occurred_at", "metadata"}
    for row in _valid(data):
        assert set(row) <= allowed
        assert (row["source"] == "chat") == ("role" in row)
        assert row.get("role") in (None, "user", "assistant")
        at = datetime.fromisoformat(str(row["occurred_at"]))
        assert at.tzinfo is not None
        assert re.search(r"(Z|[+-]\d\d:\d\d)$", str(row["occurred_at"]))


def test_counts(data: SyntheticData) -> None:
    assert users_of(data) == [f"u{i:03d}" for i in range(1, 11)]
    valid = _valid(data)
    assert len(data.signals) - len(valid) == data.malformed_count == sum(data.malformed_kinds.values())
    chat = Counter(str(r["user_id"]) for r in valid if r["source"] == "chat")
    assert set(chat.values()) == {10 * 10}
    assert {r["source"] for r in valid} == set(SOURCES)
    with_pii = sum(_has_pii(str(r["text"])) for r in valid)
    assert with_pii == data.pii_count
    assert 0.03 < data.pii_count / len(valid) < 0.07
    assert 0.01 < data.malformed_count / len(data.signals) < 0.03
    missing_ids = sum("signal_id" not in r for r in valid)
    assert 0.05 < missing_ids / len(valid) < 0.15
    ids = [r["signal_id"] for r in data.signals if "signal_id" in r]
    assert len(ids) == len(set(ids))


def test_every_malformed_kind_at_a_thousand_rows(data: SyntheticData) -> None:
    assert len(data.signals) >= 1000
    kinds = Counter(_malformed_kind(r) for r in data.signals)
    del kinds[None]
    assert set(kinds) == set(MALFORMED_KINDS)
    assert dict(kinds) == data.malformed_kinds


def test_ingest_accepts_exactly_the_valid_rows(data: SyntheticData, settings: Settings) -> None:
    limits, now = settings.ingest, datetime.now(UTC)
    for row in data.signals:
        if _malformed_kind(row) is None:
            validate_signal(row, "t1", limits, now)
        else:
            with pytest.raises(Exception):  # noqa: B017 - ingest's error type is private
                validate_signal(row, "t1", limits, now)


def test_rates_can_be_turned_off() -> None:
    clean = generate(
        users=6, sessions_per_user=6, turns_per_session=10, malformed_rate=0, pii_rate=0, extra_sources=False
    )
    assert clean.malformed_count == clean.pii_count == 0
    assert all(_malformed_kind(r) is None and not _has_pii(str(r["text"])) for r in clean.signals)
    assert {r["source"] for r in clean.signals} == {"chat"}


def test_every_fact_points_at_its_statement(data: SyntheticData) -> None:
    rows = {r["signal_id"]: r for r in _valid(data) if "signal_id" in r}
    assert data.facts
    for fact in data.facts:
        row = rows[fact.signal_id]
        assert row["user_id"] == fact.user_id
        assert row.get("role") in (None, "user")
        assert datetime.fromisoformat(str(row["occurred_at"])) == fact.valid_from


def test_changed_facts_have_adjacent_non_overlapping_intervals(data: SyntheticData) -> None:
    by_slot: dict[tuple[str, str], list] = {}
    for fact in data.facts:
        by_slot.setdefault((fact.user_id, fact.slot), []).append(fact)
    changed = [facts for facts in by_slot.values() if len(facts) > 1]
    assert len(changed) >= 5
    assert {facts[0].slot.split(".")[0] for facts in changed} >= {"home_city", "likes"}
    for facts in by_slot.values():
        facts.sort(key=lambda f: f.valid_from)
        assert facts[-1].valid_to is None
        for older, newer in itertools.pairwise(facts):
            assert older.valid_to == newer.valid_from
            assert older.valid_from < older.valid_to
            assert older.value.casefold() != newer.value.casefold()


def test_questions_are_answerable_and_paraphrased(data: SyntheticData) -> None:
    texts = {r["signal_id"]: str(r["text"]) for r in _valid(data) if "signal_id" in r}
    facts = {(f.user_id, f.value) for f in data.facts}
    assert len(data.questions) >= len(data.facts)
    assert any(q.as_of is not None for q in data.questions)
    for q in data.questions:
        assert (q.user_id, q.answer) in facts
        assert q.evidence_signal_ids
        question = re.findall(r"[a-z0-9']+", q.question.lower())
        grams = {tuple(question[i : i + 5]) for i in range(len(question) - 4)}
        for signal_id in q.evidence_signal_ids:
            said = re.findall(r"[a-z0-9']+", texts[signal_id].lower())
            assert not grams & {tuple(said[i : i + 5]) for i in range(len(said) - 4)}, (q.question, said)


def test_as_of_questions_fall_inside_the_earlier_interval(data: SyntheticData) -> None:
    for q in data.questions:
        if q.as_of is None:
            continue
        (fact,) = [
            f
            for f in data.facts
            if f.user_id == q.user_id and f.signal_id == q.evidence_signal_ids[0] and f.value == q.answer
        ]
        assert fact.valid_to is not None
        assert fact.valid_from <= q.as_of < fact.valid_to


def test_rule_extractor_recovers_most_facts_and_invents_none(data: SyntheticData) -> None:
    extractor = RuleExtractor()
    rows = {r["signal_id"]: r for r in _valid(data) if "signal_id" in r}
    recovered = 0
    for fact in data.facts:
        row = rows[fact.signal_id]
        found = _extract(extractor, row)
        recovered += any(e.slot == fact.slot and e.value.casefold() == fact.value.casefold() for e in found)
    assert recovered / len(data.facts) >= 0.7
    stated: dict[str, set[tuple[str, str]]] = {}
    for q in data.questions:
        slots = {
            f.slot
            for f in data.facts
            if f.user_id == q.user_id and f.signal_id in q.evidence_signal_ids and f.value == q.answer
        }
        for signal_id in q.evidence_signal_ids:
            stated.setdefault(signal_id, set()).update((slot, q.answer.casefold()) for slot in slots)
    extracted = wrong = 0
    for row in _valid(data):
        for e in _extract(extractor, row):
            extracted += 1
            wrong += (e.slot, e.value.casefold()) not in stated.get(str(row.get("signal_id")), set())
    assert wrong / extracted <= 0.05


def test_fast_enough_for_benchmarks() -> None:
    began = time.perf_counter()
    big = generate(users=200, sessions_per_user=10, turns_per_session=10, seed=5)
    assert len(big.signals) >= 20_000
    assert time.perf_counter() - began < 2.0


def test_texts_are_varied_like_real_logs(bench_data: SyntheticData) -> None:
    valid = _valid(bench_data)
    texts = Counter(str(r["text"]) for r in valid)
    assert len(texts) / len(valid) >= 0.9
    assert max(texts.values()) <= 0.005 * len(valid)
    for role in ("user", "assistant"):
        said = [str(r["text"]) for r in valid if r.get("role") == role]
        assert len(set(said)) / len(said) >= 0.95, role


def test_chat_turns_have_chat_length(bench_data: SyntheticData) -> None:
    chat = [len(str(r["text"]).split()) for r in bench_data.signals if r["source"] == "chat"]
    assert sum(n < 6 for n in chat) / len(chat) < 0.03  # "thanks!", "ok" and the like
    assert sum(6 <= n <= 30 for n in chat) / len(chat) >= 0.85
    assert max(chat) < 80


def test_replies_refer_to_the_user_turn_before(bench_data: SyntheticData) -> None:
    sessions: dict[str, list[dict[str, object]]] = {}
    for row in bench_data.signals:
        if row["source"] == "chat":
            sessions.setdefault(str(row["session_id"]), []).append(row)
    referring = pairs = 0
    for rows in sessions.values():
        assert [r["role"] for r in rows] == ["user", "assistant"] * (len(rows) // 2)
        for user, reply in zip(rows[::2], rows[1::2], strict=True):
            pairs += 1
            said = set(re.findall(r"[A-Za-z][a-z]{4,}", str(user["text"])))
            referring += bool(said & set(re.findall(r"[A-Za-z][a-z]{4,}", str(reply["text"]))))
    assert pairs >= 9000
    assert referring / pairs >= 0.6


def test_every_user_template_names_the_fields_its_replies_use() -> None:
    for kind, templates in synthetic_vocab.USER.items():
        assert kind in synthetic_vocab.USER_WEIGHTS and kind in synthetic_vocab.BODIES
        for template, _ in templates:
            for name in synthetic_vocab.CORE.get(kind, ()):
                assert re.search(r"\{(?:a_)?" + name + r"\}", template, re.I), (kind, template)
