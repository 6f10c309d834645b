"""Seeded synthetic signals for many users, with the ground truth they encode.

Each user gets a persona (city, employer, job, pets, diet, likes ...) and a few months of
chat sessions plus e-mails, documents, calendar entries, events and feedback. The user states
facts in varied phrasings (some the rule extractor knows, some it does not, like real users),
among small talk, questions, hypotheticals and other people's facts. Some facts change later
(a move, a new job, a like turned dislike), so every ``FactTruth`` has a validity interval.
Held-out ``Question``s, paraphrased rather than copied, name the signals that answer them.
A share of rows carry PII and a share are deliberately malformed.

Small talk, requests, replies, e-mails, documents, calendar entries, events and feedback are
composed from the templates and word lists in ``synthetic.vocab``: the assistant answers
what the user just asked (the same dish, city or draft), a later turn can refer back to it
("make the Lisbon itinerary shorter"), and at benchmark scale almost no text repeats verbatim.

Everything is drawn from ``random.Random(seed)``: the same arguments give the same data.
"""

from __future__ import annotations

import itertools
import json
import math
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

from synthetic import vocab as V

__all__ = ["MALFORMED_KINDS", "FactTruth", "Question", "SyntheticData", "generate", "users_of", "write_jsonl"]


@dataclass(frozen=True)
class FactTruth:
    """One fact about a user, true from ``valid_from`` until ``valid_to`` (None: still true)."""

    user_id: str
    slot: str
    value: str
    valid_from: datetime
    valid_to: datetime | None
    signal_id: str


@dataclass(frozen=True)
class Question:
    """A held-out question about a user; ``as_of`` None asks about the present.

    ``answer`` is the fact's value ("Berlin"; "like" or "dislike" for a ``likes.*`` slot) and
    ``evidence_signal_ids`` are all the signals that state it within its validity interval.
    """

    user_id: str
    question: str
    answer: str
    evidence_signal_ids: tuple[str, ...]
    as_of: datetime | None


@dataclass
class SyntheticData:
    """Signals ready for ingest (malformed ones included) and the truth behind them."""

    signals: list[dict[str, object]]
    facts: list[FactTruth]
    questions: list[Question]
    malformed_count: int
    pii_count: int
    malformed_kinds: dict[str, int] = field(default_factory=dict)  # MALFORMED_KINDS name -> rows


def users_of(data: SyntheticData) -> list[str]:
    """The user ids that occur in ``data``'s signals, sorted."""
    return sorted({u for row in data.signals if isinstance(u := row.get("user_id"), str)})


def write_jsonl(rows: Iterable[Mapping[str, object]], path: str | Path) -> int:
    """Write ``rows`` as one JSON object per line; return how many were written."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with path.open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False))
            handle.write("\n")
            count += 1
    return count


# --- vocabularies ---------------------------------------------------------------------------


def _split(text: str, sep: str = ",") -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(sep) if part.strip())


def _alts(text: str) -> tuple[str, ...]:
    """Alternative sentences, written one after another with " | " between them."""
    return _split(text, "|")


_FIRST_NAMES = _split(
    "Anna, Ben, Carla, David, Elena, Farid, Grace, Hiro, Ines, Jonas, Kemi, Liam, Maya, Nikolai, Olivia, "
    "Pedro, Quinn, Rosa, Samir, Tara, Umar, Vera, Wei, Ximena, Yusuf, Zoe, Amir, Bianca, Chen, Dana, Emil, "
    "Fatima, Gabriel, Hannah, Ivan, Julia, Kenji, Lena, Marco, Nadia, Oscar, Priya, Rafael, Sofia, Tomas, "
    "Uma, Victor, Wanda, Yara, Zain, Aisha, Bruno, Clara, Diego, Eva, Felix, Greta, Hugo, Isla, Jamal"
)
_LAST_NAMES = _split(
    "Schmidt, Okafor, Rossi, Nguyen, Garcia, Kowalski, Tanaka, Silva, Haddad, Johansson, Murphy, Novak, "
    "Dubois, Patel, Kim, Fischer, Moreau, Costa, Ivanova, Lindqvist, Mensah, Ortega, Papadopoulos, Quist, "
    "Reyes, Sato, Tran, Ueda, Varga, Weber, Yilmaz, Zhang, Andersen, Becker, Castillo, Demir, Eriksen"
)
_CITIES = _split(
    "Berlin, Munich, Hamburg, Lisbon, Porto, Madrid, Barcelona, Valencia, Paris, Lyon, Marseille, Amsterdam, "
    "Rotterdam, Brussels, Vienna, Zurich, Geneva, Prague, Warsaw, Krakow, Budapest, Copenhagen, Stockholm, "
    "Oslo, Helsinki, Dublin, London, Manchester, Edinburgh, Glasgow, Bristol, Leeds, Rome, Milan, Turin, "
    "Naples, Athens, Istanbul, Toronto, Montreal, Vancouver, New York, Boston, Chicago, Seattle, Denver, "
    "Austin, San Francisco, Los Angeles, Mexico City, Buenos Aires, Rio de Janeiro, Sao Paulo, Cape Town, "
    "Nairobi, Lagos, Cairo, Tel Aviv, Dubai, Mumbai, Bangalore, Singapore, Kuala Lumpur, Tokyo, Osaka, "
    "Seoul, Sydney, Melbourne, Auckland"
)
_COMPANY_HEADS = _split(
    "Acme, Globex, Initech, Northwind, Contoso, Fabrikam, Blue Harbor, Brightline, Silver Birch, Red Maple, "
    "Iron Peak, Cedar, Summit, Nova, Quantum Leaf, Orbital, Lighthouse, Pinecrest, Riverstone, Bluebird, "
    "Kestrel, Aurora, Meridian, Atlas, Helix, Juniper, Vantage, Sterling, Harbor Point, Evergreen"
)
_COMPANY_TAILS = _split(
    "Corp, Labs, Systems, Health, Analytics, Dynamics, Works, Partners, Logistics, Robotics, Bank, Media, "
    "Foods, Energy, Studios, Insurance"
)
_JOB_TITLES = _split(
    "software engineer, data analyst, product manager, nurse, high school teacher, graphic designer, "
    "civil engineer, accountant, pharmacist, chef, journalist, UX designer, data scientist, physiotherapist, "
    "marketing manager, lawyer, architect, electrician, veterinarian, project manager, research scientist, "
    "financial analyst, dentist, librarian, mechanical engineer, sales manager, translator, photographer, "
    "backend developer, operations manager, social worker, HR manager, pilot, paramedic, economist"
)
_PROMOTIONS = {
    "software engineer": "senior software engineer",
    "data analyst": "senior data analyst",
    "product manager": "senior product manager",
    "nurse": "head nurse",
    "accountant": "senior accountant",
    "marketing manager": "marketing director",
    "project manager": "program director",
    "sales manager": "sales director",
    "backend developer": "lead developer",
    "data scientist": "principal data scientist",
}
_PET_KINDS = _split("dog, dog, dog, cat, cat, cat, rabbit, parrot, hamster")
_PET_NAMES = _split(
    "Rex, Luna, Biscuit, Mochi, Pepper, Oscar, Bella, Milo, Nala, Ziggy, Pickles, Hazel, Toby, Olive, "
    "Simba, Maple, Clover, Bruno, Coco, Juniper, Pixel, Waffles, Noodle, Ginger, Shadow, Pumpkin, Rocky"
)
_DIETS = _split("vegetarian, vegetarian, vegan, pescatarian")
_RELATIONS = _split("wife, husband, partner")
_PARTNER_NAMES = _split(
    "Alex, Sam, Jordan, Maria, Lukas, Sara, Daniel, Mei, Noor, Tomasz, Leila, Finn, Chloe, Mateo, Ingrid, "
    "Kofi, Amelie, Ravi, Helena, Jonah"
)
_MONTHS = _split(
    "January, February, March, April, May, June, July, August, September, October, November, December"
)
_LANGUAGES = _split(
    "Spanish, Japanese, German, French, Italian, Portuguese, Mandarin, Korean, Arabic, Dutch, Swedish, "
    "Turkish, Greek, Polish, Hindi"
)
_HOBBIES = _split(
    "hiking, rock climbing, jazz, board games, sourdough baking, yoga, cycling, photography, sushi, "
    "spicy food, horror movies, gardening, chess, running, knitting, true crime podcasts, sci-fi novels, "
    "video games, camping, skiing, surfing, pottery, salsa dancing, birdwatching, red wine, craft beer, "
    "thai food, indian food, karaoke, opera, country music, modern art, crossword puzzles, meditation, "
    "tennis, golf, black coffee, green tea, dark chocolate, musicals, reality shows, stand-up comedy, "
    "road trips, museums, kayaking, trail running, anime, vinyl records, cold showers, early mornings, "
    "winter, heavy metal, poetry, sailing, ballet"
)
_FAVORITES: dict[str, tuple[str, ...]] = {
    "band": _split(
        "Radiohead, Coldplay, Arctic Monkeys, Fleetwood Mac, Daft Punk, ABBA, The Beatles, Queen, "
        "Pink Floyd, Tame Impala, Massive Attack, The Cure, Portishead, Muse, Blur, Oasis, Bon Iver, Phoenix"
    ),
    "movie": _split(
        "The Matrix, Inception, Amelie, Spirited Away, Casablanca, Parasite, Jaws, Alien, Heat, Arrival, "
        "Vertigo, Up, Moonlight, Gravity, Memento, Whiplash"
    ),
    "book": _split(
        "Dune, Middlemarch, Beloved, Neuromancer, Persuasion, Ulysses, Rebecca, Emma, Dracula, Frankenstein, "
        "Solaris, Stoner, Lolita, Atonement"
    ),
    "food": _split(
        "ramen, lasagna, tacos, pho, paella, dumplings, pad thai, biryani, falafel, risotto, gnocchi"
    ),
    "color": _split("green, blue, teal, orange, purple, yellow, burgundy, navy"),
    "sport": _split("tennis, basketball, football, cricket, rugby, volleyball, badminton, handball"),
    "season": _split("autumn, spring, summer, winter"),
}

# --- phrasings ------------------------------------------------------------------------------
# Per (family, phase): phrasings the rule extractor understands, then ones it does not.

_Templates = tuple[tuple[str, ...], tuple[str, ...]]


def _templates(supported: str, unsupported: str) -> _Templates:
    return _alts(supported), _alts(unsupported)


_PHRASINGS: dict[tuple[str, str], _Templates] = {
    ("home_city", "first"): _templates(
        "I live in {v}. | I live in {v}, so mornings here are chilly this time of year. | "
        "For context, I'm based in {v}. | I'm based in {v} these days. | "
        "I relocated to {v} for work a couple of years ago. | "
        "I've been living in {v} for a few years now. | We moved to {v} a while back and never looked back.",
        "Home for me is {v}. | {v} has been home for a few years now. | Writing this from my flat in {v}.",
    ),
    ("home_city", "change"): _templates(
        "I moved to {v} last month. | Big news: I just moved to {v}! | "
        "I moved from {old} to {v} two weeks ago. | We moved to {v} last week, still unpacking boxes. | "
        "I relocated to {v} at the start of the month. | Quick update, I live in {v} now.",
        "Settling into my new place in {v}. | Goodbye {old}, hello {v}!",
    ),
    ("home_city", "again"): _templates(
        "I live in {v}, by the way. | Like I said, I'm based in {v}.",
        "Still enjoying life in {v}.",
    ),
    ("employer", "first"): _templates(
        "I work at {v}. | I work for {v}. | I've been working at {v} for three years. | "
        "I'm working for {v} these days.",
        "{v} keeps me busy most days. | Work at {v} has been hectic lately.",
    ),
    ("employer", "change"): _templates(
        "I started working at {v} last week. | I just joined {v}! | "
        "I got a new job at {v}, starting Monday. | I work for {v} now.",
        "Last day at {old} was Friday, and on Monday I start at {v}. | Signed the offer from {v} yesterday!",
    ),
    ("employer", "again"): _templates(
        "I work at {v}, in case that matters.",
        "Another busy week over at {v}.",
    ),
    ("job_title", "first"): _templates(
        "I'm {a} {v}. | I work as {a} {v}. | I'm {a} {v}, mostly remote these days.",
        "My day job? {V}. | Been doing {v} work for about five years.",
    ),
    ("job_title", "change"): _templates(
        "I was promoted to {v} last week! | I just got promoted to {v}. | Good news: I got promoted to {v}.",
        "New title at work: {v}.",
    ),
    ("job_title", "again"): _templates(
        "I work as {a} {v}, so this matters to me.",
        "Typical day for {a} {v}.",
    ),
    ("job", "first"): _templates(
        "I'm {a} {title} at {employer}. | I work for {employer} as {a} {title}. | "
        "I work at {employer} as {a} {title}.",
        "Day job: {title} at {employer}.",
    ),
    ("job", "change"): _templates(
        "I started working at {employer} as {a} {title} last week. | I joined {employer} as {a} {title}. | "
        "I got a job at {employer} as {a} {title}!",
        "Starting a new chapter as {a} {title} with {employer}.",
    ),
    ("pet", "first"): _templates(
        "I have {a} {kind} named {v}. | My {kind} {v} keeps stealing my socks. | "
        "I adopted {a} {kind} called {v} last year.",
        "{v}, my {kind}, is the best. | Walked {v} (the {kind}) this morning.",
    ),
    ("pet", "again"): _templates(
        "My {kind} {v} is doing great.",
        "{v} is napping on the sofa again.",
    ),
    ("diet", "first"): _templates(
        "I'm {v}. | I'm {v}, so please keep that in mind for recipes.",
        "Please keep recipes {v}-friendly for me.",
    ),
    ("diet", "change"): _templates(
        "I went {v} last month. | I've gone {v}, so no more cheese for me.",
        "Cut out dairy and eggs too, fully {v} now.",
    ),
    ("partner", "first"): _templates(
        "My {rel} {v} says hi. | My {rel} {v} is a great cook. | I'm married to {v}.",
        "{v} and I celebrated our anniversary last weekend.",
    ),
    ("birthday", "first"): _templates(
        "My birthday is on {v}. | My birthday is {month} {day}{suffix}, mark the calendar! | "
        "I was born on {day} {month}.",
        "Another year older on {v}.",
    ),
    ("learning", "first"): _templates(
        "I'm learning {v}. | I've started learning {v} on Duolingo. | I'm learning {v} for an upcoming trip.",
        "Trying to pick up some {v} before my trip.",
    ),
    ("hometown", "first"): _templates(
        "I grew up in {v}. | I'm originally from {v}. | I was born and raised in {v}.",
        "{v} will always be home to me. | Childhood in {v} was great.",
    ),
    ("like", "first"): _templates(
        "I love {x}. | I really enjoy {x}. | I'm a big fan of {x}. | I like {x} a lot. | "
        "I'm really into {x} lately.",
        "Nothing beats {x} on a Sunday. | Could talk about {x} all day.",
    ),
    ("like", "change"): _templates(
        "These days I actually like {x}. | I actually love {x} now.",
        "I've started to enjoy {x}, who knew.",
    ),
    ("like", "again"): _templates(
        "I still love {x}.",
        "Spent the whole weekend on {x} again.",
    ),
    ("dislike", "first"): _templates(
        "I hate {x}. | I can't stand {x}. | I really don't like {x}. | I'm not a fan of {x}.",
        "{X}? No thanks. | Honestly, I could do without {x}.",
    ),
    ("dislike", "change"): _templates(
        "I don't enjoy {x} anymore. | I'm not into {x} anymore. | I no longer like {x}. | "
        "Honestly, I've gone off {x}.",
        "I've had enough of {x}, to be honest.",
    ),
    ("dislike", "again"): _templates(
        "I still can't stand {x}.",
        "Still not warming up to {x}.",
    ),
    ("favorite", "first"): _templates(
        "My favorite {cat} is {v}. | My favourite {cat} is {v}, hands down. | {V} is my favorite {cat}.",
        "Can't get enough of {v} lately.",
    ),
    ("favorite", "change"): _templates(
        "My favorite {cat} is now {v}. | {V} is my new favorite {cat}.",
        "Lately it's all {v}, all the time.",
    ),
}
_UNSUPPORTED_SHARE = 0.15
# Always said in a phrasing the extractor knows: the pipeline tests check supersession on moves
# and expect the new city to be recognised whenever the old one was.
_EXPLICIT = frozenset({("home_city", "change")})

# Families whose statements may also arrive by e-mail or in a document.
_WRITTEN_FAMILIES = ("home_city", "employer", "job", "job_title", "diet", "partner", "birthday")
_WRITTEN_SHARE = 0.12

_QUESTIONS: dict[str, tuple[str, ...]] = {
    "home_city": _alts(
        "Which city is {name}'s home these days? | Where does {name} currently reside? | "
        "In what city is {name} based right now?"
    ),
    "employer": _alts(
        "Which company does {name} work for at the moment? | Who employs {name} these days? | "
        "Where is {name} employed now?"
    ),
    "job_title": _alts(
        "What does {name} do for a living? | What is {name}'s occupation? | "
        "What is {name}'s current job title?"
    ),
    "pet": _alts("What is the name of {name}'s {kind}? | What is {name}'s {kind} called?"),
    "diet": _alts("What kind of diet does {name} follow? | Which eating style does {name} stick to?"),
    "partner": _alts("What is the name of {name}'s {rel}? | Who is {name}'s {rel}?"),
    "birthday": _alts(
        "When is {name}'s birthday? | On which date does {name} celebrate turning a year older?"
    ),
    "learning": _alts("Which language is {name} studying? | What language has {name} been picking up?"),
    "hometown": _alts(
        "Where did {name} spend their childhood? | Which place does {name} originally come from?"
    ),
    "likes": _alts("How does {name} feel about {x}? | What is {name}'s attitude towards {x}?"),
    "favorite": _alts("What {cat} does {name} rate above all others? | Which {cat} is {name}'s top pick?"),
}
_PAST_QUESTIONS: dict[str, tuple[str, ...]] = {
    "home_city": _alts("Where was {name} living on {date}? | Which city did {name} call home as of {date}?"),
    "employer": _alts("Who was {name} working for on {date}? | Which company employed {name} as of {date}?"),
    "job_title": _alts("What was {name}'s job on {date}? | What role did {name} hold as of {date}?"),
    "diet": _alts("What diet did {name} follow on {date}?"),
    "likes": _alts("How did {name} feel about {x} on {date}? | As of {date}, what was {name}'s view of {x}?"),
    "favorite": _alts("What was {name}'s top {cat} pick on {date}?"),
}

# --- side sources and PII -----------------------------------------------------------------

_PII_CHAT = (
    ("card", "My card number is {card}, can you check whether the payment went through?"),
    ("email", "You can reach me at {email} if that's easier."),
    ("phone", "Text me at {phone} when it's done."),
    ("card", "I paid with the card ending {card}, but the charge looks wrong."),
)
_SOURCES_EXTRA = ("email", "email", "email", "calendar", "calendar", "event", "event", "document", "feedback")


# --- the plan of one user -------------------------------------------------------------------


@dataclass
class _Persona:
    user_id: str
    first: str
    last: str
    offset_hours: int
    home_city: str
    hometown: str
    employer: str
    title: str
    pet: tuple[str, str] | None
    diet: str | None
    partner: tuple[str, str] | None
    birthday: tuple[str, int] | None
    learning: str | None
    likes: list[str]
    dislikes: list[str]
    favorites: list[tuple[str, str]]
    friends: list[str]


@dataclass
class _Statement:
    """Something the user says that establishes facts: (slot, value) pairs, with how to say it."""

    family: str
    phase: str
    facts: tuple[tuple[str, str], ...]
    fields: dict[str, str]
    session: int = -1


@dataclass
class _Said:
    """A statement as emitted: when, in which signal."""

    user_id: str
    slot: str
    value: str
    at: datetime
    signal_id: str


def _slot_key(phrase: str) -> str:
    return "_".join(phrase.lower().replace("-", " ").split())


def _article(phrase: str) -> str:
    first = phrase.split(None, 1)[0]
    if len(first) > 1 and first.isupper():
        return "an" if first[0] in "AEFHILMNORSX" else "a"
    return "an" if first[0].lower() in "aeiou" else "a"


def _pick(rng: random.Random, pool: Sequence[str], avoid: tuple[str, ...] = ()) -> str:
    """A random element of ``pool`` that is not in ``avoid`` (if one turns up in a few draws)."""
    choice = rng.choice(pool)
    for _ in range(8):
        if choice not in avoid:
            break
        choice = rng.choice(pool)
    return choice


def _company(rng: random.Random) -> str:
    return f"{rng.choice(_COMPANY_HEADS)} {rng.choice(_COMPANY_TAILS)}"


def _persona(rng: random.Random, index: int) -> _Persona:
    home = rng.choice(_CITIES)
    hobbies = rng.sample(_HOBBIES, 7)
    n_likes = rng.randint(2, 4)
    categories = rng.sample(list(_FAVORITES), rng.randint(1, 2))
    return _Persona(
        user_id=f"u{index + 1:03d}",
        first=rng.choice(_FIRST_NAMES),
        last=rng.choice(_LAST_NAMES),
        offset_hours=rng.choice((0, 0, 1, 2, -5, -8, 5, 9)),
        home_city=home,
        hometown=_pick(rng, _CITIES, (home,)),
        employer=_company(rng),
        title=rng.choice(_JOB_TITLES),
        pet=(rng.choice(_PET_KINDS), rng.choice(_PET_NAMES)) if rng.random() < 0.5 else None,
        diet=rng.choice(_DIETS) if rng.random() < 0.35 else None,
        partner=(rng.choice(_RELATIONS), rng.choice(_PARTNER_NAMES)) if rng.random() < 0.5 else None,
        birthday=(rng.choice(_MONTHS), rng.randint(1, 28)) if rng.random() < 0.4 else None,
        learning=rng.choice(_LANGUAGES) if rng.random() < 0.35 else None,
        likes=hobbies[:n_likes],
        dislikes=hobbies[n_likes : n_likes + rng.randint(1, 2)],
        favorites=[(c, rng.choice(_FAVORITES[c])) for c in categories],
        friends=rng.sample(_FIRST_NAMES, 4),
    )


def _initial_statements(rng: random.Random, p: _Persona) -> list[_Statement]:
    """What the user says about themselves first, most important first."""
    core = [_Statement("home_city", "first", (("home_city", p.home_city),), {"v": p.home_city})]
    if rng.random() < 0.5:
        core.append(
            _Statement(
                "job",
                "first",
                (("employer", p.employer), ("job_title", p.title)),
                {"employer": p.employer, "title": p.title},
            )
        )
    else:
        core.append(_Statement("employer", "first", (("employer", p.employer),), {"v": p.employer}))
        core.append(_Statement("job_title", "first", (("job_title", p.title),), {"v": p.title}))
    core.append(_like_statement(p.likes[0], "like", "first"))
    core.append(_like_statement(p.dislikes[0], "dislike", "first"))
    rest: list[_Statement] = [_Statement("hometown", "first", (("hometown", p.hometown),), {"v": p.hometown})]
    if p.pet:
        kind, name = p.pet
        rest.append(_Statement("pet", "first", ((f"pet.{kind}", name),), {"v": name, "kind": kind}))
    if p.diet:
        rest.append(_Statement("diet", "first", (("diet", p.diet),), {"v": p.diet}))
    if p.partner:
        rel, name = p.partner
        rest.append(_Statement("partner", "first", (("partner", name),), {"v": name, "rel": rel}))
    if p.birthday:
        month, day = p.birthday
        suffix = "th" if 10 <= day % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(day % 10, "th")
        value = f"{month} {day}"
        rest.append(
            _Statement(
                "birthday",
                "first",
                (("birthday", value),),
                {"v": value, "month": month, "day": str(day), "suffix": suffix},
            )
        )
    if p.learning:
        rest.append(_Statement("learning", "first", (("learning", p.learning),), {"v": p.learning}))
    rest.extend(_like_statement(x, "like", "first") for x in p.likes[1:])
    rest.extend(_like_statement(x, "dislike", "first") for x in p.dislikes[1:])
    rest.extend(
        _Statement("favorite", "first", ((f"favorite.{c}", v),), {"v": v, "cat": c}) for c, v in p.favorites
    )
    rng.shuffle(rest)
    return core + rest


def _like_statement(phrase: str, value: str, phase: str) -> _Statement:
    return _Statement(value, phase, ((f"likes.{_slot_key(phrase)}", value),), {"x": phrase})


def _changes(rng: random.Random, p: _Persona, said: list[_Statement]) -> list[_Statement]:
    """Later statements that replace earlier facts: moves, new jobs, changed tastes."""
    stated = {slot for s in said for slot, _ in s.facts}
    out: list[_Statement] = []
    if rng.random() < 0.5:
        city = _pick(rng, _CITIES, (p.home_city, p.hometown))
        out.append(_Statement("home_city", "change", (("home_city", city),), {"v": city, "old": p.home_city}))
        if rng.random() < 0.3:
            again = _pick(rng, _CITIES, (p.home_city, p.hometown, city))
            out.append(_Statement("home_city", "change", (("home_city", again),), {"v": again, "old": city}))
    roll = rng.random()
    if roll < 0.2:
        employer = _company(rng)
        title = _pick(rng, _JOB_TITLES, (p.title,))
        out.append(
            _Statement(
                "job",
                "change",
                (("employer", employer), ("job_title", title)),
                {"employer": employer, "title": title},
            )
        )
    elif roll < 0.45:
        employer = _company(rng)
        out.append(
            _Statement("employer", "change", (("employer", employer),), {"v": employer, "old": p.employer})
        )
    elif roll < 0.6 and p.title in _PROMOTIONS:
        title = _PROMOTIONS[p.title]
        out.append(_Statement("job_title", "change", (("job_title", title),), {"v": title}))
    if rng.random() < 0.45:
        liked = [x for x in p.likes if f"likes.{_slot_key(x)}" in stated]
        if liked:
            out.append(_like_statement(rng.choice(liked), "dislike", "change"))
    if rng.random() < 0.15:
        disliked = [x for x in p.dislikes if f"likes.{_slot_key(x)}" in stated]
        if disliked:
            out.append(_like_statement(rng.choice(disliked), "like", "change"))
    if p.diet == "vegetarian" and "diet" in stated and rng.random() < 0.3:
        out.append(_Statement("diet", "change", (("diet", "vegan"),), {"v": "vegan"}))
    if p.favorites and rng.random() < 0.2:
        category, old = p.favorites[0]
        if f"favorite.{category}" in stated:
            new = _pick(rng, _FAVORITES[category], (old,))
            out.append(
                _Statement(
                    "favorite", "change", ((f"favorite.{category}", new),), {"v": new, "cat": category}
                )
            )
    return out


def _schedule(rng: random.Random, p: _Persona, sessions: int, user_turns: int) -> list[_Statement]:
    """Place the user's statements in sessions: first mentions early, changes strictly later."""
    cap = max(1, math.ceil(user_turns * 2 / 3))
    load = [0] * sessions
    budget = max(1, (sessions * user_turns) // 2)
    early = max(1, math.ceil(sessions * 0.6))
    last_session: dict[str, int] = {}

    def place(statement: _Statement, candidates: Iterable[int], limit: int = budget) -> bool:
        open_ = [k for k in candidates if load[k] < cap]
        if not open_ or sum(load) >= limit:
            return False
        statement.session = rng.choice(open_)
        load[statement.session] += 1
        for slot, _ in statement.facts:
            last_session[slot] = statement.session
        return True

    placed: list[_Statement] = []
    for_first = budget - (min(3, budget // 3) if sessions > 1 else 0)  # room left for later changes
    for statement in _initial_statements(rng, p):
        if place(statement, range(early), for_first) or place(statement, range(sessions), for_first):
            placed.append(statement)
    first_of = dict(last_session)
    for statement in _changes(rng, p, placed) if sessions > 1 else []:
        after = max(last_session.get(slot, -1) for slot, _ in statement.facts)
        if place(statement, range(after + 1, sessions)):
            placed.append(statement)
    changed_at = {slot: s.session for s in placed if s.phase == "change" for slot, _ in s.facts}
    for statement in list(placed):
        slot = statement.facts[0][0]
        if statement.phase != "first" or len(statement.facts) > 1 or rng.random() >= 0.2:
            continue
        if (statement.family, "again") not in _PHRASINGS:
            continue
        until = min(changed_at.get(slot, sessions), sessions)
        again = _Statement(statement.family, "again", statement.facts, dict(statement.fields))
        if place(again, range(first_of[slot] + 1, until)):
            placed.append(again)
    return placed


# --- rendering ------------------------------------------------------------------------------


def _statement_fields(fields: Mapping[str, str]) -> dict[str, str]:
    """A statement's fields plus the article and capitalised forms its templates use."""
    out = dict(fields)
    if "title" in out:
        out["a"] = _article(out["title"])
    if "kind" in out:
        out["a"] = _article(out["kind"])
    if "v" in out:
        out.setdefault("a", _article(out["v"]))
        out["V"] = out["v"][:1].upper() + out["v"][1:]
    if "x" in out:
        out["X"] = out["x"][:1].upper() + out["x"][1:]
    return out


def _render(rng: random.Random, statement: _Statement, *, written: bool = False) -> str:
    """The statement in one of its phrasings; written ones (e-mail, profile) and moves are explicit."""
    supported, unsupported = _PHRASINGS[(statement.family, statement.phase)]
    explicit = written or (statement.family, statement.phase) in _EXPLICIT
    pool = unsupported if not explicit and unsupported and rng.random() < _UNSUPPORTED_SHARE else supported
    return rng.choice(pool).format(**_statement_fields(statement.fields))


_POOLS: dict[str, Sequence[str]] = {
    "name": V.NAMES,
    "last": V.LAST_NAMES,
    "who": V.WHO,
    "who_short": V.WHO_SHORT,
    "team": V.TEAMS,
    "place": V.PLACES,
    "cuisine": V.CUISINES,
    "occasion": V.OCCASIONS,
    "lodging": V.LODGINGS,
    "clothing": V.CLOTHING,
    "weather": V.WEATHER,
    "dish": V.DISHES,
    "ingredient": V.INGREDIENTS,
    "spice": V.SPICES,
    "side": V.SIDES,
    "drink": V.DRINKS,
    "temp": V.TEMPS,
    "product": V.PRODUCTS,
    "gadget": V.GADGETS,
    "problem": V.GADGET_PROBLEMS,
    "appliance": V.APPLIANCES,
    "item": V.ITEMS,
    "store": V.STORES,
    "media": V.MEDIA,
    "genre": V.GENRES,
    "book": V.BOOKS,
    "band": V.BANDS,
    "pet_kind": V.PET_KINDS,
    "pet": V.PET_NAMES,
    "color": V.COLORS,
    "room": V.ROOMS,
    "outing": V.OUTINGS,
    "event": V.EVENTS,
    "hobby": V.HOBBIES,
    "exercise": V.EXERCISES,
    "goal": V.GOALS,
    "task": V.TASKS,
    "work_item": V.WORK_ITEMS,
    "meeting": V.MEETINGS,
    "doc": V.DOCS,
    "recipient": V.RECIPIENTS,
    "issue": V.ISSUES,
    "concept": V.CONCEPTS,
    "topic": V.TOPICS,
    "language": V.LANGUAGES,
    "title": _JOB_TITLES,
    "past": V.PAST,
    "future": V.FUTURE,
    "day": V.DAYS,
    "month": V.MONTHS,
    "season": V.SEASONS,
    "daypart": V.DAYPARTS,
    "time": V.TIMES,
    "line": V.LINES,
    "n_people": V.N_PEOPLE,
    "age": V.AGES,
    "decade": V.DECADES,
    "costume": V.COSTUMES,
    "n_days": V.N_DAYS,
    "n_weeks": V.N_WEEKS,
    "count": V.COUNTS,
    "hours": V.HOURS,
    "minutes": V.MINUTES,
    "price": V.PRICES,
    "percent": V.PERCENTS,
    "km": V.KMS,
    "extra": V.EXTRAS,
    "location": V.LOCATIONS,
    "point": V.NOTE_POINTS,
    "action": V.NOTE_ACTIONS,
    "decision": V.DECISIONS,
    "tweak": V.TWEAKS,
    "thought": V.THOUGHTS,
}
_DIGITS = "0123456789"
_DOLLARS = frozenset(
    _split(
        "Toronto, Montreal, Vancouver, New York, Boston, Chicago, Seattle, Denver, Austin, San Francisco, "
        "Los Angeles, Mexico City, Buenos Aires, Rio de Janeiro, Sao Paulo, Singapore, Kuala Lumpur, Sydney, "
        "Melbourne, Auckland, Cape Town, Nairobi, Lagos, Cairo, Tel Aviv, Dubai, Mumbai, Bangalore, Tokyo, "
        "Osaka, Seoul, Istanbul"
    )
)
_POUNDS = frozenset(_split("London, Manchester, Edinburgh, Glasgow, Bristol, Leeds"))


def _currency(city: str) -> str:
    return "$" if city in _DOLLARS else "£" if city in _POUNDS else "€"


def _yours(phrase: str) -> str:
    """The user's "my ..." as the assistant says it: "your ..."."""
    if phrase.startswith(("my ", "My ")):
        phrase = "your " + phrase[3:]
    return phrase.replace(" my ", " your ")


class _Fields(dict[str, str]):
    """Template fields drawn only when a template uses them (and then once).

    ``{dish2}`` draws a second dish, ``{Dish}`` capitalises, ``{a_dish}`` adds the article,
    ``{your_x}`` turns "my" into "your" and ``{known_x}`` is something the user said earlier.
    Values that are templates themselves are filled from the same fields.
    """

    def __init__(
        self,
        rng: random.Random,
        p: _Persona,
        known: Mapping[str, str] | None = None,
        preset: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(preset or {})
        self.rng = rng
        self.persona = p
        self.known = {} if known is None else known

    def __missing__(self, key: str) -> str:
        rng = self.rng
        pool = _POOLS.get(key)
        if pool is not None:
            value = rng.choice(pool)
            if "{" in value:
                value = value.format_map(self)
        elif key[0].isupper():
            base = self[key[0].lower() + key[1:]]
            value = base[:1].upper() + base[1:]
        elif key.startswith("a_"):
            base = self[key[2:]]
            value = f"{_article(base)} {base}"
        elif key.startswith("your_"):
            value = _yours(self[key[5:]])
        elif key.startswith("known_"):
            value = self.known[key[6:]]
        elif key == "a":
            value = _article(self["title"])
        elif key == "city":
            value = _pick(rng, _CITIES, (self.persona.home_city, self.known.get("city", "")))
        elif key == "friend":
            value = rng.choice(self.persona.friends)
        elif key == "company":
            value = _company(rng)
        elif key == "venue":
            value = f"{rng.choice(V.VENUE_HEADS)} {rng.choice(V.VENUE_TAILS)}"
        elif key == "cur":
            value = _currency(self.persona.home_city)
        elif key == "first":
            value = self.persona.first
        else:  # "dish2": another dish
            base = key.rstrip(_DIGITS)
            taken = tuple(v for k, v in self.items() if k.rstrip(_DIGITS) == base)
            value = _pick(rng, _CITIES if base == "city" else _POOLS[base], taken)
            if "{" in value:
                value = value.format_map(self)
        self[key] = value
        return value

    def fill(self, template: str) -> str:
        return template.format_map(self)


@dataclass
class _Turn:
    """What a user message was about, for the reply: its kind, its fields, what it refers to."""

    kind: str
    fields: _Fields
    subject: str = ""
    statement: _Statement | None = None
    tail: _Turn | None = None


_USER_KINDS = tuple(V.USER_WEIGHTS)
_USER_CUM = tuple(itertools.accumulate(V.USER_WEIGHTS.values()))
_TAIL_KINDS = V.TAIL_KINDS
_TAIL_CUM = tuple(itertools.accumulate(V.USER_WEIGHTS[k] for k in _TAIL_KINDS))
_GROUPS: dict[str, str] = {
    **dict.fromkeys(V.REQUEST_KINDS, "request"),
    "good": "good",
    "bad": "bad",
    "distractor": "distractor",
    "hypothetical": "hypothetical",
    "wonder": "hypothetical",
    "shorter": "react",
    "addition": "react",
    "tone": "react",
    "thanks": "ack",
    "ack": "ack",
}
_ACK_SHARE = 0.015  # short acknowledgements ("thanks!") among free-standing user turns
_LEAD_IN_SHARE = 0.2  # fact statements introduced by "Oh by the way," and such
_TAIL_SHARE = 0.65  # fact statements followed by a question or an update in the same message
_OPENER_SHARE = 0.7
_CLOSER_SHARE = 0.45
_PERSONAL_SHARE = 0.3


def _user_turn(
    rng: random.Random,
    p: _Persona,
    known: Mapping[str, str],
    kinds: Sequence[str],
    cum: Sequence[float],
    request_subject: str | None,
) -> tuple[str, _Turn]:
    """A user message of a kind drawn by weight; follow-ups only when a request came before."""
    kind = rng.choices(kinds, cum_weights=cum)[0]
    while kind in V.FOLLOW_UP_KINDS and request_subject is None:
        kind = rng.choices(kinds, cum_weights=cum)[0]
    template, subject = rng.choice(V.USER[kind])
    preset = {"subject": request_subject} if request_subject is not None else None
    fields = _Fields(rng, p, known, preset)
    text = fields.fill(template)
    fields["subject"] = fields.fill(subject)
    return text, _Turn(kind, fields, fields["subject"])


def _ack_turn(rng: random.Random, p: _Persona, known: Mapping[str, str], subject: str | None) -> _Turn:
    return _Turn("ack", _Fields(rng, p, known, {"subject": subject or rng.choice(V.ACK_SUBJECTS)}))


def _with_lead_in(rng: random.Random, text: str) -> str:
    if text.startswith(("I ", "I'")):
        return f"{rng.choice(V.LEAD_INS)} {text}"
    if text.startswith("My "):
        return f"{rng.choice(V.LEAD_INS)} m{text[1:]}"
    return text


def _reply(rng: random.Random, turn: _Turn, known: Mapping[str, str]) -> str:
    """The assistant's answer to ``turn``, composed from opener, body, personal touch and closer."""
    parts: list[str] = []
    if turn.statement is not None:
        statement = turn.statement
        change = statement.phase == "change"
        parts.append(rng.choice(V.OPENERS["change" if change else "fact"]))
        if turn.tail is not None:
            turn = turn.tail
        else:
            bodies = (
                V.FACT_BODIES.get(f"{statement.family}:{statement.phase}") or V.FACT_BODIES[statement.family]
            )
            parts.append(turn.fields.fill(rng.choice(bodies)))
            if rng.random() < _CLOSER_SHARE:
                parts.append(turn.fields.fill(rng.choice(V.CLOSERS["fact"])))
            return " ".join(parts)
    elif rng.random() < _OPENER_SHARE:
        parts.append(rng.choice(V.OPENERS[_GROUPS[turn.kind]]))
    group = _GROUPS[turn.kind]
    fields = turn.fields
    parts.append(fields.fill(rng.choice(V.BODIES[turn.kind])))
    if group == "request" and known and rng.random() < _PERSONAL_SHARE:
        options = [key for key in V.PERSONAL if key in known]
        if options:
            parts.append(fields.fill(rng.choice(V.PERSONAL[rng.choice(options)])))
    if rng.random() < _CLOSER_SHARE:
        parts.append(fields.fill(rng.choice(V.CLOSERS[group])))
    return " ".join(parts)


def _learn(known: dict[str, str], statement: _Statement) -> None:
    """Remember what the user said about themselves, for the assistant's personal touches."""
    fields = statement.fields
    family = statement.family
    if family == "home_city":
        known["city"] = fields["v"]
    elif family == "job_title":
        known["job"] = fields["v"]
    elif family == "job":
        known["job"] = fields["title"]
    elif family in ("pet", "diet"):
        known[family] = fields["v"]
    elif family == "like":
        known["like"] = fields["x"]
    elif family == "dislike" and known.get("like") == fields["x"]:
        del known["like"]


def _iso(at: datetime, offset_hours: int, rng: random.Random) -> str:
    if offset_hours == 0 or rng.random() < 0.6:
        return at.astimezone(UTC).isoformat().replace("+00:00", "Z")
    return at.astimezone(timezone(timedelta(hours=offset_hours))).isoformat()


class _Builder:
    """Turns plans into rows; remembers which rows carry facts."""

    def __init__(self, rng: random.Random, extra_sources: bool) -> None:
        self.rng = rng
        self.extra_sources = extra_sources
        self.rows: list[tuple[float, dict[str, object]]] = []
        self.said: list[_Said] = []
        self.evidence: set[str] = set()
        self._counters: dict[str, int] = {}

    def _id(self, user_id: str) -> str:
        n = self._counters.get(user_id, 0) + 1
        self._counters[user_id] = n
        return f"s-{user_id}-{n}"

    def row(
        self,
        p: _Persona,
        at: datetime,
        source: str,
        text: str,
        *,
        role: str | None = None,
        session_id: str | None = None,
        metadata: dict[str, object] | None = None,
        facts: tuple[tuple[str, str], ...] = (),
    ) -> None:
        row: dict[str, object] = {}
        signal_id = self._id(p.user_id)
        if facts or self.rng.random() >= 0.1:
            row["signal_id"] = signal_id
        row["user_id"] = p.user_id
        row["source"] = source
        if role is not None:
            row["role"] = role
        if session_id is not None:
            row["session_id"] = session_id
        row["text"] = text
        row["occurred_at"] = _iso(at, p.offset_hours, self.rng)
        if metadata:
            row["metadata"] = metadata
        self.rows.append((at.timestamp(), row))
        for slot, value in facts:
            self.said.append(_Said(p.user_id, slot, value, at, signal_id))
        if facts:
            self.evidence.add(signal_id)

    def user(self, p: _Persona, start: datetime, sessions: int, turns: int) -> None:
        rng = self.rng
        user_turns = (turns + 1) // 2
        plan = _schedule(rng, p, sessions, user_turns) if user_turns else []
        by_session: dict[int, list[_Statement]] = {}
        for statement in plan:
            by_session.setdefault(statement.session, []).append(statement)
        at = start + timedelta(days=rng.uniform(3, 14))
        known: dict[str, str] = {}
        for k in range(sessions):
            if k:
                at += timedelta(days=rng.uniform(4, 24))
            session_start = at.replace(
                hour=rng.randint(7, 22), minute=rng.randint(0, 59), second=0, microsecond=0
            )
            session_id = f"{p.user_id}-chat-{k + 1:02d}"
            statements = by_session.get(k, [])
            slots: list[_Statement | None] = [*statements, *([None] * (user_turns - len(statements)))]
            rng.shuffle(slots)
            t = session_start
            request_subject: str | None = None  # what the assistant last helped with
            subject: str | None = None  # what the session last talked about
            turn: _Turn | None = None
            for i in range(turns):
                t += timedelta(seconds=rng.randint(20, 240))
                if i % 2:
                    text = _reply(rng, turn, known) if turn else rng.choice(V.OPENERS["request"])
                    self.row(p, t, "chat", text, role="assistant", session_id=session_id)
                    continue
                said = slots[i // 2]
                if said is not None and self._written(p, said, session_start):
                    said = None
                if said is None:
                    if rng.random() < _ACK_SHARE:
                        text = rng.choice(V.ACKS)
                        turn = _ack_turn(rng, p, known, subject)
                    else:
                        text, turn = _user_turn(rng, p, known, _USER_KINDS, _USER_CUM, request_subject)
                    self.row(p, t, "chat", text, role="user", session_id=session_id)
                else:
                    text = _render(rng, said)
                    if rng.random() < _LEAD_IN_SHARE:
                        text = _with_lead_in(rng, text)
                    fields = _Fields(rng, p, known, _statement_fields(said.fields))
                    turn = _Turn(said.family, fields, statement=said)
                    if text[-1] in ".!?" and rng.random() < _TAIL_SHARE:
                        tail_text, turn.tail = _user_turn(rng, p, known, _TAIL_KINDS, _TAIL_CUM, None)
                        text = f"{text} {tail_text}"
                    self.row(p, t, "chat", text, role="user", session_id=session_id, facts=said.facts)
                    _learn(known, said)
                last = turn.tail or turn
                if last.subject:
                    subject = last.subject
                    if last.kind in V.REQUEST_KINDS:
                        request_subject = last.subject
            if self.extra_sources and rng.random() < 0.7:
                self._extra(p, session_start + timedelta(hours=rng.uniform(-48, 72)), k)

    def _written(self, p: _Persona, statement: _Statement, session_start: datetime) -> bool:
        """Maybe state this by e-mail or in a document before the session instead; True if so."""
        rng = self.rng
        if (
            not self.extra_sources
            or statement.family not in _WRITTEN_FAMILIES
            or rng.random() >= _WRITTEN_SHARE
        ):
            return False
        at = session_start - timedelta(hours=rng.uniform(1, 48), seconds=rng.randint(0, 3599))
        sentence = _render(rng, statement, written=True)
        fields = _Fields(rng, p)
        if rng.random() < 0.6:
            friend = fields["friend"]
            greeting = fields.fill(rng.choice(V.EMAIL_GREETINGS))
            closing = fields.fill(rng.choice(V.NEWS_CLOSINGS))
            text = f"{greeting}\n\n{sentence} {closing}\n\n{rng.choice(V.EMAIL_SIGN_OFFS)}\n{p.first}"
            self.row(
                p,
                at,
                "email",
                text,
                session_id=f"{p.user_id}-mail-{rng.randint(1, 99)}",
                metadata={"subject": rng.choice(V.NEWS_SUBJECTS), "to": [f"{friend.lower()}@example.com"]},
                facts=statement.facts,
            )
        else:
            text = f"About me\n\n{sentence}\n{rng.choice(V.PROFILE_LINES)}"
            self.row(
                p,
                at,
                "document",
                text,
                session_id=f"{p.user_id}-doc-profile",
                metadata={"title": "About me", "format": "markdown"},
                facts=statement.facts,
            )
        return True

    def _extra(self, p: _Persona, at: datetime, k: int) -> None:
        rng = self.rng
        at = at.replace(second=rng.randint(0, 59), microsecond=0)
        source = rng.choice(_SOURCES_EXTRA)
        fields = _Fields(rng, p)
        if source == "email":
            friend = fields["friend"]
            main, subject = rng.choice(V.EMAIL_MAINS)
            body = [fields.fill(main)]
            if rng.random() < 0.7:
                body.insert(0, fields.fill(rng.choice(V.EMAIL_OPENINGS)))
            if rng.random() < 0.6:
                body.append(fields.fill(rng.choice(V.EMAIL_CLOSINGS)))
            greeting = fields.fill(rng.choice(V.EMAIL_GREETINGS))
            text = f"{greeting}\n\n{' '.join(body)}\n\n{rng.choice(V.EMAIL_SIGN_OFFS)}\n{p.first}"
            self.row(
                p,
                at,
                "email",
                text,
                session_id=f"{p.user_id}-mail-{k + 1}",
                metadata={"subject": fields.fill(subject), "to": [f"{friend.lower()}@example.com"]},
            )
        elif source == "calendar":
            title = fields.fill(rng.choice(V.CALENDAR))
            begins = at.replace(
                hour=min(max(at.hour, 7), 20), minute=rng.choice((0, 0, 15, 30, 45)), second=0
            )
            ends = begins + timedelta(minutes=rng.choice((30, 45, 60, 60, 90, 120)))
            text = f"{title} at {begins:%H:%M}"
            if rng.random() < 0.4:
                text += f" ({fields['location']})"
            self.row(
                p,
                at,
                "calendar",
                text,
                session_id=f"{p.user_id}-cal",
                metadata={"title": title, "start": _iso(begins, 0, rng), "end": _iso(ends, 0, rng)},
            )
        elif source == "event":
            kind, template = rng.choice(V.EVENT_ROWS)
            text = fields.fill(template)
            url = f"https://example.com/{kind.replace('_', '-')}/{k}-{rng.randint(100, 99999)}"
            self.row(p, at, "event", text, metadata={"type": kind, "url": url})
        elif source == "document":
            template, title = rng.choice(V.DOCUMENTS)
            text = fields.fill(template)
            self.row(
                p,
                at,
                "document",
                text,
                session_id=f"{p.user_id}-doc-{k + 1}",
                metadata={"title": fields.fill(title), "format": "markdown"},
            )
        else:
            rating, template = rng.choice(V.FEEDBACK)
            self.row(p, at, "feedback", fields.fill(template), metadata={"rating": rating})


# --- ground truth ---------------------------------------------------------------------------


@dataclass
class _Interval:
    slot: str
    value: str
    start: datetime
    end: datetime | None
    signal_ids: list[str]


def _intervals(said: list[_Said]) -> dict[tuple[str, str], list[_Interval]]:
    """Per (user, slot): the values over time; a repeated value extends its interval."""
    by_slot: dict[tuple[str, str], list[_Said]] = {}
    for s in said:
        by_slot.setdefault((s.user_id, s.slot), []).append(s)
    out: dict[tuple[str, str], list[_Interval]] = {}
    for key, statements in by_slot.items():
        statements.sort(key=lambda s: s.at)
        runs: list[_Interval] = []
        for s in statements:
            if runs and runs[-1].value.casefold() == s.value.casefold():
                runs[-1].signal_ids.append(s.signal_id)
                continue
            if runs:
                runs[-1].end = s.at
            runs.append(_Interval(s.slot, s.value, s.at, None, [s.signal_id]))
        out[key] = runs
    return out


def _family(slot: str) -> str:
    return slot.split(".", 1)[0]


def _question_fields(p: _Persona, slot: str, when: datetime | None) -> dict[str, str]:
    fields = {"name": p.first, "rel": p.partner[0] if p.partner else "partner"}
    head, _, tail = slot.partition(".")
    if head == "pet":
        fields["kind"] = tail
    elif head == "likes":
        phrases = {_slot_key(x): x for x in p.likes + p.dislikes}
        fields["x"] = phrases.get(tail, tail.replace("_", " "))
    elif head == "favorite":
        fields["cat"] = tail
    if when is not None:
        fields["date"] = f"{when:%B} {when.day}, {when.year}"
    return fields


def _questions(
    rng: random.Random, personas: dict[str, _Persona], intervals: dict[tuple[str, str], list[_Interval]]
) -> list[Question]:
    out: list[Question] = []
    for (user_id, slot), runs in intervals.items():
        p = personas[user_id]
        family = _family(slot)
        current = runs[-1]
        template = rng.choice(_QUESTIONS[family])
        out.append(
            Question(
                user_id,
                template.format(**_question_fields(p, slot, None)),
                current.value,
                tuple(current.signal_ids),
                None,
            )
        )
        for run in runs[:-1]:
            if run.end is None or family not in _PAST_QUESTIONS:
                continue
            as_of = run.start + (run.end - run.start) / 2
            as_of = as_of.replace(microsecond=0)
            template = rng.choice(_PAST_QUESTIONS[family])
            out.append(
                Question(
                    user_id,
                    template.format(**_question_fields(p, slot, as_of)),
                    run.value,
                    tuple(run.signal_ids),
                    as_of,
                )
            )
    return out


# --- PII and malformed rows -----------------------------------------------------------------


def _card(rng: random.Random) -> str:
    digits = [4] + [rng.randint(0, 9) for _ in range(14)]
    total = 0
    for i, d in enumerate(reversed(digits)):
        d = d * 2 if i % 2 == 0 else d
        total += d - 9 if d > 9 else d
    digits.append((10 - total % 10) % 10)
    text = "".join(map(str, digits))
    sep = rng.choice((" ", "-", ""))
    return sep.join(text[i : i + 4] for i in range(0, 16, 4))


def _pii_sentence(rng: random.Random, p: _Persona) -> str:
    _, template = rng.choice(_PII_CHAT)
    return template.format(
        card=_card(rng),
        email=f"{p.first.lower()}.{p.last.lower()}{rng.randint(1, 99)}@example.com",
        phone=rng.choice(
            ("+1 415-555-{:04d}", "+49 30 {:07d}", "(555) 123-{:04d}", "+44 20 7946 {:04d}")
        ).format(rng.randint(0, 9999)),
    )


def _add_pii(
    rng: random.Random,
    rows: list[dict[str, object]],
    evidence: set[str],
    personas: dict[str, _Persona],
    rate: float,
) -> int:
    eligible = [
        r
        for r in rows
        if r.get("signal_id") not in evidence
        and (r.get("role") == "user" or r["source"] in ("email", "feedback"))
    ]
    count = min(len(eligible), round(rate * len(rows)))
    for row in rng.sample(eligible, count):
        sentence = _pii_sentence(rng, personas[str(row["user_id"])])
        row["text"] = (
            f"{row['text']}\n\n{sentence}" if row["source"] == "email" else f"{row['text']} {sentence}"
        )
    return count


_OVERSIZE = "This is a very long pasted log line that nobody should store verbatim. "


def _malformed(rng: random.Random, kind: str, template: dict[str, object], n: int) -> dict[str, object]:
    row = dict(template)
    row["signal_id"] = f"s-bad-{n}"
    if kind == "missing_user_id":
        del row["user_id"]
    elif kind == "empty_text":
        row["text"] = ""
    elif kind == "blank_text":
        row["text"] = "   \n\t  "
    elif kind == "oversize_text":
        row["text"] = (_OVERSIZE * (20_000 // len(_OVERSIZE) + 2))[: 20_001 + rng.randint(0, 4000)]
    elif kind == "unparseable_time":
        row["occurred_at"] = "yesterday-ish"
    elif kind == "impossible_time":
        row["occurred_at"] = "2024-13-45T25:61:00Z"
    elif kind == "unknown_source":
        row["source"] = "fax"
    elif kind == "user_id_not_string":
        row["user_id"] = rng.randint(1, 999)
    elif kind == "text_not_string":
        row["text"] = [str(row["text"])]
    elif kind == "metadata_not_object":
        row["metadata"] = "subject: hello"
    return row


MALFORMED_KINDS = (
    "missing_user_id",
    "empty_text",
    "blank_text",
    "oversize_text",
    "unparseable_time",
    "impossible_time",
    "unknown_source",
    "user_id_not_string",
    "text_not_string",
    "metadata_not_object",
)


def _inject_malformed(rng: random.Random, rows: list[dict[str, object]], rate: float) -> dict[str, int]:
    if rate <= 0 or not rows:
        return {}
    count = round(rate * len(rows) / (1 - rate)) if rate < 1 else len(rows)
    if len(rows) >= 200:
        count = max(count, len(MALFORMED_KINDS))
    if count < len(MALFORMED_KINDS):
        kinds = rng.sample(MALFORMED_KINDS, count)
    else:
        kinds = [
            *MALFORMED_KINDS,
            *(rng.choice(MALFORMED_KINDS) for _ in range(count - len(MALFORMED_KINDS))),
        ]
    bad = [_malformed(rng, kind, rng.choice(rows), n) for n, kind in enumerate(kinds)]
    positions = sorted(rng.randrange(len(rows) + 1) for _ in bad)
    merged: list[dict[str, object]] = []
    previous = 0
    for position, row in zip(positions, bad, strict=True):
        merged.extend(rows[previous:position])
        merged.append(row)
        previous = position
    merged.extend(rows[previous:])
    rows[:] = merged
    counts: dict[str, int] = {}
    for kind in kinds:
        counts[kind] = counts.get(kind, 0) + 1
    return counts


# --- entry point ----------------------------------------------------------------------------


def generate(
    *,
    users: int = 5,
    sessions_per_user: int = 4,
    turns_per_session: int = 8,
    seed: int = 0,
    start: datetime = datetime(2024, 1, 1, tzinfo=UTC),
    malformed_rate: float = 0.02,
    pii_rate: float = 0.05,
    extra_sources: bool = True,
) -> SyntheticData:
    """Signals for ``users`` users over ``sessions_per_user`` chat sessions, with their ground truth.

    ``turns_per_session`` counts chat messages (user and assistant alternate); e-mails, documents,
    calendar entries, events and feedback come on top when ``extra_sources``.
    """
    if users < 0 or sessions_per_user < 0 or turns_per_session < 0:
        raise ValueError("users, sessions_per_user and turns_per_session must not be negative")
    if not 0 <= malformed_rate < 1 or not 0 <= pii_rate <= 1:
        raise ValueError("malformed_rate must be in [0, 1) and pii_rate in [0, 1]")
    if start.tzinfo is None:
        start = start.replace(tzinfo=UTC)
    rng = random.Random(seed)
    builder = _Builder(rng, extra_sources)
    personas: dict[str, _Persona] = {}
    for i in range(users):
        persona = _persona(rng, i)
        personas[persona.user_id] = persona
        builder.user(persona, start, sessions_per_user, turns_per_session)
    builder.rows.sort(key=lambda pair: pair[0])
    rows = [row for _, row in builder.rows]
    pii_count = _add_pii(rng, rows, builder.evidence, personas, pii_rate)
    intervals = _intervals(builder.said)
    facts = [
        FactTruth(user_id, run.slot, run.value, run.start, run.end, run.signal_ids[0])
        for (user_id, _), runs in intervals.items()
        for run in runs
    ]
    questions = _questions(rng, personas, intervals)
    kinds = _inject_malformed(rng, rows, malformed_rate)
    return SyntheticData(rows, facts, questions, sum(kinds.values()), pii_count, kinds)
