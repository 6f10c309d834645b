"""Retrieval and ranking on a real LanceDB table with real MiniLM vectors (and the real pipeline)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest

from cluster import Storage
from cluster.settings import RetrievalSettings, Settings
from memory import (
    SearchError,
    TenantStore,
    approx_tokens,
    build,
    ingest_rows,
    pack_context,
    render_memory,
    search,
)
from memory.embed import get_embedder
from memory.retrieval import QUERY_CACHE, EmbeddingCache
from memory.stages import rows_to_table

NOW = datetime(2025, 11, 10, 12, tzinfo=UTC)
MODEL = "all-minilm-l6-v2"
Write = Callable[..., TenantStore]


def memory(memory_id: str, text: str, **fields: Any) -> dict[str, Any]:
    """A memories-table row (vector filled in by ``write``); 2025-01-01 and current by default."""
    at = fields.pop("at", datetime(2025, 1, 1, tzinfo=UTC))
    return {
        "memory_id": memory_id,
        "tenant_id": "acme",
        "user_id": "u1",
        "kind": "episode",
        "text": text,
        "importance": 0.5,
        "confidence": 1.0,
        "support": 1,
        "sources": [f"s-{memory_id}"],
        "valid_from": at,
        "valid_to": None,
        "created_at": at,
        "updated_at": at,
        **fields,
    }


@pytest.fixture(scope="module")
def embed() -> Callable[[list[str]], np.ndarray]:
    embedder = get_embedder(MODEL)
    return embedder.embed


@pytest.fixture
def write(tmp_path: Any, embed: Callable[[list[str]], np.ndarray]) -> Write:
    """Writes rows into a fresh tenant store's memories table (indexes built as the pipeline does)."""

    def write(*rows: dict[str, Any]) -> TenantStore:
        store = TenantStore(Storage(str(tmp_path / "store")), "acme")
        vectors = embed([r["text"] for r in rows])
        with_vectors = [{**r, "vector": v} for r, v in zip(rows, vectors, strict=True)]
        store.upsert(
            "memories", store.memories(384), rows_to_table(with_vectors, 384), "memory_id", update=True
        )
        return store

    return write


def ids(results: list[dict[str, Any]]) -> list[str]:
    return [r["memory_id"] for r in results]


FILLER = [
    "I bought new hiking boots.",
    "My favourite colour is navy blue.",
    "I work as a nurse at the city hospital.",
    "The cabin by the lake has no mobile signal.",
    "Pets are not allowed in my building.",
    "We sailed along a blue fjord in Norway.",
]


def test_hybrid_finds_keyword_only_and_dense_only_matches(write: Write) -> None:
    store = write(
        memory("code", "The wifi password at the cabin is bluefjord."),
        memory("dog", "I have a dog named Rex."),
        *(memory(f"f{i}", text) for i, text in enumerate(FILLER)),
    )
    # A made-up word: BM25 matches it exactly, the embedding only sees look-alike pieces.
    assert ids(search(store, "u1", "bluefjord", k=1, mode="vector", now=NOW)) != ["code"]
    assert ids(search(store, "u1", "bluefjord", k=1, mode="keyword", now=NOW)) == ["code"]
    assert "code" in ids(search(store, "u1", "bluefjord", k=2, mode="hybrid", now=NOW))
    # No shared word: BM25 finds nothing, the embedding knows a canine is a dog.
    assert search(store, "u1", "canine companion", k=3, mode="keyword", now=NOW) == []
    assert ids(search(store, "u1", "canine companion", k=1, mode="vector", now=NOW)) == ["dog"]
    assert "dog" in ids(search(store, "u1", "canine companion", k=2, mode="hybrid", now=NOW))
    for mode in ("hybrid", "ranked"):
        assert {"code", "dog"} <= set(ids(search(store, "u1", "bluefjord canine companion", k=3, mode=mode)))


@pytest.mark.parametrize("mode", ["vector", "keyword", "hybrid", "ranked"])
def test_prefilter_never_returns_another_users_memory(write: Write, mode: str) -> None:
    others = [memory(f"o{i}", f"Surfing lesson number {i} at the beach.", user_id="u2") for i in range(200)]
    mine = [
        memory(f"m{i}", text) for i, text in enumerate(["Surfing at dawn.", "Surfing again.", "Tax forms."])
    ]
    store = write(*others, *mine)
    results = search(store, "u1", "surfing lesson at the beach", k=3, mode=mode, now=NOW)  # type: ignore[arg-type]
    assert {r["user_id"] for r in results} == {"u1"}
    # Filtered before the top-k, not after: u2's 200 better matches do not crowd u1 out.
    expected = {"m0", "m1"} if mode == "keyword" else {"m0", "m1", "m2"}
    assert set(ids(results)) == expected
    assert search(store, "u3", "surfing", k=5, mode=mode, now=NOW) == []  # type: ignore[arg-type]


def test_kinds_filter(write: Write) -> None:
    store = write(
        memory("e", "I moved to Lisbon last week."),
        memory("f", "Lives in Lisbon", kind="fact", slot="home_city", value="Lisbon", importance=0.7),
        memory("s", "Chat session about moving to Lisbon.", kind="summary"),
    )
    for mode in ("vector", "keyword", "hybrid", "ranked"):
        results = search(store, "u1", "Lisbon", k=5, mode=mode, kinds=["fact"], now=NOW)  # type: ignore[arg-type]
        assert ids(results) == ["f"]
    both = search(store, "u1", "Lisbon", k=5, kinds=["fact", "summary"], now=NOW)
    assert set(ids(both)) == {"f", "s"}
    assert len(search(store, "u1", "Lisbon", k=5, kinds=[], now=NOW)) == 3  # empty: no kind filter
    with pytest.raises(SearchError) as error:
        search(store, "u1", "Lisbon", kinds=["facts"])
    assert error.value.param == "kinds"


def _moves(write: Write) -> TenantStore:
    moved = datetime(2025, 6, 1, 8, 30, 15, 123456, tzinfo=UTC)
    return write(
        memory(
            "berlin",
            "Lives in Berlin",
            kind="fact",
            slot="home_city",
            value="Berlin",
            at=datetime(2024, 3, 1, tzinfo=UTC),
            valid_to=moved,
        ),
        memory("lisbon", "Lives in Lisbon", kind="fact", slot="home_city", value="Lisbon", at=moved),
        memory("later", "I love the tram in Lisbon.", at=datetime(2025, 8, 1, tzinfo=UTC)),
    )


@pytest.mark.parametrize("mode", ["vector", "keyword", "hybrid", "ranked"])
def test_superseded_facts_and_as_of(write: Write, mode: Any) -> None:
    store = _moves(write)
    moved = datetime(2025, 6, 1, 8, 30, 15, 123456, tzinfo=UTC)
    query = "where does the user live"
    current = search(store, "u1", query, k=5, mode=mode, kinds=["fact"], now=NOW)
    assert ids(current) == ["lisbon"]
    everything = search(store, "u1", query, k=5, mode=mode, kinds=["fact"], include_superseded=True, now=NOW)
    assert set(ids(everything)) == {"berlin", "lisbon"}
    berlin = next(r for r in everything if r["memory_id"] == "berlin")
    assert berlin["valid_to"] == moved
    # As of a time: the value valid then, and nothing that was only learned later.
    then = search(store, "u1", "Lisbon Berlin tram", k=5, mode=mode, as_of=moved - timedelta(microseconds=1))
    assert ids(then) == ["berlin"]
    at_move = search(store, "u1", "Lisbon Berlin tram", k=5, mode=mode, as_of=moved)
    assert ids(at_move) == ["lisbon"]
    # A naive as_of is UTC; an aware one in another zone is converted.
    plus_two = moved.astimezone(UTC).replace(tzinfo=None) - timedelta(days=1)
    assert ids(search(store, "u1", "Lisbon Berlin", k=5, mode=mode, as_of=plus_two)) == ["berlin"]


def test_recency_orders_equal_relevance_newest_first(write: Write) -> None:
    text = "We talked about the quarterly budget."
    store = write(
        memory("old", text, at=NOW - timedelta(days=90)),
        memory("new", text, at=NOW - timedelta(days=2)),
        memory("mid", text, at=NOW - timedelta(days=30)),
    )
    results = search(store, "u1", "quarterly budget", k=3, mode="ranked", now=NOW)
    assert ids(results) == ["new", "mid", "old"]
    recency = [r["scores"]["recency"] for r in results]
    assert recency == sorted(recency, reverse=True) and recency[0] > 0.9
    assert len({round(r["scores"]["relevance"], 6) for r in results}) == 1
    # A kind without a half-life (facts: validity retires them) does not decay.
    fact = write(memory("f", "Works at Acme", kind="fact", at=NOW - timedelta(days=900)))
    assert search(fact, "u1", "employer", k=1, now=NOW)[0]["scores"]["recency"] == 1.0


def test_mmr_keeps_near_duplicates_out_of_the_top_k(write: Write) -> None:
    store = write(
        memory("dog1", "I have a dog named Rex."),
        memory("dog2", "I have a dog called Rex."),  # cosine 0.98 to dog1
        memory("cat", "I also have a cat named Luna."),
        memory("parrot", "My parrot Kiwi talks a lot."),
        *(memory(f"f{i}", text) for i, text in enumerate(FILLER)),
    )
    query = "what pets do I have"
    plain = search(store, "u1", query, k=4, now=NOW, settings=RetrievalSettings(mmr_lambda=1.0))
    assert {"dog1", "dog2"} <= set(ids(plain)) and "parrot" not in ids(plain)
    assert max(r["scores"]["redundancy"] for r in plain) > 0.95
    diverse = search(store, "u1", query, k=4, now=NOW)
    assert len({"dog1", "dog2"} & set(ids(diverse))) == 1
    assert {"cat", "parrot"} <= set(ids(diverse))
    assert diverse[0]["scores"]["redundancy"] == 0.0
    assert all(r["scores"]["redundancy"] < 0.9 for r in diverse)


def test_results_carry_score_breakdown_and_sources(write: Write) -> None:
    store = write(
        memory("a", "I started learning Spanish on Duolingo.", sources=["sig-1", "sig-2"], support=2),
        memory("b", "Learning Spanish", kind="preference", sources=["sig-1"]),
    )
    required = {"memory_id", "text", "kind", "score", "scores", "sources", "valid_from", "valid_to"}
    expected_scores = {
        "vector": {"dense"},
        "keyword": {"bm25"},
        "hybrid": {"dense", "bm25", "fused"},
        "ranked": {"dense", "bm25", "relevance", "recency", "importance", "support", "redundancy"},
    }
    for mode, names in expected_scores.items():
        results = search(store, "u1", "Spanish lessons", k=2, mode=mode, now=NOW)  # type: ignore[arg-type]
        assert results, mode
        for r in results:
            assert required <= set(r) and "vector" not in r
            assert set(r["scores"]) == names, mode
            assert all(isinstance(v, float) for v in r["scores"].values())
            assert isinstance(r["score"], float)
            if mode != "ranked":
                assert r["score"] == r["scores"][{"vector": "dense", "keyword": "bm25"}.get(mode, "fused")]
    ranked = search(store, "u1", "Spanish lessons", k=2, now=NOW)
    assert {r["memory_id"]: r["sources"] for r in ranked} == {"a": ["sig-1", "sig-2"], "b": ["sig-1"]}
    assert all(0.0 <= r["score"] <= 1.0 for r in ranked)
    assert next(r for r in ranked if r["memory_id"] == "a")["scores"]["support"] > 0
    dated = search(store, "u1", "Spanish lessons last summer", k=2, now=NOW)
    assert all("temporal" in r["scores"] for r in dated)


def test_temporal_query_boosts_and_narrows_to_its_span(write: Write) -> None:
    store = write(
        memory("spring", "We went hiking in the Pyrenees.", at=datetime(2025, 3, 10, tzinfo=UTC)),
        memory("summer", "We went hiking in the Alps.", at=datetime(2025, 7, 15, tzinfo=UTC)),
        memory("autumn", "We went hiking in the Dolomites.", at=datetime(2025, 10, 20, tzinfo=UTC)),
        # Said in September about August: the resolved event time counts.
        memory(
            "trip",
            "We went to the lake three weeks ago (week of 18 August 2025).",
            at=datetime(2025, 9, 8, tzinfo=UTC),
            event_at=datetime(2025, 8, 18, tzinfo=UTC),
        ),
        memory(
            "berlin",
            "Lives in Berlin",
            kind="fact",
            at=datetime(2024, 5, 1, tzinfo=UTC),
            valid_to=datetime(2025, 9, 1, tzinfo=UTC),
        ),
        memory("lisbon", "Lives in Lisbon", kind="fact", at=datetime(2025, 9, 1, tzinfo=UTC)),
    )
    undated = search(store, "u1", "where did we go hiking", k=3, now=NOW)
    assert ids(undated)[0] == "autumn"  # most recent
    dated = search(store, "u1", "where did we go hiking last summer", k=3, now=NOW)
    assert ids(dated)[0] == "summer"
    assert dated[0]["scores"]["temporal"] == 1.0
    assert next(r for r in dated if r["memory_id"] == "autumn")["scores"]["temporal"] < 1.0
    did = search(store, "u1", "what did I do last summer", k=2, kinds=["episode"], now=NOW)
    assert set(ids(did)) == {"summer", "trip"}
    # Without as_of, a date in the query admits the fact that was valid then ...
    lived = search(store, "u1", "where did I live last summer", k=2, kinds=["fact"], now=NOW)
    assert ids(lived) == ["berlin", "lisbon"]
    # ... which an undated question does not see.
    assert ids(search(store, "u1", "where do I live", k=2, kinds=["fact"], now=NOW)) == ["lisbon"]
    off = RetrievalSettings(query_dates=False)
    ignored = search(store, "u1", "where did I live last summer", k=2, kinds=["fact"], now=NOW, settings=off)
    assert ids(ignored) == ["lisbon"]


def test_query_embedding_cache(write: Write) -> None:
    store = write(memory("a", "I like green tea."))
    QUERY_CACHE.clear()
    search(store, "u1", "favourite drink", now=NOW)
    search(store, "u1", "favourite drink", mode="vector", now=NOW)
    search(store, "u1", "something else", mode="hybrid", now=NOW)
    info = QUERY_CACHE.info()
    assert (info.hits, info.misses, info.size) == (1, 2, 2)

    calls: list[str] = []

    def compute(text: str) -> Callable[[], np.ndarray]:
        return lambda: calls.append(text) or np.ones(3, dtype=np.float32)

    cache = EmbeddingCache(maxsize=2)
    cache.get("m1", "a", compute("a"))
    cache.get("m2", "a", compute("a"))  # another model: another key
    cache.get("m1", "a", compute("a"))  # hit, and now the most recent
    cache.get("m1", "b", compute("b"))  # evicts ("m2", "a")
    cache.get("m2", "a", compute("a"))
    assert calls == ["a", "a", "b", "a"]
    assert not cache.get("m1", "b", compute("b")).flags.writeable


def test_invalid_requests(write: Write, tmp_path: Any) -> None:
    store = write(memory("a", "I like green tea."))
    for kwargs, param in (({"mode": "fuzzy"}, "mode"), ({"k": 0}, "k"), ({"k": 5_000}, "k")):
        with pytest.raises(SearchError) as error:
            search(store, "u1", "tea", **kwargs)
        assert error.value.param == param
    with pytest.raises(SearchError):
        search(store, "u1", "   ")
    assert search(TenantStore(Storage(str(tmp_path / "empty")), "acme"), "u1", "tea") == []
    # Query syntax is not interpreted: quotes, operators and punctuation are plain words.
    for query in ['"tea', "tea AND -coffee", "tea:green (", "O'Brien's tea?"]:
        assert ids(search(store, "u1", query, k=1, mode="keyword")) == ["a"]


def _ranked(n: int) -> list[dict[str, Any]]:
    words = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa"]
    return [
        {
            "memory_id": f"m{i}",
            "kind": "episode",
            "text": " ".join(words[: 1 + (i * 7) % len(words)]) + f" number {i}.",
            "valid_from": datetime(2025, 1, 1 + i, tzinfo=UTC),
            "valid_to": None,
        }
        for i in range(n)
    ]


@pytest.mark.parametrize("count", [approx_tokens, lambda text: len(text.split()), len])
def test_packing_never_exceeds_the_budget_and_prefers_higher_ranked(count: Callable[[str], int]) -> None:
    memories = _ranked(12)
    lines = [render_memory(m) for m in memories]
    for budget in range(0, count("\n".join(lines)) + 5):
        packed = pack_context(memories, budget, count_tokens=count)
        assert packed.tokens == count(packed.text) <= budget
        assert packed.text == "\n".join(render_memory(m) for m in packed.memories)
        kept = [int(m["memory_id"][1:]) for m in packed.memories]
        assert kept == sorted(kept)  # rank order kept
        # Every memory left out ranked below the kept ones or did not fit beside them.
        for skipped in sorted(set(range(12)) - set(kept)):
            before = [m for m in packed.memories if int(m["memory_id"][1:]) < skipped]
            with_it = "\n".join(render_memory(m) for m in [*before, memories[skipped]])
            assert count(with_it) > budget
    everything = pack_context(memories, 10**6, count_tokens=count)
    assert len(everything.memories) == 12
    assert pack_context(memories, 0, count_tokens=count).memories == []
    with pytest.raises(ValueError):
        pack_context(memories, -1)


def test_packing_skips_a_long_memory_for_shorter_ones() -> None:
    long = {
        "memory_id": "long",
        "kind": "episode",
        "text": "word " * 300,
        "valid_from": None,
        "valid_to": None,
    }
    short = _ranked(3)
    budget = approx_tokens("\n".join(render_memory(m) for m in short))
    packed = pack_context([short[0], long, short[1], short[2]], budget)
    assert [m["memory_id"] for m in packed.memories] == ["m0", "m1", "m2"]


def test_approx_tokens_errs_high_against_a_real_tokenizer() -> None:
    from transformers import AutoTokenizer

    from memory.embed import minilm_path

    # MiniLM's WordPiece (30k vocabulary) splits words at least as finely as LLM BPE vocabularies.
    tokenizer = AutoTokenizer.from_pretrained(minilm_path())
    texts = [
        "Lives in Berlin",
        "I moved from Munich to Lisbon two weeks ago (week of 3 June 2024).",
        "Chat session on 02 March 2024 (5 messages). Topics: sourdough baking, lake. User said: I hate it.",
        "My card number is [CARD], can you check whether the payment went through?",
        "Hi Anna,\n\nCould you send me that ramen recipe? Best,\nLiam",
        "Works as a senior software engineer at Quantum Leaf Robotics",
        "Dislikes true crime podcasts",
        "- [2024-05-03, fact] Birthday is April 19",
        "Flight LH1234 departs 07:45 from gate B22; confirmation code XQ7P2Z.",
        "Thanks, that's really helpful! Can you make it shorter?",
    ]
    real = [len(tokenizer.tokenize(t)) for t in texts]
    approx = [approx_tokens(t) for t in texts]
    assert sum(real) <= sum(approx) <= 1.3 * sum(real)
    assert all(0.85 * r <= a <= 1.6 * r + 2 for r, a in zip(real, approx, strict=True))
    assert approx_tokens("") == 0


def test_retrieval_settings_are_strict_and_documented(tmp_path: Any) -> None:
    from pydantic import ValidationError

    from cluster.errors import ConfigError
    from cluster.settings import load_settings

    assert all(f.description for f in RetrievalSettings.model_fields.values())
    assert Settings().retrieval == RetrievalSettings()
    with pytest.raises(ValidationError, match="mmr_lamda"):
        RetrievalSettings(mmr_lamda=0.5)  # type: ignore[call-arg]
    with pytest.raises(ValidationError):
        RetrievalSettings(half_life_days={"episode": 0})
    with pytest.raises(ValidationError):
        RetrievalSettings(
            relevance_weight=0, recency_weight=0, importance_weight=0, support_weight=0, temporal_weight=0
        )
    config = tmp_path / "engram.yaml"
    config.write_text("retrieval:\n  mmr_lambda: 0.9\n  half_life_days: {episode: 7}\n")
    loaded = load_settings(config, storage_root=str(tmp_path))
    assert loaded.retrieval.mmr_lambda == 0.9 and loaded.retrieval.half_life_days == {"episode": 7}
    config.write_text("retrieval:\n  fusion: borda\n")
    with pytest.raises(ConfigError) as error:
        load_settings(config, storage_root=str(tmp_path))
    assert error.value.param == "retrieval.fusion"


@pytest.mark.integration
@pytest.mark.usefixtures("ray_local")
def test_search_over_built_memories(settings: Settings) -> None:
    rows = [
        ("a1", "u1", "2024-03-01T09:00:00Z", "I live in Berlin, so mornings here are chilly."),
        ("a2", "u1", "2024-03-01T09:05:00Z", "I really enjoy surfing."),
        ("a3", "u1", "2024-06-10T18:00:00Z", "Big news: I just moved to Lisbon!"),
        ("a4", "u1", "2024-06-10T18:04:00Z", "Can you recommend a good book about climate policy?"),
        ("b1", "u2", "2024-03-02T10:00:00Z", "I live in Lisbon and I love surfing too."),
    ]
    store = TenantStore(Storage.of(settings), "acme")
    ingest_rows(
        store,
        [
            {
                "signal_id": sid,
                "user_id": user,
                "source": "chat",
                "role": "user",
                "occurred_at": at,
                "text": text,
            }
            for sid, user, at, text in rows
        ],
        settings.ingest,
    )
    build("acme", settings)
    now = datetime(2024, 6, 11, tzinfo=UTC)
    cfg = settings.retrieval
    top = search(store, "u1", "which city is my home these days", k=3, now=now, settings=cfg)
    assert top[0]["kind"] == "fact" and "Lisbon" in top[0]["text"] and top[0]["sources"] == ["a3"]
    assert all(r["user_id"] == "u1" for r in top)
    before = search(
        store, "u1", "which city is my home", k=3, kinds=["fact"], as_of=datetime(2024, 4, 1), now=now
    )
    assert [r["value"] for r in before] == ["Berlin"]
    history = search(store, "u1", "home city", k=5, kinds=["fact"], include_superseded=True, now=now)
    assert {r["value"] for r in history if r["slot"] == "home_city"} == {"Berlin", "Lisbon"}
    for mode in ("vector", "keyword", "hybrid", "ranked"):
        found = search(store, "u2", "surfing", k=5, mode=mode, now=now)  # type: ignore[arg-type]
        assert found and {r["user_id"] for r in found} == {"u2"}
        assert all(set(r["sources"]) <= {"b1"} for r in found)
    packed = pack_context(search(store, "u1", "tell me about me", k=10, now=now), 40)
    assert packed.memories and packed.tokens <= 40
