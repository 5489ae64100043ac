"""A value labelled restricted inside a report that is not: the report is restricted, so neither it nor the value
reaches another organisation's staff (H-11). A value's visibility follows its report's; before, only the report's
own label counted and a restricted result inside an ordinary report was served to every partner."""

import pytest

from patients.models import Result

from .conftest import bundle, import_json, patient_resource

pytestmark = [pytest.mark.django_db, pytest.mark.hazard("H-11")]

RESTRICTED = {"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "R"}


def _observation(**extra):
    return {
        "resourceType": "Observation",
        "id": "o1",
        "status": "final",
        "code": {"text": "HIV viral load"},
        "subject": {"reference": "Patient/p1"},
        "valueString": "detected",
        **extra,
    }


REPORT = {
    "resourceType": "DiagnosticReport",
    "id": "r1",
    "status": "final",
    "code": {"text": "Bloods"},
    "subject": {"reference": "Patient/p1"},
    "result": [{"reference": "Observation/o1"}],
}


@pytest.fixture
def held(sender, patient):
    import_json(patient_resource(nhs_number=patient.nhs_number, family=patient.family_name), sender)
    import_json(bundle("transaction", _observation(meta={"security": [RESTRICTED]}), REPORT), sender)


def test_a_restricted_value_in_an_ordinary_report_reaches_no_other_organisation(held, api, patient, reader_token):
    assert Result.objects.get(source_id="DiagnosticReport/r1").sensitive
    for path in ("Observation", "DiagnosticReport"):
        found = api.get(f"/fhir/{path}?patient={patient.pk}", token=reader_token).json()
        assert found["total"] == 0, path


def test_the_report_sent_again_alone_stays_restricted(held, sender):
    import_json({**REPORT, "conclusion": "Reviewed."}, sender)
    report = Result.objects.get(source_id="DiagnosticReport/r1")
    assert report.conclusion == "Reviewed." and report.sensitive


def test_a_restricted_value_sent_after_its_report_restricts_the_report_held(sender, patient):
    import_json(patient_resource(nhs_number=patient.nhs_number, family=patient.family_name), sender)
    import_json(bundle("transaction", _observation(), REPORT), sender)
    assert not Result.objects.get(source_id="DiagnosticReport/r1").sensitive
    import_json(_observation(meta={"security": [RESTRICTED]}, valueString="detected (repeat)"), sender)
    assert Result.objects.get(source_id="DiagnosticReport/r1").sensitive


def test_an_unlabelled_report_and_value_stay_shared(sender, patient, api, reader_token):
    import_json(patient_resource(nhs_number=patient.nhs_number, family=patient.family_name), sender)
    import_json(bundle("transaction", _observation(), REPORT), sender)
    assert api.get(f"/fhir/Observation?patient={patient.pk}", token=reader_token).json()["total"] == 1
