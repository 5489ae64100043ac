"""Issue 12: one rule for who the patient is (patients.demographics), and IG's data-quality list in admin.

Each source's copy is kept; the Patient row holds the master view chosen by precedence (a national trace, then
the registered GP practice's own record, then the most recent other source), restricted and deceased above it.
"""

import datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from audit.models import AccessBasis, AccessEvent
from audit.names import Action
from audit.writers import audit
from directory.models import Organisation
from patients import demographics
from patients.models import Patient
from tests import factories

pytestmark = pytest.mark.django_db

NOW = timezone.now()


def days_ago(days):
    return NOW - datetime.timedelta(days=days)


@pytest.fixture
def gp():
    return factories.OrganisationFactory(name="Riverside Medical Centre", kind=Organisation.Kind.GP_PRACTICE)


@pytest.fixture
def hospital():
    return factories.OrganisationFactory(name="St Elsewhere Hospital", kind=Organisation.Kind.ACUTE_TRUST)


@pytest.fixture
def national():
    return factories.OrganisationFactory(name="Personal Demographics Service", national_demographics=True, shares=[])


@pytest.fixture
def someone(gp):
    return factories.PatientFactory(
        given_name="Ada",
        family_name="Lovelace",
        address="1 Old Road",
        postcode="N1 1AA",
        phone="020 7946 0006",
        registered_gp=gp,
    )


def copy(patient, organisation, **fields):
    return factories.SourceDemographicsFactory(patient=patient, organisation=organisation, **fields)


def master(patient):
    demographics.recompute([patient.pk])
    return Patient.objects.get(pk=patient.pk)


@pytest.mark.hazard("H-06")
def test_a_national_trace_comes_first_then_the_registered_gp_then_the_most_recent(someone, gp, hospital, national):
    newest = copy(someone, hospital, address="3 Newest Street", postcode="E1 1AA", source_updated_at=days_ago(1))
    practice = copy(someone, gp, address="2 Practice Road", postcode="N2 2AA", source_updated_at=days_ago(30))
    trace = copy(someone, national, address="4 Trace Lane", postcode="SE1 1AA", source_updated_at=days_ago(300))
    assert (master(someone).address, master(someone).postcode) == ("4 Trace Lane", "SE1 1AA")
    trace.delete()
    assert master(someone).address == "2 Practice Road"
    practice.delete()
    assert master(someone).address == "3 Newest Street"
    older = factories.OrganisationFactory(kind=Organisation.Kind.COMMUNITY)
    copy(someone, older, address="5 Older Way", source_updated_at=days_ago(10))
    assert master(someone).address == "3 Newest Street"
    newest.source_updated_at = days_ago(20)
    newest.save()
    assert master(someone).address == "5 Older Way"


def test_without_a_source_date_what_counts_is_when_it_was_received(someone, hospital):
    community = factories.OrganisationFactory(kind=Organisation.Kind.COMMUNITY)
    copy(someone, hospital, phone="020 7946 0001", source_updated_at=days_ago(5))
    received_now = copy(someone, community, phone="020 7946 0002", source_updated_at=None)
    assert received_now.received_at > days_ago(5)
    assert master(someone).phone == "020 7946 0002"


@pytest.mark.hazard("H-06")
def test_groups_are_taken_whole_and_a_gap_is_filled_by_the_next_source(someone, gp, national):
    copy(someone, gp, address="2 Practice Road", postcode="N2 2AA", phone="020 7946 0003", email="ada@example.com")
    copy(someone, national, address="4 Trace Lane", postcode="", phone="", email="")
    patient = master(someone)
    # The trace's street without a postcode, never the trace's street over the practice's postcode.
    assert (patient.address, patient.postcode) == ("4 Trace Lane", "")
    # The trace gives no phone or email: the practice's are kept.
    assert (patient.phone, patient.email) == ("020 7946 0003", "ada@example.com")


def test_a_given_name_alone_is_not_a_name_and_unknown_sex_is_not_a_sex(someone, gp, hospital):
    copy(someone, gp, given_name="Augusta", family_name="", sex="unknown", source_updated_at=days_ago(1))
    copy(someone, hospital, given_name="Ada", family_name="King", sex="female", source_updated_at=days_ago(9))
    patient = master(someone)
    assert (patient.given_name, patient.family_name, patient.sex) == ("Ada", "King", "female")


@pytest.mark.hazard("H-06")
def test_the_registered_gp_is_the_traces_else_a_practices_own_claim_else_the_newest(someone, gp, hospital, national):
    other_practice = factories.OrganisationFactory(kind=Organisation.Kind.GP_PRACTICE)
    copy(someone, hospital, registered_gp=other_practice, source_updated_at=days_ago(1))
    claim = copy(someone, gp, registered_gp=gp, source_updated_at=days_ago(40))
    assert master(someone).registered_gp == gp  # the practice says it registered them: a hospital's copy does not
    claim.delete()
    assert master(someone).registered_gp == other_practice
    copy(someone, national, registered_gp=gp, source_updated_at=days_ago(100))
    assert master(someone).registered_gp == gp


@pytest.mark.hazard("H-11")
def test_any_source_saying_restricted_makes_the_patient_restricted_with_no_contact_details(someone, gp, hospital):
    copy(someone, gp, phone="020 7946 0004", email="ada@example.com")
    restricted = copy(someone, hospital, restricted=True, address="", postcode="", phone="")
    patient = master(someone)
    assert patient.restricted
    assert (patient.address, patient.postcode, patient.phone, patient.email) == ("", "", "", "")
    restricted.restricted = False
    restricted.save()
    patient = master(someone)
    assert not patient.restricted and patient.phone == "020 7946 0004"  # lifted by the source: details return


@pytest.mark.hazard("H-15")
def test_any_source_saying_deceased_makes_the_patient_deceased_dated_by_precedence(someone, gp, hospital):
    copy(someone, gp)
    died = copy(someone, hospital, deceased=True, date_of_death=None)
    patient = master(someone)
    assert patient.deceased and patient.date_of_death is None
    died.date_of_death = datetime.date(2026, 3, 1)
    died.save()
    assert master(someone).date_of_death == datetime.date(2026, 3, 1)
    died.deceased, died.date_of_death = False, None  # the source's correction
    died.save()
    patient = master(someone)
    assert not patient.deceased and patient.date_of_death is None


def test_a_patient_with_no_source_is_left_as_it_is(someone):
    before = Patient.objects.filter(pk=someone.pk).values().get()
    assert demographics.recompute([someone.pk]) == {}
    assert Patient.objects.filter(pk=someone.pk).values().get() == before


def test_recompute_reports_the_fields_that_changed_in_a_fixed_number_of_queries(gp, hospital):
    patients = [factories.PatientFactory(registered_gp=gp) for _ in range(6)]
    for patient in patients:
        copy(patient, hospital, phone="020 7946 0005")
    with CaptureQueriesContext(connection) as few:
        changed = demographics.recompute([p.pk for p in patients[:2]])
    assert changed == {p.pk: ["phone"] for p in patients[:2]}
    with CaptureQueriesContext(connection) as more:
        demographics.recompute([p.pk for p in patients[2:]])
    assert len(few) == len(more)


@pytest.mark.hazard("H-06")
def test_disagreements_say_what_differs_and_which_sources_differ_from_the_master(someone, gp, hospital, national):
    practice = copy(someone, gp, family_name="Lovelace", postcode="N1 1AA")
    copy(someone, hospital, family_name="LOVELACE ", postcode="n11aa", phone="020-7946-0006")  # the same, written apart
    assert demographics.disagreements(list(someone.source_demographics.select_related("organisation"))) == []
    community = factories.OrganisationFactory(kind=Organisation.Kind.COMMUNITY)
    elsewhere = copy(someone, community, postcode="E2 2BB", date_of_birth=datetime.date(1950, 1, 1))
    found = {d.field: d for d in demographics.disagreements(list(someone.source_demographics.all()))}
    assert set(found) == {"address", "date_of_birth"}
    assert found["address"].sources == (elsewhere,)  # differs from the practice's, which the master view holds
    assert practice not in found["date_of_birth"].sources


@pytest.mark.hazard("H-15")
def test_a_national_trace_recording_no_death_disagrees_with_a_source_that_records_one(someone, hospital, national):
    trace = copy(someone, national)
    copy(someone, hospital, deceased=True, date_of_death=datetime.date(2026, 2, 2))
    [found] = demographics.disagreements(list(someone.source_demographics.all()))
    assert (found.field, found.sources) == ("deceased", (trace,))
    assert master(someone).deceased  # a death one source records is never hidden by another


def test_the_data_quality_query_finds_exactly_the_patients_whose_sources_disagree(gp, hospital, national):
    cases = {
        "agree": {},
        "written apart": {"family_name": "  lovelace", "postcode": "n1-1aa"},
        "name": {"family_name": "Byron"},
        "birth": {"date_of_birth": datetime.date(1900, 1, 1)},
        "address": {"address": "9 Elsewhere"},
        "phone": {"phone": "07700 900999"},
        "gp": {"registered_gp": hospital},
        "death": {"date_of_death": datetime.date(2026, 1, 1), "deceased": True},
    }
    found = {}
    for name, differences in cases.items():
        patient = factories.PatientFactory(family_name="Lovelace", postcode="N1 1AA", phone="020", registered_gp=gp)
        copy(patient, gp, date_of_death=datetime.date(2025, 1, 1) if name == "death" else None)
        copy(patient, hospital, **differences)
        found[name] = patient
    alive_in_trace = factories.PatientFactory(registered_gp=gp)
    copy(alive_in_trace, national)
    copy(alive_in_trace, hospital, deceased=True)
    found["no death in the trace"] = alive_in_trace
    in_sql = set(demographics.conflicting_patients().values_list("pk", flat=True))
    in_python = {
        patient.pk
        for patient in found.values()
        if demographics.disagreements(list(patient.source_demographics.select_related("organisation")))
    }
    assert in_sql == in_python == {p.pk for name, p in found.items() if name not in ("agree", "written apart")}


# --- IG's data-quality list ---


@pytest.fixture
def conflicted(someone, gp, hospital):
    copy(someone, gp)
    copy(someone, hospital, address="99 Somewhere Else", postcode="E9 9ZZ")
    return someone


@pytest.fixture
def refused(gp):
    patient = factories.PatientFactory(registered_gp=gp)
    audit(by=None, action=Action.FHIR_IDENTITY_REFUSED, target=patient, patient_id=patient.pk, resource="Patient/p1")
    return patient


@pytest.mark.hazard("H-06")
@pytest.mark.usefixtures("admin_settings")
def test_ig_see_every_patient_whose_sources_disagree_or_whose_id_was_refused(ig_client, conflicted, refused, gp):
    bystander = factories.PatientFactory(registered_gp=gp)
    copy(bystander, gp)
    url = reverse("admin:patients_patient_changelist")
    response = ig_client.get(url, {"data_quality": "conflicts"})
    assert response.status_code == 200
    shown = {patient.pk: patient for patient in response.context["cl"].result_list}
    assert set(shown) == {conflicted.pk, refused.pk}
    body = response.content.decode()
    assert "address: " in body and "refused a move to another NHS number" in body
    assert "99 Somewhere Else" not in body and "E9 9ZZ" not in body  # what differs, never the values
    events = AccessEvent.objects.filter(request_id=response["X-Request-ID"])
    assert {(e.patient_id, e.page, e.basis) for e in events} == {
        (conflicted.pk, "admin:demographics-conflicts", AccessBasis.IG_ADMIN),
        (refused.pk, "admin:demographics-conflicts", AccessBasis.IG_ADMIN),
    }
    # Without the filter or a search, nobody is listed, as before.
    assert list(ig_client.get(url).context["cl"].result_list) == []


@pytest.mark.usefixtures("admin_settings")
def test_a_patients_admin_page_lists_each_source_and_where_they_disagree(ig_client, conflicted, hospital):
    response = ig_client.get(reverse("admin:patients_patient_change", args=[conflicted.pk]))
    body = response.content.decode()
    assert f"St Elsewhere Hospital ({hospital.ods_code})" in body
    assert f"Disagree on address: {hospital.ods_code}" in body
    assert "99 Somewhere Else" not in body


# --- the demo ---


@pytest.mark.hazard("H-06", "H-11", "H-15")
def test_the_demo_holds_each_gps_copy_a_disagreement_a_restricted_and_a_deceased_patient():
    from demo.seeder import seed

    summary = seed(patients=6)
    patients = list(Patient.objects.all())
    assert all(patient.source_demographics.filter(organisation=patient.registered_gp).exists() for patient in patients)
    restricted, deceased = summary.restricted_patient, summary.deceased_patient
    restricted.refresh_from_db()
    assert restricted.restricted and (restricted.address, restricted.phone) == ("", "")
    assert Patient.objects.get(pk=deceased.pk).date_of_death is not None
    shared = summary.demo_patient
    [disagreement] = demographics.disagreements(list(shared.source_demographics.select_related("organisation")))
    assert disagreement.field == "address"
    assert set(demographics.conflicting_patients()) >= {shared}
    before = {p.pk: (p.address, p.restricted, p.date_of_death) for p in Patient.objects.all()}
    assert seed(patients=6).created["source demographics"] == 0  # a second run adds nothing, changes nothing
    assert {p.pk: (p.address, p.restricted, p.date_of_death) for p in Patient.objects.all()} == before
