from __future__ import annotations

import pytest

from memory.pii import PiiKind, redact

ALL: tuple[PiiKind, ...] = ("card", "email", "phone")


@pytest.mark.parametrize(
    "card",
    [
        "4111 1111 1111 1111",
        "4111-1111-1111-1111",
        "4111111111111111",
        "5500-0000-0000-0004",
        "5500 0000 0000 0004",
        "378282246310005",
        "3782 822463 10005",
        "6011111111111117",
        "4222222222222",
    ],
)
def test_luhn_valid_cards_are_redacted(card: str) -> None:
    assert redact(f"my card is {card}, thanks", ALL) == ("my card is [CARD], thanks", {"card": 1})


@pytest.mark.parametrize(
    "number",
    [
        "4111111111111112",
        "1234567812345678",
        "0000000000000000",
        "4111 1111 1111 1112",
        "4111-1111-1111-1113",
    ],
)
def test_numbers_failing_luhn_are_not_cards(number: str) -> None:
    text = f"order {number} shipped"
    assert redact(text, ALL) == (text, {})


def test_card_is_never_counted_as_phone() -> None:
    assert redact("4111 1111 1111 1111", ["card", "phone"]) == ("[CARD]", {"card": 1})


@pytest.mark.parametrize(
    "phone",
    [
        "+49 30 1234567",
        "+1 (555) 123-4567",
        "(555) 123-4567",
        "555-123-4567",
        "555.123.4567",
        "555 123 4567",
        "1-555-123-4567",
        "+44 20 7946 0958",
        "+4930123456",
        "0176 12345678",
        "030 1234567",
        "020 7946 0958",
    ],
)
def test_phone_formats_are_redacted(phone: str) -> None:
    assert redact(f"call {phone} today.", ALL) == ("call [PHONE] today.", {"phone": 1})


@pytest.mark.parametrize(
    "text",
    [
        "we met on 2024-05-10 at 10:30",
        "back in 2023 it was 42 degrees",
        "upgrade to python 3.11.7 now",
        "it cost $1,250.00 in total",
        "the office is in 10115 Berlin",
        "dates like 05/10/2024 and 10-05-2024",
        "server 192.168.100.1 is down",
        "ticket 1234567 and order 12345678901",
        "+12 is not a number",
    ],
)
def test_ordinary_numbers_are_not_phones(text: str) -> None:
    assert redact(text, ALL) == (text, {})


def test_too_many_digits_is_not_a_phone() -> None:
    text = "+49 30 1234567 8901 2345"
    assert redact(text, ["phone"]) == (text, {})


@pytest.mark.parametrize(
    "email",
    ["bob@example.com", "name.surname+tag@sub.example.co.uk", "a_b-c%d@my-host.io", "X.Y@EXAMPLE.ORG"],
)
def test_emails_are_redacted(email: str) -> None:
    assert redact(f"write to {email}.", ALL) == ("write to [EMAIL].", {"email": 1})


@pytest.mark.parametrize("text", ["meet @ noon", "user@localhost", "a@b.c", "@handle on twitter"])
def test_not_emails(text: str) -> None:
    assert redact(text, ALL) == (text, {})


def test_counts_every_kind() -> None:
    text = (
        "Card 4111 1111 1111 1111 or 378282246310005; mail a@example.com or b@example.org; "
        "call +1 (555) 123-4567."
    )
    redacted, counts = redact(text, ALL)
    assert redacted == "Card [CARD] or [CARD]; mail [EMAIL] or [EMAIL]; call [PHONE]."
    assert counts == {"card": 2, "email": 2, "phone": 1}


def test_only_requested_kinds_are_redacted() -> None:
    text = "mail a@example.com, call 555-123-4567, pay with 4111111111111111"
    assert redact(text, ["email"]) == (
        "mail [EMAIL], call 555-123-4567, pay with 4111111111111111",
        {"email": 1},
    )
    assert redact(text, ["phone"]) == (
        "mail a@example.com, call [PHONE], pay with 4111111111111111",
        {"phone": 1},
    )
    assert redact(text, []) == (text, {})


def test_text_without_pii_is_returned_unchanged() -> None:
    assert redact("", ALL) == ("", {})
    assert redact("I love hiking in the Alps", ALL) == ("I love hiking in the Alps", {})
