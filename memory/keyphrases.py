"""Keyphrase extraction in the manner of RAKE (Rose et al., 2010), without dependencies.

Candidate phrases are runs of up to three content words between stopwords, punctuation and
numbers; a word scores degree / frequency over the candidates, a phrase the sum of its words.
"""

from __future__ import annotations

import re

__all__ = ["STOPWORDS", "keyphrases"]

_MAX_WORDS = 3

_STOPWORD_TEXT = """
    a about above across actually after afternoon again against ago ain't all almost already also
    always am among an and another any anyone anything anyway are aren't around as at away back
    basically be became because become been before being below between both but by can can't cannot
    could couldn't day days definitely did didn't do does doesn't doing don't done down during each
    eight either eleven else enough especially etc even evening ever every everyone everything few
    five for four from further get gets getting go goes going gone got gotten had hadn't has hasn't
    have haven't having he he'd he'll he's her here here's hers herself him himself his honestly how
    hundred i i'd i'll i'm i've if in into is isn't it it's its itself just kind last let let's like
    liked likes literally lot lots love loved loves made make makes many maybe me might mine month
    months more morning most much must my myself need needed needs never next night nine no nobody
    none nor not nothing now of off often oh ok okay on once one ones only onto or other others
    ought our ours ourselves out over own per perhaps please pretty probably quite rather really
    said same say says see seem seems seven several shall she she'd she'll she's should shouldn't
    since six so some someone something sometimes soon still such sure take ten than thank thanks
    that that's the their theirs them themselves then there there's these they they'd they'll
    they're they've thing things think this those though thousand three through thus to today
    together tomorrow tonight too totally toward towards twelve twice two under until up upon us use
    used usually very via want wanted wants was wasn't way we we'd we'll we're we've week weekend
    weeks well went were weren't what what's whatever when where where's whether which while who
    who's whom whose why will with within without won't would wouldn't yeah year years yes yesterday
    yet you you'd you'll you're you've your yours yourself yourselves
"""
STOPWORDS = frozenset(_STOPWORD_TEXT.split())

# Words (letters, digits, inner apostrophes or hyphens), redaction placeholders, or any other mark.
_TOKEN = re.compile(r"\[(?:card|email|phone)\]|[^\W_]+(?:['-][^\W_]+)*|[^\w\s]|_")


def keyphrases(text: str, top_k: int = 5) -> list[str]:
    """The ``top_k`` best keyphrases of ``text``, lowercase, best first (ties: first seen first)."""
    if top_k <= 0:
        return []
    phrases = _candidates(text)
    if not phrases:
        return []
    frequency: dict[str, int] = {}
    degree: dict[str, int] = {}
    for phrase in phrases:
        for word in phrase:
            frequency[word] = frequency.get(word, 0) + 1
            degree[word] = degree.get(word, 0) + len(phrase)
    scores: dict[str, float] = {}
    for phrase in phrases:
        key = " ".join(phrase)
        if key not in scores:
            scores[key] = sum(degree[word] / frequency[word] for word in phrase)
    # dicts keep first-seen order and sorted() is stable, so ties stay in text order
    return sorted(scores, key=scores.__getitem__, reverse=True)[:top_k]


def _candidates(text: str) -> list[tuple[str, ...]]:
    phrases: list[tuple[str, ...]] = []
    run: list[str] = []
    for token in _TOKEN.findall(text.lower().replace("’", "'")):
        if token.endswith("'s"):
            token = token[:-2]
        if (
            len(token) < 2
            or token in STOPWORDS
            or token[0] == "["
            or (token[0].isdigit() and token[-1].isdigit())
        ):
            if run:
                phrases.append(tuple(run))
                run = []
            continue
        run.append(token)
        if len(run) == _MAX_WORDS:
            phrases.append(tuple(run))
            run = []
    if run:
        phrases.append(tuple(run))
    return phrases
