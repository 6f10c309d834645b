from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from memory.dates import DateMention, annotate, describe_span, resolve_dates

FRIDAY = datetime(2024, 5, 10, 15, 30, tzinfo=UTC)  # Friday 10 May 2024


def at(y: int, m: int, d: int, hour: int = 0) -> datetime:
    return datetime(y, m, d, hour, tzinfo=UTC)


def days(first: date, last: date | None = None) -> tuple[datetime, datetime]:
    """The span from the start of ``first`` to the end of ``last`` (default: ``first``)."""
    end = (last or first) + timedelta(days=1)
    return at(first.year, first.month, first.day), at(end.year, end.month, end.day)


def month(y: int, m: int) -> tuple[datetime, datetime]:
    return at(y, m, 1), at(y + m // 12, m % 12 + 1, 1)


def year(y: int) -> tuple[datetime, datetime]:
    return at(y, 1, 1), at(y + 1, 1, 1)


def one(text: str, reference: datetime = FRIDAY) -> tuple[datetime, datetime]:
    mentions = resolve_dates(text, reference)
    assert len(mentions) == 1, mentions
    return mentions[0].start, mentions[0].end


def phrases(text: str, reference: datetime = FRIDAY) -> list[str]:
    return [m.phrase for m in resolve_dates(text, reference)]


@pytest.mark.parametrize(
    ("text", "span"),
    [
        ("today", days(date(2024, 5, 10))),
        ("yesterday", days(date(2024, 5, 9))),
        ("tomorrow", days(date(2024, 5, 11))),
        ("the day before yesterday", days(date(2024, 5, 8))),
        ("the day after tomorrow", days(date(2024, 5, 12))),
        ("tonight", (at(2024, 5, 10, 18), at(2024, 5, 11, 6))),
        ("last night", (at(2024, 5, 9, 18), at(2024, 5, 10, 6))),
        ("this morning", (at(2024, 5, 10, 6), at(2024, 5, 10, 12))),
        ("this evening", (at(2024, 5, 10, 18), at(2024, 5, 11))),
        ("yesterday afternoon", (at(2024, 5, 9, 12), at(2024, 5, 9, 18))),
    ],
)
def test_days_and_parts_of_days(text: str, span: tuple[datetime, datetime]) -> None:
    assert one(f"I saw her {text}.") == span


@pytest.mark.parametrize(
    ("text", "reference", "day"),
    [
        ("last Tuesday", FRIDAY, date(2024, 5, 7)),
        ("next Tuesday", FRIDAY, date(2024, 5, 14)),
        ("this Tuesday", FRIDAY, date(2024, 5, 7)),
        ("on Tuesday", FRIDAY, date(2024, 5, 7)),
        ("last Friday", FRIDAY, date(2024, 5, 3)),
        ("next Friday", FRIDAY, date(2024, 5, 17)),
        ("this Sunday", FRIDAY, date(2024, 5, 12)),
        ("last Tuesday", at(2024, 5, 7, 9), date(2024, 4, 30)),
        ("next Tuesday", at(2024, 5, 7, 9), date(2024, 5, 14)),
        ("this Tuesday", at(2024, 5, 7, 9), date(2024, 5, 7)),
        ("on Friday", at(2024, 5, 6), date(2024, 5, 10)),
        ("last Sunday", at(2024, 1, 3), date(2023, 12, 31)),
    ],
)
def test_weekdays(text: str, reference: datetime, day: date) -> None:
    assert one(text, reference) == days(day)


@pytest.mark.parametrize(
    ("text", "reference", "span"),
    [
        ("last week", FRIDAY, days(date(2024, 4, 29), date(2024, 5, 5))),
        ("this week", FRIDAY, days(date(2024, 5, 6), date(2024, 5, 12))),
        ("next week", FRIDAY, days(date(2024, 5, 13), date(2024, 5, 19))),
        ("this week", at(2024, 5, 12), days(date(2024, 5, 6), date(2024, 5, 12))),
        ("last week", at(2024, 1, 3), days(date(2023, 12, 25), date(2023, 12, 31))),
        ("last weekend", FRIDAY, days(date(2024, 5, 4), date(2024, 5, 5))),
        ("this weekend", FRIDAY, days(date(2024, 5, 11), date(2024, 5, 12))),
        ("last month", FRIDAY, month(2024, 4)),
        ("this month", FRIDAY, month(2024, 5)),
        ("next month", FRIDAY, month(2024, 6)),
        ("last month", at(2024, 1, 3), month(2023, 12)),
        ("next month", at(2023, 12, 31), month(2024, 1)),
        ("last year", FRIDAY, year(2023)),
        ("this year", FRIDAY, year(2024)),
        ("next year", FRIDAY, year(2025)),
    ],
)
def test_calendar_units(text: str, reference: datetime, span: tuple[datetime, datetime]) -> None:
    assert one(text, reference) == span


@pytest.mark.parametrize(
    ("text", "reference", "span"),
    [
        ("3 days ago", FRIDAY, days(date(2024, 5, 7))),
        ("three days ago", FRIDAY, days(date(2024, 5, 7))),
        ("a couple of days ago", FRIDAY, days(date(2024, 5, 8))),
        ("a few days ago", FRIDAY, days(date(2024, 5, 7))),
        ("10 days ago", at(2024, 3, 5), days(date(2024, 2, 24))),
        ("a week ago", FRIDAY, days(date(2024, 4, 29), date(2024, 5, 5))),
        ("two weeks ago", FRIDAY, days(date(2024, 4, 22), date(2024, 4, 28))),
        ("a month ago", at(2024, 1, 3), month(2023, 12)),
        ("an hour or a year ago", FRIDAY, year(2023)),
        ("twelve months ago", FRIDAY, month(2023, 5)),
        ("2 years ago", FRIDAY, year(2022)),
        ("in 3 days", FRIDAY, days(date(2024, 5, 13))),
        ("in a week", FRIDAY, days(date(2024, 5, 13), date(2024, 5, 19))),
        ("in 2 months", at(2023, 12, 31), month(2024, 2)),
        ("in 14 months", at(2023, 12, 31), month(2025, 2)),
        ("in five years", FRIDAY, year(2029)),
        ("5 days from now", FRIDAY, days(date(2024, 5, 15))),
        ("in the last 3 days", FRIDAY, days(date(2024, 5, 7), date(2024, 5, 10))),
        ("over the past week", FRIDAY, days(date(2024, 5, 3), date(2024, 5, 10))),
        ("in the last month", FRIDAY, days(date(2024, 4, 10), date(2024, 5, 10))),
        ("the past year", FRIDAY, days(date(2023, 5, 10), date(2024, 5, 10))),
        ("in the past 3 months", at(2024, 5, 31), days(date(2024, 2, 29), date(2024, 5, 31))),
    ],
)
def test_counted_offsets(text: str, reference: datetime, span: tuple[datetime, datetime]) -> None:
    assert one(text, reference) == span


SUMMER_2023 = month(2023, 6)[0], month(2023, 8)[1]
SUMMER_2024 = month(2024, 6)[0], month(2024, 8)[1]
SUMMER_2025 = month(2025, 6)[0], month(2025, 8)[1]
WINTER_2022 = month(2022, 12)[0], month(2023, 2)[1]
WINTER_2023 = month(2023, 12)[0], month(2024, 2)[1]
WINTER_2024 = month(2024, 12)[0], month(2025, 2)[1]


@pytest.mark.parametrize(
    ("text", "reference", "span"),
    [
        ("last summer", at(2024, 7, 15), SUMMER_2023),
        ("this summer", at(2024, 7, 15), SUMMER_2024),
        ("next summer", at(2024, 7, 15), SUMMER_2025),
        ("last summer", at(2024, 9, 10), SUMMER_2024),
        ("last summer", FRIDAY, SUMMER_2023),
        ("this summer", FRIDAY, SUMMER_2024),
        ("next summer", FRIDAY, SUMMER_2024),
        ("last winter", at(2024, 1, 15), WINTER_2022),
        ("this winter", at(2024, 1, 15), WINTER_2023),
        ("next winter", at(2024, 1, 15), WINTER_2024),
        ("last winter", FRIDAY, WINTER_2023),
        ("this winter", FRIDAY, WINTER_2024),
        ("last fall", FRIDAY, (at(2023, 9, 1), at(2023, 12, 1))),
        ("last autumn", at(2023, 12, 1), (at(2023, 9, 1), at(2023, 12, 1))),
        ("this spring", FRIDAY, (at(2024, 3, 1), at(2024, 6, 1))),
        ("summer 2021", FRIDAY, (at(2021, 6, 1), at(2021, 9, 1))),
        ("in the winter of 2023", FRIDAY, WINTER_2023),
    ],
)
def test_seasons(text: str, reference: datetime, span: tuple[datetime, datetime]) -> None:
    assert one(text, reference) == span


@pytest.mark.parametrize(
    ("text", "reference", "span"),
    [
        ("in May", FRIDAY, month(2024, 5)),
        ("in May", at(2024, 4, 30), month(2023, 5)),
        ("in June", FRIDAY, month(2023, 6)),
        ("in January", FRIDAY, month(2024, 1)),
        ("during December", at(2024, 1, 3), month(2023, 12)),
        ("in May 2023", FRIDAY, month(2023, 5)),
        ("May 2023", FRIDAY, month(2023, 5)),
        ("Sept 2022", FRIDAY, month(2022, 9)),
        ("last May", FRIDAY, month(2023, 5)),
        ("last April", FRIDAY, month(2024, 4)),
        ("next May", FRIDAY, month(2025, 5)),
        ("this May", FRIDAY, month(2024, 5)),
        ("in 2023", FRIDAY, year(2023)),
        ("during 1999", FRIDAY, year(1999)),
        ("in the year 2030", FRIDAY, year(2030)),
        ("2024-05-10", at(2020, 1, 1), days(date(2024, 5, 10))),
        ("2024-02-29", FRIDAY, days(date(2024, 2, 29))),
        ("May 5", FRIDAY, days(date(2024, 5, 5))),
        ("May 25th", FRIDAY, days(date(2023, 5, 25))),
        ("March 3rd, 2022", FRIDAY, days(date(2022, 3, 3))),
        ("3 March 2022", FRIDAY, days(date(2022, 3, 3))),
        ("the 1st of March", FRIDAY, days(date(2024, 3, 1))),
    ],
)
def test_months_years_and_explicit_dates(
    text: str, reference: datetime, span: tuple[datetime, datetime]
) -> None:
    assert one(text, reference) == span


@pytest.mark.parametrize(
    ("text", "span"),
    [
        ("since 2023", (at(2023, 1, 1), at(2024, 5, 11))),
        ("since May", (at(2024, 5, 1), at(2024, 5, 11))),
        ("since last summer", (at(2023, 6, 1), at(2024, 5, 11))),
        ("since yesterday", (at(2024, 5, 9), at(2024, 5, 11))),
        ("since next week", days(date(2024, 5, 13), date(2024, 5, 19))),
    ],
)
def test_since_runs_to_the_end_of_the_reference_day(text: str, span: tuple[datetime, datetime]) -> None:
    assert one(text) == span


@pytest.mark.parametrize(
    "text",
    [
        "",
        "I love hiking in the Alps with my dog",
        "You may 5 times ask",
        "it happened in 1850 or in 2101",
        "version 2023 is out",
        "a monthly yearly todays mayday lastweek",
        "invalid 2024-02-30 and 2024-13-01",
        "every 3 days",
        "in 2023-24",
        "on the weekend we went out",
    ],
)
def test_no_false_mentions(text: str) -> None:
    assert phrases(text) == []


def test_mentions_are_in_order_case_insensitive_and_keep_the_writing() -> None:
    text = "Since LAST Summer I run; Yesterday I ran 5k, and in three weeks I race in May 2025."
    assert phrases(text) == ["Since LAST Summer", "Yesterday", "in three weeks", "in May 2025"]


def test_longest_match_wins() -> None:
    assert phrases("this morning") == ["this morning"]
    assert phrases("in May 2023") == ["in May 2023"]
    assert phrases("last weekend") == ["last weekend"]
    assert phrases("the day before yesterday") == ["the day before yesterday"]
    assert phrases("in May 5") == ["May 5"]


def test_iso_date_followed_by_time() -> None:
    assert phrases("logged at 2024-05-10T10:00:00Z") == ["2024-05-10"]


def test_text_whose_lowercase_is_longer() -> None:
    text = "İstanbul last summer, İzmir yesterday"
    assert [(m.phrase, m.start) for m in resolve_dates(text, FRIDAY)] == [
        ("last summer", at(2023, 6, 1)),
        ("yesterday", at(2024, 5, 9)),
    ]
    assert annotate(text, resolve_dates(text, FRIDAY)) == (
        "İstanbul last summer (summer 2023), İzmir yesterday (9 May 2024)"
    )


def test_reference_day_is_taken_in_utc() -> None:
    late_in_new_york = datetime(2024, 5, 10, 23, 30, tzinfo=timezone(timedelta(hours=-5)))
    assert one("today", late_in_new_york) == days(date(2024, 5, 11))
    assert one("today", datetime(2024, 5, 10, 23, 30)) == days(date(2024, 5, 10))


def test_mentions_are_utc_and_frozen() -> None:
    mention = resolve_dates("yesterday", FRIDAY)[0]
    assert mention == DateMention("yesterday", at(2024, 5, 9), at(2024, 5, 10))
    assert mention.start.tzinfo is UTC and mention.end.tzinfo is UTC
    with pytest.raises(AttributeError):
        mention.phrase = "today"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("text", "reference", "annotated"),
    [
        ("I moved to Berlin last month", FRIDAY, "I moved to Berlin last month (April 2024)"),
        ("We met last Tuesday.", FRIDAY, "We met last Tuesday (7 May 2024)."),
        ("Back last year", FRIDAY, "Back last year (2023)"),
        ("Trip last summer!", FRIDAY, "Trip last summer (summer 2023)!"),
        ("Cold last winter", FRIDAY, "Cold last winter (winter 2023/24)"),
        ("See you next week", FRIDAY, "See you next week (week of 13 May 2024)"),
        ("Busy last weekend", FRIDAY, "Busy last weekend (4 May 2024 – 5 May 2024)"),
        ("Call tonight", FRIDAY, "Call tonight (10 May 2024)"),
        (
            "Ran last month and yesterday",
            at(2024, 1, 3),
            "Ran last month (December 2023) and yesterday (2 January 2024)",
        ),
        ("Moved in May 2023 on 2023-05-02", FRIDAY, "Moved in May 2023 on 2023-05-02"),
        ("Born in 1990, summer 2021, 3 March 2022", FRIDAY, "Born in 1990, summer 2021, 3 March 2022"),
        ("Here since 2023", FRIDAY, "Here since 2023 (1 January 2023 – 10 May 2024)"),
        ("today and today", FRIDAY, "today (10 May 2024) and today (10 May 2024)"),
        ("No dates here", FRIDAY, "No dates here"),
    ],
)
def test_annotate(text: str, reference: datetime, annotated: str) -> None:
    assert annotate(text, resolve_dates(text, reference)) == annotated


def test_annotate_places_each_mention_after_its_own_phrase() -> None:
    text = "todays plan: today"
    assert annotate(text, resolve_dates(text, FRIDAY)) == "todays plan: today (10 May 2024)"


@pytest.mark.parametrize(
    ("span", "name"),
    [
        (days(date(2024, 5, 7)), "7 May 2024"),
        (month(2024, 4), "April 2024"),
        (year(2023), "2023"),
        ((at(2023, 6, 1), at(2023, 9, 1)), "summer 2023"),
        ((at(2024, 3, 1), at(2024, 6, 1)), "spring 2024"),
        ((at(2023, 9, 1), at(2023, 12, 1)), "autumn 2023"),
        (days(date(2024, 5, 6), date(2024, 5, 12)), "week of 6 May 2024"),
        (days(date(2024, 5, 7), date(2024, 5, 13)), "7 May 2024 – 13 May 2024"),
        ((at(2024, 1, 1), at(2024, 3, 1)), "1 January 2024 – 29 February 2024"),
    ],
)
def test_describe_span(span: tuple[datetime, datetime], name: str) -> None:
    assert describe_span(*span) == name
