"""Issue 12: the patient banner on every record page, and the patient lists, for disagreeing sources, restricted
(S-flag) and deceased patients."""

import datetime

import pytest
from django.urls import reverse

from tests import factories

pytestmark = pytest.mark.django_db

RECORD_PAGES = ["record-summary", "record-conditions", "record-teams", "record-coverage"]


def page(client, user, patient, name="record-summary"):
    client.force_login(user)
    response = client.get(reverse(name, args=[patient.pk]))
    assert response.status_code == 200
    return response.content.decode()


def banner(body):
    start = body.index('class="app-patient-banner"')
    return body[start : body.index("</section>", start)]


@pytest.mark.hazard("H-06")
def test_the_banner_says_when_another_source_holds_a_different_address(
    client, clinician, patient, organisation, other_organisation
):
    factories.SourceDemographicsFactory(patient=patient, organisation=organisation)
    factories.SourceDemographicsFactory(patient=patient, organisation=other_organisation, address="9 Elsewhere")
    factories.ConditionFactory(patient=patient, source_organisation=other_organisation)
    silent = factories.OrganisationFactory(name="Silent Trust", shares=[])
    factories.SourceDemographicsFactory(patient=patient, organisation=silent, date_of_birth=datetime.date(1901, 1, 1))
    for name in RECORD_PAGES:
        shown = banner(page(client, clinician, patient, name))
        assert "Sources disagree" in shown, name
        assert "St Elsewhere NHS Foundation Trust holds a different address." in shown, name
        assert "Another source holds a different date of birth." in shown and "Silent Trust" not in shown, name
        assert "9 Elsewhere" not in shown  # that it differs, not what it says


def test_sources_that_agree_say_nothing(client, clinician, patient, organisation, other_organisation):
    factories.SourceDemographicsFactory(patient=patient, organisation=organisation)
    factories.SourceDemographicsFactory(
        patient=patient, organisation=other_organisation, postcode=patient.postcode.lower()
    )
    assert "Sources disagree" not in page(client, clinician, patient)


@pytest.fixture
def restricted(patient, full_record):
    """Restricted, with the address, phone and email still on the row: every output must hide them anyway."""
    patient.restricted = True
    patient.email = "hidden@example.com"
    patient.save()
    return patient


@pytest.mark.hazard("H-11")
@pytest.mark.parametrize("name", RECORD_PAGES)
def test_a_restricted_patients_banner_says_restricted_and_shows_no_contact_detail(client, clinician, restricted, name):
    body = page(client, clinician, restricted, name)
    shown = banner(body)
    assert "Restricted" in shown
    for detail in (restricted.address, restricted.postcode, restricted.phone, restricted.email):
        assert detail not in body, detail
    assert "Bernard Testperson" not in body  # the support network (contacts) is not shown either


@pytest.mark.hazard("H-11")
def test_search_and_my_patients_tag_a_restricted_patient_and_show_no_address(client, clinician, restricted):
    client.force_login(clinician)
    searched = client.post(reverse("patient-search"), {"by": "nhs", "nhs_number": restricted.nhs_number})
    mine = client.get(reverse("my-patients"))
    for body in (searched.content.decode(), mine.content.decode()):
        assert restricted.full_name in body and "Restricted" in body
        for detail in (restricted.address, restricted.postcode, restricted.phone, restricted.email):
            assert detail not in body, detail


@pytest.mark.hazard("H-15")
def test_a_deceased_patients_banner_says_so_with_the_date_of_death(client, clinician, patient):
    patient.deceased, patient.date_of_death = True, datetime.date(2026, 3, 4)
    patient.save()
    shown = banner(page(client, clinician, patient))
    assert "Deceased" in shown and "Died" in shown and "4 Mar 2026" in shown
    assert "years old" not in shown and "year old" not in shown


@pytest.mark.hazard("H-15")
def test_a_death_without_a_date_says_date_not_recorded_and_gives_no_age(client, clinician, patient):
    patient.deceased = True
    patient.save()
    shown = banner(page(client, clinician, patient))
    assert "Deceased (date not recorded)" in shown
    assert "year old" not in shown and "years old" not in shown and "Died" not in shown


@pytest.mark.hazard("H-15")
def test_the_patient_lists_tag_a_deceased_patient(client, clinician, patient):
    patient.deceased = True
    patient.save()
    client.force_login(clinician)
    assert "Deceased" in client.get(reverse("my-patients")).content.decode()
    searched = client.post(reverse("patient-search"), {"by": "nhs", "nhs_number": patient.nhs_number})
    assert "Deceased" in searched.content.decode()


def test_a_living_unrestricted_patient_shows_age_and_contact_details(client, clinician, patient):
    shown = banner(page(client, clinician, patient))
    assert "years old" in shown or "year old" in shown
    assert patient.phone in shown and "Restricted" not in shown and "Deceased" not in shown
