import pytest
from django.core.exceptions import ValidationError

from patients import nhs_numbers
from patients.nhs_numbers import format_nhs_number, normalise, validate_nhs_number

pytestmark = pytest.mark.hazard("H-06")


@pytest.mark.parametrize("value", ["9434765919", "943 476 5919", "943-476-5919", "9912003888"])
def test_valid_numbers_pass(value):
    validate_nhs_number(value)


@pytest.mark.parametrize(
    ("value", "code"),
    [
        ("9434765918", "check_digit"),  # last digit wrong
        ("943476591", "length"),
        ("94347659190", "length"),
        ("94347A5919", "not_digits"),
        ("", "not_digits"),
    ],
)
def test_invalid_numbers_fail_with_a_reason(value, code):
    with pytest.raises(ValidationError) as error:
        validate_nhs_number(value)
    assert error.value.code == code


def test_number_whose_check_digit_would_be_ten_is_invalid():
    # 000000006 weighs to 12 (remainder 1), so its check digit would be 10: no ending makes it valid.
    for last in "0123456789":
        with pytest.raises(ValidationError):
            validate_nhs_number("000000006" + last)


def test_format_and_normalise():
    assert format_nhs_number("9434765919") == "943 476 5919"
    assert normalise(" 943 476-5919 ") == "9434765919"


def test_test_range_numbers_are_valid_unique_and_in_the_999_range():
    numbers = list(zip(range(200), nhs_numbers.test_range_numbers(), strict=False))
    values = [n for _, n in numbers]
    assert len(set(values)) == 200
    for value in values:
        assert value.startswith("999")
        validate_nhs_number(value)


@pytest.mark.parametrize("value", ["٩٩٩٠٠٠٠٠١٨", "９９９０００００１８", "99900000¹⁸", "999 000 00١٨"])
def test_finding_9_only_ascii_digits_make_an_nhs_number(value):
    """str.isdigit() accepts Arabic-Indic, full-width and superscript digits, and nhs-number's checksum reads them
    as numbers: "٩٩٩٠٠٠٠٠١٨" passed as 9990000018. Only 0-9 are NHS number digits."""
    with pytest.raises(ValidationError) as error:
        validate_nhs_number(value)
    assert error.value.code == "not_digits"
    assert not nhs_numbers.looks_like_nhs_number(normalise(value))


@pytest.mark.django_db
def test_finding_9_the_search_page_refuses_non_ascii_digits_with_a_400(client, clinician):
    client.force_login(clinician)
    response = client.post("/patients/search/", {"by": "nhs", "nhs_number": "٩٩٩٠٠٠٠٠١٨"})
    assert response.status_code == 400
