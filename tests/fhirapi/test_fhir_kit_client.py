"""A second real FHIR client, npm's fhir-kit-client (tests/js/, pinned by its package-lock.json; `make install`
runs `npm ci`), reads a record from a live server: search with parameters, paging by next links, `_include`,
`_summary=count`, `_sort`, a refused parameter, read, vread, `_history` and `$everything`.

tests/js/fhir_kit_client_check.mjs does what a partner's app would and prints what it read; this module sets the
record up and asserts on it. Outside CI it skips, saying why, when node or tests/js/node_modules is missing; in
CI (CI or REQUIRE_NODE set) that is a failure, so the suite never passes without it.
"""

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from directory.actions import create_api_token
from fhirapi.models import ReceivedResource
from patients.models import Condition

from .conftest import bundle, condition_resource, import_json, patient_resource

pytestmark = pytest.mark.django_db(transaction=True)

JS = Path(__file__).resolve().parent.parent / "js"
NODE = shutil.which("node")
SNOMED = "http://snomed.info/sct"
LOINC = "http://loinc.org"
CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
RESOLVED = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "resolved"}]}


def _missing() -> str:
    if NODE is None:
        return "node is not installed"
    if not (JS / "node_modules" / "fhir-kit-client").is_dir():
        return "tests/js/node_modules is missing: make install (npm ci --prefix tests/js)"
    return ""


@pytest.fixture(autouse=True)
def _node_and_the_client():
    missing = _missing()
    if missing and (os.environ.get("CI") or os.environ.get("REQUIRE_NODE")):
        pytest.fail(f"fhir-kit-client is required in CI: {missing}")
    if missing:
        pytest.skip(missing)


def run_client(base_url: str, token: str, nhs_number: str) -> dict:
    done = subprocess.run(
        [NODE, str(JS / "fhir_kit_client_check.mjs"), base_url, token, nhs_number],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def observation(resource_id, code, category, value):
    return {
        "resourceType": "Observation",
        "id": resource_id,
        "status": "final",
        "category": [{"coding": [{"system": CATEGORY, "code": category}]}],
        "code": {"coding": [{"system": LOINC, "code": code}]},
        "subject": {"reference": "Patient/p1"},
        "effectiveDateTime": "2026-02-01T09:00:00+00:00",
        "valueQuantity": {"value": value, "unit": "/min", "system": "http://unitsofmeasure.org", "code": "/min"},
    }


def diabetes(note):
    return condition_resource("c1", note=[{"text": note}])


@pytest.fixture
def record(patient, sender):
    """Three problems (two active; diabetes sent twice, so two versions) and two observations, one vital sign."""
    import_json(
        bundle(
            "batch",
            patient_resource(nhs_number=patient.nhs_number, family=patient.family_name),
            diabetes("First version"),
            condition_resource(
                "c2",
                name="Asthma",
                clinicalStatus=RESOLVED,
                onsetDateTime="2010-05-01",
                code={"coding": [{"system": SNOMED, "code": "195967001", "display": "Asthma"}]},
            ),
            condition_resource(
                "c3",
                onsetDateTime="2022-03-01",
                code={"coding": [{"system": SNOMED, "code": "38341003", "display": "Hypertension"}]},
            ),
            observation("o1", "8867-4", "vital-signs", 72),
            observation("o2", "718-7", "laboratory", 135),
        ),
        sender,
    )
    import_json(bundle("batch", diabetes("Second version")), sender)
    assert ReceivedResource.objects.filter(resource_type="Condition", resource_id="c1").count() == 2
    return {source_id: f"Condition/{row.pk}" for source_id, row in _conditions(patient).items()}


def _conditions(patient):
    return {row.source_id.removeprefix("Condition/"): row for row in Condition.objects.filter(patient=patient)}


@pytest.mark.hazard("H-16")
def test_fhir_kit_client_searches_pages_and_includes(live_server, clinician, patient, record):
    _, secret = create_api_token(by=None, name="viewer", user=clinician)
    read = run_client(f"{live_server.url}/fhir", secret, patient.nhs_number)
    assert read["patient"] == str(patient.pk)

    # Two active problems, a page each by the next link, the patient included once on each page (not counted).
    pages = read["activeConditions"]
    assert [len(page["matches"]) for page in pages] == [1, 1]
    assert {match for page in pages for match in page["matches"]} == {record["c1"], record["c3"]}
    assert [page["included"] for page in pages] == [[f"Patient/{patient.pk}"]] * 2
    assert [page["total"] for page in pages] == [2, 2]
    assert "clinical-status=active" in pages[0]["self"] and "_include=Condition%3Apatient" in pages[0]["self"]

    assert read["byCode"] == [record["c3"]]
    assert sorted(read["onsetSince2015"]) == sorted([record["c1"], record["c3"]])
    assert read["sortedByDate"] == ["2010-05-01", "2020-01-01", "2022-03-01"]
    assert read["count"] == {"total": 3, "entries": 0}
    assert read["vitalSigns"] == ["8867-4"]

    refused = read["unknownParameter"]
    assert refused["refused"] == 400
    assert [(issue["code"], issue["expression"]) for issue in refused["issues"]] == [("not-supported", ["made-up"])]

    # $everything, three to a page, by the next links: the patient and each entry once.
    everything = [match for page in read["everything"] for match in page["matches"]]
    assert len(everything) == len(set(everything)) == read["everything"][0]["total"]
    assert {f"Patient/{patient.pk}", *record.values()} <= set(everything)
    # (the CareTeam: the reader's team's involvement, which is why the reader may see the record)
    assert {kind.split("/")[0] for kind in everything} == {"Patient", "Condition", "Observation", "CareTeam"}
    assert set(read["everythingConditions"]) - {f"Patient/{patient.pk}"} == set(record.values())


@pytest.mark.hazard("H-17")
def test_fhir_kit_client_reads_versions_and_history(live_server, clinician, patient, record):
    _, secret = create_api_token(by=None, name="viewer", user=clinician)
    versions = run_client(f"{live_server.url}/fhir", secret, patient.nhs_number)["versions"]
    assert f"Condition/{versions['id']}" == record["c1"]
    assert versions["read"] == {"versionId": "2", "note": "Second version"}
    assert versions["history"] == [
        {"versionId": "2", "note": "Second version", "method": "PUT"},
        {"versionId": "1", "note": "First version", "method": "POST"},
    ]
    assert versions["vread"] == {"versionId": "1", "note": "First version"}


@pytest.mark.hazard("H-16")
def test_fhir_kit_client_reads_the_capability_statement(live_server, clinician, patient, record):
    _, secret = create_api_token(by=None, name="viewer", user=clinician)
    capability = run_client(f"{live_server.url}/fhir", secret, patient.nhs_number)["capability"]
    assert capability["fhirVersion"] == "4.0.1" and capability["transaction"] is True
    assert {"read", "vread", "history-instance", "search-type"} <= set(capability["interactions"]["Condition"])
    assert capability["interactions"]["Binary"] == ["read"]
    assert capability["interactions"]["Practitioner"] == []  # accepted in submissions as a name only
    assert {"patient", "clinical-status", "code", "onset-date", "_id", "_lastUpdated"} <= set(
        capability["searchParams"]["Condition"]
    )
    assert {"category", "code"} <= set(capability["searchParams"]["Observation"])
    assert capability["searchParams"]["Patient"] == ["identifier", "_count"]


@pytest.mark.hazard("H-16")
def test_fhir_kit_client_gets_nothing_of_a_record_its_reader_may_not_see(live_server, outsider, patient, record):
    """The outsider (same organisation, no care relationship) finds the patient by NHS number, as the search page
    would, and reads nothing of the record: every search, read and $everything is the same 403."""
    _, secret = create_api_token(by=None, name="viewer", user=outsider)
    read = run_client(f"{live_server.url}/fhir", secret, patient.nhs_number)
    assert read["patient"] == str(patient.pk)
    not_available = [{"code": "forbidden", "expression": [], "text": "Record not available."}]
    for name in ("activeConditions", "everything"):
        assert (read[name]["refused"], read[name]["issues"], read[name]["pages"]) == (403, not_available, []), name
    for name in ("byCode", "onsetSince2015", "sortedByDate", "count", "vitalSigns", "versions", "everythingConditions"):
        assert (read[name]["refused"], read[name]["issues"]) == (403, not_available), name
