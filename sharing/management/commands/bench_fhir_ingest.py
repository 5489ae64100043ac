"""Measure FHIR ingest speed on the peer workload (shared/PEERS.md): transaction Bundles of 1,000 entries,
100 Patients (with NHS numbers) each with 9 heart-rate Observations referring to them by urn:uuid, POSTed to
/fhir/ with a real organisation token through the whole Django stack (middleware, view, parse, ingest).

Writes to the configured database (a BENCH organisation and test-range NHS numbers): point DATABASE_URL at a
scratch database. The first pass creates; the second sends the same bundles again (all unchanged).
"""

import json
import time
import uuid

from django.core.management.base import BaseCommand
from django.test import Client

from patients.nhs_numbers import test_range_numbers
from sharing.actions import create_api_token
from sharing.models import Organisation

PATIENTS_PER_BUNDLE = 100
OBSERVATIONS_PER_PATIENT = 9


def workload_bundle(nhs_numbers) -> dict:
    entries = []
    for nhs_number in nhs_numbers:
        patient_url = f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_OID, nhs_number)}"
        entries.append(
            {
                "fullUrl": patient_url,
                "resource": {
                    "resourceType": "Patient",
                    "identifier": [{"system": "https://fhir.nhs.uk/Id/nhs-number", "value": nhs_number}],
                    "name": [{"family": "Bench", "given": [f"Patient{nhs_number[-4:]}"]}],
                    "gender": "female",
                    "birthDate": "1970-01-01",
                },
                "request": {"method": "POST", "url": "Patient"},
            }
        )
        for n in range(OBSERVATIONS_PER_PATIENT):
            entries.append(
                {
                    "fullUrl": f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_OID, f'{nhs_number}-{n}')}",
                    "resource": {
                        "resourceType": "Observation",
                        "status": "final",
                        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4", "display": "Heart rate"}]},
                        "subject": {"reference": patient_url},
                        "effectiveDateTime": f"2024-01-{n + 1:02d}T09:00:00Z",
                        "valueQuantity": {
                            "value": 60 + n,
                            "unit": "beats/minute",
                            "system": "http://unitsofmeasure.org",
                            "code": "/min",
                        },
                    },
                    "request": {"method": "POST", "url": "Observation"},
                }
            )
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


class Command(BaseCommand):
    help = "Measure FHIR ingest (resources/s) on the peer workload: 1,000-entry transaction bundles."

    def add_arguments(self, parser):
        parser.add_argument("--bundles", type=int, default=5)
        parser.add_argument("--start", type=int, default=800_000, help="Where in the 999 test range to start.")

    def handle(self, *args, bundles, start, **options):
        organisation, _ = Organisation.objects.get_or_create(
            ods_code="BENCH", defaults={"name": "Ingest benchmark", "kind": "acute", "region": "NCL"}
        )
        _, secret = create_api_token(by=None, name="bench", organisation=organisation)
        client = Client(HTTP_HOST="localhost", HTTP_AUTHORIZATION=f"Bearer {secret}")
        numbers = test_range_numbers(start=start)
        bodies = [
            json.dumps(workload_bundle([next(numbers) for _ in range(PATIENTS_PER_BUNDLE)])).encode()
            for _ in range(bundles)
        ]
        resources = bundles * PATIENTS_PER_BUNDLE * (1 + OBSERVATIONS_PER_PATIENT)
        for label in ("first import (creates)", "same bundles again (unchanged)"):
            began = time.perf_counter()
            for body in bodies:
                response = client.post("/fhir/", body, content_type="application/fhir+json", secure=True)
                if response.status_code != 200:
                    self.stderr.write(response.content.decode()[:2000])
                    raise SystemExit(1)
            elapsed = time.perf_counter() - began
            self.stdout.write(
                f"{label}: {resources} resources in {elapsed:.2f} s = {resources / elapsed:,.0f} resources/s "
                f"({elapsed / bundles * 1000:.0f} ms per 1,000-entry bundle)"
            )
