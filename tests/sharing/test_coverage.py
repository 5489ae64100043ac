"""The coverage view: absence must never look like "nothing exists"."""

import pytest
from django.urls import reverse

from patients.categories import Category
from sharing import access, actions
from sharing.record import coverage
from tests import factories

pytestmark = pytest.mark.django_db


def cells_for(rows, organisation):
    row = next(r for r in rows if r.organisation == organisation)
    return {cell.category: cell for cell in row.cells}


def test_each_organisation_and_category_says_shared_not_shared_or_empty(clinician, patient, organisation):
    sharer = factories.OrganisationFactory(name="Sharing Trust", shares=[Category.CONDITIONS, Category.LETTERS])
    factories.ConditionFactory(patient=patient, source_organisation=sharer)
    factories.ConditionFactory(patient=patient, source_organisation=sharer, sensitive=True)
    factories.MedicationFactory(patient=patient, source_organisation=sharer)  # held but not shared
    rows = coverage(patient, access.decide(clinician, patient))
    cells = cells_for(rows, sharer)
    assert cells[Category.CONDITIONS].state == "shared" and cells[Category.CONDITIONS].count == 1
    assert cells[Category.CONDITIONS].withheld == 1
    assert cells[Category.MEDICATIONS].state == "not-shared"
    assert cells[Category.LETTERS].state == "shared-empty"
    assert cells_for(rows, organisation)[Category.TEAMS].state == "own"  # the viewer's own team


def test_coverage_page_is_a_record_page(client, clinician, outsider, patient, full_record, other_organisation):
    client.force_login(clinician)
    response = client.get(reverse("record-coverage", args=[patient.pk]))
    assert response.status_code == 200
    assert other_organisation.name in response.content.decode()
    client.force_login(outsider)
    assert client.get(reverse("record-coverage", args=[patient.pk])).status_code == 403


def test_category_page_says_when_sensitive_entries_are_withheld(client, clinician, patient, other_organisation):
    factories.ConditionFactory(patient=patient, source_organisation=other_organisation, sensitive=True)
    client.force_login(clinician)
    body = client.get(reverse("record-conditions", args=[patient.pk])).content.decode()
    assert "1 sensitive" in body and "withheld" in body


def upheld_objection(patient, ig):
    from directory.models import Region
    from optout import actions as optout_actions

    objection = optout_actions.record_professional_objection(
        by=ig, patient=patient, reason="Does not want sharing", how_told="in-person", region=Region.SEL
    )
    optout_actions.verify(by=ig, objection=objection, identity_check="documents")
    return optout_actions.uphold(by=ig, objection=objection, reason="Patient's wish")


@pytest.fixture
def clinic_holding_data(patient):
    """The kind of organisation whose very name is what an objection keeps private."""
    clinic = factories.OrganisationFactory(name="Riverside Sexual Health Clinic")
    factories.ConditionFactory(patient=patient, source_organisation=clinic)
    return clinic


@pytest.mark.hazard("H-02")
def test_finding_6_what_is_shared_for_an_opted_out_patient_names_no_other_organisation(
    client, clinician, patient, ig_officer, clinic_holding_data
):
    upheld_objection(patient, ig_officer)
    client.force_login(clinician)
    body = client.get(reverse("record-coverage", args=[patient.pk])).content.decode()
    assert clinic_holding_data.name not in body


def test_what_is_shared_for_an_opted_out_patient_shows_the_viewers_own_organisation_and_says_why(
    client, clinician, patient, organisation, ig_officer, clinic_holding_data
):
    upheld_objection(patient, ig_officer)
    client.force_login(clinician)
    response = client.get(reverse("record-coverage", args=[patient.pk]))
    assert [row.organisation for row in response.context["coverage"]] == [organisation]
    assert "This patient has opted out of sharing" in response.content.decode()


def test_an_opted_out_patients_coverage_shows_the_viewers_organisation_even_when_it_holds_nothing(
    patient, ig_officer, clinic_holding_data
):
    paramedic = factories.ProfessionalFactory(
        organisation=factories.OrganisationFactory(name="London Ambulance", kind="ambulance"), role="paramedic"
    ).user
    upheld_objection(patient, ig_officer)
    actions.break_glass(by=paramedic, patient=patient, reason_code="emergency-treatment")
    [row] = coverage(patient, access.decide(paramedic, patient))
    assert row.organisation == paramedic.professional.organisation
    assert {(cell.state, cell.count) for cell in row.cells} == {("own", 0)}
