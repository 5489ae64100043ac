"""ADT events → the record: admissions, transfers, discharges, their cancels, person updates and merges
(feeds.convert.adt), converted and imported through fhirapi.ingest as the pipeline does."""

import json

import pytest
from django.db import transaction

from audit.models import AuditEvent
from audit.names import Action
from directory.actions import add_team_member
from directory.models import CareTeam, Organisation
from feeds import segments
from feeds.convert import Held, Invalid, NotAccepted
from feeds.convert.adt import convert, feed_actor
from feeds.models import Feed
from fhirapi.ingest import Channel, ingest
from fhirapi.models import ReceivedResource
from fhirapi.parse import read
from patients.models import Appointment, Patient, SourceDemographics, SourcePatientId
from sharing import access
from sharing.models import Involvement
from tests import factories

pytestmark = pytest.mark.django_db

NHS = "9434765919"  # valid modulus 11
OTHER_NHS = "9434765870"


def northgate() -> Feed:
    """The trust (RRV) and its ADT feed."""
    trust = factories.OrganisationFactory(ods_code="RRV", name="Northgate Hospital", kind=Organisation.Kind.ACUTE_TRUST)
    return Feed.objects.create(organisation=trust, name="Northgate ADT")


@pytest.fixture
def feed():
    return northgate()


@pytest.fixture
def trust(feed):
    return feed.organisation


def adt(
    event,
    *,
    control="1",
    pid3="K123456^^^RRV^MR~9434765919^^^NHS^NH",
    name="Whitfield^Harriet^Anne^^Mrs",
    dob="19620314",
    sex="F",
    death="",
    pclass="I",
    ward="W12^Bay 3^Bed 4",
    specialty="General Medicine",
    visit="V1001",
    admitted="202403041015",
    discharged="",
    disposition="",
    evn="",
    mrg="",
    pd1="PD1|||Riverside Practice^^F83006",
):
    """A synthetic ADT message (Faker-style names, a valid NHS number); fields as HL7 positions them."""
    died, indicator = [*death.split("|"), ""][:2] if death else ("", "")
    pid = ["PID", "1", "", pid3, "", name, "", dob, sex, *[""] * 20, died, indicator]
    pv1 = ["PV1", "1", pclass, ward, "Emergency", "", "", "C4444^Okafor^Chidi^^^Dr", "", "", specialty]
    pv1 += [""] * 3 + ["19"] + [""] * 4 + [visit] + [""] * 16 + [disposition] + [""] * 7 + [admitted, discharged]
    segments_ = [
        f"MSH|^~\\&|PAS|RRV|CARERECORD|LCR|20240304101500||ADT^{event}|{control}|P|2.4",
        f"EVN|{event}|20240304101500|||U1^Clerk^Ward|{evn}",
        "|".join(pid),
        pd1,
        "|".join(pv1),
    ]
    if mrg:
        segments_.insert(3, f"MRG|{mrg}")
    return "\r".join(segment for segment in segments_ if segment)


def apply(raw, feed):
    """As the pipeline does: convert, then import the Bundle and run the after-work in one transaction."""
    message = segments.parse(raw)
    conversion = convert(message, feed)
    actor = feed_actor(feed)
    with transaction.atomic():
        report = ingest(
            read(json.dumps(conversion.bundle).encode()),
            organisation=feed.organisation,
            channel=Channel(actor=actor, command="hl7", endpoint="file"),
        )
        assert report.applied, [issue.diagnostics for issue in report.errors]
        for work in conversion.after:
            work(feed.organisation, actor)
    return report


def statuses(report):
    return sorted((outcome.resource_type, outcome.status) for outcome in report.outcomes)


def versions(trust, resource_type="Encounter"):
    return ReceivedResource.objects.filter(organisation=trust, resource_type=resource_type).count()


def admission():
    return Appointment.objects.get(kind=Appointment.Kind.ADMISSION)


@pytest.fixture
def ward_clinician(trust):
    team = CareTeam.objects.create(organisation=trust, name="W12 ward", kind=CareTeam.Kind.WARD)
    professional = factories.ProfessionalFactory(organisation=trust)
    add_team_member(by=None, team=team, professional=professional)
    return professional.user


# --- admission, transfer, discharge ---------------------------------------------------------------------------


def test_an_admission_shows_on_the_record_with_ward_specialty_and_consultant(feed, trust):
    apply(adt("A01"), feed)
    patient = Patient.objects.get(nhs_number=NHS)
    assert (patient.family_name, patient.given_name, str(patient.date_of_birth)) == (
        "Whitfield",
        "Harriet Anne",
        "1962-03-14",
    )
    stay = admission()
    assert stay.patient == patient and stay.source_organisation == trust
    assert stay.status == Appointment.Status.IN_PROGRESS and stay.ends_at is None
    assert stay.encounter_class == "IMP"
    assert stay.location == "W12, room Bay 3, bed Bed 4"
    assert stay.service == "General Medicine"
    assert stay.clinician == "Dr Chidi Okafor"
    assert stay.effective_at.isoformat() == "2024-03-04T10:15:00+00:00"
    assert stay.source_id == "Encounter/visit-V1001"
    assert SourcePatientId.objects.filter(organisation=trust, resource_id="Patient/RRV-K123456").exists()


def test_a_message_with_only_the_nhs_number_refers_to_the_patient_by_it(feed, trust):
    raw = adt("A01", pid3=f"{NHS}^^^NHS^NH")
    apply(raw, feed)
    patient = Patient.objects.get(nhs_number=NHS)
    assert admission().patient == patient
    assert Involvement.objects.get(patient=patient).ended_at is None
    assert not SourcePatientId.objects.filter(resource_id__startswith="Patient/RRV-").exists()
    assert {status for _, status in statuses(apply(raw, feed))} == {"unchanged"}


def test_the_registered_gp_practice_comes_from_pd1(feed):
    apply(adt("A01"), feed)
    patient = Patient.objects.get(nhs_number=NHS)
    assert patient.registered_gp.ods_code == "F83006"


@pytest.mark.hazard("H-03")
def test_admission_starts_the_ward_teams_involvement_and_discharge_ends_it(feed, trust, ward_clinician):
    apply(adt("A01"), feed)
    patient = Patient.objects.get(nhs_number=NHS)
    involvement = Involvement.objects.get(patient=patient)
    assert involvement.care_team.name == "W12 ward" and involvement.ended_at is None
    assert involvement.asserted_by == f"hl7-feed:{feed.pk}:Northgate ADT@RRV"
    assert access.decide(ward_clinician, patient).allowed
    apply(adt("A03", control="2", discharged="202403081200", disposition="Home"), feed)
    involvement.refresh_from_db()
    assert involvement.ended_at.isoformat() == "2024-03-08T12:00:00+00:00"
    assert not access.decide(ward_clinician, patient).allowed
    stay = admission()
    assert stay.status == Appointment.Status.ATTENDED and stay.ends_at.isoformat() == "2024-03-08T12:00:00+00:00"


def test_a_transfer_moves_the_admission_and_the_team(feed, trust):
    apply(adt("A01"), feed)
    apply(adt("A02", control="2", ward="W7^Side room^1", evn="202403051400"), feed)
    stay = admission()
    assert stay.location == "W7, room Side room, bed 1" and stay.status == Appointment.Status.IN_PROGRESS
    involvements = {i.care_team.name: i for i in Involvement.objects.all()}
    assert involvements["W12 ward"].ended_at.isoformat() == "2024-03-05T14:00:00+00:00"
    assert involvements["W7 ward"].ended_at is None
    assert involvements["W7 ward"].started_at.isoformat() == "2024-03-05T14:00:00+00:00"


def test_a_cancelled_transfer_goes_back_to_the_ward_before(feed, trust):
    apply(adt("A01"), feed)
    apply(adt("A02", control="2", ward="W7^Side room^1", evn="202403051400"), feed)
    apply(adt("A12", control="3", ward="W12^Bay 3^Bed 4"), feed)
    stay = admission()
    assert stay.location == "W12, room Bay 3, bed Bed 4"
    involvements = {i.care_team.name: i for i in Involvement.objects.all()}
    assert involvements["W12 ward"].ended_at is None
    assert involvements["W7 ward"].ended_at is not None


def test_two_transfers_cancelled_in_turn_go_back_one_step_each(feed):
    apply(adt("A01"), feed)
    apply(adt("A02", control="2", ward="W7^^1", evn="202403051400"), feed)
    apply(adt("A02", control="3", ward="W9^^2", evn="202403061400"), feed)
    apply(adt("A12", control="4", ward="W7^^1"), feed)
    assert admission().location == "W7, bed 1"
    apply(adt("A12", control="5", ward="W12^Bay 3^Bed 4"), feed)
    assert admission().location == "W12, room Bay 3, bed Bed 4"


def test_a_cancelled_discharge_reopens_the_admission_and_its_team(feed, ward_clinician):
    apply(adt("A01"), feed)
    apply(adt("A03", control="2", discharged="202403081200", disposition="Home"), feed)
    apply(adt("A13", control="3"), feed)
    stay = admission()
    assert stay.status == Appointment.Status.IN_PROGRESS and stay.ends_at is None
    patient = Patient.objects.get(nhs_number=NHS)
    assert Involvement.objects.get(patient=patient).ended_at is None
    assert access.decide(ward_clinician, patient).allowed


@pytest.mark.hazard("H-03")
def test_a_cancelled_admission_is_withdrawn_and_ends_the_involvement(feed, ward_clinician):
    apply(adt("A01"), feed)
    apply(adt("A11", control="2"), feed)
    stay = admission()
    assert stay.entered_in_error
    patient = Patient.objects.get(nhs_number=NHS)
    assert Involvement.objects.get(patient=patient).ended_at is not None
    assert not access.decide(ward_clinician, patient).allowed


def test_an_attendance_is_an_attendance_and_asserts_no_relationship(feed):
    apply(adt("A04", pclass="E", ward="ED^^Majors 3", specialty="Emergency Medicine"), feed)
    visit = Appointment.objects.get()
    assert visit.kind == Appointment.Kind.ATTENDANCE and visit.encounter_class == "EMER"
    assert not Involvement.objects.exists()


def test_a_pre_admission_is_a_booked_admission(feed):
    apply(adt("A05", admitted=""), feed)
    stay = admission()
    assert stay.status == Appointment.Status.BOOKED
    assert not Involvement.objects.exists()


def test_an_update_keeps_the_admissions_status_and_changes_what_pv1_says(feed):
    apply(adt("A01"), feed)
    apply(adt("A08", control="2", specialty="Cardiology"), feed)
    stay = admission()
    assert stay.service == "Cardiology" and stay.status == Appointment.Status.IN_PROGRESS


def test_an_update_naming_no_visit_updates_the_person_only(feed, trust):
    apply(adt("A01"), feed)
    apply(adt("A08", control="2", name="Whitfield-Jones^Harriet", visit="", admitted=""), feed)
    assert SourceDemographics.objects.get(organisation=trust).family_name == "Whitfield-Jones"
    assert admission().source_id == "Encounter/visit-V1001"


def test_person_update_changes_this_senders_demographics_only(feed, trust):
    apply(adt("A01"), feed)
    apply(adt("A31", control="2", name="Whitfield-Jones^Harriet"), feed)
    assert SourceDemographics.objects.get(organisation=trust).family_name == "Whitfield-Jones"
    assert Appointment.objects.count() == 1


@pytest.mark.hazard("H-18")
@pytest.mark.parametrize("event", ["A01", "A02", "A03", "A08", "A11", "A12", "A13", "A31"])
def test_each_event_applied_again_changes_nothing(feed, trust, event):
    apply(adt("A01", control="0"), feed)
    apply(adt("A02", control="1", ward="W7^^1", evn="202403051400"), feed)
    raw = adt(event, control="9", discharged="202403081200" if event == "A03" else "")
    apply(raw, feed)
    changes = AuditEvent.objects.exclude(action=Action.FHIR_SUBMISSION)
    counts = (versions(trust), versions(trust, "CareTeam"), versions(trust, "Patient"), changes.count())
    report = apply(raw, feed)
    assert {status for _, status in statuses(report)} == {"unchanged"}
    assert (versions(trust), versions(trust, "CareTeam"), versions(trust, "Patient"), changes.count()) == counts


# --- death ----------------------------------------------------------------------------------------------------


@pytest.mark.hazard("H-15")
def test_a_discharge_with_a_date_of_death_marks_the_patient_deceased(feed):
    apply(adt("A01"), feed)
    apply(adt("A03", control="2", discharged="202403081200", death="202403080930|Y"), feed)
    patient = Patient.objects.get(nhs_number=NHS)
    assert patient.deceased and str(patient.date_of_death) == "2024-03-08"


@pytest.mark.hazard("H-15")
def test_a_death_indicator_without_a_date_is_a_death_without_a_date(feed):
    apply(adt("A01"), feed)
    apply(adt("A03", control="2", discharged="202403081200", death="|Y"), feed)
    patient = Patient.objects.get(nhs_number=NHS)
    assert patient.deceased and patient.date_of_death is None


@pytest.mark.hazard("H-15")
def test_a_date_of_death_with_indicator_n_is_refused_not_guessed(feed):
    with pytest.raises(Invalid) as refused:
        convert(segments.parse(adt("A03", death="20240308|N")), feed)
    assert refused.value.location == "PID-30"


# --- merge ----------------------------------------------------------------------------------------------------


def test_a_merge_within_one_patient_repoints_the_old_local_id_to_the_survivor(feed, trust):
    apply(adt("A01"), feed)
    apply(adt("A40", control="2", pid3="K999999^^^RRV^MR~9434765919^^^NHS^NH", mrg="K123456^^^RRV^MR"), feed)
    patient = Patient.objects.get(nhs_number=NHS)
    links = dict(SourcePatientId.objects.filter(organisation=trust).values_list("resource_id", "patient_id"))
    assert links == {"Patient/RRV-K123456": patient.pk, "Patient/RRV-K999999": patient.pk}
    merged = AuditEvent.objects.get(action=Action.HL7_MERGE_APPLIED)
    assert merged.detail["merged_away"] == "RRV-K123456" and merged.patient_id == patient.pk
    # a later message under the old hospital number alone is the survivor's
    apply(adt("A08", control="3", pid3="K123456^^^RRV^MR"), feed)
    assert admission().patient == patient


def test_a_merge_of_an_unknown_old_id_teaches_it_for_the_survivor(feed, trust):
    apply(adt("A40", pid3="K999999^^^RRV^MR~9434765919^^^NHS^NH", mrg="K000001^^^RRV^MR"), feed)
    patient = Patient.objects.get(nhs_number=NHS)
    assert SourcePatientId.objects.get(organisation=trust, resource_id="Patient/RRV-K000001").patient == patient


@pytest.mark.hazard("H-06")
def test_a_merge_across_two_nhs_numbers_is_not_applied_and_goes_to_ig(feed, trust):
    apply(adt("A01"), feed)
    apply(
        adt(
            "A01",
            control="2",
            pid3=f"K777777^^^RRV^MR~{OTHER_NHS}^^^NHS^NH",
            name="Ellis^Tom",
            dob="19700101",
            visit="V2",
        ),
        feed,
    )
    first = Patient.objects.get(nhs_number=NHS)
    raw = adt(
        "A40",
        control="3",
        pid3=f"K777777^^^RRV^MR~{OTHER_NHS}^^^NHS^NH",
        name="Ellis^Tom",
        dob="19700101",
        mrg="K123456^^^RRV^MR",
    )
    with pytest.raises(Held) as held:
        convert(segments.parse(raw), feed)
    assert "two NHS numbers" in held.value.reason and held.value.location == "MRG-1"
    referred = AuditEvent.objects.get(action=Action.HL7_MERGE_REFERRED)
    assert referred.patient_id == first.pk and referred.actor_email == f"hl7-feed:{feed.pk}:Northgate ADT@RRV"
    assert SourcePatientId.objects.get(organisation=trust, resource_id="Patient/RRV-K123456").patient == first


# --- refused ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("event", ["A06", "A17", "A29", "A45", "A47", "A60"])
def test_other_events_are_not_accepted(feed, event):
    with pytest.raises(NotAccepted) as refused:
        convert(segments.parse(adt(event)), feed)
    assert f"ADT^{event}" in refused.value.reason


def test_a_visit_without_a_number_or_admit_time_is_invalid(feed):
    with pytest.raises(Invalid) as refused:
        convert(segments.parse(adt("A01", visit="", admitted="")), feed)
    assert refused.value.location == "PV1-19"


def test_a_new_patient_without_a_full_birth_date_is_invalid(feed):
    with pytest.raises(Invalid) as refused:
        convert(segments.parse(adt("A01", dob="1962")), feed)
    assert refused.value.location == "PID-7"
