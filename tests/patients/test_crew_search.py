"""Issue 17: finding a patient as an ambulance crew can (patients.crew_search), on SQLite and PostgreSQL alike.

A name spelt as heard, an approximate age or a range (or the date of birth), perhaps a postcode and sex; ranked,
capped at 20, never on a name alone. Ages are counted on a fixed day (`TODAY`) unless the test is about the day.
"""

import datetime
import os

import pytest
import time_machine
from django.conf import settings as django_settings
from django.db.models import Value
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from patients import crew_search
from patients.crew_search import Ages, Postcode, find, parse_postcode, phonetic_key
from patients.models import Patient, Sex
from tests import factories

pytestmark = pytest.mark.django_db

TODAY = datetime.date(2026, 6, 15)
ON_POSTGRESQL = os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://"))


def aged(years, today=TODAY):
    """A date of birth making someone `years` old on `today` (their birthday ten days before)."""
    return crew_search._years_before(today, years) - datetime.timedelta(days=10)


def person(family_name, years=70, **fields):
    fields.setdefault("given_name", "Pat")
    fields.setdefault("postcode", "")
    return factories.PatientFactory(family_name=family_name, date_of_birth=aged(years), **fields)


def about(age, family_name, **terms):
    return find(family_name=family_name, ages=Ages.about(age), today=TODAY, **terms)


# --- Misspellings: what Soundex finds, and what it does not -------------------------------------------------------


@pytest.mark.hazard("H-06")
@pytest.mark.parametrize(
    ("recorded", "heard"),
    [
        ("Smith", "Smyth"),
        ("Stephens", "Stevens"),
        ("Macdonald", "McDonald"),
        ("Meyer", "Meier"),
        ("Ashcroft", "Ashcraft"),
        ("O'Brien", "OBrien"),
        ("Núñez", "Nunez"),
        ("Ødegård", "Odegard"),  # a first letter outside A-Z is not ruled out by the first-letter test
    ],
)
def test_a_name_spelt_as_heard_finds_the_patient_both_ways(recorded, heard):
    patient = person(recorded)
    other = person(heard)
    assert about(70, heard).patients == [other, patient]  # the name as typed first, the one sounding alike next
    assert about(70, recorded).patients == [patient, other]


@pytest.mark.parametrize(
    ("recorded", "heard"),
    [
        ("Phillips", "Filips"),  # Soundex keeps the first letter: a misheard first letter is not matched
        ("Knight", "Night"),
        ("Thompson", "Thomson"),  # T512 and T525: the M-P-S and M-S-N codes differ
    ],
)
def test_what_soundex_does_not_match(recorded, heard):
    person(recorded)
    assert about(70, heard).patients == []


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("Robert", "R163"),
        ("Rupert", "R163"),
        ("Ashcraft", "A261"),  # the H/W rule: S and C either side of an H are coded once
        ("Tymczak", "T522"),
        ("Pfister", "P236"),  # a second letter coded as the first is not coded again
        ("Honeyman", "H555"),
        ("Lee", "L000"),
        ("Smith", "S530"),
        ("smyth", "S530"),
        ("O'Brien-Hall", "O165"),
        ("Ødegård", "O326"),
        ("", ""),
        ("—", ""),
    ],
)
def test_the_key_is_american_soundex_in_python_and_in_the_database(name, key):
    anyone = factories.PatientFactory()
    in_database = Patient.objects.filter(pk=anyone.pk).annotate(key=crew_search.PhoneticKey(Value(name)))
    assert phonetic_key(name) == key
    assert in_database.values_list("key", flat=True).get() == key


@pytest.mark.hazard("H-06")
@pytest.mark.skipif(not ON_POSTGRESQL, reason="holds the Python port to PostgreSQL's fuzzystrmatch soundex()")
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture], database=None)
@given(
    name=st.text(
        alphabet=st.one_of(
            st.sampled_from("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz' -hwHW"),
            st.sampled_from(crew_search._ACCENTED),
            st.characters(exclude_categories=("Cs",), exclude_characters="\x00"),
        ),
        max_size=20,
    )
)
def test_the_python_key_is_postgresqls_soundex_of_the_same_letters(name):
    anyone = Patient.objects.first() or factories.PatientFactory()
    in_database = Patient.objects.filter(pk=anyone.pk).annotate(key=crew_search.PhoneticKey(Value(name)))
    assert in_database.values_list("key", flat=True).get() == phonetic_key(name)


def test_the_given_name_narrows_by_its_start_or_its_sound_and_ranks_in_that_order():
    jon, jonathan, john = (
        person("Smith", given_name="Jon"),
        person("Smith", given_name="Jonathan"),
        person("Smith", given_name="John"),
    )
    person("Smith", given_name="Mary")
    assert about(70, "Smith", given_name="jon").patients == [jon, jonathan, john]


# --- Ages --------------------------------------------------------------------------------------------------------


@pytest.mark.hazard("H-06")
def test_about_an_age_is_five_years_either_side_nearest_first():
    by_age = {years: person("Okafor", years, given_name=f"Age{years}") for years in (64, 65, 68, 70, 75, 76)}
    found = about(70, "Okafor").patients
    assert found == [by_age[70], by_age[68], by_age[65], by_age[75]]  # 0, 2, then 5 years off (by given name)


def test_about_a_young_age_stops_at_zero():
    baby, six = person("Okafor", 0, given_name="Baby"), person("Okafor", 6, given_name="Six")
    person("Okafor", 7)
    assert about(1, "Okafor").patients == [baby, six]
    assert Ages.about(1) == Ages(youngest=0, oldest=6, likeliest_twice=2)
    assert Ages.about(118) == Ages(youngest=113, oldest=120, likeliest_twice=236)


@pytest.mark.hazard("H-06")
def test_an_age_range_finds_those_within_it_nearest_its_middle_first():
    by_age = {years: person("Okafor", years, given_name=f"Age{years}") for years in (59, 60, 63, 70, 80, 81)}
    found = find(family_name="Okafor", ages=Ages.between(60, 80), today=TODAY).patients
    assert found == [by_age[70], by_age[63], by_age[60], by_age[80]]


@pytest.mark.hazard("H-06")
@settings(max_examples=500, deadline=None, database=None)
@given(
    today=st.dates(min_value=datetime.date(1900, 1, 1), max_value=datetime.date(2200, 12, 31)),
    youngest=st.integers(0, 120),
    width=st.integers(0, 30),
    offset_days=st.integers(-500, 45000),
)
def test_the_birth_dates_searched_are_exactly_those_of_the_ages_searched(today, youngest, width, offset_days):
    """Pure: for any day and dates of birth around the bounds, inside the range ⇔ `Patient.age` is in the ages."""
    ages = Ages.between(youngest, min(120, youngest + width))
    earliest, latest = crew_search.born_within(ages, today)
    for born in (earliest, latest, earliest - datetime.timedelta(days=1), latest + datetime.timedelta(days=1)):
        age = Patient(date_of_birth=born).age(on=today)
        assert (earliest <= born <= latest) == (ages.youngest <= age <= ages.oldest), born
    born = today - datetime.timedelta(days=offset_days)
    if born.year >= 1:
        age = Patient(date_of_birth=born).age(on=today)
        assert (earliest <= born <= latest) == (ages.youngest <= age <= ages.oldest), born


@pytest.mark.hazard("H-06")
@pytest.mark.parametrize(
    ("today", "seventy", "not_seventy"),
    [
        # A birthday today counts; tomorrow's does not yet.
        (TODAY, [datetime.date(1956, 6, 15), datetime.date(1955, 6, 16)], [datetime.date(1956, 6, 16)]),
        # Born on 29 February: 70 on 1 March in a year without one (Patient.age's rule), not on the 28th.
        (
            datetime.date(2026, 3, 1),
            [datetime.date(1956, 2, 29), datetime.date(1956, 3, 1), datetime.date(1955, 3, 2)],
            [datetime.date(1956, 3, 2), datetime.date(1955, 3, 1)],
        ),
        (
            datetime.date(2026, 2, 28),
            [datetime.date(1956, 2, 28), datetime.date(1955, 3, 1)],
            [datetime.date(1956, 2, 29), datetime.date(1955, 2, 28)],
        ),
    ],
)
def test_the_database_counts_ages_as_patient_age_does(today, seventy, not_seventy):
    for born in seventy + not_seventy:
        factories.PatientFactory(family_name="Okafor", date_of_birth=born)
    found = find(family_name="Okafor", ages=Ages.between(70, 70), today=today).patients
    assert sorted(patient.date_of_birth for patient in found) == sorted(seventy)
    assert {patient.age(on=today) for patient in found} == {70}


@pytest.mark.hazard("H-06")
def test_ages_are_counted_on_todays_date_in_london():
    """23:30 UTC on 10 June is 00:30 on 11 June in London: a patient born on 11 June is a year older already."""
    seventy = factories.PatientFactory(family_name="Okafor", date_of_birth=datetime.date(1956, 6, 11))
    factories.PatientFactory(family_name="Okafor", date_of_birth=datetime.date(1956, 6, 12))
    with time_machine.travel(datetime.datetime(2026, 6, 10, 23, 30, tzinfo=datetime.UTC), tick=False):
        assert find(family_name="Okafor", ages=Ages.between(70, 70)).patients == [seventy]


@pytest.mark.hazard("H-06")
def test_never_on_a_name_alone():
    """A name alone is refused, and every patient has a date of birth (the model requires one; ingest refuses a
    Patient without birthDate), so the age is always counted from a date the source gave."""
    person("Okafor")
    with pytest.raises(ValueError, match="never by a name alone"):
        find(family_name="Okafor")
    with pytest.raises(ValueError, match="never by a name alone"):
        find(family_name="Okafor", born_on=aged(70), ages=Ages.about(70))
    assert Patient._meta.get_field("date_of_birth").null is False


def test_a_date_of_birth_is_searched_exactly_and_the_name_tolerantly():
    born = datetime.date(1950, 4, 2)
    smith = factories.PatientFactory(family_name="Smith", date_of_birth=born)
    factories.PatientFactory(family_name="Smith", date_of_birth=datetime.date(1950, 4, 3))
    assert find(family_name="Smyth", born_on=born).patients == [smith]


# --- Postcode, sex, S-flag ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "parsed"),
    [
        ("N19 5NF", Postcode("N19", "5NF")),
        ("n195nf", Postcode("N19", "5NF")),
        (" sw1a 1aa ", Postcode("SW1A", "1AA")),
        ("N1 5NF", Postcode("N1", "5NF")),
        ("N19", Postcode("N19")),
        ("ec1a", Postcode("EC1A")),
        ("N195", None),
        ("5NF", None),
        ("ZZZ", None),
        ("N19 5N", None),
        ("N١٩", None),  # Arabic-Indic digits are not postcode digits
    ],
)
def test_a_postcodes_shape_is_checked_loosely(typed, parsed):
    assert parse_postcode(typed) == parsed


def test_the_outward_code_finds_that_district_only():
    exact = person("Okafor", postcode="N19 5NF", given_name="A")
    lower = person("Okafor", postcode="n19 3ab", given_name="B")
    compact = person("Okafor", postcode="N195NF", given_name="C")
    not_recorded = person("Okafor", postcode="", given_name="D")
    person("Okafor", postcode="N1 9XX", given_name="E")
    person("Okafor", postcode="E1 6AN", given_name="F")
    assert about(70, "Okafor", postcode=parse_postcode("n19")).patients == [exact, lower, compact, not_recorded]
    n1 = about(70, "Okafor", postcode=parse_postcode("N1")).patients
    assert [patient.given_name for patient in n1] == ["E", "D"]


@pytest.mark.hazard("H-06")
def test_the_full_postcode_comes_first_then_its_district_then_none_recorded():
    none_recorded = person("Okafor", postcode="", given_name="A")
    district = person("Okafor", postcode="N19 3AB", given_name="B")
    exact = person("Okafor", postcode="n19 5nf", given_name="C")
    assert about(70, "Okafor", postcode=parse_postcode("N19 5NF")).patients == [exact, district, none_recorded]


@pytest.mark.hazard("H-11")
def test_a_restricted_patient_is_never_filtered_or_ranked_by_postcode():
    """Kept whatever postcode is typed and ranked as one with none recorded, so the results never confirm where
    a restricted patient lives: here the one at the typed postcode comes after the one elsewhere (nearer in age)."""
    visible = person("Okafor", 73, postcode="N19 3AB")
    restricted_here = person("Okafor", 74, postcode="N19 5NF", restricted=True)
    restricted_elsewhere = person("Okafor", 71, postcode="E1 6AN", restricted=True)
    found = about(70, "Okafor", postcode=parse_postcode("N19 5NF")).patients
    assert found == [visible, restricted_elsewhere, restricted_here]
    assert about(70, "Okafor", postcode=parse_postcode("SE1 7EH")).patients == [restricted_elsewhere, restricted_here]


def test_sex_leaves_out_only_the_other_sex_recorded():
    female, other, unknown = (person("Okafor", sex=sex, given_name=sex) for sex in (Sex.FEMALE, Sex.OTHER, Sex.UNKNOWN))
    male = person("Okafor", sex=Sex.MALE, given_name="male")
    assert about(70, "Okafor", sex=Sex.FEMALE).patients == [female, other, unknown]
    assert about(70, "Okafor", sex=Sex.MALE).patients == [male, other, unknown]
    assert len(about(70, "Okafor", sex="").patients) == 4


# --- Ranking and the cap -----------------------------------------------------------------------------------------


@pytest.mark.hazard("H-06")
def test_ranking_exact_name_then_start_then_sound_then_postcode_then_age():
    exact_all = person("Smith", 70, postcode="N19 5NF")
    exact_nearly = person("Smith", 69, postcode="N19 5NF")
    exact_older = person("Smith", 72, postcode="N19 5NF")
    exact_district = person("Smith", 70, postcode="N19 3AB")
    starting = person("Smithson", 70, postcode="N19 5NF")
    sounding = person("Smyth", 70, postcode="N19 5NF")
    found = about(70, "smith", postcode=parse_postcode("N19 5NF")).patients
    assert found == [exact_all, exact_nearly, exact_older, exact_district, starting, sounding]


@pytest.mark.hazard("H-06")
def test_at_most_twenty_are_shown_the_best_ranked_and_more_is_said():
    best = person("Okafor", 70, given_name="Best")
    crowd = [person("Okafor", 72, given_name=f"Name{n:02}") for n in range(24)]
    found = about(70, "Okafor")
    assert django_settings.SEARCH_MAX_RESULTS == 20 and found.more is True
    assert found.patients == [best, *crowd[:19]]


def test_exactly_twenty_is_not_more():
    for n in range(20):
        person("Okafor", given_name=f"Name{n:02}")
    found = about(70, "Okafor")
    assert len(found.patients) == 20 and found.more is False


def test_one_query_whatever_is_given(django_assert_num_queries):
    person("Smith", postcode="N19 5NF")
    with django_assert_num_queries(1):
        found = about(70, "Smyth", given_name="Pat", postcode=parse_postcode("N19 5NF"), sex=Sex.FEMALE)
    assert len(found.patients) == 1
    assert found.patients[0].registered_gp.name  # joined in the same query
