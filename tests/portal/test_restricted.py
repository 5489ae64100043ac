"""A patient flagged restricted at source (the NHS S-flag): their contacts are shown to no one, as "Restricted"."""

import pytest
from django.urls import reverse

from patients.models import Patient
from sharing import actions
from sharing import record as sections
from sharing.access import decide
from tests import factories

pytestmark = [pytest.mark.django_db, pytest.mark.hazard("H-11")]


@pytest.fixture
def restricted(patient, organisation, other_organisation):
    factories.SupportPersonFactory(
        patient=patient, source_organisation=organisation, name="Bernard Testperson", phone="020 7946 0999"
    )
    factories.SupportPersonFactory(patient=patient, source_organisation=other_organisation, name="Cora Carer")
    Patient.objects.filter(pk=patient.pk).update(restricted=True)
    patient.refresh_from_db()
    return patient


def test_no_contact_is_fetched_for_anyone(restricted, clinician):
    assert list(sections.support_network(restricted, decide(clinician, restricted))) == []


@pytest.mark.parametrize("name", ["record-summary", "record-teams"])
def test_summary_and_teams_pages_say_restricted_for_the_care_team(client, clinician, restricted, name):
    client.force_login(clinician)
    body = client.get(reverse(name, args=[restricted.pk])).content.decode()
    network = body[body.index('id="section-support-network"') :]
    network = network[: network.index("</section>")]
    assert "Restricted" in network
    assert "Bernard Testperson" not in body and "Cora Carer" not in body and "020 7946 0999" not in body


def test_and_for_emergency_access(client, clinician_other_org, restricted):
    actions.break_glass(by=clinician_other_org, patient=restricted, reason_code="emergency-treatment")
    client.force_login(clinician_other_org)
    body = client.get(reverse("record-summary", args=[restricted.pk])).content.decode()
    assert "Restricted" in body and "Cora Carer" not in body


def test_an_unrestricted_patients_contacts_show(client, clinician, patient, organisation):
    factories.SupportPersonFactory(patient=patient, source_organisation=organisation, name="Bernard Testperson")
    client.force_login(clinician)
    body = client.get(reverse("record-summary", args=[patient.pk])).content.decode()
    assert "Bernard Testperson" in body
