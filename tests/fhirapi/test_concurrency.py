"""Two imports of the same bundle at the same moment create no duplicate (upserts on the unique source keys), and
keep each resource once (one version: the same JSON is not a new version, and the unique version index holds)."""

import json
import threading

import pytest
from django.db import connection

from fhirapi.ingest import ingest
from fhirapi.models import ReceivedResource
from fhirapi.parse import read
from patients import models as record
from sharing.models import Involvement

from .conftest import bundle, condition_resource, patient_resource

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="SQLite serialises writers: nothing to race"),
]


def observation(n):
    return {
        "resourceType": "Observation",
        "id": f"hr-{n}",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4", "display": "Heart rate"}]},
        "subject": {"reference": "Patient/p1"},
        "effectiveDateTime": f"2024-01-0{n + 1}T09:00:00Z",
        "valueQuantity": {"value": 60 + n, "unit": "beats/minute"},
    }


def care_team():
    return {
        "resourceType": "CareTeam",
        "id": "ct1",
        "status": "active",
        "name": "Heart failure nurses",
        "subject": {"reference": "Patient/p1"},
    }


@pytest.mark.hazard("H-14")
@pytest.mark.parametrize("kind", ["transaction", "batch"])
def test_simultaneous_imports_of_one_bundle_create_no_duplicates(kind, sender):
    body = json.dumps(
        bundle(kind, patient_resource(), condition_resource(), *(observation(n) for n in range(5)), care_team())
    ).encode()
    start, reports, failures = threading.Barrier(4), [], []

    def run():
        try:
            start.wait()
            reports.append(ingest(read(body), organisation=sender))
        except Exception as exc:  # reported by the assertion below
            failures.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert all(report.applied and not report.errors for report in reports)
    assert record.Patient.objects.count() == 1
    assert record.Condition.objects.count() == 1
    assert record.Result.objects.count() == 5
    assert record.Observation.objects.count() == 5
    assert Involvement.objects.count() == 1
    assert record.SourcePatientId.objects.count() == 1
    assert sorted(ReceivedResource.objects.values_list("version", flat=True)) == [1] * 8


def test_simultaneous_different_versions_are_each_kept_once(sender):
    """Four versions of one Condition at once: each is a version of its own, numbered without a gap or a clash.
    They differ only where the record's columns do not look (its stage), so no row lock orders them: the kept
    resources' own lock does."""
    ingest(read(json.dumps(patient_resource()).encode()), organisation=sender)
    ingest(read(json.dumps(condition_resource()).encode()), organisation=sender)
    bodies = [json.dumps(condition_resource(stage=[{"summary": {"text": f"Stage {n}"}}])).encode() for n in range(4)]
    start, failures = threading.Barrier(4), []

    def run(body):
        try:
            start.wait()
            ingest(read(body), organisation=sender)
        except Exception as exc:  # reported by the assertion below
            failures.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(body,)) for body in bodies]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    versions = ReceivedResource.objects.filter(resource_type="Condition").order_by("version")
    assert [v.version for v in versions] == [1, 2, 3, 4, 5]
    assert len({v.digest for v in versions}) == 5
