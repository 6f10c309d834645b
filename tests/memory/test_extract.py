"""The rule extractor: slots and phrasings it knows, and what it must leave alone."""

from __future__ import annotations

import time

import pytest

from cluster.errors import UnknownComponentError
from memory.extract import EXTRACTORS, Extraction, RuleExtractor, get_extractor

EXTRACTOR = RuleExtractor()


def _found(text: str, *, role: str | None = "user", source: str = "chat") -> set[tuple[str, str]]:
    return {(e.slot, e.value) for e in EXTRACTOR.extract(text, role=role, source=source)}


@pytest.mark.parametrize(
    ("text", "slot", "value"),
    [
        # home_city
        ("I live in Berlin.", "home_city", "Berlin"),
        ("I moved to Berlin last month.", "home_city", "Berlin"),
        ("I just moved to New York City and I love it.", "home_city", "New York City"),
        ("I'm based in San Francisco these days.", "home_city", "San Francisco"),
        ("I relocated to Rio de Janeiro for work.", "home_city", "Rio de Janeiro"),
        ("We moved to Lisbon in the spring.", "home_city", "Lisbon"),
        ("I moved from Berlin to Munich two weeks ago.", "home_city", "Munich"),
        ("I've been living in Vienna for five years.", "home_city", "Vienna"),
        ("I moved to Oslo yesterday because of work.", "home_city", "Oslo"),
        ("I live in St. Louis now.", "home_city", "St. Louis"),
        ("I moved to Berlin last month (February 2024) and love it.", "home_city", "Berlin"),
        # employer
        ("I work at Acme Corp.", "employer", "Acme Corp"),
        ("I work for Globex as a data analyst.", "employer", "Globex"),
        ("I started working at Initech last week.", "employer", "Initech"),
        ("I joined Hooli!", "employer", "Hooli"),
        ("I got a job at Pied Piper, starting Monday.", "employer", "Pied Piper"),
        ("I've been working at Bank of Avalon for three years.", "employer", "Bank of Avalon"),
        ("I'm a software engineer at Blue Harbor Labs.", "employer", "Blue Harbor Labs"),
        # job_title
        ("I'm a nurse.", "job_title", "nurse"),
        ("I'm an architect, mostly remote these days.", "job_title", "architect"),
        ("I work as a graphic designer.", "job_title", "graphic designer"),
        ("I'm a senior software engineer at Google.", "job_title", "senior software engineer"),
        ("I was promoted to senior manager last week!", "job_title", "senior manager"),
        ("I just got promoted to Director of Sales.", "job_title", "director of sales"),
        ("I joined Northwind Media as a social worker.", "job_title", "social worker"),
        ("I'm an HR manager.", "job_title", "HR manager"),
        ("I'm a principal data scientist.", "job_title", "principal data scientist"),
        # pets
        ("I have a dog named Rex.", "pet.dog", "Rex"),
        ("My cat Luna keeps stealing my socks.", "pet.cat", "Luna"),
        ("I adopted a kitten called Mochi last year.", "pet.cat", "Mochi"),
        ("My dog's name is Biscuit.", "pet.dog", "Biscuit"),
        ("I have a guinea pig named Fluffy.", "pet.guinea_pig", "Fluffy"),
        # diet
        ("I'm vegetarian.", "diet", "vegetarian"),
        ("I'm a vegan, so no dairy please.", "diet", "vegan"),
        ("I don't eat meat.", "diet", "vegetarian"),
        ("I went vegan last month.", "diet", "vegan"),
        ("I'm no longer vegetarian.", "diet", "omnivore"),
        # partner
        ("My wife Anna says hi.", "partner", "Anna"),
        ("My partner Alex and I are planning a trip.", "partner", "Alex"),
        ("I'm married to Sam.", "partner", "Sam"),
        # birthday
        ("My birthday is on May 3.", "birthday", "May 3"),
        ("My birthday is March 14th, mark the calendar!", "birthday", "March 14"),
        ("I was born on 3 May 1990.", "birthday", "May 3"),
        ("Remind me: my birthday's on the 5th of June.", "birthday", "June 5"),
        # learning
        ("I'm learning Spanish.", "learning", "Spanish"),
        ("I've started learning Japanese on Duolingo.", "learning", "Japanese"),
        # hometown
        ("I grew up in Manchester.", "hometown", "Manchester"),
        ("I'm originally from Toronto.", "hometown", "Toronto"),
        ("I was born and raised in Buenos Aires.", "hometown", "Buenos Aires"),
        # likes and dislikes
        ("I love hiking.", "likes.hiking", "like"),
        ("I really enjoy board games.", "likes.board_games", "like"),
        ("I'm a big fan of jazz.", "likes.jazz", "like"),
        ("I adore the opera.", "likes.opera", "like"),
        ("I like rock climbing a lot.", "likes.rock_climbing", "like"),
        ("I'm really into salsa dancing lately.", "likes.salsa_dancing", "like"),
        ("i love sourdough baking", "likes.sourdough_baking", "like"),
        ("I love hiking in the Alps, but only in summer.", "likes.hiking_in_alps", "like"),
        ("I hate sushi.", "likes.sushi", "dislike"),
        ("I dislike horror movies.", "likes.horror_movies", "dislike"),
        ("I can't stand country music.", "likes.country_music", "dislike"),
        ("I don't like spicy food anymore.", "likes.spicy_food", "dislike"),
        ("I really don't enjoy cold showers.", "likes.cold_showers", "dislike"),
        ("I no longer like jazz.", "likes.jazz", "dislike"),
        ("I'm not into yoga anymore.", "likes.yoga", "dislike"),
        ("I'm not a fan of stand-up comedy.", "likes.stand_up_comedy", "dislike"),
        ("I prefer tea over coffee.", "likes.tea", "like"),
        ("My favorite band is Radiohead.", "favorite.band", "Radiohead"),
        ("My favourite food is ramen, hands down.", "favorite.food", "ramen"),
        ("My favorite movie is The Matrix.", "favorite.movie", "The Matrix"),
        ("Radiohead is my favorite band.", "favorite.band", "Radiohead"),
    ],
)
def test_slot_and_phrasing(text: str, slot: str, value: str) -> None:
    assert (slot, value) in _found(text)


@pytest.mark.parametrize(
    "text",
    [
        "Do I live in Berlin?",
        "Should I move to Paris?",
        "If I moved to Paris, I'd bike everywhere.",
        "If I moved to Paris, would I need a car?",
        "I might move to Paris next year.",
        "I'm thinking about moving to Lisbon.",
        "I'd love to visit Japan.",
        "I don't think I like sushi.",
        "Tom thinks I live in Rome.",
        "My sister lives in Rome.",
        "My brother just moved to Denver.",
        "Tom works at Google.",
        "My colleague Sarah is a nurse.",
        "My sister has a dog named Rex.",
        "My best friend's dog Max is hilarious.",
        "Tom's wife Anna is lovely.",
        "My mom loves gardening.",
        "My sister's favorite band is Muse.",
        "I'm a big fan.",
        "I'm a terrible cook.",
        "I'm a morning person.",
        "I'm a former teacher.",
        "I like the second option better.",
        "I love that idea!",
        "I love you.",
        "I hate to say it, but no.",
        "I work at home on Fridays.",
        "I'm from the marketing team.",
        "I was born in May.",
        "I left Acme Corp.",
        "I have a dentist appointment next Thursday.",
        "Can you recommend a good restaurant in Berlin?",
        "> I live in Paris",
        "",
    ],
)
def test_no_extraction(text: str) -> None:
    assert _found(text) == set()


def test_only_the_users_own_turns_count() -> None:
    text = "I live in Berlin and I love jazz."
    assert _found(text, role="user") == {("home_city", "Berlin"), ("likes.jazz", "like")}
    assert _found(text, role="assistant") == set()
    assert _found(text, role="system") == set()
    assert _found(text, role=None) == set()
    for source in ("email", "document", "calendar", "event", "feedback"):
        assert ("home_city", "Berlin") in _found(text, role=None, source=source)


def test_works_sentence_by_sentence() -> None:
    text = (
        "Hi team,\nI've relocated to Lisbon, so please update my address. Do I still work at Acme?\nBest,\nA"
    )
    assert _found(text, role=None, source="email") == {("home_city", "Lisbon")}
    assert _found("I just moved to Berlin, any tips?") == {("home_city", "Berlin")}
    assert _found("You said I live in Berlin, but actually I live in Munich.") == {("home_city", "Munich")}


def test_several_statements_in_one_text_keep_their_order() -> None:
    found = EXTRACTOR.extract("I'm a teacher and I live in Leeds. I hate sushi.", role="user", source="chat")
    assert [e.slot for e in found] == ["job_title", "home_city", "likes.sushi"]


def test_like_and_dislike_of_the_same_thing_share_a_slot() -> None:
    pairs = [
        ("I love sushi.", "I hate sushi."),
        ("I really enjoy rock climbing.", "I'm not into rock climbing anymore."),
        ("I'm a big fan of the opera.", "I no longer like opera."),
        ("I like board games a lot.", "I can't stand board games."),
    ]
    for liked, disliked in pairs:
        (like,) = EXTRACTOR.extract(liked, role="user", source="chat")
        (dislike,) = EXTRACTOR.extract(disliked, role="user", source="chat")
        assert like.slot == dislike.slot
        assert (like.kind, like.value, dislike.value) == ("preference", "like", "dislike")
    forward = EXTRACTOR.extract("My favorite band is Radiohead.", role="user", source="chat")
    backward = EXTRACTOR.extract("Muse is my favorite band.", role="user", source="chat")
    assert forward[0].slot == backward[0].slot == "favorite.band"


def test_text_is_short_and_third_person() -> None:
    cases = {
        "I live in Berlin.": "Lives in Berlin",
        "I work at Acme Corp.": "Works at Acme Corp",
        "I love hiking in the Alps with my friends.": "Likes hiking in the Alps",
        "I hate sushi.": "Dislikes sushi",
        "My favorite band is Radiohead.": "Favorite band is Radiohead",
        "I'm an architect.": "Works as an architect",
        "I have a dog named Rex.": "Has a dog named Rex",
    }
    for said, statement in cases.items():
        (found,) = EXTRACTOR.extract(said, role="user", source="chat")
        assert found.text == statement


def test_confidence_reflects_how_explicit_the_statement_is() -> None:
    (explicit,) = EXTRACTOR.extract("I live in Berlin.", role="user", source="chat")
    (weaker,) = EXTRACTOR.extract("We moved to Berlin.", role="user", source="chat")
    (origin,) = EXTRACTOR.extract("I'm from Berlin.", role="user", source="chat")
    assert explicit.confidence == 0.9
    assert weaker.confidence == origin.confidence == 0.7
    assert explicit.kind == "fact"


def test_extractions_are_immutable() -> None:
    (found,) = EXTRACTOR.extract("I live in Berlin.", role="user", source="chat")
    assert isinstance(found, Extraction)
    with pytest.raises(AttributeError):
        found.value = "Paris"  # type: ignore[misc]


def test_registry() -> None:
    assert "rules" in EXTRACTORS.names()
    assert isinstance(get_extractor("rules"), RuleExtractor)
    with pytest.raises(UnknownComponentError, match="rules") as error:
        get_extractor("llm-magic")
    assert error.value.param == "extractor"


def test_fast_on_sentences_without_facts() -> None:
    sentences = [
        "Can you recommend a good restaurant for tonight?",
        "The weather has been really nice this week and we went to the park.",
        "I had a long day at work and I feel like ordering pizza tonight.",
        "My manager wants the report by Friday, so I need to focus.",
    ] * 500
    began = time.perf_counter()
    for sentence in sentences:
        EXTRACTOR.extract(sentence, role="user", source="chat")
    per_sentence = (time.perf_counter() - began) / len(sentences)
    assert per_sentence < 250e-6  # typically ~10 µs; generous for loaded CI machines
