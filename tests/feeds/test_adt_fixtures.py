"""Every UCLH ADT test message (tests/fixtures/hl7v2/uclh/Adt_generic_*, from UCLH's EMAP) accepted — applied, held
or refused with its reason — and then applied again with nothing changed; a day of them in order; and a few
through the pipeline (feeds.receive) as a feed sends them."""

from pathlib import Path

import pytest

from feeds import segments
from feeds.convert import Held, Invalid, NotAccepted
from feeds.models import Message
from feeds.receive import receive
from fhirapi.models import ReceivedResource
from patients.models import Appointment, Patient, SourcePatientId
from sharing.models import Involvement
from tests.feeds.test_adt import apply, northgate

pytestmark = pytest.mark.django_db
UCLH = Path(__file__).resolve().parents[1] / "fixtures" / "hl7v2" / "uclh"
NOT_TAKEN = "is not an ADT event carerecord takes"
# Each message alone, on a record that knows no one: what becomes of it, and why.
ALONE = {
    "Adt_generic_A01.txt": ("applied", ""),
    "Adt_generic_A01_b.txt": ("held", "hospital number MRENTR-40800001 not known and no NHS number"),
    "Adt_generic_A02.txt": ("applied", ""),
    "Adt_generic_A03.txt": ("applied", ""),
    "Adt_generic_A03_death.txt": ("held", "hospital number MRENTR-40800000 not known and no NHS number"),
    "Adt_generic_A03_death_2.txt": ("held", "hospital number MRENTR-40800000 not known and no NHS number"),
    "Adt_generic_A03_death_3.txt": ("applied", ""),
    "Adt_generic_A04.txt": ("applied", ""),
    "Adt_generic_A06.txt": ("refused", f"ADT^A06 {NOT_TAKEN}"),
    "Adt_generic_A08_v1.txt": ("applied", ""),
    "Adt_generic_A08_v2.txt": ("held", "hospital number MRENTR-40800000 not known and no NHS number"),
    "Adt_generic_A11.txt": ("applied", ""),
    "Adt_generic_A12.txt": ("applied", ""),
    "Adt_generic_A13.txt": ("invalid", "A patient new to the shared record needs a full date of birth (PID-7)."),
    "Adt_generic_A17.txt": ("refused", f"ADT^A17 {NOT_TAKEN}"),
    "Adt_generic_A29.txt": ("refused", f"ADT^A29 {NOT_TAKEN}"),
    "Adt_generic_A40.txt": ("applied", ""),
    "Adt_generic_A45.txt": ("refused", f"ADT^A45 {NOT_TAKEN}"),
    "Adt_generic_A47.txt": ("refused", f"ADT^A47 {NOT_TAKEN}"),
}
OUTCOMES = {Held: "held", Invalid: "invalid", NotAccepted: "refused"}


def fixture(name: str) -> str:
    [raw] = segments.split((UCLH / name).read_text())
    return raw


def outcome(raw, feed):
    """("applied", ingest's statuses) or (held / invalid / refused, the reason)."""
    try:
        report = apply(raw, feed)
    except (Held, Invalid, NotAccepted) as exc:
        return OUTCOMES[type(exc)], exc.reason
    return "applied", sorted((o.resource_type, o.status) for o in report.outcomes)


@pytest.fixture
def feed():
    return northgate()


def test_every_adt_fixture_is_listed():
    assert sorted(path.name for path in UCLH.glob("Adt_generic_*")) == sorted(ALONE)


@pytest.mark.hazard("H-18")
@pytest.mark.parametrize("name", sorted(ALONE))
def test_each_fixture_is_accepted_then_applied_again_with_nothing_changed(feed, name):
    raw = fixture(name)
    expected, reason = ALONE[name]
    first = outcome(raw, feed)
    assert first[0] == expected
    if expected != "applied":
        assert reason in first[1]
        assert outcome(raw, feed) == first  # the same answer again, nothing written
        assert not ReceivedResource.objects.exists()
        return
    kept = ReceivedResource.objects.count()
    again = outcome(raw, feed)
    assert again[0] == "applied" and {status for _, status in again[1]} == {"unchanged"}
    assert ReceivedResource.objects.count() == kept


@pytest.mark.hazard("H-15")
def test_a_discharge_with_a_date_of_death_by_hospital_number_marks_the_patient_deceased(feed):
    apply(fixture("Adt_generic_A01.txt"), feed)  # teaches MRENTR-40800000 with the NHS number, born 1 Jan 1980
    apply(fixture("Adt_generic_A03_death.txt"), feed)  # the hospital number only; PID-29 20130211083456, PID-30 Y
    patient = Patient.objects.get(nhs_number="9999999999")
    assert patient.deceased and str(patient.date_of_death) == "2013-02-11"
    stay = Appointment.objects.get()
    assert stay.status == Appointment.Status.ATTENDED and stay.ends_at is not None
    assert stay.patient == patient


def test_the_second_death_message_contradicts_itself_and_is_refused(feed):
    apply(fixture("Adt_generic_A01.txt"), feed)
    assert outcome(fixture("Adt_generic_A03_death_2.txt"), feed) == (
        "invalid",
        "PID-30 says the patient has not died but PID-29 gives a date of death.",
    )


@pytest.mark.hazard("H-06")
def test_the_test_feeds_shared_nhs_number_for_another_person_is_held(feed):
    """UCLH's test messages give 999 999 9999 to ORANGE BLOOD born 1980 and to ORANG BLOD born 1989."""
    apply(fixture("Adt_generic_A01.txt"), feed)
    assert outcome(fixture("Adt_generic_A08_v1.txt"), feed) == (
        "held",
        "NHS number 999 999 9999 is held for another date of birth (this message: 1989-09-09)",
    )
    assert outcome(fixture("Adt_generic_A08_v2.txt"), feed)[1] == (
        "hospital number MRENTR-40800000 is held for another date of birth (this message: 1989-09-09)"
    )


def test_a_merge_teaches_the_old_hospital_number_for_the_survivor(feed):
    apply(fixture("Adt_generic_A40.txt"), feed)  # 40800001 (+ NHS number) survives; MRG-1 40800000
    survivor = SourcePatientId.objects.get(resource_id="Patient/MRENTR-40800001").patient
    assert SourcePatientId.objects.get(resource_id="Patient/MRENTR-40800000").patient == survivor


def test_admission_transfer_and_discharge_in_order(feed):
    apply(fixture("Adt_generic_A01.txt"), feed)
    assert Appointment.objects.get().location.startswith("T42E")
    apply(fixture("Adt_generic_A02.txt"), feed)
    assert Appointment.objects.get().location.startswith("T12S")
    apply(fixture("Adt_generic_A03_death.txt"), feed)
    stay = Appointment.objects.get()
    assert stay.status == Appointment.Status.ATTENDED and stay.location.startswith("T11E")
    assert not Involvement.objects.filter(ended_at__isnull=True).exists()


# --- through the pipeline --------------------------------------------------------------------------------------


@pytest.mark.hazard("H-18")
def test_through_the_pipeline_applied_held_and_refused_with_their_acks(feed):
    applied = receive(fixture("Adt_generic_A01.txt"), feed=feed, peer="test")
    assert (applied.code, applied.message.status) == ("AA", Message.Status.APPLIED)
    held = receive(fixture("Adt_generic_A08_v1.txt"), feed=feed, peer="test")
    assert (held.code, held.message.status) == ("AA", Message.Status.HELD)
    assert held.message.reason.startswith("NHS number 999 999 9999 is held for another date of birth")
    refused = receive(fixture("Adt_generic_A17.txt"), feed=feed, peer="test")
    assert refused.code == "AR"
    invalid = receive(fixture("Adt_generic_A03_death_2.txt"), feed=feed, peer="test")
    assert (invalid.code, invalid.message.error_location) == ("AE", "PID-30")


def test_through_the_pipeline_a_held_message_is_released_when_its_hospital_number_is_learned(feed):
    held = receive(fixture("Adt_generic_A03_death.txt"), feed=feed, peer="test")
    assert held.message.status == Message.Status.HELD and held.message.local_id == "MRENTR-40800000"
    receive(fixture("Adt_generic_A01.txt"), feed=feed, peer="test")
    held.message.refresh_from_db()
    assert held.message.status == Message.Status.APPLIED
    assert Patient.objects.get(nhs_number="9999999999").deceased
