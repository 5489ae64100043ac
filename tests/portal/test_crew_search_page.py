"""Issue 17: the search page as an ambulance crew uses it — name and an age instead of a date of birth, a postcode,
sex; ranked, at most 20 shown with "refine your search", each shown patient audited once, bad input a field
error and never a 500."""

import datetime
import re

import pytest
from django.urls import reverse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from audit.models import AccessBasis, AccessEvent, AccessOutcome
from patients.crew_search import _years_before
from portal.forms import NameAndAgeSearchForm
from tests import factories
from tests.sharing.test_coverage import upheld_objection

pytestmark = pytest.mark.django_db


def aged(years):
    from django.utils import timezone

    return _years_before(timezone.localdate(), years) - datetime.timedelta(days=10)


def person(family_name, years=70, **fields):
    fields.setdefault("postcode", "")
    return factories.PatientFactory(family_name=family_name, date_of_birth=aged(years), **fields)


def search(client, **fields):
    return client.post(reverse("patient-search"), {"by": "name", **fields})


def rows(response):
    return re.findall(r'<tr class="nhsuk-table__row" role="row">\s*<td', response.content.decode())


def test_the_form_asks_for_an_age_a_range_a_postcode_and_sex(client, outsider):
    client.force_login(outsider)
    body = client.get(reverse("patient-search")).content.decode()
    assert "About how old? For example, 70." in body
    assert '<legend class="nhsuk-fieldset__legend nhsuk-fieldset__legend--s">Or an age range</legend>' in body
    assert "at most 30 years apart, for example 60 to 80." in body
    assert re.search(r'<input type="text" name="age" [^>]*inputmode="numeric"', body)
    assert 'name="age_from"' in body and 'name="age_to"' in body
    assert "The full postcode or its first part, for example N19 5NF or N19." in body
    assert re.search(r'name="sex" type="radio" value="" checked', body)
    assert 'value="female"' in body and 'value="male"' in body
    assert "Date of birth" in body  # still there: an exact date when it is known


@pytest.mark.hazard("H-06")
def test_a_misspelt_name_and_about_an_age_find_the_patient(client, outsider):
    smith = person("Smith", 72, given_name="Doreen", postcode="NW5 1TL")
    person("Smith", 40, given_name="Young")
    client.force_login(outsider)
    response = search(client, family_name="Smyth", age="70", postcode="nw5")
    assert response.status_code == 200
    assert response.context["results"] == [smith]
    body = response.content.decode()
    assert "Doreen SMITH" in body and "NW5 1TL" not in body  # demographics only: no postcode shown
    assert "Refine your search" not in body


def test_an_age_range_and_sex_narrow_the_search(client, outsider):
    from patients.models import Sex

    woman = person("Okafor", 64, sex=Sex.FEMALE)
    person("Okafor", 64, sex=Sex.MALE)
    person("Okafor", 50, sex=Sex.FEMALE)
    client.force_login(outsider)
    response = search(client, family_name="Okafor", age_from="60", age_to="70", sex="female")
    assert response.context["results"] == [woman]


def test_a_date_of_birth_is_still_an_exact_search(client, outsider):
    born = datetime.date(1950, 4, 2)
    smith = factories.PatientFactory(family_name="Smith", date_of_birth=born)
    factories.PatientFactory(family_name="Smith", date_of_birth=datetime.date(1950, 4, 3))
    client.force_login(outsider)
    response = search(client, family_name="Smith", dob_day="2", dob_month="4", dob_year="1950")
    assert response.context["results"] == [smith]


@pytest.mark.hazard("H-06")
def test_more_than_twenty_shows_the_best_twenty_asks_to_refine_and_audits_only_those(client, outsider):
    best = person("Okafor", 70, given_name="Best")
    crowd = [person("Okafor", 73, given_name=f"Name{n:02}") for n in range(22)]
    client.force_login(outsider)
    response = search(client, family_name="Okafor", given_name="", age="70")
    shown = response.context["results"]
    assert shown == [best, *crowd[:19]] and len(rows(response)) == 20
    body = response.content.decode()
    assert "More patients match than can be shown: these are the 20 closest matches. Refine your search" in body
    assert body.index("Refine your search") < body.index("<table")  # said before the list, not after it

    events = AccessEvent.objects.filter(request_id=response["X-Request-ID"])
    assert sorted(events.values_list("patient_id", flat=True)) == sorted(patient.pk for patient in shown)
    assert {crowd[19].pk, crowd[20].pk, crowd[21].pk}.isdisjoint(events.values_list("patient_id", flat=True))
    for event in events:
        assert (event.outcome, event.basis, event.page, event.user_id, event.reason) == (
            AccessOutcome.ALLOWED,
            AccessBasis.NONE,
            "search:name",
            outsider.pk,
            "",
        )
        assert event.path == reverse("patient-search")  # the terms (a name, an age) stay out of the trail
        assert event.patient_nhs_number == next(p.nhs_number for p in shown if p.pk == event.patient_id)


def test_twenty_or_fewer_are_all_shown_without_asking_to_refine(client, outsider):
    for n in range(20):
        person("Okafor", given_name=f"Name{n:02}")
    client.force_login(outsider)
    response = search(client, family_name="Okafor", age="70")
    assert len(response.context["results"]) == 20 and response.context["truncated"] is False
    assert "Refine your search" not in response.content.decode()
    assert AccessEvent.objects.filter(request_id=response["X-Request-ID"]).count() == 20


def test_no_match_is_still_one_audited_search_naming_nobody(client, outsider):
    client.force_login(outsider)
    response = search(client, family_name="Nobodyhere", age="70")
    assert response.status_code == 200 and response.context["results"] == []
    assert "No patient matches this search" in response.content.decode()
    event = AccessEvent.objects.get(request_id=response["X-Request-ID"])
    assert (event.patient_id, event.page, event.reason) == (None, "search:name", "no-match")


@pytest.mark.hazard("H-11")
def test_opted_out_and_restricted_patients_are_found_as_by_any_search(client, outsider):
    """As the search by date of birth: an opted-out patient is found (the record then says so), a restricted one
    is found and tagged, with no address or postcode on the page, whatever postcode was typed."""
    objector = person("Okafor", 70, given_name="Objector", postcode="NW5 1TL")
    upheld_objection(objector, factories.UserFactory(is_staff=True))
    hidden = person("Okafor", 71, given_name="Hidden", postcode="NW5 1TL", address="1 Secret Row", restricted=True)
    client.force_login(outsider)
    response = search(client, family_name="Okafor", age="70", postcode="SE1 7EH")
    assert response.context["results"] == [hidden]  # kept whatever the postcode, the objector is not in SE1
    body = response.content.decode()
    assert "Restricted</strong>" in body and "1 Secret Row" not in body and "NW5 1TL" not in body
    response = search(client, family_name="Okafor", age="70", postcode="NW5 1TL")
    assert response.context["results"] == [objector, hidden]
    assert AccessEvent.objects.filter(request_id=response["X-Request-ID"]).count() == 2


@pytest.mark.hazard("H-06")
@pytest.mark.parametrize(
    ("fields", "field_id", "message"),
    [
        ({"family_name": "", "age": "70"}, "id_family_name", "Enter the patient's family name."),
        ({"family_name": "1234", "age": "70"}, "id_family_name", "Enter the family name in letters"),
        ({"family_name": "Smith"}, "id_dob_day", "Enter the patient's date of birth, or their age or an age range"),
        ({"family_name": "Smith", "age": "121"}, "id_age", "The age must be 120 or less"),
        ({"family_name": "Smith", "age": "-1"}, "id_age", "The age must be 0 or more"),
        ({"family_name": "Smith", "age": "seventy"}, "id_age", "Enter the age as a whole number, for example 70"),
        ({"family_name": "Smith", "age": "9" * 5000}, "id_age", "Enter the age as a whole number, for example 70"),
        ({"family_name": "Smith", "age_from": "60"}, "id_age_to", "Enter the oldest age of the range"),
        ({"family_name": "Smith", "age_to": "60"}, "id_age_from", "Enter the youngest age of the range"),
        (
            {"family_name": "Smith", "age_from": "80", "age_to": "60"},
            "id_age_to",
            "The oldest age must be the same as or more than the youngest",
        ),
        (
            {"family_name": "Smith", "age_from": "20", "age_to": "80"},
            "id_age_to",
            "Make the range 30 years or less, for example 60 to 90",
        ),
        (
            {"family_name": "Smith", "age": "70", "age_from": "60", "age_to": "80"},
            "id_age_from",
            "Give an age or an age range, not both",
        ),
        (
            {"family_name": "Smith", "age": "70", "dob_day": "1", "dob_month": "1", "dob_year": "1956"},
            "id_age",
            "Give the date of birth or an age, not both",
        ),
        (
            {"family_name": "Smith", "age": "70", "postcode": "ZZZ"},
            "id_postcode",
            "Enter a postcode like N19 5NF, or its first part like N19",
        ),
        (
            {"family_name": "Smith", "age": "70", "postcode": "N19 5NF 5NF 5NF"},
            "id_postcode",
            "Enter a postcode like N19 5NF, or its first part like N19",
        ),
        ({"family_name": "Smith", "age": "70", "sex": "x"}, "id_sex", "Select female, male or not known"),
        (
            {"family_name": "Smith", "dob_day": "31", "dob_month": "2", "dob_year": "1980"},
            "id_dob_day",
            "Date of birth must be a real date.",
        ),
    ],
)
def test_bad_input_is_a_field_error_linked_from_the_summary(client, outsider, fields, field_id, message):
    client.force_login(outsider)
    response = search(client, **fields)
    assert response.status_code == 400 and response.context["results"] is None
    body = response.content.decode().replace("&#x27;", "'")
    assert f'<li><a href="#{field_id}">{message}</a></li>' in body  # the error summary links to the field
    inline = "id_dob" if field_id == "id_dob_day" else field_id  # the date's message sits on its group
    assert re.search(
        rf'id="{inline}-error">\s*<span class="nhsuk-u-visually-hidden">Error: </span>{re.escape(message)}', body
    )
    assert not AccessEvent.objects.exists()


FIELDS = [
    "family_name",
    "given_name",
    "dob_day",
    "dob_month",
    "dob_year",
    "age",
    "age_from",
    "age_to",
    "postcode",
    "sex",
]
typed = st.one_of(
    st.sampled_from(["", "70", "0", "120", "121", "-1", "60", "80", "Smith", "N19", "N19 5NF", "female", "1", "12"]),
    st.integers(-(10**6), 10**6).map(str),
    st.text(alphabet=st.characters(exclude_categories=("Cs",)), max_size=12),
)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    database=None,
)
@given(data=st.dictionaries(st.sampled_from(FIELDS), typed))
def test_any_input_is_a_page_or_field_errors_never_a_500(client, outsider, data):
    """Whatever is typed: a valid form is a 200 with results, an invalid one a 400 whose summary lists each of
    the form's errors (Hypothesis over the form's fields)."""
    person("Smith", 70)
    client.force_login(outsider)
    form = NameAndAgeSearchForm(data)
    valid = form.is_valid()
    response = search(client, **data)
    assert response.status_code == (200 if valid else 400)
    if valid:
        assert response.context["results"] is not None and len(response.context["results"]) <= 20
    else:
        summary = response.context["name_form"].errors
        assert summary and response.context["results"] is None
        assert 'class="nhsuk-error-summary"' in response.content.decode()
