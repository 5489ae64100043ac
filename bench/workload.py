"""The FHIR ingest workload of shared/PEERS.md, so carerecord's figure sits beside the peer's: transaction
Bundles of 1,000 entries, 100 Patients (NHS number, name, gender, birth date) each with 9 heart-rate
Observations (LOINC 8867-4, valueQuantity) whose subject is the Patient's `urn:uuid:` full URL.

Full URLs derive from the NHS number, so the same numbers always make the same bundle: sending it again
must change nothing (the bench measures that too). `message` is the same content as a FHIR message, for
$process-message."""

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
    entries = _entries(numbers)
    for entry in entries:
        entry["request"] = {"method": "POST", "url": entry["resource"]["resourceType"]}
    return json.dumps({"resourceType": "Bundle", "type": "transaction", "entry": entries}).encode()


# The same content as a FHIR message (POST [base]/$process-message): results, as a lab sends them unsolicited.
MESSAGE_EVENT = {"system": "https://fhir.nhs.uk/CodeSystem/message-event", "code": "unsolicited-observations"}


def message(numbers: list[str]) -> bytes:
    """The bundle's 1,000 resources as a message: a MessageHeader first (its focus every Observation), and an
    identifier derived from the NHS numbers, so the same numbers make the same message (sent again: a repeat)."""
    entries = _entries(numbers)
    header_id = str(uuid.uuid5(uuid.NAMESPACE_OID, f"message-{numbers[0]}"))
    header = {
        "resourceType": "MessageHeader",
        "id": header_id,
        "eventCoding": MESSAGE_EVENT,
        "source": {"name": "bench", "endpoint": "https://bench.example/fhir/$process-message"},
        "focus": [{"reference": e["fullUrl"]} for e in entries if e["resource"]["resourceType"] == "Observation"],
    }
    body = {
        "resourceType": "Bundle",
        "identifier": {"system": "urn:ietf:rfc:3986", "value": f"urn:uuid:{header_id}"},
        "type": "message",
        "timestamp": "2025-01-10T09:00:00Z",
        "entry": [{"fullUrl": f"urn:uuid:{header_id}", "resource": header}, *entries],
    }
    return json.dumps(body).encode()


def _entries(numbers: list[str]) -> list[dict]:
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
                }
            )
    return entries
