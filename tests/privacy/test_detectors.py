"""PII detectors: real shapes are found, look-alikes (order numbers, dates, hashes, bad checksums) are not."""

from __future__ import annotations

import pytest

from bastion.privacy.detectors import find_pii, iban_valid, luhn_valid, mask_value, resolve_kinds


def kinds(text: str) -> list[str]:
    return [m.kind for m in find_pii(text)]


@pytest.mark.parametrize(("text", "kind"), [
    ("contact jane.doe+shop@example.co.uk today", "email"),
    ("card 4111 1111 1111 1111 exp 12/30", "card_number"),
    ("pan=5500-0000-0000-0004", "card_number"),
    ("iban: GB82 WEST 1234 5698 7654 32", "iban"),
    ("DE89370400440532013000", "iban"),
    ("ssn 123-45-6789", "ssn"),
    ("NI number JG 10 37 26 A", "nino"),
    ("NIR 2 84 05 73 056 091 76", "insee"),
    ("call +44 20 7946 0958", "phone"),
    ("tel. 01 23 45 67 89", "phone"),
])
def test_detectors_find_real_shapes(text: str, kind: str) -> None:
    assert kinds(text) == [kind]


@pytest.mark.parametrize("text", [
    "order 4111111111111112 shipped",          # Luhn fails
    "GB82 WEST 1234 5698 7654 33",              # mod-97 fails
    "ssn 666-12-3456 or 000-12-3456 or 912-12-3456",  # never issued
    "NI BG 12 34 56 C",                         # invalid prefix
    "NIR 2 84 05 73 056 091 77",                # wrong key
    "sha 9f86d081884c7d659a2feaa0c55ad015",
    "at 2024-01-15 12:30:45, id 1700000000123",
    "version 1.2.3.4 build 20240115",
    "INV-1001 Acme Corp 1250.00 paid",
    "user@localhost",
    "0000 0000 0000 0000",
])
def test_detectors_ignore_look_alikes(text: str) -> None:
    assert find_pii(text) == []


def test_checksums() -> None:
    assert luhn_valid("4012888888881881") and not luhn_valid("4012888888881882")
    assert iban_valid("FR14 2004 1010 0505 0001 3M02 606") and not iban_valid("FR14 2004 1010 0505 0001 3M02 607")


def test_masks_never_show_the_value() -> None:
    assert mask_value("email", "jane@example.com") == "***@example.com"
    masked = mask_value("card_number", "4111 1111 1111 1111")
    assert masked.endswith("11") and "1111 1111" not in masked


def test_kinds_from_data_classes() -> None:
    assert resolve_kinds(["email", "Card", "national_id", "favourite_colour"]) == {
        "email", "card_number", "ssn", "nino", "insee"}
    assert [m.kind for m in find_pii("a@b.example 4111111111111111", kinds={"card_number"})] == ["card_number"]
