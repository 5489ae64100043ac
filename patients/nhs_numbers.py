"""NHS numbers: validated with the modulus-11 check (the nhs-number package), stored as 10 digits."""

import re

import nhs_number
from django.core.exceptions import ValidationError

_SEPARATORS = re.compile(r"[\s-]")
# ASCII digits only: str.isdigit() also accepts "٩٩٩٠٠٠٠٠١٨" (Arabic-Indic) and "²".
_TEN_DIGITS = re.compile(r"[0-9]{10}")
_DIGITS = re.compile(r"[0-9]+")


def normalise(value: str) -> str:
    """Strip the spaces and dashes people type; the result is not yet known to be valid."""
    return _SEPARATORS.sub("", value or "")


def looks_like_nhs_number(digits: str) -> bool:
    """Ten ASCII digits (check digit not checked): what look-ups by NHS number accept."""
    return bool(_TEN_DIGITS.fullmatch(digits or ""))


def validate_nhs_number(value: str) -> None:
    digits = normalise(value)
    if not _DIGITS.fullmatch(digits):
        raise ValidationError("An NHS number is 10 digits, with no letters.", code="not_digits")
    if len(digits) != 10:
        raise ValidationError("An NHS number is 10 digits long.", code="length")
    if not nhs_number.is_valid(digits):
        raise ValidationError(
            "This is not a valid NHS number: check the digits (its check digit does not match).",
            code="check_digit",
        )


def format_nhs_number(digits: str) -> str:
    """Shown 3-3-4, as on NHS cards and letters."""
    return f"{digits[:3]} {digits[3:6]} {digits[6:]}" if len(digits) == 10 else digits


def test_range_numbers(start: int = 0):
    """Valid numbers in the 999 test range, in order (never issued to a real person): for demo and tests."""
    stem = 999_000_000 + start
    while stem <= 999_999_999:
        check = nhs_number.calculate_checksum(str(stem))
        if check != 10:
            yield f"{stem}{check}"
        stem += 1
