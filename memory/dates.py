"""Relative date expressions ("last Tuesday", "next month", "in May 2023") resolved to UTC spans.

``resolve_dates`` finds the expressions in English text and turns each into a half-open span
``[start, end)`` of tz-aware UTC datetimes, relative to a reference time; ``annotate`` writes the
resolved value after each phrase. The reference day is ``reference.date()`` in UTC (a naive
reference is taken as UTC). Weeks run Monday to Sunday.

Choices where English is vague:

- ``last/next <weekday>``: the nearest such day strictly before/after the reference day;
  ``this <weekday>`` and ``on <weekday>``: that day of the current week.
- ``last/this/next week|weekend|month|year``: the previous/current/next calendar unit.
- ``N days ago`` / ``in N days``: that day; weeks, months and years give the whole calendar
  week/month/year that contains the shifted day ("in 2 months" from 31 Dec 2023 is February 2024).
  ``a couple of`` counts 2, ``a few`` 3.
- ``in the last/past N days`` (also ``the past week``, ``the last month``): from N units before the
  reference day up to the end of the reference day; plain ``last week`` is the calendar week.
- Seasons are northern meteorological: spring Mar-May, summer Jun-Aug, autumn (fall) Sep-Nov,
  winter Dec-Feb, named by the year they start in ("winter 2023" is Dec 2023 - Feb 2024).
  ``last <season>``: the most recent one that ended before the reference day; ``next <season>``:
  the first one that starts after it; ``this <season>``: the one under way, else the one starting
  in the reference year.
- A month (or month and day) without a year is the most recent one not after the reference;
  ``last/next <month>`` is strictly before/after the reference month, ``this <month>`` is in the
  reference year.
- Bare years count only after "in", "during" or "since"; ``since <expression>`` spans from the
  expression's start to the end of the reference day.
- Parts of the day: morning 06-12, afternoon 12-18, evening 18-24, night 18-06 (of the next day).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

__all__ = ["DateMention", "annotate", "describe_span", "resolve_dates"]


@dataclass(frozen=True, slots=True)
class DateMention:
    """A date expression as written in the text and the UTC span ``[start, end)`` it stands for."""

    phrase: str
    start: datetime
    end: datetime


_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_MONTH_NAMES = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
_MONTHS = {name.lower(): i for i, name in enumerate(_MONTH_NAMES, 1)} | {
    "jan": 1,
    "feb": 2,
    "mar": 3,
    "apr": 4,
    "jun": 6,
    "jul": 7,
    "aug": 8,
    "sep": 9,
    "sept": 9,
    "oct": 10,
    "nov": 11,
    "dec": 12,
}
_SEASONS = {"spring": 3, "summer": 6, "autumn": 9, "fall": 9, "winter": 12}
_SEASON_NAMES = {3: "spring", 6: "summer", 9: "autumn", 12: "winter"}
_NUMBERS = {
    "a": 1,
    "an": 1,
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
    "couple of": 2,
    "a couple of": 2,
    "few": 3,
    "a few": 3,
}
_PARTS = {"morning": (6, 12), "afternoon": (12, 18), "evening": (18, 24), "night": (18, 30)}
_RELATIVE = {"last": -1, "this": 0, "next": 1}


def _words(names: Iterable[str]) -> str:
    return "|".join(sorted(names, key=len, reverse=True))


_WD = f"(?:{_words(_WEEKDAYS)})"
_MON = f"(?:{_words(_MONTHS)})"
_SEASON = f"(?:{_words(_SEASONS)})"
_NUM = r"(?:\d{1,3}|" + _words(_NUMBERS).replace(" ", r"\s+") + ")"
_UNIT = r"(?:day|week|month|year)s?"
_YEAR = r"(?:19\d\d|20\d\d|2100)"
_ORD = r"(?:st|nd|rd|th)?"
# A word boundary; an ISO date may run into its time ("2024-05-10T10:00").
_END = r"(?:\b(?![-/]\d)|(?<=\d)(?=[tT]\d))"

# Matched against the lowercased text (_PATTERN_ANY_CASE where lowercasing changes the length).
_SOURCE = rf"""
    (?=[\da-z])\b(?:(?P<since>since)\s+)?
    (?:
        (?P<iso>(?P<iso_y>\d{{4}})-(?P<iso_m>\d\d)-(?P<iso_d>\d\d))
      | (?P<shift>the\s+day\s+(?:before\s+yesterday|after\s+tomorrow))
      | (?P<part_day>yesterday|today|tomorrow|this)\s+(?P<part>morning|afternoon|evening|night)
      | (?P<night>tonight|last\s+night)
      | (?P<day>today|yesterday|tomorrow)
      | (?P<wd_rel>last|next|this|on)\s+(?P<wd>{_WD})
      | (?P<unit_rel>last|next|this)\s+(?P<unit>week|weekend|month|year)
      | (?P<season_rel>last|next|this)\s+(?P<season>{_SEASON})
      | (?P<mon_rel>last|next|this)\s+(?P<rel_mon>{_MON})
      | (?P<ago_n>{_NUM})\s+(?P<ago_unit>{_UNIT})\s+(?P<ago>ago|from\s+now)
      | in\s+(?P<in_n>{_NUM})\s+(?P<in_unit>{_UNIT})
      | (?:(?:in|within|over|during)\s+)?(?:the\s+)?
        (?:(?:last|past)\s+(?P<past_n>{_NUM})\s+(?P<past_unit>{_UNIT})
           |(?<=the\s)(?:last|past)\s+(?P<past_one>day|week|month|year))
      | (?:(?:in|during)\s+)?(?:the\s+)?(?P<sy_season>{_SEASON})\s+(?:of\s+)?(?P<sy_year>{_YEAR})
      | (?P<md_mon>{_MON})\s+(?P<md_day>\d\d?){_ORD}(?:,?\s+(?P<md_year>{_YEAR}))?
      | (?P<dm_day>\d\d?){_ORD}\s+(?:of\s+)?(?P<dm_mon>{_MON})(?:,?\s+(?P<dm_year>{_YEAR}))?
      | (?(since)|(?:in|during)\s+)(?P<mon>{_MON})(?!\s+\d\d?{_ORD}\b)(?:,?\s+(?P<mon_year>{_YEAR}))?
      | (?P<my_mon>{_MON}),?\s+(?P<my_year>{_YEAR})
      | (?(since)|(?:in|during)\s+(?:the\s+year\s+)?)(?P<year>{_YEAR})
    )
    {_END}
    """
_PATTERN = re.compile(_SOURCE, re.VERBOSE)
_PATTERN_ANY_CASE = re.compile(_SOURCE, re.VERBOSE | re.IGNORECASE)

# Every expression holds a digit or one of these (month abbreviations cover the full names, "day"
# the weekdays); text without any of them skips _PATTERN. A loop of `in` beats a regex here.
_KEYWORDS = (
    "day", "week", "month", "year", "night", "morning", "afternoon", "evening", "tomorrow",
    "spring", "summer", "autumn", "fall", "winter",
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
)  # fmt: skip
_DIGIT = re.compile(r"\d")
_EXPLICIT_YEAR = re.compile(r"\b\d{4}\b")
_ONE_DAY = timedelta(days=1)

Span = tuple[datetime, datetime]


def resolve_dates(text: str, reference: datetime) -> list[DateMention]:
    """Find the date expressions in ``text`` and resolve them against ``reference``, in text order."""
    lowered = text.lower()
    if not _may_mention(lowered):
        return []
    # str.lower() keeps offsets unless a character expands ("İ"); then match the text itself.
    same_offsets = len(lowered) == len(text)
    matches = _PATTERN.finditer(lowered) if same_offsets else _PATTERN_ANY_CASE.finditer(text)
    day = (reference.astimezone(UTC) if reference.tzinfo else reference).date()
    tomorrow = _at(day + _ONE_DAY)
    mentions = []
    for match in matches:
        if text[match.start("md_mon") : match.end("md_mon")] == "may":
            continue  # "you may 2 ..." is a verb, not "May 2"
        span = _resolve(match, day)
        if span is None:
            continue
        start, end = span
        if match["since"] and start < tomorrow:
            end = tomorrow
        mentions.append(DateMention(text[match.start() : match.end()], start, end))
    return mentions


def annotate(text: str, mentions: list[DateMention]) -> str:
    """Write each mention's resolved value in parentheses after its phrase.

    Phrases that already state their year ("2024-05-10", "May 2023", "in 2023") are left as they
    are, except ``since ...`` spans. ``mentions`` must come from ``resolve_dates`` on this text.
    """
    parts = []
    cursor = 0
    for mention in mentions:
        found = re.compile(rf"(?<!\w){re.escape(mention.phrase)}{_END}").search(text, cursor)
        if found is None:
            continue
        parts.append(text[cursor : found.end()])
        cursor = found.end()
        if _EXPLICIT_YEAR.search(mention.phrase) and mention.phrase[:5].lower() != "since":
            continue
        parts.append(f" ({describe_span(mention.start, mention.end)})")
    parts.append(text[cursor:])
    return "".join(parts)


def describe_span(start: datetime, end: datetime) -> str:
    """Name a span the way ``annotate`` writes it: "7 May 2024", "April 2024", "summer 2023" ..."""
    first, last = start.date(), (end - timedelta(microseconds=1)).date()
    if end - start <= _ONE_DAY and (first == last or start.hour >= 12):
        return _day_name(first)
    whole_days = start.time() == end.time() == datetime.min.time()
    if whole_days and first.weekday() == 0 and end - start == timedelta(days=7):
        return f"week of {_day_name(first)}"
    if whole_days and first.day == 1 and (last + _ONE_DAY).day == 1:
        months = _month_index(last) - _month_index(first) + 1
        if months == 1:
            return f"{_MONTH_NAMES[first.month - 1]} {first.year}"
        if months == 12 and first.month == 1:
            return str(first.year)
        if months == 3 and first.month in _SEASON_NAMES:
            year = f"{first.year}/{(first.year + 1) % 100:02d}" if first.month == 12 else str(first.year)
            return f"{_SEASON_NAMES[first.month]} {year}"
    return f"{_day_name(first)} – {_day_name(last)}"


def _may_mention(lowered: str) -> bool:
    for keyword in _KEYWORDS:
        if keyword in lowered:
            return True
    return _DIGIT.search(lowered) is not None


def _resolve(m: re.Match[str], day: date) -> Span | None:
    for group, resolver in _RESOLVERS:
        if m.group(group) is not None:
            try:
                return resolver(m, day)
            except (ValueError, OverflowError):  # no such date: "2024-02-30", "in 999 years" near 9999
                return None
    return None


# Spans of calendar units


def _at(d: date, hour: int = 0) -> datetime:
    return datetime(d.year, d.month, d.day, tzinfo=UTC) + timedelta(hours=hour)


def _day_span(d: date) -> Span:
    return _at(d), _at(d + _ONE_DAY)


def _week_span(d: date) -> Span:
    monday = d - timedelta(days=d.weekday())
    return _at(monday), _at(monday + timedelta(days=7))


def _month_index(d: date) -> int:
    return d.year * 12 + d.month - 1


def _month_start(index: int) -> date:
    return date(index // 12, index % 12 + 1, 1)


def _months_span(index: int, count: int = 1) -> Span:
    return _at(_month_start(index)), _at(_month_start(index + count))


def _year_span(year: int) -> Span:
    return _at(date(year, 1, 1)), _at(date(year + 1, 1, 1))


def _shift_months(d: date, months: int) -> date:
    first = _month_start(_month_index(d) + months)
    next_first = _month_start(_month_index(d) + months + 1)
    return first.replace(day=min(d.day, (next_first - first).days))


def _season_span(start_month: int, year: int) -> Span:
    return _months_span(year * 12 + start_month - 1, 3)


def _number(word: str) -> int:
    return int(word) if word.isdigit() else _NUMBERS[" ".join(word.lower().split())]


def _month(word: str) -> int:
    return _MONTHS[word.lower()]


# One resolver per alternative of _PATTERN


def _iso(m: re.Match[str], day: date) -> Span:
    return _day_span(date(int(m["iso_y"]), int(m["iso_m"]), int(m["iso_d"])))


def _shift(m: re.Match[str], day: date) -> Span:
    return _day_span(day + timedelta(days=-2 if "before" in m["shift"].lower() else 2))


def _part_of_day(m: re.Match[str], day: date) -> Span:
    offset = {"yesterday": -1, "today": 0, "this": 0, "tomorrow": 1}[m["part_day"].lower()]
    first, last = _PARTS[m["part"].lower()]
    d = day + timedelta(days=offset)
    return _at(d, first), _at(d, last)


def _night(m: re.Match[str], day: date) -> Span:
    d = day - _ONE_DAY if m["night"].lower().startswith("last") else day
    return _at(d, 18), _at(d, 30)


def _day(m: re.Match[str], day: date) -> Span:
    return _day_span(day + timedelta(days={"yesterday": -1, "today": 0, "tomorrow": 1}[m["day"].lower()]))


def _weekday(m: re.Match[str], day: date) -> Span:
    target = _WEEKDAYS.index(m["wd"].lower())
    relation = m["wd_rel"].lower()
    if relation == "last":
        return _day_span(day - timedelta(days=(day.weekday() - target) % 7 or 7))
    if relation == "next":
        return _day_span(day + timedelta(days=(target - day.weekday()) % 7 or 7))
    return _day_span(day + timedelta(days=target - day.weekday()))


def _relative_unit(m: re.Match[str], day: date) -> Span:
    step = _RELATIVE[m["unit_rel"].lower()]
    unit = m["unit"].lower()
    if unit == "week":
        return _week_span(day + timedelta(days=7 * step))
    if unit == "weekend":
        saturday = day + timedelta(days=5 - day.weekday() + 7 * step)
        return _at(saturday), _at(saturday + timedelta(days=2))
    if unit == "month":
        return _months_span(_month_index(day) + step)
    return _year_span(day.year + step)


def _relative_season(m: re.Match[str], day: date) -> Span:
    start_month = _SEASONS[m["season"].lower()]
    relation = m["season_rel"].lower()
    today = _at(day)
    if relation == "last":
        year = day.year
        while _season_span(start_month, year)[1] > today:
            year -= 1
    elif relation == "next":
        year = day.year - 1
        while _season_span(start_month, year)[0] <= today:
            year += 1
    else:
        start, end = _season_span(start_month, day.year - 1)
        year = day.year - 1 if start <= today < end else day.year
    return _season_span(start_month, year)


def _relative_month(m: re.Match[str], day: date) -> Span:
    month = _month(m["rel_mon"])
    relation = m["mon_rel"].lower()
    if relation == "last":
        year = day.year if month < day.month else day.year - 1
    elif relation == "next":
        year = day.year if month > day.month else day.year + 1
    else:
        year = day.year
    return _months_span(year * 12 + month - 1)


def _offset(count: int, unit: str, day: date) -> Span:
    unit = unit.lower().rstrip("s")
    if unit == "day":
        return _day_span(day + timedelta(days=count))
    if unit == "week":
        return _week_span(day + timedelta(days=7 * count))
    if unit == "month":
        return _months_span(_month_index(day) + count)
    return _year_span(day.year + count)


def _ago(m: re.Match[str], day: date) -> Span:
    sign = -1 if m["ago"].lower() == "ago" else 1
    return _offset(sign * _number(m["ago_n"]), m["ago_unit"], day)


def _in(m: re.Match[str], day: date) -> Span:
    return _offset(_number(m["in_n"]), m["in_unit"], day)


def _past(m: re.Match[str], day: date) -> Span:
    count = _number(m["past_n"]) if m["past_n"] else 1
    unit = (m["past_unit"] or m["past_one"]).lower().rstrip("s")
    if unit == "day":
        start = day - timedelta(days=count)
    elif unit == "week":
        start = day - timedelta(days=7 * count)
    else:
        start = _shift_months(day, -count * (12 if unit == "year" else 1))
    return _at(start), _at(day + _ONE_DAY)


def _season_of_year(m: re.Match[str], day: date) -> Span:
    return _season_span(_SEASONS[m["sy_season"].lower()], int(m["sy_year"]))


def _month_day(month: int, day_of_month: int, year: str | None, day: date) -> Span:
    if year:
        return _day_span(date(int(year), month, day_of_month))
    candidate = date(day.year, month, day_of_month)
    if candidate > day:
        candidate = date(day.year - 1, month, day_of_month)
    return _day_span(candidate)


def _month_then_day(m: re.Match[str], day: date) -> Span:
    return _month_day(_month(m["md_mon"]), int(m["md_day"]), m["md_year"], day)


def _day_then_month(m: re.Match[str], day: date) -> Span:
    return _month_day(_month(m["dm_mon"]), int(m["dm_day"]), m["dm_year"], day)


def _month_of_year(month: int, year: str | None, day: date) -> Span:
    if year:
        return _months_span(int(year) * 12 + month - 1)
    return _months_span((day.year if month <= day.month else day.year - 1) * 12 + month - 1)


def _in_month(m: re.Match[str], day: date) -> Span:
    return _month_of_year(_month(m["mon"]), m["mon_year"], day)


def _month_year(m: re.Match[str], day: date) -> Span:
    return _month_of_year(_month(m["my_mon"]), m["my_year"], day)


def _year(m: re.Match[str], day: date) -> Span:
    return _year_span(int(m["year"]))


_RESOLVERS: tuple[tuple[str, Callable[[re.Match[str], date], Span]], ...] = (
    ("iso", _iso),
    ("shift", _shift),
    ("part", _part_of_day),
    ("night", _night),
    ("day", _day),
    ("wd", _weekday),
    ("unit", _relative_unit),
    ("season", _relative_season),
    ("rel_mon", _relative_month),
    ("ago", _ago),
    ("in_unit", _in),
    ("past_unit", _past),
    ("past_one", _past),
    ("sy_season", _season_of_year),
    ("md_mon", _month_then_day),
    ("dm_mon", _day_then_month),
    ("mon", _in_month),
    ("my_mon", _month_year),
    ("year", _year),
)


def _day_name(d: date) -> str:
    return f"{d.day} {_MONTH_NAMES[d.month - 1]} {d.year}"
