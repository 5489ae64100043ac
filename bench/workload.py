"""The FHIR ingest workload of shared/PEERS.md, so carerecord's figure sits beside the peer's: transaction
Bundles of 1,000 entries, 100 Patients (NHS number, name, gender, birth date) each with 9 heart-rate
Observations (LOINC 8867-4, valueQuantity) whose subject is the Patient's `urn:uuid:` full URL.

Full URLs derive from the NHS number, so the same numbers always make the same bundle: sending it again
must change nothing (the bench measures that too)."""

import json
import uuid

import nhs_number

NHS_NUMBER_SYSTEM = "https://fhir.nhs.uk/Id/nhs-number"
PATIENTS_PER_BUNDLE = 100
OBSERVATIONS_PER_PATIENT = 9
RESOURCES_PER_BUNDLE = PATIENTS_PER_BUNDLE * (1 + OBSERVATIONS_PER_PATIENT)


def nhs_numbers(stem: int):
    """Valid NHS numbers from `stem` upwards (skipping stems with no valid check digit)."""
    while True:
        check = nhs_number.calculate_checksum(str(stem))
        if check != 10:
            yield f"{stem}{check}"
        stem += 1


def bundle(numbers: list[str]) -> bytes:
    entries = []
    for number in numbers:
        patient_url = f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_OID, number)}"
        entries.append(
            {
                "fullUrl": patient_url,
                "resource": {
                    "resourceType": "Patient",
                    "identifier": [{"system": NHS_NUMBER_SYSTEM, "value": number}],
                    "name": [{"family": "Ingest", "given": [f"Bench{number[-4:]}"]}],
                    "gender": "female",
                    "birthDate": "1970-01-01",
                },
                "request": {"method": "POST", "url": "Patient"},
            }
        )
        for n in range(OBSERVATIONS_PER_PATIENT):
            entries.append(
                {
                    "fullUrl": f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_OID, f'{number}-{n}')}",
                    "resource": {
                        "resourceType": "Observation",
                        "status": "final",
                        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4", "display": "Heart rate"}]},
                        "subject": {"reference": patient_url},
                        "effectiveDateTime": f"2025-01-{n + 1:02d}T09:00:00Z",
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
    return json.dumps({"resourceType": "Bundle", "type": "transaction", "entry": entries}).encode()
