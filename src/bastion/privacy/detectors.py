"""Find personal data in text: e-mails, phone numbers, IBANs, card numbers and national ids.

Every detector validates what its pattern matched (Luhn for cards, ISO 13616 mod-97 and the
country's length for IBANs, the check key of a French INSEE number, the number plans that US SSNs
and UK NINOs never use) so that order numbers, timestamps and hashes are not reported as personal
data. Matches are returned with their kind and position; callers mask them before showing them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

# Kinds a threat model's data_classes may name (plus the aliases below).
DETECTOR_KINDS: tuple[str, ...] = ("email", "phone", "iban", "card_number", "ssn", "nino", "insee")
KIND_ALIASES: dict[str, str] = {
    "mail": "email", "e_mail": "email", "email_address": "email", "telephone": "phone", "phone_number": "phone",
    "mobile": "phone", "card": "card_number", "pan": "card_number", "credit_card": "card_number",
    "cc_number": "card_number", "social_security_number": "ssn", "national_insurance_number": "nino",
    "nir": "insee", "national_id": "national_id",
}
# `national_id` selects every national-id detector.
_NATIONAL_IDS = ("ssn", "nino", "insee")

_EMAIL = re.compile(r"(?<![\w.+-])[A-Za-z0-9][\w.+-]{0,63}@[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63})*"
                    r"\.[A-Za-z]{2,24}\b")
_CARD = re.compile(r"(?<![\d.-])(?:\d[ -]?){12,18}\d(?![\d.-])")
_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?\b")
# International form (+CC ...) or a grouped national form with a trunk 0: bare digit runs are ids, not phones.
_PHONE = re.compile(r"(?<![\w+])(?<!\d[ .-])(?:\+\d{1,3}[ .-]?(?:\(0\)[ .-]?)?(?:\(?\d{1,4}\)?[ .-]?){2,5}\d{1,4}"
                    r"|\(?0[1-9]\d{0,3}\)?(?:[ .-]\d{2,4}){2,4})(?![\w]|[ .-]\d)")
_SSN = re.compile(r"(?<![\d-])(\d{3})-(\d{2})-(\d{4})(?![\d-])")
_NINO = re.compile(r"\b([A-CEGHJ-PR-TW-Z]{2}) ?(\d{2}) ?(\d{2}) ?(\d{2}) ?([A-D])\b")
_INSEE = re.compile(r"(?<!\d)([12]) ?(\d{2}) ?(\d{2}) ?(\d{2}|2[AB]) ?(\d{3}) ?(\d{3}) ?(\d{2})(?!\d)")

# ISO 13616 lengths of the countries most often seen (an IBAN of another length is not one).
_IBAN_LENGTHS: dict[str, int] = {
    "AD": 24, "AT": 20, "BE": 16, "BG": 22, "CH": 21, "CY": 28, "CZ": 24, "DE": 22, "DK": 18, "EE": 20,
    "ES": 24, "FI": 18, "FR": 27, "GB": 22, "GR": 27, "HR": 21, "HU": 28, "IE": 22, "IS": 26, "IT": 27,
    "LI": 21, "LT": 20, "LU": 20, "LV": 21, "MC": 27, "MT": 31, "NL": 18, "NO": 15, "PL": 28, "PT": 25,
    "RO": 24, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "TR": 26, "UA": 29,
}
# Issuer prefixes of the card networks (Visa, Mastercard, Amex, Discover, JCB, Diners, UnionPay, Maestro).
_CARD_PREFIX = re.compile(r"^(?:4|5[1-5]|2[2-7]|3[47]|6(?:011|5|4[4-9]|22)|35|3[068]|62|5[06-9]|6[0-9])")
_NINO_BAD_PREFIXES = frozenset({"BG", "GB", "KN", "NK", "NT", "TN", "ZZ"})


@dataclass(frozen=True)
class PiiMatch:
    """One piece of personal data found in a text: its kind, the matched text and where it is."""

    kind: str
    value: str
    start: int
    end: int

    @property
    def masked(self) -> str:
        return mask_value(self.kind, self.value)


def luhn_valid(digits: str) -> bool:
    """The Luhn (mod-10) check every payment card number passes."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def iban_valid(text: str) -> bool:
    """ISO 13616: known country length and the mod-97 check (the remainder is 1)."""
    iban = text.replace(" ", "").upper()
    if _IBAN_LENGTHS.get(iban[:2]) != len(iban):
        return False
    moved = iban[4:] + iban[:4]
    number = "".join(str(int(ch, 36)) for ch in moved)
    return int(number) % 97 == 1


def _card(match: re.Match[str]) -> bool:
    digits = re.sub(r"\D", "", match.group())
    # One separator style only: "2024-01-15 1234" is a date and a number, not a card.
    separators = set(re.sub(r"\d", "", match.group()))
    return (13 <= len(digits) <= 19 and len(separators) <= 1 and len(set(digits)) > 1
            and bool(_CARD_PREFIX.match(digits)) and luhn_valid(digits))


def _iban(match: re.Match[str]) -> bool:
    return iban_valid(match.group())


def _phone(match: re.Match[str]) -> bool:
    digits = re.sub(r"\D", "", match.group())
    # E.164 allows at most 15 digits; fewer than 8 is an extension or a code.
    return 8 <= len(digits) <= 15 and len(set(digits)) > 2


def _ssn(match: re.Match[str]) -> bool:
    area, group, serial = match.groups()
    # Never issued: area 000, 666 and 9xx; group 00; serial 0000 (SSA number plan).
    return area not in ("000", "666") and area[0] != "9" and group != "00" and serial != "0000"


def _nino(match: re.Match[str]) -> bool:
    prefix = match.group(1)
    return prefix not in _NINO_BAD_PREFIXES and prefix[1] != "O"


def _insee(match: re.Match[str]) -> bool:
    sex, year, month, dept, commune, order, key = match.groups()
    if not (1 <= int(month) <= 12 or 20 <= int(month) <= 42 or 50 <= int(month) <= 99):
        return False
    # Corsica: 2A/2B count as 19/18 in the key computation.
    dept_digits = {"2A": "19", "2B": "18"}.get(dept, dept)
    number = int(f"{sex}{year}{month}{dept_digits}{commune}{order}")
    return 97 - number % 97 == int(key)


_DETECTORS: dict[str, tuple[re.Pattern[str], Callable[[re.Match[str]], bool] | None]] = {
    "email": (_EMAIL, None),
    "card_number": (_CARD, _card),
    "iban": (_IBAN, _iban),
    "ssn": (_SSN, _ssn),
    "nino": (_NINO, _nino),
    "insee": (_INSEE, _insee),
    "phone": (_PHONE, _phone),
}


def resolve_kinds(names: Iterable[str]) -> set[str]:
    """Detector kinds selected by data-class entries (`email`, `card`, `national_id`...); unknown names are fields."""
    kinds: set[str] = set()
    for name in names:
        key = KIND_ALIASES.get(name.lower(), name.lower())
        if key == "national_id":
            kinds.update(_NATIONAL_IDS)
        elif key in DETECTOR_KINDS:
            kinds.add(key)
    return kinds


def find_pii(text: str, kinds: Iterable[str] | None = None) -> list[PiiMatch]:
    """Validated personal data in `text` (all detectors, or only `kinds`), in text order, never overlapping."""
    wanted = set(DETECTOR_KINDS) if kinds is None else set(kinds)
    found: list[PiiMatch] = []
    taken: list[tuple[int, int]] = []
    # Detector order matters: a card number or an IBAN is not also reported as a phone number.
    for kind, (pattern, valid) in _DETECTORS.items():
        if kind not in wanted:
            continue
        for match in pattern.finditer(text):
            start, end = match.span()
            if any(s < end and start < e for s, e in taken):
                continue
            if valid is None or valid(match):
                found.append(PiiMatch(kind, match.group(), start, end))
                taken.append((start, end))
    return sorted(found, key=lambda m: m.start)


def mask_value(kind: str, value: str) -> str:
    """A display form that never shows the value: e-mails keep the domain, numbers their last 2 characters."""
    if kind == "email" and "@" in value:
        return "***@" + value.split("@", 1)[1]
    compact = re.sub(r"[\s-]", "", value)
    return "*" * max(len(compact) - 2, 3) + compact[-2:]
