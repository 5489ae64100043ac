"""A diagnosis or allergy its source has not confirmed never reads as established: the conditions and allergies
pages say "Provisional", "Differential", "Unconfirmed" beside the name (confirmed and not recorded say nothing);
and the FHIR mapping keeps verificationStatus and Condition.category, and gives them back for entries built
from the record."""

import re

import pytest
from django.urls import reverse

from fhirapi.mapping import allergies, conditions
from patients.models import Allergy, Condition
from tests import factories
from tests.fhirapi.conftest import bundle, condition_resource, import_json, patient_resource

pytestmark = pytest.mark.django_db
CONDITION_VERIFICATION = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
ALLERGY_VERIFICATION = "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification"


def tag_beside(page: str, name: str) -> str:
    """The tag in the same cell as `name` ("" for none)."""
    cell = re.search(
        rf"<strong>{re.escape(name)}</strong>\s*(<strong class=\"nhsuk-tag[^\"]*\">([^<]+)</strong>)?", page
    )
    assert cell, f"{name} not on the page"
    return cell.group(2) or ""


@pytest.mark.hazard("H-16")
@pytest.mark.parametrize(
    ("status", "tag"),
    [
        ("provisional", "Provisional"),
        ("differential", "Differential"),
        ("unconfirmed", "Unconfirmed"),
        ("confirmed", ""),
        ("", ""),
    ],
)
def test_the_conditions_page_says_a_diagnosis_is_not_confirmed(
    client, clinician, patient, other_organisation, status, tag
):
    factories.ConditionFactory(
        patient=patient, source_organisation=other_organisation, name="Chest pain cause", verification_status=status
    )
    client.force_login(clinician)
    page = client.get(reverse("record-conditions", args=[patient.pk])).content.decode()
    assert tag_beside(page, "Chest pain cause") == tag


@pytest.mark.hazard("H-16")
@pytest.mark.parametrize(("status", "tag"), [("unconfirmed", "Unconfirmed"), ("confirmed", ""), ("", "")])
def test_the_allergies_page_says_an_allergy_is_unconfirmed(client, clinician, patient, other_organisation, status, tag):
    factories.AllergyFactory(
        patient=patient, source_organisation=other_organisation, substance="Latex", verification_status=status
    )
    client.force_login(clinician)
    page = client.get(reverse("record-allergies", args=[patient.pk])).content.decode()
    assert tag_beside(page, "Latex") == tag


def test_received_verification_status_and_category_are_kept(patient, other_organisation):
    sender = other_organisation
    condition = condition_resource(
        "c1",
        verificationStatus={"coding": [{"system": CONDITION_VERIFICATION, "code": "differential"}]},
        category=[
            {
                "coding": [
                    {"system": "http://terminology.hl7.org/CodeSystem/condition-category", "code": "problem-list-item"}
                ]
            }
        ],
    )
    uncoded = condition_resource("c2", category=[{"text": "Social problem"}])
    allergy = {
        "resourceType": "AllergyIntolerance",
        "id": "a1",
        "verificationStatus": {"coding": [{"system": ALLERGY_VERIFICATION, "code": "unconfirmed"}]},
        "code": {"text": "Latex"},
        "patient": {"reference": "Patient/p1"},
    }
    sent = bundle("transaction", patient_resource(nhs_number=patient.nhs_number), condition, uncoded, allergy)
    assert import_json(sent, sender).applied
    held = Condition.objects.get(source_id="Condition/c1")
    assert (held.verification_status, held.condition_category) == ("differential", "problem-list-item")
    assert Condition.objects.get(source_id="Condition/c2").condition_category == "Social problem"
    assert Condition.objects.get(source_id="Condition/c2").verification_status == ""
    assert Allergy.objects.get(source_id="AllergyIntolerance/a1").verification_status == "unconfirmed"


def test_built_entries_give_them_back(patient, other_organisation):
    condition = factories.ConditionFactory(
        patient=patient, verification_status="provisional", condition_category="encounter-diagnosis"
    )
    built = conditions.condition(condition)
    assert built["verificationStatus"] == {"coding": [{"system": CONDITION_VERIFICATION, "code": "provisional"}]}
    assert built["category"][0]["coding"][0]["code"] == "encounter-diagnosis"
    condition.condition_category = "Social problem"
    assert conditions.condition(condition)["category"] == [{"text": "Social problem"}]
    allergy = factories.AllergyFactory(patient=patient, verification_status="confirmed")
    assert allergies.allergy(allergy)["verificationStatus"]["coding"][0] == {
        "system": ALLERGY_VERIFICATION,
        "code": "confirmed",
    }
    assert conditions.condition(factories.ConditionFactory(patient=patient))["verificationStatus"] is None
