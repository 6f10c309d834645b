from __future__ import annotations

import pytest

from memory.keyphrases import STOPWORDS, keyphrases


def test_content_words_of_a_short_sentence() -> None:
    assert keyphrases("I really love hiking in the Alps with my dog") == ["hiking", "alps", "dog"]


def test_multi_word_phrases_rank_first() -> None:
    text = (
        "I've been learning Rust for my new job at a fintech startup in Berlin, "
        "and the borrow checker is driving me crazy"
    )
    assert keyphrases(text) == ["learning rust", "new job", "fintech startup", "borrow checker", "berlin"]
    assert keyphrases(text, top_k=7)[5:] == ["driving", "crazy"]


def test_phrases_stop_at_punctuation_numbers_and_stopwords() -> None:
    text = "Marathon training: run 5 miles, then yoga; 2024-05-10 was the last session."
    assert keyphrases(text, top_k=10) == ["marathon training", "run", "miles", "yoga", "session"]


def test_phrases_have_at_most_three_words() -> None:
    phrases = keyphrases("New York City marathon entry", top_k=10)
    assert phrases == ["new york city", "marathon entry"]
    assert all(len(p.split()) <= 3 for p in phrases)


def test_repeated_words_score_higher_and_phrases_are_deduplicated() -> None:
    text = "Coffee beans. Coffee grinder. Tea. Coffee beans."
    assert keyphrases(text) == ["coffee beans", "coffee grinder", "tea"]


def test_ties_keep_text_order() -> None:
    assert keyphrases("apples, pears, plums, cherries", top_k=3) == ["apples", "pears", "plums"]


def test_placeholders_single_letters_and_digits_are_skipped() -> None:
    text = "Reach me at [PHONE] or [EMAIL]; card [CARD] paid 120 for plan B"
    assert keyphrases(text, top_k=10) == ["reach", "card", "paid", "plan"]


def test_lowercase_possessives_and_mixed_tokens() -> None:
    assert keyphrases("Bob’s café in Zürich has COVID-19 tests and 3D prints", top_k=10) == [
        "bob café",
        "covid-19 tests",
        "3d prints",
        "zürich",
    ]


@pytest.mark.parametrize(
    "text", ["", "   ", "the and of it", "I am, you are!", "42 7 2024", "[EMAIL] [PHONE]"]
)
def test_nothing_to_extract(text: str) -> None:
    assert keyphrases(text) == []


def test_time_words_are_not_keyphrases() -> None:
    assert keyphrases("My sister moved to Lisbon last month, two weeks before her birthday") == [
        "sister moved",
        "lisbon",
        "birthday",
    ]


def test_top_k() -> None:
    text = "apples pears plums cherries"
    assert keyphrases(text, top_k=0) == []
    assert keyphrases(text, top_k=1) == ["apples pears plums"]


def test_stopwords_cover_pronouns_auxiliaries_and_filler() -> None:
    assert {"i", "my", "they", "is", "would", "get", "got", "really", "just", "also", "like"} <= STOPWORDS
    assert all(word == word.lower() for word in STOPWORDS)
