"""Every FHIR read route added for issue 14 (search with parameters, _include/_revinclude, _history, vread,
$everything with _type), for each reader who may not see the record: refused, with no patient data in the answer,
and the look audited. The clinician in the care team is the control: the same requests answer 200."""

import pytest

from audit.models import AccessEvent
from directory.actions import create_api_token
from patients.models import Condition

from .conftest import condition_resource, import_json, patient_resource

pytestmark = [pytest.mark.django_db, pytest.mark.hazard("H-03")]

NAME = "Type 2 diabetes mellitus"


@pytest.fixture
def routes(sender, patient):
    import_json(patient_resource(nhs_number=patient.nhs_number, family=patient.family_name), sender)
    import_json(condition_resource(), sender)
    import_json(condition_resource(note=[{"text": "Reviewed"}]), sender)  # a second version
    ours = Condition.objects.get(source_id="Condition/c1").pk
    return [
        f"/fhir/Condition?patient={patient.pk}&clinical-status=active&_sort=-date",
        f"/fhir/Condition?patient={patient.pk}&_include=Condition:patient&_revinclude=Provenance:target",
        f"/fhir/Condition/{ours}",
        f"/fhir/Condition/{ours}/_history",
        f"/fhir/Condition/{ours}/_history/1",
        f"/fhir/Patient/{patient.pk}/$everything?_type=Condition&_since=2000-01-01T00:00:00Z",
    ]


def _token(user):
    return create_api_token(by=None, name="reader", user=user)[1]


def test_the_care_team_reads_every_route(api, clinician, routes):
    token = _token(clinician)
    for path in routes:
        response = api.get(path, token=token)
        assert response.status_code == 200, path
        assert NAME in response.content.decode(), path


@pytest.mark.parametrize(
    "who",
    ["outsider", "clinician_other_org", "ig_user", "inactive_professional", "professional_at_inactive_organisation"],
)
def test_a_reader_who_may_not_see_the_record_is_refused_on_every_route(api, request, routes, who):
    token = _token(request.getfixturevalue(who))
    for path in routes:
        before = AccessEvent.objects.count()
        response = api.get(path, token=token)
        assert response.status_code == 403, path
        assert NAME not in response.content.decode(), path
        assert AccessEvent.objects.count() == before + 1, path  # the refusal is a look, audited


def test_without_credentials_every_route_is_401(api, routes):
    for path in routes:
        response = api.get(path)
        assert response.status_code == 401, path
        assert NAME not in response.content.decode(), path
