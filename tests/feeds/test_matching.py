"""Who an HL7 v2 message is about (feeds.matching, feeds.convert.patient): the NHS number or the learned local
identifier, with the date of birth agreeing; never the name alone; anything else held with a reason (H-06)."""

import datetime
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from feeds import segments
from feeds.convert import Held
from feeds.convert.patient import identity_of, local_fhir_id, subject_of
from patients.models import Patient, SourcePatientId
from tests import factories
from tests.feeds.test_adt import NHS, OTHER_NHS, adt, apply, northgate

pytestmark = pytest.mark.django_db
FHIR_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")
HOSPITAL_ONLY = "K123456^^^RRV^MR"


@pytest.fixture
def feed():
    return northgate()


def subject(raw, feed):
    return subject_of(segments.parse(raw), feed)


def held(raw, feed) -> Held:
    with pytest.raises(Held) as caught:
        subject(raw, feed)
    return caught.value


@pytest.fixture
def known(feed):
    """Harriet Whitfield, 14 March 1962, on the record and this hospital's K123456 learned for her."""
    apply(adt("A01"), feed)
    return Patient.objects.get(nhs_number=NHS)


@pytest.mark.hazard("H-06")
def test_nhs_number_and_date_of_birth_agreeing_match_the_records_patient(feed):
    patient = factories.PatientFactory(nhs_number=NHS, date_of_birth=datetime.date(1962, 3, 14))
    found = subject(adt("A01"), feed)
    assert found.patient_id == patient.pk and found.nhs_number == NHS
    assert found.reference == "Patient/RRV-K123456"


@pytest.mark.hazard("H-06")
def test_the_same_nhs_number_with_another_date_of_birth_is_held(feed):
    factories.PatientFactory(nhs_number=NHS, date_of_birth=datetime.date(1980, 1, 1))
    reason = held(adt("A01"), feed)
    assert reason.reason == "NHS number 943 476 5919 is held for another date of birth (this message: 1962-03-14)"
    assert (reason.location, reason.local_id) == ("PID-7", "RRV-K123456")


@pytest.mark.hazard("H-06")
def test_an_nhs_number_without_a_full_date_of_birth_is_held_when_the_record_holds_the_patient(feed, known):
    assert "no date of birth to confirm the match" in held(adt("A08", dob=""), feed).reason
    assert "'196203' is not a full date" in held(adt("A08", dob="196203"), feed).reason


def test_an_nhs_number_new_to_the_record_makes_a_new_patient(feed):
    found = subject(adt("A01"), feed)
    assert found.patient_id is None and found.resource["identifier"][0] == {
        "system": "https://fhir.nhs.uk/Id/nhs-number",
        "value": NHS,
    }


@pytest.mark.hazard("H-06")
def test_a_local_id_learned_with_the_nhs_number_matches_a_later_message_that_has_only_it(feed, known):
    found = subject(adt("A08", pid3=HOSPITAL_ONLY), feed)
    assert found.patient_id == known.pk and found.reference == "Patient/RRV-K123456"
    # its demographics go to this sender's copy under the NHS number the link stands for
    assert found.resource["identifier"][0]["value"] == NHS


@pytest.mark.hazard("H-06")
def test_an_unknown_local_id_without_an_nhs_number_is_held_until_it_is_learned(feed):
    raw = adt("A08", pid3=HOSPITAL_ONLY)
    assert held(raw, feed).reason == "hospital number RRV-K123456 not known and no NHS number"
    apply(adt("A01"), feed)  # teaches K123456
    assert subject(raw, feed).patient_id == Patient.objects.get(nhs_number=NHS).pk


@pytest.mark.hazard("H-06")
def test_a_learned_local_id_with_another_date_of_birth_is_held(feed, known):
    reason = held(adt("A08", pid3=HOSPITAL_ONLY, dob="19620315"), feed)
    assert reason.reason == "hospital number RRV-K123456 is held for another date of birth (this message: 1962-03-15)"


@pytest.mark.hazard("H-06")
def test_a_local_id_standing_for_another_nhs_number_is_held(feed, known):
    reason = held(adt("A01", pid3=f"K123456^^^RRV^MR~{OTHER_NHS}^^^NHS^NH"), feed).reason
    assert reason == (
        "hospital number RRV-K123456 stands for NHS number 943 476 5919 here, and this message gives NHS number "
        "943 476 5870"
    )
    factories.PatientFactory(nhs_number=OTHER_NHS, date_of_birth=datetime.date(1962, 3, 14))
    assert (
        "stands for NHS number 943 476 5919"
        in held(adt("A01", pid3=f"K123456^^^RRV^MR~{OTHER_NHS}^^^NHS^NH"), feed).reason
    )


@pytest.mark.hazard("H-06")
def test_never_on_name_alone(feed, known):
    """Name, date of birth and sex all agree, but no identifier: held, never matched."""
    reason = held(adt("A08", pid3=""), feed)
    assert reason.reason.startswith("no NHS number and no local identifier (PID-3)")
    assert not SourcePatientId.objects.exclude(resource_id="Patient/RRV-K123456").exists()


@pytest.mark.hazard("H-06")
def test_two_local_ids_standing_for_two_patients_are_held(feed, known):
    apply(adt("A01", control="2", pid3=f"K555^^^RRV^MR~{OTHER_NHS}^^^NHS^NH", dob="19700101", visit="V2"), feed)
    reason = held(adt("A08", pid3="K123456^^^RRV^MR~K555^^^RRV^MR"), feed).reason
    assert reason == "hospital numbers RRV-K123456 and RRV-K555 stand for different patients here"


@pytest.mark.hazard("H-06")
def test_two_nhs_numbers_in_one_message_are_held(feed):
    assert "two NHS numbers" in held(adt("A01", pid3=f"K1^^^RRV^MR~{NHS}^^^NHS^NH~{OTHER_NHS}^^^NHS^NH"), feed).reason


@pytest.mark.hazard("H-06")
def test_an_nhs_number_failing_modulus_11_is_not_used_and_the_reason_says_so(feed):
    reason = held(adt("A01", pid3="K123456^^^RRV^MR~9434765918^^^NHS^NH"), feed).reason
    assert reason.startswith("hospital number RRV-K123456 not known and no NHS number")
    assert "'9434765918', is not a valid NHS number (modulus 11)" in reason


def test_the_nhs_number_is_recognised_by_authority_or_type_and_in_older_fields(feed):
    def nhs_of(raw):
        return identity_of(segments.parse(raw)).nhs_number

    assert nhs_of(adt("A01", pid3=f"K1^^^RRV^MR~{NHS}^^^NHS^HN")) == NHS  # UCLH's way
    assert nhs_of(adt("A01", pid3=f"K1^^^RRV^MR~{NHS}^^^^NH")) == NHS
    assert nhs_of(adt("A01", pid3=f"{NHS}^^^RRV^MR")) == ""  # a hospital number that happens to be 10 digits
    older = adt("A01", pid3="K1^^^RRV^MR").replace("PID|1||", f"PID|1|{NHS}|")
    assert nhs_of(older) == NHS
    fields = adt("A01", pid3="K1^^^RRV^MR").split("\r")
    pid = fields[2].split("|")
    pid[19] = NHS
    assert nhs_of("\r".join([*fields[:2], "|".join(pid), *fields[3:]])) == NHS


def test_a_birth_date_sent_with_a_time_is_that_date(feed):
    assert identity_of(segments.parse(adt("A01", dob="19800601141210"))).birth_date == datetime.date(1980, 6, 1)


# --- local ids as FHIR ids --------------------------------------------------------------------------------------


def test_local_ids_become_fhir_ids_with_their_authority():
    assert local_fhir_id("MRENTR", "40800000") == "MRENTR-40800000"
    assert local_fhir_id("MRENTR", "A/AA1111") == "MRENTR-A.2FAA1111"
    assert local_fhir_id("RRV-03", "1") != local_fhir_id("RRV", "03-1")
    long = local_fhir_id("AUTHORITY", "9" * 80)
    assert len(long) == 64 and long != local_fhir_id("AUTHORITY", "9" * 81)


@pytest.mark.hazard("H-06")
@given(
    st.tuples(st.text(min_size=1, max_size=30), st.text(min_size=1, max_size=70)),
    st.tuples(st.text(min_size=1, max_size=30), st.text(min_size=1, max_size=70)),
)
def test_two_different_local_ids_never_become_one_fhir_id(first, second):
    first, second = tuple(part.strip() for part in first), tuple(part.strip() for part in second)
    if not all(first) or not all(second):
        return
    made = local_fhir_id(*first), local_fhir_id(*second)
    assert all(FHIR_ID.fullmatch(one) for one in made)
    assert (made[0] == made[1]) == (first == second)
