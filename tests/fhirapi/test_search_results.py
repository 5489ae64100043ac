"""Search results (fhirapi/search.py, read.page_of, responses.searchset): `_sort` is the true sorted slice
across every table a type is read from, `_count`/`_summary=count` give the filtered total, `_include` and
`_revinclude` add the patient and the Provenance once (search mode include, not counted), links carry only
what was applied; and the type-specific parameters (status, dates, Observation code and category,
_lastUpdated) match what the resource given back says."""

import datetime
import json
from urllib.parse import parse_qs, urlsplit

import pytest
from django.utils import timezone
from fhir.resources.R4B.bundle import Bundle

from audit.models import AccessEvent
from directory.actions import create_api_token
from patients.models import Appointment, CareEvent, Medication, Result
from tests import factories
from tests.fhirapi.conftest import bundle, condition_resource, import_json, patient_resource

pytestmark = pytest.mark.django_db

LOINC = "http://loinc.org"
UTC = datetime.UTC


def body(response):
    return json.loads(response.content)


def get(api, token, path, **extra):
    response = api.get(path, token=token, **extra)
    assert response.status_code == 200, response.content
    return Bundle.model_validate(body(response))


def matches(found: Bundle) -> list:
    return [entry.resource for entry in found.entry or [] if entry.search.mode == "match"]


def issue(response) -> dict:
    return body(response)["issue"][0]


def send(sender, patient, *resources):
    report = import_json(bundle("transaction", patient_resource(nhs_number=patient.nhs_number), *resources), sender)
    assert report.applied, [o.issues for o in report.outcomes]


def at(year, month=1, day=1, hour=12):
    return datetime.datetime(year, month, day, hour, tzinfo=UTC)


@pytest.fixture
def stays(patient, other_organisation):
    """Encounters read from two tables: admissions and attendances (appointments) and community events."""
    appointment = {"patient": patient, "source_organisation": other_organisation}
    factories.AppointmentFactory(
        **appointment, kind=Appointment.Kind.ADMISSION, effective_at=at(2024, 3), ends_at=None, service="Open stay"
    )
    factories.AppointmentFactory(
        **appointment,
        kind=Appointment.Kind.ATTENDANCE,
        effective_at=at(2022, 5),
        ends_at=at(2022, 5, 1, 15),
        service="A",
    )
    factories.AppointmentFactory(**appointment, kind=Appointment.Kind.ADMISSION, effective_at=None, service="Undated")
    factories.CareEventFactory(**appointment, effective_at=at(2023, 1), title="Visit 2023")
    factories.CareEventFactory(**appointment, effective_at=at(2021, 7), title="Visit 2021")
    return patient


def encounter_names(found: Bundle) -> list[str]:
    return [(e.serviceType.text if e.type is None else e.type[0].text) for e in matches(found)]


# --- _sort --------------------------------------------------------------------------------------------------------


@pytest.mark.hazard("H-16")
def test_sort_by_date_is_one_order_across_both_tables_and_pages(api, reader_token, stays):
    newest = ["Open stay", "Visit 2023", "A", "Visit 2021", "Undated"]
    found = get(api, reader_token, f"/fhir/Encounter?patient={stays.pk}&_sort=-date")
    assert encounter_names(found) == newest and found.total == 5
    oldest = get(api, reader_token, f"/fhir/Encounter?patient={stays.pk}&_sort=date")
    assert encounter_names(oldest) == ["Visit 2021", "A", "Visit 2023", "Open stay", "Undated"]  # undated last
    seen, url = [], f"/fhir/Encounter?patient={stays.pk}&_sort=-date&_count=2"
    while url:
        page = get(api, reader_token, url.removeprefix("http://testserver"))
        seen += encounter_names(page)
        assert parse_qs(urlsplit(page.link[0].url).query)["_sort"] == ["-date"]
        url = next((link.url for link in page.link if link.relation == "next"), None)
    assert seen == newest


@pytest.mark.hazard("H-16")
def test_sort_with_a_filter_counts_the_filtered_total(api, reader_token, stays):
    found = get(api, reader_token, f"/fhir/Encounter?patient={stays.pk}&_sort=date&date=ge2022&_count=1&_offset=1")
    assert found.total == 3 and encounter_names(found) == ["Visit 2023"]


@pytest.mark.hazard("H-16")
@pytest.mark.parametrize("value", ["code", "-onset", "date,-_lastUpdated", "_id"])
def test_any_other_sort_is_refused(api, reader_token, stays, value):
    response = api.get(f"/fhir/Encounter?patient={stays.pk}&_sort={value}", token=reader_token)
    assert response.status_code == 400 and issue(response)["expression"] == ["_sort"]


@pytest.mark.hazard("H-16")
def test_a_type_with_no_date_sorts_by_last_updated_only(api, reader_token, patient):
    response = api.get(f"/fhir/RelatedPerson?patient={patient.pk}&_sort=date", token=reader_token)
    assert response.status_code == 400 and issue(response)["expression"] == ["_sort"]
    assert get(api, reader_token, f"/fhir/CareTeam?patient={patient.pk}&_sort=-_lastUpdated").total == 1


# --- Encounter: a period, open while the stay goes on ----------------------------------------------------------------


@pytest.mark.hazard("H-16")
def test_encounter_date_is_the_period_and_an_open_stay_is_still_going_on(api, reader_token, stays):
    assert encounter_names(get(api, reader_token, f"/fhir/Encounter?patient={stays.pk}&date=ge2025")) == ["Open stay"]
    assert encounter_names(get(api, reader_token, f"/fhir/Encounter?patient={stays.pk}&date=2022-05-01")) == ["A"]
    assert encounter_names(get(api, reader_token, f"/fhir/Encounter?patient={stays.pk}&date=eb2022")) == ["Visit 2021"]
    assert get(api, reader_token, f"/fhir/Encounter?patient={stays.pk}&date=eq2024-03").total == 0  # not ended


@pytest.mark.hazard("H-16")
def test_encounter_status_is_what_the_builder_writes_out(api, reader_token, stays):
    Appointment.objects.filter(service="A").update(status=Appointment.Status.ATTENDED)
    Appointment.objects.filter(service="Open stay").update(status=Appointment.Status.IN_PROGRESS)

    def found(status):
        return sorted(encounter_names(get(api, reader_token, f"/fhir/Encounter?patient={stays.pk}&status={status}")))

    assert found("finished") == ["A", "Visit 2021", "Visit 2023"]  # an attendance and the community events
    assert found("in-progress") == ["Open stay"]
    assert found("planned") == ["Undated"]  # booked
    assert found("attended") == found("booked") == []  # carerecord's words, not FHIR's


# --- _count, _summary, _elements ----------------------------------------------------------------------------------


@pytest.mark.hazard("H-16")
@pytest.mark.parametrize("query", ["_summary=count", "_count=0"])
def test_a_count_only_gives_the_filtered_total_and_no_entries(api, reader_token, stays, query):
    found = get(api, reader_token, f"/fhir/Encounter?patient={stays.pk}&date=ge2023&{query}")
    assert found.total == 2 and not found.entry
    assert query in found.link[0].url and "date=ge2023" in found.link[0].url


@pytest.mark.hazard("H-16")
@pytest.mark.parametrize(
    ("query", "name"),
    [("_summary=true", "_summary"), ("_elements=id", "_elements"), ("_count=-1", "_count"), ("_offset=x", "_offset")],
)
def test_result_parameters_it_cannot_honour_are_refused(api, reader_token, stays, query, name):
    response = api.get(f"/fhir/Encounter?patient={stays.pk}&{query}", token=reader_token)
    assert response.status_code == 400 and issue(response)["expression"] == [name]


def test_a_count_above_the_maximum_gives_the_maximum(api, reader_token, stays):
    found = get(api, reader_token, f"/fhir/Encounter?patient={stays.pk}&_count=5000")
    assert "_count=200" in found.link[0].url and len(found.entry) == 5


# --- _include, _revinclude ----------------------------------------------------------------------------------------


@pytest.fixture
def conditions(sender, patient):
    send(sender, patient, condition_resource("c1"), condition_resource("c2", onsetDateTime="2019-01-01"))
    return patient


@pytest.mark.hazard("H-16")
@pytest.mark.parametrize("value", ["Condition:patient", "Condition:subject", "Condition:subject:Patient"])
def test_include_the_patient_once_per_page_not_counted(api, reader_token, conditions, value):
    found = get(api, reader_token, f"/fhir/Condition?patient={conditions.pk}&_include={value}&_count=1")
    modes = [entry.search.mode for entry in found.entry]
    assert modes == ["match", "include"] and found.total == 2
    assert found.entry[1].resource.get_resource_type() == "Patient"
    assert found.entry[1].resource.id == str(conditions.pk)
    assert get(api, reader_token, f"/fhir/Condition?patient={conditions.pk}&code=0&_include={value}").entry is None


@pytest.mark.hazard("H-16")
@pytest.mark.parametrize(
    "query",
    ["_include=*", "_include=Condition:asserter", "_include=Observation:patient", "_include:iterate=Condition:patient"],
)
def test_any_other_include_is_refused(api, reader_token, conditions, query):
    response = api.get(f"/fhir/Condition?patient={conditions.pk}&{query}", token=reader_token)
    assert response.status_code == 400 and issue(response)["expression"] == ["_include"]


@pytest.mark.hazard("H-17")
def test_revinclude_provenance_of_the_page_only(api, reader_token, conditions):
    found = get(api, reader_token, f"/fhir/Condition?patient={conditions.pk}&_revinclude=Provenance:target&_count=1")
    [match] = matches(found)
    provenance = [entry for entry in found.entry if entry.search.mode == "include"]
    assert provenance and found.total == 2
    targets = {target.reference for entry in provenance for target in entry.resource.target}
    assert all(target.startswith(f"Condition/{match.id}/_history/") for target in targets)
    response = api.get(f"/fhir/Condition?patient={conditions.pk}&_revinclude=Provenance:entity", token=reader_token)
    assert response.status_code == 400 and issue(response)["expression"] == ["_revinclude"]


# --- XML ----------------------------------------------------------------------------------------------------------


def test_an_xml_searchset_with_parameters_and_includes(api, reader_token, conditions):
    path = f"/fhir/Condition?patient={conditions.pk}&code=44054006&_include=Condition:patient&_format=xml"
    response = api.get(path, token=reader_token, HTTP_PREFER="handling=lenient")
    assert response["Content-Type"].startswith("application/fhir+xml")
    found = Bundle.model_validate_xml(response.content)
    assert found.total == 2 and [e.search.mode for e in found.entry] == ["match", "match", "include"]
    assert "_format=xml" in found.link[0].url


# --- status, dates and lastUpdated on what the resource says ---------------------------------------------------------


def statement(resource_id, status, code="1234", **extra):
    return {
        "resourceType": "MedicationStatement",
        "id": resource_id,
        "status": status,
        "medicationCodeableConcept": {"coding": [{"system": "https://dmd.example", "code": code, "display": code}]},
        "subject": {"reference": "Patient/p1"},
        **extra,
    }


@pytest.mark.hazard("H-16")
def test_status_of_a_statement_is_as_sent_and_a_built_one_as_written_out(api, reader_token, sender, patient):
    send(sender, patient, statement("m1", "not-taken", "A"), statement("m2", "active", "B"))
    factories.MedicationFactory(patient=patient, source_organisation=sender, code="C", status=Medication.Status.STOPPED)
    assert Medication.objects.get(code="A").status == Medication.Status.STOPPED  # held as stopped, sent not-taken

    def found(query):
        bundle_ = get(api, reader_token, f"/fhir/MedicationStatement?patient={patient.pk}&{query}")
        return sorted(r.medicationCodeableConcept.coding[0].code for r in matches(bundle_))

    assert found("status=not-taken") == ["A"]
    assert found("status=stopped") == ["C"]
    assert found("status=active,stopped") == ["B", "C"]
    assert found("status:not=active") == ["A", "C"]


@pytest.mark.hazard("H-16")
def test_last_updated_is_meta_last_updated_as_given_back(api, reader_token, sender, patient):
    send(sender, patient, condition_resource("old", meta={"lastUpdated": "2023-02-03T10:00:00Z"}))
    built = factories.ConditionFactory(patient=patient, source_organisation=sender, code="built")
    found = get(api, reader_token, f"/fhir/Condition?patient={patient.pk}&_lastUpdated=2023-02-03")
    assert [r.meta.lastUpdated.isoformat() for r in matches(found)] == ["2023-02-03T10:00:00+00:00"]
    today = timezone.localdate().isoformat()
    recent = get(api, reader_token, f"/fhir/Condition?patient={patient.pk}&_lastUpdated=ge{today}")
    assert [r.id for r in matches(recent)] == [str(built.pk)]
    by_update = get(api, reader_token, f"/fhir/Condition?patient={patient.pk}&_sort=-_lastUpdated")
    assert [r.id for r in matches(by_update)] == [str(built.pk), matches(found)[0].id]
    oldest = get(api, reader_token, f"/fhir/Condition?patient={patient.pk}&_sort=_lastUpdated")
    assert [r.id for r in matches(oldest)] == [matches(found)[0].id, str(built.pk)]


def observation(resource_id, code, *, components=(), category="vital-signs", **extra):
    resource = {
        "resourceType": "Observation",
        "id": resource_id,
        "status": "final",
        "category": [
            {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": category}]}
        ],
        "code": {"coding": [{"system": LOINC, "code": code, "display": code}]},
        "subject": {"reference": "Patient/p1"},
        **extra,
    }
    if components:
        resource["component"] = [
            {
                "code": {"coding": [{"system": LOINC, "code": part, "display": part}]},
                "valueQuantity": {
                    "value": 120,
                    "unit": "mmHg",
                    "system": "http://unitsofmeasure.org",
                    "code": "mm[Hg]",
                },
            }
            for part in components
        ]
    else:
        resource["valueQuantity"] = {"value": 5, "unit": "kg"}
    return resource


@pytest.mark.hazard("H-16")
def test_observation_code_is_the_readings_not_a_components(api, reader_token, sender, patient):
    send(
        sender,
        patient,
        observation("bp", "85354-9", components=("8480-6", "8462-4"), effectiveDateTime="2024-01-02"),
        observation("wt", "29463-7", category="exam", issued="2024-02-02T10:00:00Z"),
    )

    def found(query):
        return sorted(
            r.code.coding[0].code
            for r in matches(get(api, reader_token, f"/fhir/Observation?patient={patient.pk}&{query}"))
        )

    assert found("code=85354-9") == ["85354-9"]
    assert found(f"code={LOINC}%7C85354-9") == ["85354-9"]
    assert found("code=8480-6") == []
    assert found("category=vital-signs") == ["85354-9"]
    assert found("category=exam") == ["29463-7"]
    assert found("date=2024-01-02") == ["85354-9"]
    assert found("date=2024-02-02") == []  # sent with `issued` only: no effective date to match
    assert found("status=final") == ["29463-7", "85354-9"]


@pytest.mark.hazard("H-16")
def test_a_built_observation_is_found_by_its_own_code_and_its_reports_category(
    api, reader_token, patient, other_organisation
):
    report = factories.ResultFactory(
        patient=patient,
        source_organisation=other_organisation,
        kind=Result.Kind.REPORT,
        observation_category="laboratory",
    )
    factories.ObservationFactory(result=report, code="4548-4")
    found = get(api, reader_token, f"/fhir/Observation?patient={patient.pk}&category=laboratory&code=4548-4")
    assert found.total == 1
    assert get(api, reader_token, f"/fhir/Observation?patient={patient.pk}&category=vital-signs").total == 0


# --- the refused patient, whatever the parameters --------------------------------------------------------------------


@pytest.mark.hazard("H-16")
@pytest.mark.parametrize(
    "query",
    ["_sort=-date", "_include=Encounter:patient", "_revinclude=Provenance:target", "_summary=count", "status=finished"],
)
def test_result_parameters_never_open_a_refused_record(api, stays, outsider, query):
    secret = create_api_token(by=None, name="outsider", user=outsider)[1]
    refused = api.get(f"/fhir/Encounter?patient={stays.pk}&{query}", token=secret)
    unknown = api.get(f"/fhir/Encounter?patient=00000000-0000-4000-8000-000000000000&{query}", token=secret)
    assert refused.status_code == unknown.status_code == 403 and refused.content == unknown.content
    assert list(AccessEvent.objects.values_list("outcome", flat=True)) == ["refused", "refused"]


# --- what a plain search costs (the bench measures it) ------------------------------------------------------------


def test_a_plain_search_costs_what_it_did(
    api, reader_token, patient, other_organisation, django_assert_max_num_queries
):
    for n in range(20):
        factories.CareEventFactory(patient=patient, source_organisation=other_organisation, title=f"Visit {n}")
    api.get(f"/fhir/Encounter?patient={patient.pk}", token=reader_token)  # warm the session and caches
    with django_assert_max_num_queries(PLAIN_SEARCH_QUERIES):
        found = get(api, reader_token, f"/fhir/Encounter?patient={patient.pk}")
    assert found.total == 20 and CareEvent.objects.count() == 20


PLAIN_SEARCH_QUERIES = 11  # as before search parameters: the parser and its filters add none
