"""Patient/$everything's parameters (search.EVERYTHING_PARAMS): `_since` (meta.lastUpdated at or after it; the
Patient always comes), `_type`, `_count`; care-date ranges (`start`, `end`) refused; and Patient search by
identifier only. Every one through the same access decision and audit as a plain read."""

import datetime
import json

import pytest
from django.db import connection
from fhir.resources.R4B.bundle import Bundle

from audit.models import AccessEvent
from directory.actions import create_api_token
from tests import factories
from tests.fhirapi.conftest import bundle, condition_resource, import_json, patient_resource

pytestmark = pytest.mark.django_db
NHS = "https://fhir.nhs.uk/Id/nhs-number"


def body(response):
    return json.loads(response.content)


def get(api, token, path, **extra):
    response = api.get(path, token=token, **extra)
    assert response.status_code == 200, response.content
    return Bundle.model_validate(body(response))


def types(found: Bundle) -> list[str]:
    return [entry.resource.get_resource_type() for entry in found.entry or [] if entry.search.mode == "match"]


def issue(response) -> dict:
    return body(response)["issue"][0]


@pytest.fixture
def record(patient, sender):
    """A Condition last updated in 2023 (as its sender said), and an allergy and a care event changed now."""
    resources = [
        patient_resource(nhs_number=patient.nhs_number),
        condition_resource(meta={"lastUpdated": "2023-05-01T09:00:00Z"}),
    ]
    assert import_json(bundle("transaction", *resources), sender).applied
    factories.AllergyFactory(patient=patient, source_organisation=sender)
    factories.CareEventFactory(patient=patient, source_organisation=sender)
    return patient


@pytest.mark.hazard("H-16")
def test_since_gives_what_changed_from_then_and_the_patient_always(api, reader_token, record):
    everything = get(api, reader_token, f"/fhir/Patient/{record.pk}/$everything")
    assert "Condition" in types(everything)
    since = get(api, reader_token, f"/fhir/Patient/{record.pk}/$everything?_since=2024-01-01T00:00:00Z")
    assert "Condition" not in types(since)
    assert types(since)[0] == "Patient" and {"AllergyIntolerance", "Encounter"} <= set(types(since))
    assert since.total == len(types(since))
    before = get(api, reader_token, f"/fhir/Patient/{record.pk}/$everything?_since=2023-05-01T09:00:00%2B00:00")
    assert "Condition" in types(before)
    later = datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=1)
    nothing = get(api, reader_token, f"/fhir/Patient/{record.pk}/$everything?_since={later:%Y-%m-%dT%H:%M:%SZ}")
    assert types(nothing) == ["Patient"]


@pytest.mark.hazard("H-16")
def test_type_lists_only_those_types_with_the_patient(api, reader_token, record):
    found = get(api, reader_token, f"/fhir/Patient/{record.pk}/$everything?_type=Condition,AllergyIntolerance")
    assert types(found) == ["Patient", "AllergyIntolerance", "Condition"]
    only = get(api, reader_token, f"/fhir/Patient/{record.pk}/$everything?_type=Condition&_count=1")
    assert types(only) == ["Patient"] and only.total == 2
    assert "_type=Condition" in only.link[0].url and any(link.relation == "next" for link in only.link)


@pytest.mark.hazard("H-16")
@pytest.mark.parametrize(
    ("query", "name", "code"),
    [
        ("_type=Questionnaire", "_type", "invalid"),
        ("_type=Condition,", "_type", "invalid"),
        ("_since=2024-01-01", "_since", "invalid"),
        ("_since=2024-01-01T00:00:00", "_since", "invalid"),
        ("start=2020-01-01", "start", "not-supported"),
        ("end=2020-01-01", "end", "not-supported"),
        ("_count=x", "_count", "invalid"),
        ("code=44054006", "code", "not-supported"),
    ],
)
def test_what_everything_cannot_honour_is_a_400(api, reader_token, record, query, name, code):
    response = api.get(f"/fhir/Patient/{record.pk}/$everything?{query}", token=reader_token)
    assert response.status_code == 400
    assert issue(response)["code"] == code and issue(response)["expression"] == [name]
    assert not AccessEvent.objects.exists()


@pytest.mark.hazard("H-16")
def test_lenient_everything_ignores_an_unknown_parameter_and_says_so(api, reader_token, record):
    path = f"/fhir/Patient/{record.pk}/$everything?foo=1&_type=Condition"
    found = get(api, reader_token, path, HTTP_PREFER="handling=lenient")
    assert types(found) == ["Patient", "Condition"]
    assert found.entry[-1].search.mode == "outcome" and "foo" not in found.link[0].url


@pytest.mark.hazard("H-16")
@pytest.mark.parametrize("who", ["outsider", "clinician_other_org"])
def test_everything_with_parameters_for_a_refused_patient_is_refused_as_unknown(api, record, request, who):
    secret = create_api_token(by=None, name="x", user=request.getfixturevalue(who))[1]
    query = "_since=2020-01-01T00:00:00Z&_type=Condition"
    refused = api.get(f"/fhir/Patient/{record.pk}/$everything?{query}", token=secret)
    unknown = api.get(f"/fhir/Patient/00000000-0000-4000-8000-000000000000/$everything?{query}", token=secret)
    assert refused.status_code == unknown.status_code == 403 and refused.content == unknown.content
    assert list(AccessEvent.objects.values_list("outcome", flat=True)) == ["refused", "refused"]


@pytest.mark.agreements_cache  # as served: the agreements' copy warmed by the first request
def test_a_plain_everything_costs_what_it_did(
    api, reader_token, patient, other_organisation, django_assert_max_num_queries
):
    for n in range(20):
        factories.CareEventFactory(patient=patient, source_organisation=other_organisation, title=f"Visit {n}")
        factories.ConditionFactory(patient=patient, source_organisation=other_organisation)
    api.get(f"/fhir/Patient/{patient.pk}/$everything", token=reader_token)
    # 36 before lists that fit the page were fetched without a count; SQLite reads the agreements every time.
    with django_assert_max_num_queries(28 if connection.vendor == "postgresql" else 29):
        found = get(api, reader_token, f"/fhir/Patient/{patient.pk}/$everything")
    assert found.total == 1 + 20 + 20 + 1  # the patient, the entries and the care team (its involvement)


# --- Patient search: by identifier only --------------------------------------------------------------------------


@pytest.mark.hazard("H-16")
def test_patient_search_takes_identifier_format_and_count_only(api, reader_token, patient):
    url = f"/fhir/Patient?identifier={NHS}%7C{patient.nhs_number}"
    assert get(api, reader_token, f"{url}&_count=5&_format=json&_pretty=true").total == 1
    response = api.get(f"{url}&name=Testperson", token=reader_token)
    assert response.status_code == 400 and issue(response)["expression"] == ["name"]
    assert api.get(f"{url}&identifier=x", token=reader_token).status_code == 400
    assert api.get(f"{url.replace('identifier', 'identifier:exact')}", token=reader_token).status_code == 400
    lenient = get(api, reader_token, f"{url}&name=Testperson", HTTP_PREFER="handling=lenient")
    assert lenient.total == 1 and lenient.entry[-1].search.mode == "outcome"
    assert all("name=" not in link.url for link in lenient.link)


@pytest.mark.hazard("H-16")
def test_patient_search_by_post_refuses_other_parameters_too(client, clinician, patient):
    client.force_login(clinician)
    identifier = f"{NHS}|{patient.nhs_number}"
    refused = client.post("/fhir/Patient/_search", {"identifier": identifier, "birthdate": "1970-01-01"})
    assert refused.status_code == 400 and issue(refused)["expression"] == ["birthdate"]
    found = Bundle.model_validate(body(client.post("/fhir/Patient/_search", {"identifier": identifier})))
    assert found.total == 1 and patient.nhs_number not in found.link[0].url
