"""Fact and preference extraction from what a user says about themselves.

An extractor turns one signal's text into ``Extraction`` records. ``slot`` names what a
statement is about, from a small public vocabulary (``home_city``, ``employer``,
``likes.sushi`` ...): a newer extraction on the same slot supersedes an older one, so a
dislike uses the same slot as the like it replaces. ``value`` is the normalized answer and
``text`` a short third-person statement for the memory ("Lives in Berlin").

The default ``RuleExtractor`` is deterministic and regex based. It runs on every signal, so
its patterns are compiled once and each one is tried only when one of its trigger words occurs.
It keeps only first-person statements by the user: assistant and system turns, questions,
hypotheticals, negated or reported clauses and statements about other people yield nothing.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Literal, Protocol

from cluster import MemoryKind, Registry

__all__ = ["EXTRACTORS", "Extraction", "Extractor", "RuleExtractor", "get_extractor"]


@dataclass(frozen=True)
class Extraction:
    """One fact or preference stated in a signal."""

    kind: MemoryKind  # one of SLOTTED_KINDS
    slot: str
    value: str
    text: str
    confidence: float


class Extractor(Protocol):
    def extract(self, text: str, *, role: str | None, source: str) -> list[Extraction]:
        """Facts and preferences the user states about themselves in ``text``."""
        ...


EXTRACTORS: Registry[Extractor] = Registry("extractor")


def get_extractor(name: str) -> Extractor:
    """The extractor registered as ``name``; unknown names fail with the valid ones."""
    return EXTRACTORS.create(name)


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# --- shared pattern pieces --------------------------------------------------------------

_ADV = (
    r"(?:(?:just|recently|finally|actually|now|also|still|really|truly|totally|absolutely|honestly|"
    r"currently|already|officially|definitely|genuinely|seriously|always|do|kinda|kind\s+of|sort\s+of)\s+)*"
)
_I = r"\bi\s+" + _ADV
_IM = r"\bi(?:['’]?m|\s+am)\s+" + _ADV
_IVE = r"\bi(?:['’]?ve|\s+have)\s+" + _ADV
_NOT = r"(?:don['’]?t|do\s+not|no\s+longer|never)\s+" + _ADV
_HAVE_A = (
    r"(?:" + _IVE + r"(?:got|adopted|rescued)|" + _I + r"(?:have|own|adopted|got|rescued))\s+(?:a|an)\s+"
)
_PET_KINDS = (
    r"dog|puppy|pup|cat|kitten|kitty|rabbit|bunny|hamster|parrot|budgie|bird|goldfish|fish|turtle|"
    r"tortoise|snake|horse|pony|guinea\s+pig|lizard|gecko|ferret|hedgehog|chinchilla|iguana"
)
_PET_WORDS = _words(_PET_KINDS.replace("|", " ").replace(r"\s+", " "))
_PET_ADJ = r"(?:(?:new|little|sweet|old|young|rescue|cute|lovely|tiny|big|small|fat|lazy|crazy|adorable)\s+)*"
_MONTHS = (
    r"january|february|march|april|may|june|july|august|september|october|november|december|"
    r"jan|feb|mar|apr|jun|jul|aug|sept|sep|oct|nov|dec"
)

# The rest of the sentence after a lead, captured without consuming it, so that one
# sentence can hold several statements of the same rule.
_REST = r"\s*(?=(?P<v>.*))"

_HINT = re.compile(r"(?i)\b(?:i|i['’]?m|i['’]?ve|we|my|our)\b")
_SENTENCE_END = re.compile(r"(?<=[.!?…])\s+|\s*\n\s*")
_ABBREVIATIONS = frozenset({"st", "mt", "ft", "mr", "mrs", "ms", "dr", "jr", "sr", "vs", "e.g", "i.e"})
_CLAUSE_BREAK = re.compile(r"[,;:()]|\s[-–—]\s|\s(?:but|and|so|then|because|although|though|plus)\s", re.I)
_QUESTION_CUT = re.compile(r"[,;:]|\s[-–—]\s")
_INVERSION = re.compile(
    r"^\W*(?:(?:do|does|did|am|is|are|was|were|can|could|would|should|will|shall|have|has|had)\s+"
    r"(?:i|you|we|he|she|they)\b|(?:what|where|when|who|which|why|how)\s+(?:do|does|did|am|is|are|was|were|"
    r"can|could|should|would|will)\b)",
    re.I,
)
# Words that make the clause before a match unreal, negated or someone else's view.
_UNREAL = re.compile(
    r"\b(?:if|unless|whether|might|maybe|perhaps|would|could|should|suppose|supposing|imagine|imagining|"
    r"pretend|pretending|wish|hope|hoping|dream|dreamt|dreamed|dreaming|wonder|wondering|think|thinks|"
    r"thought|said|says|say|told|tell|tells|believe|believes|assume|assumes|assumed|claim|claims|claimed|"
    r"doubt|not|never)\b|n['’]t\b|['’]d\b",
    re.I,
)

# --- value parsers -------------------------------------------------------------------------

_TRAIL = ".,;:!?)]}\"'’”"
_LEAD = "\"'“‘(["
_NAME_STOP = _words(
    """
    I I'm I’m I've I’ve I'd I’d I'll I’ll Last Next This Since Because Yesterday Today Tomorrow Now But
    And So With In For At On From To Until After Before During Though Btw BTW
    """
)
_NOT_FIRST = _words(
    """
    January February March April May June July August September October November December Monday Tuesday
    Wednesday Thursday Friday Saturday Sunday Christmas Easter Summer Winter Spring Autumn Fall
    """
)
_CONNECTORS = _words("of de la del da du am upon & van von der den le los las el y")
_KEEP_DOT = frozenset({"St", "Mt", "Ft"})


def _capitalized(word: str) -> bool:
    return word[:1].isupper() or (word[:1].isdigit() and any(c.isalpha() for c in word))


def _proper_name(span: str, *, max_words: int = 5, allow_the: bool = True) -> str | None:
    """The leading proper name of ``span`` ("Acme Corp", "Rio de Janeiro"), or None."""
    words = span.split(None, max_words + 3)
    if allow_the and len(words) > 1 and words[0] == "the":
        words = words[1:]
    out: list[str] = []
    for i, raw in enumerate(words):
        if len(out) >= max_words:
            break
        word = (raw.lstrip(_LEAD) if not out else raw).rstrip(_TRAIL)
        ended = word != raw.lstrip(_LEAD if not out else "")
        if not word:
            break
        if word in _KEEP_DOT and raw.startswith(word + "."):
            word, ended = word + ".", False
        if _capitalized(word) and word not in _NAME_STOP and (out or word not in _NOT_FIRST):
            out.append(word)
        elif out and word in _CONNECTORS and not ended and i + 1 < len(words):
            following = words[i + 1].rstrip(_TRAIL)
            if not (following and _capitalized(following) and following not in _NAME_STOP):
                break
            out.append(word)
        else:
            break
        if ended:
            break
    return " ".join(out) or None


_PHRASE_CUT = re.compile(
    r"[,;:.!?()\[\]\"“”]|\s[-–—]\s|\s(?:but|because|and\s+then|so|when|since|though|although|which|who|that|"
    r"while|whereas|if|unless|cause|cuz|except|than|and\s+(?:i|i['’]m|we|my|it|he|she|they|you|now))(?=\s|$)",
    re.I,
)
_FILLER_TAIL = re.compile(
    r"(?:\s+(?:anymore|any\s+more|a\s+lot|so\s+much|very\s+much|too|as\s+well|these\s+days|nowadays|lately|"
    r"now|at\s+all|more|the\s+most|honestly|really|much|though|either|recently|again|in\s+general))+\s*$",
    re.I,
)
_ARTICLES = frozenset({"a", "an", "the"})
_TAIL_WORDS = _words(
    """
    in at on with for of to and or the a an my your from by about very really so like
    """
)
_REJECT_FIRST = _words(
    """
    it its it's this that these those you him her them us me myself my your his our their how what when
    where why who which whatever if whether there here so too one someone something anything everything
    nothing everyone everybody anyone somebody to not no being having doing getting and or but as for is
    was be i i'm we same both
    """
)
_CONTEXT_NOUNS = _words(
    """
    one ones option options idea ideas suggestion suggestions answer answers response reply plan
    approach version list question point way
    """
)
_BLOCKED_INFINITIVES = _words(
    """
    say admit ask be know think see hear help tell point mention believe imagine keep bother interrupt
    go get have make do add try
    """
)
_KEY_CLEAN = re.compile(r"[^\w-]+")


def _phrase(span: str, *, infinitive: bool = True) -> tuple[str, str] | None:
    """The object of a like or dislike: (text as written, slot key), or None."""
    clause = _PHRASE_CUT.split(span, maxsplit=1)[0]
    clause = _FILLER_TAIL.sub("", clause)
    words = clause.split()
    if words and words[0].lower() == "both":
        words = words[1:]
    lead = ""
    if words and words[0].lower() == "to":
        if not infinitive or len(words) < 2 or words[1].lower() in _BLOCKED_INFINITIVES:
            return None
        lead, words = "to ", words[1:]
    if not words or words[0].lower() in _REJECT_FIRST:
        return None
    kept: list[str] = []
    content = 0
    for word in words:
        lowered = word.lower()
        if lowered not in _ARTICLES:
            if content == 4:
                break
            content += 1
        kept.append(word)
    while kept and kept[-1].lower() in _TAIL_WORDS:
        kept.pop()
    lowered_words = [w.lower() for w in kept]
    if not kept or any(w in _CONTEXT_NOUNS for w in lowered_words):
        return None
    key = _KEY_CLEAN.sub("", "_".join(w for w in lowered_words if w not in _ARTICLES).replace("-", "_"))
    key = key.strip("_")
    if not key:
        return None
    return lead + " ".join(kept), key


_VALUE_LEAD = re.compile(r"^(?:(?:now|still|probably|definitely|easily|currently|honestly)\s+)+", re.I)


def _value(span: str, *, max_words: int = 6) -> str | None:
    """A free value (a favourite's answer): the clause, trimmed of fillers and punctuation."""
    clause = _VALUE_LEAD.sub("", _PHRASE_CUT.split(span, maxsplit=1)[0].strip())
    clause = _FILLER_TAIL.sub("", clause)
    words = clause.split()
    if not words or len(words) > max_words or words[0].lower() in _REJECT_FIRST:
        return None
    return " ".join(words).strip(_TRAIL + _LEAD) or None


_OCCUPATIONS = _words(
    """engineer developer programmer designer architect teacher professor lecturer nurse doctor physician
    surgeon dentist pharmacist therapist psychologist psychiatrist counselor counsellor manager director
    consultant analyst scientist researcher accountant lawyer attorney paralegal chef baker barista writer
    journalist editor author photographer artist musician student librarian electrician plumber carpenter
    mechanic pilot firefighter officer veterinarian vet translator interpreter marketer recruiter salesperson
    entrepreneur founder cofounder co-founder ceo cto cfo coo intern administrator technician paramedic
    economist statistician mathematician physicist chemist biologist geologist illustrator animator
    copywriter producer actor actress dancer coach trainer tutor banker trader cashier waiter waitress
    bartender farmer gardener driver secretary assistant specialist coordinator strategist planner auditor
    investor realtor agent practitioner midwife optometrist radiologist hygienist caregiver receptionist
    clerk contractor welder machinist surveyor sommelier florist tailor hairdresser stylist beautician
    lifeguard instructor principal postdoc supervisor foreman executive freelancer composer singer
    drummer guitarist pianist violinist worker"""
)
_NOT_A_JOB = _words(
    """
    terrible bad good great decent huge big amateur aspiring wannabe hobby former ex retired failed
    weekend hobbyist passionate awful lousy better bit little total complete real natural born
    frustrated would-be worse worst best proud lucky happy tired busy fan hard
    """
)
_TITLE_FUNCTION = _words(
    """
    of the a an at for in with and or to my your his her our their on by from about who that but so very
    really lot kind sort type person bit
    """
)


def _title_word(word: str) -> str:
    return word if word.isupper() and len(word) > 1 else word.lower()


def _job_title(span: str) -> tuple[str, str] | None:
    """The leading occupation of ``span`` ("senior software engineer") and the text after it.

    The title runs up to the last occupation word among its first four words ("principal data
    scientist"); a function word, an evaluative word ("big", "former") or punctuation ends it.
    """
    words = span.split(None, 8)
    head = -1
    for i, raw in enumerate(words[:4]):
        word = raw.rstrip(_TRAIL)
        lowered = word.lower()
        if lowered in _OCCUPATIONS:
            head = i
        elif lowered in _TITLE_FUNCTION or lowered in _NOT_A_JOB or not lowered.replace("-", "").isalpha():
            break
        if word != raw:
            break
    if head < 0:
        return None
    title = [_title_word(w.rstrip(_TRAIL)) for w in words[: head + 1]]
    end = head
    if words[end] == words[end].rstrip(_TRAIL) and end + 2 < len(words) and words[end + 1] == "of":
        following = words[end + 2].rstrip(_TRAIL)
        if following and _capitalized(following):
            title.extend(("of", following.lower()))
            end += 2
    rest = " ".join(words[end + 1 :]) if words[end] == words[end].rstrip(_TRAIL) else ""
    return " ".join(title), rest


_DATE = re.compile(
    rf"^(?:the\s+)?(?:(?P<m1>{_MONTHS})\.?\s+(?P<d1>\d{{1,2}})(?:st|nd|rd|th)?"
    rf"|(?P<d2>\d{{1,2}})(?:st|nd|rd|th)?\s+(?:of\s+)?(?P<m2>{_MONTHS})\.?)(?![\w])",
    re.I,
)
_MONTH_NAMES = {
    m[:3]: m.capitalize()
    for m in _words("january february march april may june july august september october november december")
}


def _month_day(span: str) -> str | None:
    """A day of the year ("May 3") from "May 3rd", "3 May", "the 3rd of May"."""
    m = _DATE.match(span)
    if m is None:
        return None
    month = _MONTH_NAMES[(m.group("m1") or m.group("m2"))[:3].lower()]
    day = int(m.group("d1") or m.group("d2"))
    return f"{month} {day}" if 1 <= day <= 31 else None


def _article(phrase: str) -> str:
    """The indefinite article before ``phrase``; acronyms go by their first letter's sound ("an HR")."""
    first = phrase.split(None, 1)[0] if phrase.strip() else ""
    if len(first) > 1 and first.isupper():
        return "an" if first[0] in "AEFHILMNORSX" else "a"
    return "an" if first[:1].lower() in "aeiou" else "a"


# --- rules ---------------------------------------------------------------------------------

Build = Callable[[re.Match[str]], list[Extraction]]


@dataclass(frozen=True)
class _Rule:
    triggers: frozenset[str]  # lower-case words; the pattern runs only if one of them occurs
    pattern: re.Pattern[str]
    build: Build


def _rule(triggers: str | frozenset[str], lead: str, build: Build) -> _Rule:
    words = _words(triggers) if isinstance(triggers, str) else triggers
    return _Rule(words, re.compile(f"(?i:{lead}){_REST}"), build)


def _fact(
    slot: str, template: str, confidence: float, *, max_words: int = 5, allow_the: bool = True
) -> Build:
    def build(m: re.Match[str]) -> list[Extraction]:
        value = _proper_name(m.group("v"), max_words=max_words, allow_the=allow_the)
        if value is None:
            return []
        return [Extraction("fact", slot, value, template.format(value), confidence)]

    return build


def _moved_from(m: re.Match[str]) -> list[Extraction]:
    value = _proper_name(m.group("v"))
    return [Extraction("fact", "home_city", value, f"Lives in {value}", 0.9)] if value else []


_AT = re.compile(r"(?:at|for|with)\s+(.*)")


def _title(confidence: float) -> Build:
    def build(m: re.Match[str]) -> list[Extraction]:
        found = _job_title(m.group("v"))
        if found is None:
            return []
        title, rest = found
        out = [Extraction("fact", "job_title", title, f"Works as {_article(title)} {title}", confidence)]
        at = _AT.match(rest)
        employer = _proper_name(at.group(1)) if at else None
        if employer:
            out.append(Extraction("fact", "employer", employer, f"Works at {employer}", 0.8))
        return out

    return build


_PET_NORMAL = {
    "puppy": "dog",
    "pup": "dog",
    "kitten": "cat",
    "kitty": "cat",
    "bunny": "rabbit",
    "budgie": "parrot",
    "goldfish": "fish",
    "pony": "horse",
}


def _pet(confidence: float) -> Build:
    def build(m: re.Match[str]) -> list[Extraction]:
        name = _proper_name(m.group("v"), max_words=2, allow_the=False)
        if name is None:
            return []
        kind = " ".join(m.group("kind").lower().split())
        kind = _PET_NORMAL.get(kind, kind)
        text = f"Has {_article(kind)} {kind} named {name}"
        return [Extraction("fact", f"pet.{kind.replace(' ', '_')}", name, text, confidence)]

    return build


_DIETS = {
    "vegetarian": "vegetarian",
    "vegan": "vegan",
    "pescatarian": "pescatarian",
    "pescetarian": "pescatarian",
}
_DIET_TEXT = {"omnivore": "Eats meat"}


def _diet(confidence: float, value: str | None = None) -> Build:
    def build(m: re.Match[str]) -> list[Extraction]:
        diet = value or _DIETS[m.group("d").lower()]
        return [Extraction("fact", "diet", diet, _DIET_TEXT.get(diet, f"Is {diet}"), confidence)]

    return build


def _partner(confidence: float) -> Build:
    def build(m: re.Match[str]) -> list[Extraction]:
        name = _proper_name(m.group("v"), max_words=2, allow_the=False)
        if name is None:
            return []
        relation = m.groupdict().get("rel")
        if relation:
            text = f"Has {_article(relation)} {relation.lower()} named {name}"
        else:
            text = f"Is married to {name}"
        return [Extraction("fact", "partner", name, text, confidence)]

    return build


def _birthday(m: re.Match[str]) -> list[Extraction]:
    day = _month_day(m.group("v"))
    return [Extraction("fact", "birthday", day, f"Birthday is {day}", 0.9)] if day else []


def _likes(value: Literal["like", "dislike"], confidence: float) -> Build:
    verb = "Likes" if value == "like" else "Dislikes"

    def build(m: re.Match[str]) -> list[Extraction]:
        found = _phrase(m.group("v"), infinitive=value == "like")
        if found is None:
            return []
        text, key = found
        return [Extraction("preference", f"likes.{key}", value, f"{verb} {text}", confidence)]

    return build


_PREFER_SPLIT = re.compile(r"\s+(?:over|to|rather\s+than|instead\s+of)\s+", re.I)


def _prefer(m: re.Match[str]) -> list[Extraction]:
    span = m.group("v")
    infinitive = span[:3].lower() == "to "
    parts = _PREFER_SPLIT.split(span[3:] if infinitive else span, maxsplit=1)
    found = _phrase(("to " if infinitive else "") + parts[0])
    if found is None:
        return []
    text, key = found
    other = _phrase(parts[1], infinitive=False) if len(parts) > 1 else None
    statement = f"Prefers {text} over {other[0]}" if other else f"Prefers {text}"
    return [Extraction("preference", f"likes.{key}", "like", statement, 0.8)]


def _favorite_key(category: str) -> str:
    return _KEY_CLEAN.sub("", "_".join(category.lower().split()))


def _favorite(m: re.Match[str]) -> list[Extraction]:
    category = " ".join(m.group("cat").lower().split())
    value = _value(m.group("v"))
    key = _favorite_key(category)
    if value is None or not key:
        return []
    return [Extraction("preference", f"favorite.{key}", value, f"Favorite {category} is {value}", 0.9)]


_REVERSE_FAVORITE = re.compile(
    r"(?i:\s+(?:is|are)\s+(?:(?:definitely|probably|still|now|easily|officially)\s+)?my\s+"
    r"(?:(?:all[-\s]time|absolute|new|current)\s+)?(?:favou?rite|fave))\s+(?P<cat>[A-Za-z]+)\b(?!\s*['’]s)"
)


def _reverse_favorite(sentence: str, m: re.Match[str]) -> list[Extraction]:
    head = _CLAUSE_BREAK.split(sentence[: m.start()])[-1].strip().strip(_LEAD + _TRAIL)
    words = head.split()
    if not words or len(words) > 4 or words[0].lower() in _REJECT_FIRST or "I" in words:
        return []
    category = m.group("cat").lower()
    if category in _TITLE_FUNCTION:
        return []
    value = " ".join(words)
    return [Extraction("preference", f"favorite.{category}", value, f"Favorite {category} is {value}", 0.8)]


_RULES: tuple[_Rule, ...] = (
    # home_city
    _rule("live reside", _I + r"(?:live|reside)\s+in\b", _fact("home_city", "Lives in {}", 0.9)),
    _rule(
        "living residing based located settled",
        _IM + r"(?:living|residing|based|located|settled)\s+(?:in|out\s+of)\b",
        _fact("home_city", "Lives in {}", 0.9),
    ),
    _rule(
        "moved relocated",
        r"(?:" + _I + r"|" + _IVE + r")(?:moved|relocated)\s+(?:(?:back|over|here|house)\s+)?to\b",
        _fact("home_city", "Lives in {}", 0.9),
    ),
    _rule(
        "moved relocated",
        r"(?:" + _I + r"|" + _IVE + r")(?:moved|relocated)\s+(?:back\s+)?from\s+[^,;]{1,40}?\s+to\b",
        _moved_from,
    ),
    _rule("lived living", _IVE + r"(?:been\s+living|lived)\s+in\b", _fact("home_city", "Lives in {}", 0.7)),
    _rule(
        "moved relocated live",
        r"\bwe\s+" + _ADV + r"(?:live\s+in|(?:moved|relocated)\s+(?:back\s+)?to)\b",
        _fact("home_city", "Lives in {}", 0.7),
    ),
    # employer
    _rule("work", _I + r"(?:work|am\s+working)\s+(?:at|for)\b", _fact("employer", "Works at {}", 0.9)),
    _rule("working", _IM + r"working\s+(?:at|for)\b", _fact("employer", "Works at {}", 0.9)),
    _rule("working", _IVE + r"been\s+working\s+(?:at|for)\b", _fact("employer", "Works at {}", 0.9)),
    _rule(
        "started began",
        _I + r"(?:started|began)\s+(?:working|a\s+new\s+job)\s+(?:at|for|with)\b",
        _fact("employer", "Works at {}", 0.9),
    ),
    _rule(
        "job position role offer",
        r"\bi(?:['’]?ve|\s+have)?\s+" + _ADV + r"(?:got|gotten|landed|accepted|took|taken)\s+"
        r"(?:a\s+|an\s+)?(?:new\s+)?(?:job|position|role|offer)\s+(?:at|with|from)\b",
        _fact("employer", "Works at {}", 0.9),
    ),
    _rule(
        "employed hired",
        r"\bi(?:['’]?m|\s+am|\s+was|\s+got|['’]?ve\s+been)\s+" + _ADV + r"(?:employed|hired)\s+(?:at|by)\b",
        _fact("employer", "Works at {}", 0.9),
    ),
    _rule(
        "joined",
        r"\bi(?:['’]?ve|\s+have)?\s+" + _ADV + r"joined\b",
        _fact("employer", "Works at {}", 0.7, allow_the=False),
    ),
    _rule("started", _I + r"started\s+at\b", _fact("employer", "Works at {}", 0.7, allow_the=False)),
    # job_title
    _rule("a an", _IM + r"(?:a|an)\b", _title(0.9)),
    _rule(
        "as",
        r"(?:" + _I + r"|" + _IM + r"|" + _IVE + r")(?:work|working|started\s+working|"
        r"been\s+working|got\s+(?:a\s+)?(?:new\s+)?job|joined|was\s+hired|got\s+hired)\b"
        r"[^,;]{0,50}?\bas\s+(?:a|an)\b",
        _title(0.9),
    ),
    _rule("became become", r"(?:" + _I + r"became|" + _IVE + r"become)\s+(?:a|an)\b", _title(0.8)),
    _rule(
        "promoted",
        r"\bi(?:\s+was|\s+got|['’]?ve\s+been|\s+have\s+been|['’]?ve\s+got|['’]?m\s+getting)?\s+"
        + _ADV
        + r"(?:was\s+|got\s+|been\s+)?promoted\s+to(?:\s+(?:a|an|the\s+role\s+of))?\b",
        _title(0.9),
    ),
    # pets
    _rule(
        "named called",
        _HAVE_A + _PET_ADJ + rf"(?P<kind>{_PET_KINDS})\s+(?:named|called)\b",
        _pet(0.9),
    ),
    _rule(
        _PET_WORDS,
        r"\b(?:my|our)\s+" + _PET_ADJ + rf"(?P<kind>{_PET_KINDS})"
        r"(?:['’]s\s+name\s+is|,?\s+(?:is\s+)?(?:named|called))?(?=[\s,])",
        _pet(0.8),
    ),
    # diet
    _rule(
        "vegetarian vegan pescatarian pescetarian",
        _IM + r"(?:a\s+)?(?P<d>vegetarian|vegan|pescatarian|pescetarian)\b(?!\s+(?:restaurant|food|cook))",
        _diet(0.9),
    ),
    _rule(
        "vegetarian vegan pescatarian pescetarian",
        r"(?:" + _I + r"(?:went|turned|became)|" + _IVE + r"(?:gone|turned|become))\s+"
        r"(?P<d>vegetarian|vegan|pescatarian|pescetarian)\b",
        _diet(0.9),
    ),
    _rule(
        "meat",
        _I + _NOT + r"eat\s+(?:any\s+)?meat\b(?!\s+(?:on|during|at|before|after|for)\b)",
        _diet(0.8, "vegetarian"),
    ),
    _rule(
        "vegetarian vegan pescatarian pescetarian",
        _IM + r"(?:no\s+longer|not)\s+(?:a\s+)?(?:vegetarian|vegan|pescatarian|pescetarian)\b",
        _diet(0.7, "omnivore"),
    ),
    _rule(
        "meat",
        r"(?:" + _I + r"eat|" + _I + r"started\s+eating|" + _IM + r"eating)\s+meat\s+again\b",
        _diet(0.7, "omnivore"),
    ),
    # partner
    _rule(
        "wife husband partner spouse girlfriend boyfriend fiancé fiancée fiance fiancee",
        r"\bmy\s+(?:(?:lovely|amazing|wonderful|dear|beloved|new)\s+)?"
        r"(?P<rel>wife|husband|partner|spouse|girlfriend|boyfriend|fianc[ée]e?)"
        r"(?:['’]s\s+name\s+is|,?\s+(?:is\s+)?(?:named|called))?(?=[\s,])",
        _partner(0.8),
    ),
    _rule("married", _IM + r"married\s+to\b", _partner(0.9)),
    # birthday
    _rule(
        "birthday bday b",
        r"\bmy\s+(?:birthday|bday|b-day)(?:['’]s|\s+is|\s+falls)\s+(?:on\s+)?",
        _birthday,
    ),
    _rule("born", _I + r"was\s+born\s+on\b", _birthday),
    # learning
    _rule(
        "learning studying",
        _IM + r"(?:learning|studying)\b",
        _fact("learning", "Is learning {}", 0.9, max_words=2, allow_the=False),
    ),
    _rule(
        "learning",
        r"(?:" + _I + r"(?:started|began)|" + _IVE + r"(?:started|begun|been))\s+learning\b",
        _fact("learning", "Is learning {}", 0.9, max_words=2, allow_the=False),
    ),
    # hometown
    _rule(
        "grew raised",
        _I + r"(?:grew\s+up|was\s+(?:born\s+and\s+)?raised)\s+in\b",
        _fact("hometown", "Grew up in {}", 0.9),
    ),
    _rule("born", _I + r"was\s+born\s+in\b", _fact("hometown", "Was born in {}", 0.8)),
    _rule("from", _IM + r"(?:originally\s+)?from\b", _fact("hometown", "Is from {}", 0.7)),
    _rule("from", _I + r"(?:originally\s+)?(?:come|hail)\s+from\b", _fact("hometown", "Is from {}", 0.7)),
    # likes and dislikes
    _rule("love like enjoy adore", _I + r"(?:love|like|enjoy|adore)\b", _likes("like", 0.9)),
    _rule("loved liked enjoyed", _IVE + r"(?:loved|liked|enjoyed)\b", _likes("like", 0.8)),
    _rule(
        "fan into obsessed passionate crazy fond",
        _IM + r"(?:a\s+(?:big\s+|huge\s+|massive\s+)?fan\s+of|into|obsessed\s+with|passionate\s+about|"
        r"crazy\s+about|fond\s+of)\b",
        _likes("like", 0.8),
    ),
    _rule(
        "hate dislike detest loathe despise",
        _I + r"(?:hate|dislike|detest|loathe|despise)\b",
        _likes("dislike", 0.9),
    ),
    _rule(
        "stand",
        r"\bi\s+" + _ADV + r"(?:can['’]?t|cannot|can\s+not)\s+" + _ADV + r"stand\b",
        _likes("dislike", 0.9),
    ),
    _rule("like enjoy love care", _I + _NOT + r"(?:like|enjoy|love|care\s+for)\b", _likes("dislike", 0.9)),
    _rule(
        "into fan fond",
        _IM + r"(?:not|no\s+longer)\s+" + _ADV + r"(?:into|a\s+(?:big\s+|huge\s+)?fan\s+of|fond\s+of)\b",
        _likes("dislike", 0.8),
    ),
    _rule(
        "gone lost grown",
        _IVE + r"(?:gone\s+off|lost\s+interest\s+in|grown\s+tired\s+of)\b",
        _likes("dislike", 0.7),
    ),
    _rule("prefer", _I + r"prefer\b(?!\s+not\b)", _prefer),
    _rule(
        "favorite favourite fave fav",
        r"\bmy\s+(?:(?:all[-\s]time|absolute|current|new|personal|very)\s+)?(?:favou?rite|fave|fav)\s+"
        r"(?P<cat>[a-z][a-z-]*(?:\s+[a-z][a-z-]*){0,2}?)\s+(?:is|are|has\s+to\s+be|would\s+be|must\s+be)\b",
        _favorite,
    ),
)
_TRIGGERS = frozenset().union(*(rule.triggers for rule in _RULES))
_FAVORITE_WORDS = _words("favorite favourite fave")
_WORD = re.compile(r"[^\W\d_]+")


class RuleExtractor:
    """Deterministic, regex-based extraction of first-person facts and preferences."""

    def extract(self, text: str, *, role: str | None, source: str) -> list[Extraction]:
        if source == "chat" and role != "user":
            return []
        if not text or _HINT.search(text) is None:
            return []
        found: dict[tuple[str, str], Extraction] = {}
        for sentence in _sentences(text):
            for extraction in _from_sentence(sentence):
                key = (extraction.slot, extraction.value.casefold())
                known = found.get(key)
                if known is None:
                    found[key] = extraction
                elif extraction.confidence > known.confidence:
                    found[key] = replace(known, confidence=extraction.confidence)
        return list(found.values())


@EXTRACTORS.register("rules")
def _rules() -> Extractor:
    return RuleExtractor()


def _sentences(text: str) -> list[str]:
    """Sentences of ``text``; quoted reply lines ("> ...") are someone else's and dropped."""
    out: list[str] = []
    for part in _SENTENCE_END.split(text):
        if not part or part.lstrip().startswith(">"):
            continue
        if out and out[-1].endswith(".") and out[-1].rsplit(None, 1)[-1][:-1].lower() in _ABBREVIATIONS:
            out[-1] = f"{out[-1]} {part}"
        else:
            out.append(part)
    return out


def _statement(sentence: str) -> str | None:
    """The declarative part of a sentence: a trailing question clause is cut, questions give None."""
    sentence = sentence.strip()
    if sentence.endswith("?"):
        cuts = list(_QUESTION_CUT.finditer(sentence))
        if not cuts:
            return None
        sentence = sentence[: cuts[-1].start()]
    if not sentence or _INVERSION.match(sentence):
        return None
    return sentence


def _real(sentence: str, start: int) -> bool:
    """Whether the clause leading up to ``start`` leaves the statement real and the user's own."""
    if start == 0:
        return True
    tail = _CLAUSE_BREAK.split(sentence[:start])[-1]
    return _UNREAL.search(tail) is None


def _from_sentence(sentence: str) -> list[Extraction]:
    statement = _statement(sentence)
    if statement is None:
        return []
    words = frozenset(_WORD.findall(statement.lower()))
    if _TRIGGERS.isdisjoint(words):
        return []
    out: list[tuple[int, Extraction]] = []
    for rule in _RULES:
        if rule.triggers.isdisjoint(words):
            continue
        for m in rule.pattern.finditer(statement):
            if _real(statement, m.start()):
                out.extend((m.start(), e) for e in rule.build(m))
    if not _FAVORITE_WORDS.isdisjoint(words):
        for m in _REVERSE_FAVORITE.finditer(statement):
            if _real(statement, m.start()):
                out.extend((m.start(), e) for e in _reverse_favorite(statement, m))
    out.sort(key=lambda pair: pair[0])
    return [e for _, e in out]
