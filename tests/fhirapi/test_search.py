"""Honest search (fhirapi/search.py): every parameter a type declares is applied as FHIR means it, on what the
resource given back says; anything else is refused (400) or, when the client asks for lenient handling, left
out and said. Each parameter is tested for a match, a non-match, and a patient the reader may not see."""

import json
from urllib.parse import parse_qs, urlsplit

import pytest
from fhir.resources.R4B.bundle import Bundle

from audit.models import AccessEvent
from directory.actions import create_api_token
from fhirapi import search
from patients.models import Condition
from tests import factories
from tests.fhirapi.conftest import bundle, condition_resource, import_json, patient_resource
from tests.sharing.test_coverage import upheld_objection

pytestmark = pytest.mark.django_db

SNOMED = "http://snomed.info/sct"
NOT_AVAILABLE = "Record not available."


def body(response):
    return json.loads(response.content)


def get(api, token, path):
    response = api.get(path, token=token)
    assert response.status_code == 200, response.content
    return Bundle.model_validate(body(response))


def codes(found: Bundle) -> list[str]:
    return [entry.resource.code.coding[0].code for entry in found.entry or [] if entry.search.mode == "match"]


def issue(response) -> dict:
    return body(response)["issue"][0]


@pytest.fixture
def record(sender, patient):
    """The sender's Patient and three conditions received as FHIR."""
    diabetes = condition_resource("c1", onsetDateTime="2020-03-05", recordedDate="2020-04-01")
    asthma = condition_resource(
        "c2",
        code={"coding": [{"system": SNOMED, "code": "195967001", "display": "Asthma"}]},
        onsetDateTime="2021-06-01T10:30:00+01:00",
        clinicalStatus={"coding": [{"system": search.CONDITION_CLINICAL, "code": "recurrence"}]},
        verificationStatus={"coding": [{"system": search.CONDITION_VERIFICATION, "code": "provisional"}]},
        category=[{"coding": [{"system": search.CONDITION_CATEGORY, "code": "encounter-diagnosis"}]}],
        identifier=[{"system": "https://trust.example/conditions", "value": "A-1"}],
    )
    undated = condition_resource(
        "c3", code={"coding": [{"code": "local-9", "display": "Local code, no system"}]}, onsetDateTime=None
    )
    undated.pop("onsetDateTime")
    report = import_json(
        bundle("transaction", patient_resource(nhs_number=patient.nhs_number), diabetes, asthma, undated), sender
    )
    assert report.applied
    return patient


@pytest.fixture
def outsider_token(outsider):
    return create_api_token(by=None, name="outsider", user=outsider)[1]


@pytest.fixture
def other_org_token(clinician_other_org):
    return create_api_token(by=None, name="other", user=clinician_other_org)[1]


def assert_refused_like_unknown(api, token, path, patient):
    refused = api.get(path, token=token)
    unknown = api.get(path.replace(str(patient.pk), "00000000-0000-4000-8000-000000000000"), token=token)
    assert refused.status_code == unknown.status_code == 403
    assert refused.content == unknown.content and issue(refused)["diagnostics"] == NOT_AVAILABLE


# --- the registry is what the parser accepts ------------------------------------------------------------------


@pytest.mark.hazard("H-16")
def test_every_declared_parameter_is_accepted_and_an_undeclared_one_refused(api, reader_token, record):
    for name, param in search.params_of("Condition").items():
        value = {
            "reference": str(record.pk),
            "date": "ge2000",
            "token": "x",
        }[param.type]
        query = f"{name}={record.pk}" if name in ("patient", "subject") else f"patient={record.pk}&{name}={value}"
        assert api.get(f"/fhir/Condition?{query}", token=reader_token).status_code == 200, name
    response = api.get(f"/fhir/Condition?patient={record.pk}&severity=severe", token=reader_token)
    assert response.status_code == 400
    assert issue(response)["code"] == "not-supported" and issue(response)["expression"] == ["severity"]


@pytest.mark.hazard("H-16")
def test_allergy_intolerance_has_no_subject_parameter(api, reader_token, patient):
    """FHIR defines `subject` for Condition, not for AllergyIntolerance (its element is `patient`)."""
    assert "subject" not in search.params_of("AllergyIntolerance")
    response = api.get(f"/fhir/AllergyIntolerance?subject={patient.pk}", token=reader_token)
    assert response.status_code == 400 and issue(response)["expression"] == ["subject"]


# --- unknown parameters: strict and lenient --------------------------------------------------------------------


@pytest.mark.hazard("H-16")
def test_an_unknown_parameter_is_refused_without_any_access_decision(api, reader_token, record):
    response = api.get(f"/fhir/Condition?patient={record.pk}&onset=2020", token=reader_token)
    assert response.status_code == 400
    assert issue(response)["expression"] == ["onset"] and "onset" in issue(response)["diagnostics"]
    assert not AccessEvent.objects.exists()
    strict = api.get(
        f"/fhir/Condition?patient={record.pk}&onset=2020", token=reader_token, HTTP_PREFER="handling=strict"
    )
    assert strict.status_code == 400


@pytest.mark.hazard("H-16")
def test_lenient_ignores_an_unknown_parameter_says_so_and_keeps_it_out_of_the_links(api, reader_token, record):
    path = f"/fhir/Condition?patient={record.pk}&onset=2020&code=44054006&_count=1"
    response = api.get(path, token=reader_token, HTTP_PREFER="handling=lenient")
    found = Bundle.model_validate(body(response))
    assert found.total == 1 and codes(found) == ["44054006"]
    [outcome] = [entry for entry in found.entry if entry.search.mode == "outcome"]
    assert outcome.resource.issue[0].severity == "warning" and outcome.resource.issue[0].expression == ["onset"]
    for link in found.link:
        query = parse_qs(urlsplit(link.url).query)
        assert "onset" not in query and query["code"] == ["44054006"] and query["patient"] == [str(record.pk)]


# --- code ------------------------------------------------------------------------------------------------------


@pytest.mark.hazard("H-16")
@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("44054006", ["44054006"]),
        (f"{SNOMED}|44054006", ["44054006"]),
        ("http://other.example|44054006", []),
        (f"{SNOMED}|", ["195967001", "44054006"]),
        ("|local-9", ["local-9"]),
        ("|44054006", []),
        ("44054006,195967001", ["195967001", "44054006"]),
        ("999", []),
    ],
)
def test_code(api, reader_token, record, value, expected):
    found = get(api, reader_token, f"/fhir/Condition?patient={record.pk}&code={value.replace('|', '%7C')}")
    assert sorted(codes(found)) == expected and found.total == len(expected)


@pytest.mark.hazard("H-16")
def test_repeated_is_and_not_is_the_others(api, reader_token, record):
    both = get(api, reader_token, f"/fhir/Condition?patient={record.pk}&code=44054006&code=195967001")
    assert both.total == 0
    others = get(api, reader_token, f"/fhir/Condition?patient={record.pk}&code:not=44054006")
    assert sorted(codes(others)) == ["195967001", "local-9"]
    response = api.get(f"/fhir/Condition?patient={record.pk}&code:text=diabetes", token=reader_token)
    assert response.status_code == 400 and issue(response)["code"] == "not-supported"


@pytest.mark.hazard("H-16")
def test_code_matches_every_coding_of_an_entry_not_received_as_fhir(api, reader_token, patient, other_organisation):
    factories.ConditionFactory(
        patient=patient,
        source_organisation=other_organisation,
        name="Hypertension",
        code_system=SNOMED,
        code="38341003",
        codings=[
            {"system": SNOMED, "code": "38341003", "display": "Hypertension"},
            {"system": "http://read.example", "code": "G20..", "display": "Essential hypertension"},
        ],
    )
    found = get(api, reader_token, f"/fhir/Condition?patient={patient.pk}&code=http://read.example%7CG20..")
    assert found.total == 1
    assert get(api, reader_token, f"/fhir/Condition?patient={patient.pk}&code=G20").total == 0


@pytest.mark.hazard("H-16")
@pytest.mark.parametrize("who", ["outsider", "other_org"])
def test_a_search_by_code_for_a_patient_the_reader_may_not_see_is_refused_as_unknown(
    api, record, outsider_token, other_org_token, who
):
    token = outsider_token if who == "outsider" else other_org_token
    assert_refused_like_unknown(api, token, f"/fhir/Condition?patient={record.pk}&code=44054006", record)
    assert set(AccessEvent.objects.values_list("outcome", flat=True)) == {"refused"}


@pytest.mark.hazard("H-16")
def test_an_opted_out_patients_shared_entries_are_not_found_by_any_parameter(api, reader_token, record):
    upheld_objection(record, factories.UserFactory(is_staff=True))
    for query in ("code=44054006", "clinical-status=recurrence", "onset-date=ge2000", "identifier=A-1"):
        found = get(api, reader_token, f"/fhir/Condition?patient={record.pk}&{query}")
        assert found.total == 0 and not found.entry, query


# --- clinical-status, verification-status, category --------------------------------------------------------------


@pytest.mark.hazard("H-16")
def test_clinical_status_is_what_the_resource_says(api, reader_token, record, patient, other_organisation):
    """A recurrence is held as active (the record's column) but given back as recurrence: it is found as that."""
    factories.ConditionFactory(patient=patient, source_organisation=other_organisation, code="1", name="Built")
    recurrence = get(api, reader_token, f"/fhir/Condition?patient={patient.pk}&clinical-status=recurrence")
    assert codes(recurrence) == ["195967001"]
    active = get(api, reader_token, f"/fhir/Condition?patient={patient.pk}&clinical-status=active")
    assert sorted(codes(active)) == ["1", "44054006", "local-9"]
    system = f"{search.CONDITION_CLINICAL}%7Cactive"
    assert get(api, reader_token, f"/fhir/Condition?patient={patient.pk}&clinical-status={system}").total == 3
    assert get(api, reader_token, f"/fhir/Condition?patient={patient.pk}&clinical-status=resolved").total == 0


@pytest.mark.hazard("H-16")
def test_verification_status_and_category(api, reader_token, record, patient, other_organisation):
    factories.ConditionFactory(
        patient=patient, source_organisation=other_organisation, code="2", verification_status="differential"
    )
    assert codes(get(api, reader_token, f"/fhir/Condition?patient={patient.pk}&verification-status=provisional")) == [
        "195967001"
    ]
    assert codes(get(api, reader_token, f"/fhir/Condition?patient={patient.pk}&verification-status=differential")) == [
        "2"
    ]
    assert get(api, reader_token, f"/fhir/Condition?patient={patient.pk}&verification-status=confirmed").total == 0
    category = get(api, reader_token, f"/fhir/Condition?patient={patient.pk}&category=encounter-diagnosis")
    assert codes(category) == ["195967001"]
    assert get(api, reader_token, f"/fhir/Condition?patient={patient.pk}&category=problem-list-item").total == 0


# --- identifier, _id ------------------------------------------------------------------------------------------------


@pytest.mark.hazard("H-16")
def test_identifier_as_sent_and_the_senders_id_as_given_back(api, reader_token, record, sender, settings):
    as_sent = get(
        api, reader_token, f"/fhir/Condition?patient={record.pk}&identifier=https://trust.example/conditions%7CA-1"
    )
    assert codes(as_sent) == ["195967001"]
    assert get(api, reader_token, f"/fhir/Condition?patient={record.pk}&identifier=A-1").total == 1
    assert get(api, reader_token, f"/fhir/Condition?patient={record.pk}&identifier=https://x.example%7CA-1").total == 0
    senders = f"https://carerecord.example/id/{sender.ods_code}/Condition%7Cc1"
    assert codes(get(api, reader_token, f"/fhir/Condition?patient={record.pk}&identifier={senders}")) == ["44054006"]
    other = "https://carerecord.example/id/ZZZ99/Condition%7Cc1"
    assert get(api, reader_token, f"/fhir/Condition?patient={record.pk}&identifier={other}").total == 0
    given_back = get(api, reader_token, f"/fhir/Condition?patient={record.pk}&identifier={senders}")
    assert {"system": senders.split("%7C")[0], "value": "c1"} in [
        {"system": i.system, "value": i.value} for i in given_back.entry[0].resource.identifier
    ]


@pytest.mark.hazard("H-16")
def test_id(api, reader_token, record):
    held = list(Condition.objects.filter(patient=record).order_by("pk").values_list("pk", flat=True))
    found = get(api, reader_token, f"/fhir/Condition?patient={record.pk}&_id={held[0]},{held[2]}")
    assert sorted(int(e.resource.id) for e in found.entry) == [held[0], held[2]]
    assert get(api, reader_token, f"/fhir/Condition?patient={record.pk}&_id=999999").total == 0
    assert get(api, reader_token, f"/fhir/Condition?patient={record.pk}&_id=appointment-{held[0]}").total == 0


# --- dates --------------------------------------------------------------------------------------------------------


@pytest.mark.hazard("H-16")
@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2020-03-05", ["44054006"]),
        ("eq2020-03", ["44054006"]),
        ("2020", ["44054006"]),
        ("2020-03-06", []),
        ("ge2021", ["195967001"]),
        ("gt2020-03-05", ["195967001"]),
        ("lt2021-06-01", ["44054006"]),
        ("le2021-06-01", ["195967001", "44054006"]),
        ("sa2020-12-31", ["195967001"]),
        ("eb2020-03-06", ["44054006"]),
        ("ne2020-03-05", ["195967001"]),  # the undated condition never matches a date, ne neither
        ("2021-06-01T10:30", ["195967001"]),
        ("2021-06-01T09:30:00Z", ["195967001"]),
        ("2021-06-01T10:31", []),
    ],
)
def test_onset_date(api, reader_token, record, value, expected):
    found = get(api, reader_token, f"/fhir/Condition?patient={record.pk}&onset-date={value}")
    assert sorted(codes(found)) == expected


@pytest.mark.hazard("H-16")
def test_recorded_date_is_another_element(api, reader_token, record):
    assert codes(get(api, reader_token, f"/fhir/Condition?patient={record.pk}&recorded-date=2020-04")) == ["44054006"]
    assert get(api, reader_token, f"/fhir/Condition?patient={record.pk}&recorded-date=2020-03-05").total == 0


@pytest.mark.hazard("H-16")
def test_onset_date_missing(api, reader_token, record):
    assert codes(get(api, reader_token, f"/fhir/Condition?patient={record.pk}&onset-date:missing=true")) == ["local-9"]
    assert get(api, reader_token, f"/fhir/Condition?patient={record.pk}&onset-date:missing=false").total == 2


@pytest.mark.hazard("H-16")
@pytest.mark.parametrize(
    ("value", "code"),
    [
        ("ap2020", "not-supported"),
        ("xx2020", "invalid"),
        ("2020-13", "invalid"),
        ("2020-02-30", "invalid"),
        ("soon", "invalid"),
    ],
)
def test_a_date_that_cannot_be_honoured_is_a_400_naming_the_parameter(api, reader_token, record, value, code):
    response = api.get(f"/fhir/Condition?patient={record.pk}&onset-date={value}", token=reader_token)
    assert response.status_code == 400
    assert issue(response)["code"] == code and issue(response)["expression"] == ["onset-date"]


# --- the patient context ------------------------------------------------------------------------------------------


@pytest.mark.hazard("H-16")
def test_patient_and_subject_forms(api, reader_token, record):
    base = "http://testserver/fhir/"
    for query in (f"subject={record.pk}", f"patient=Patient/{record.pk}", f"subject={base}Patient/{record.pk}"):
        assert get(api, reader_token, f"/fhir/Condition?{query}").total == 3, query
    assert get(api, reader_token, f"/fhir/Condition?patient={record.pk}&subject=Patient/{record.pk}").total == 3
    other = factories.PatientFactory()
    for query in (
        f"patient={record.pk}&subject={other.pk}",
        f"patient={record.pk},{other.pk}",
        f"patient=https://elsewhere.example/fhir/Patient/{record.pk}",
        f"subject=Group/{record.pk}",
        "patient=",
    ):
        response = api.get(f"/fhir/Condition?{query}", token=reader_token)
        assert response.status_code == 400, query
    assert not AccessEvent.objects.filter(patient_id=other.pk).exists()


def test_one_access_event_per_search_whatever_its_parameters(api, reader_token, record):
    get(api, reader_token, f"/fhir/Condition?patient={record.pk}&code=44054006&onset-date=ge2000&_sort=-date")
    [event] = AccessEvent.objects.all()
    assert (event.page, event.outcome, event.patient_id) == ("fhir:Condition", "allowed", record.pk)


@pytest.mark.parametrize("query", ["code=a%00b", "onset-date=2020%00", "x%00=1", "identifier=a%01b"])
def test_a_value_no_database_can_hold_is_a_400_not_a_500(api, reader_token, record, query):
    response = api.get(f"/fhir/Condition?patient={record.pk}&{query}", token=reader_token)
    assert response.status_code == 400
