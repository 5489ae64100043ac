"""A real FHIR client from PyPI (fhirpy) reads a patient's record from a live server."""

import pytest
from fhirpy import SyncFHIRClient

from directory.actions import create_api_token
from tests import factories

pytestmark = pytest.mark.django_db(transaction=True)


def test_fhirpy_reads_a_record(live_server, clinician, patient, full_record, other_organisation):
    for n in range(3):
        factories.AllergyFactory(patient=patient, source_organisation=other_organisation, substance=f"Substance {n}")
    _, secret = create_api_token(by=None, name="viewer", user=clinician)
    client = SyncFHIRClient(f"{live_server.url}/fhir", authorization=f"Bearer {secret}")

    found = client.resources("Patient").search(identifier=f"https://fhir.nhs.uk/Id/nhs-number|{patient.nhs_number}")
    [resource] = found.fetch()
    assert resource.id == str(patient.pk) and resource["name"][0]["family"] == "Testperson"

    read = client.reference("Patient", str(patient.pk)).to_resource()
    assert read["birthDate"] == patient.date_of_birth.isoformat()

    # fetch_all follows the server's `next` links page by page.
    allergies = client.resources("AllergyIntolerance").search(patient=str(patient.pk)).limit(2).fetch_all()
    assert len(allergies) == 4

    conditions = client.resources("Condition").search(patient=str(patient.pk)).fetch()
    assert [c["code"]["text"] for c in conditions] == ["Type 2 diabetes mellitus"]
