"""What partners sent is kept as they sent it, per version (fhirapi.models.ReceivedResource): nothing they said is
dropped on import (H-05), even what the record's columns do not hold. Idempotent (the same resource again stores
nothing), atomic with the rows (a rolled-back transaction stores nothing), and never an older copy over a newer."""

import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from fhirapi.models import ReceivedResource, digest_of, split_key
from patients import models as record

from .conftest import (
    FHIR_XML,
    RICHARD_SMITH,
    bundle,
    condition_resource,
    example,
    import_bytes,
    import_json,
    patient_resource,
)

pytestmark = [pytest.mark.django_db, pytest.mark.hazard("H-05")]

# What the record's columns do not hold: an extension, a body site, evidence, a stage.
UNMAPPED = {
    "extension": [{"url": "https://example.org/StructureDefinition/certainty", "valueString": "probable"}],
    "bodySite": [{"coding": [{"system": "http://snomed.info/sct", "code": "368209003", "display": "Right arm"}]}],
    "stage": [{"summary": {"text": "Stage 2"}}],
}


def kept(resource_type="Condition", resource_id="c1"):
    return list(
        ReceivedResource.objects.filter(resource_type=resource_type, resource_id=resource_id).order_by("version")
    )


def test_a_resource_is_kept_exactly_as_sent(sender):
    import_json(patient_resource(), sender)
    sent = condition_resource(meta={"lastUpdated": "2024-01-05T10:00:00Z"}, **UNMAPPED)
    import_json(sent, sender)
    [version] = kept()
    assert version.json == sent  # every element, as sent (not as carerecord's columns hold it)
    assert (version.organisation, version.version, version.source_id) == (sender, 1, "Condition/c1")
    assert version.patient == record.Patient.objects.get() and version.source_updated_at.year == 2024
    assert version.digest == digest_of(sent)
    assert kept("Patient", "p1")[0].json == patient_resource()


def test_the_same_resource_again_stores_nothing_and_a_change_stores_a_new_version(sender):
    import_json(patient_resource(), sender)
    sent = condition_resource(**UNMAPPED)
    import_json(sent, sender)
    reordered = json.loads(json.dumps(dict(reversed(list(sent.items())))))  # same content, other key order
    assert [o.status for o in import_json(reordered, sender).outcomes] == ["unchanged"]
    assert len(kept()) == 1
    # A change the record's columns do not see (the stage) is still a new version of what was said.
    changed = condition_resource(**{**UNMAPPED, "stage": [{"summary": {"text": "Stage 3"}}]})
    assert [o.status for o in import_json(changed, sender).outcomes] == ["unchanged"]
    assert [(v.version, v.json["stage"][0]["summary"]["text"]) for v in kept()] == [(1, "Stage 2"), (2, "Stage 3")]


def test_a_rolled_back_transaction_keeps_nothing(sender):
    transaction = bundle("transaction", patient_resource(), condition_resource(), condition_resource("c2", "Patient/x"))
    report = import_json(transaction, sender)
    assert report.applied is False
    assert not ReceivedResource.objects.exists()


def test_refused_and_older_copies_are_not_kept(sender):
    batch = bundle("batch", patient_resource(), condition_resource("c2", "Patient/nobody"))
    assert [o.status for o in import_json(batch, sender).outcomes] == ["created", "rejected"]
    assert not kept("Condition", "c2")
    import_json(condition_resource(meta={"lastUpdated": "2024-02-01T00:00:00Z"}), sender)
    older = condition_resource(meta={"lastUpdated": "2024-01-01T00:00:00Z"}, note=[{"text": "older"}])
    [outcome] = import_json(older, sender).outcomes
    assert outcome.stale
    [version] = kept()
    assert "note" not in version.json  # the newer copy stays the latest


def test_an_xml_resource_is_kept_as_its_json(sender):
    import_bytes(example(RICHARD_SMITH), sender, FHIR_XML)
    [version] = kept("Patient", "UKCore-Patient-RichardSmith-Example")
    assert version.json["resourceType"] == "Patient" and version.json["name"][0]["family"] == "SMITH"


def test_a_put_keeps_the_id_of_its_url(api, sender_token, sender):
    resource = patient_resource()
    del resource["id"]
    assert api.put("/fhir/Patient/p9", resource, token=sender_token).status_code == 201
    assert kept("Patient", "p9")[0].json["id"] == "p9"


def test_urn_uuid_references_are_kept_with_what_they_resolved_to(sender):
    """Outside its Bundle a urn:uuid means nothing: what it stood for is kept beside the resource."""
    urn = "urn:uuid:0b0c4b5e-0000-4000-8000-000000000001"
    condition = condition_resource(patient=urn)
    import_json(bundle("transaction", patient_resource(), condition, full_urls=[urn, None]), sender)
    [version] = kept()
    assert version.json["subject"] == {"reference": urn} and version.references == {urn: "Patient/p1"}
    # The same text in another bundle, pointing at another patient, is not the same resource.
    other = patient_resource("p2", nhs_number="9990000026")
    import_json(bundle("transaction", other, condition, full_urls=[urn, None]), sender)
    assert [v.references for v in kept()] == [{urn: "Patient/p1"}, {urn: "Patient/p2"}]


def test_an_entry_without_an_id_is_kept_under_its_full_url(sender):
    urn = "urn:uuid:0b0c4b5e-0000-4000-8000-0000000000aa"
    condition = condition_resource()
    del condition["id"]
    import_json(bundle("batch", patient_resource(), condition, full_urls=[None, urn]), sender)
    [version] = kept("Condition", "0b0c4b5e-0000-4000-8000-0000000000aa")
    assert version.source_id == record.Condition.objects.get().source_id


def test_keeping_costs_the_same_queries_whatever_the_size(sender):
    def submission(n):
        return bundle("batch", patient_resource(), *(condition_resource(f"c{i}") for i in range(n)))

    counts = []
    for size in (2, 20):
        ReceivedResource.objects.all().delete()
        with CaptureQueriesContext(connection) as queries:
            import_json(submission(size), sender)
        counts.append(len([q for q in queries if "receivedresource" in q["sql"].lower()]))
    assert counts[0] == counts[1] == 2  # the latest versions held, then one insert


@pytest.mark.parametrize(
    ("key", "parts"),
    [
        ("Condition/abc", ("Condition", "abc")),
        ("Condition?identifier=https://x|1", ("Condition", "?identifier=https://x|1")),
        ("Condition", ("Condition", "")),
    ],
)
def test_keys_split_into_type_and_id(key, parts):
    assert split_key(key) == parts


@pytest.mark.hazard("H-11")
def test_a_restricted_patients_contact_details_are_not_kept(sender):
    """S-flag: their address, phone and contacts are not kept from the Patient resource either."""
    restricted = patient_resource(
        meta={"security": [{"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "R"}]},
        address=[{"line": ["1 Hidden Road"], "postalCode": "N1 1AA"}],
        telecom=[{"system": "phone", "value": "020 7946 0000"}],
        contact=[{"name": {"family": "Contact"}}],
    )
    import_json(restricted, sender)
    [version] = kept("Patient", "p1")
    assert not {"address", "telecom", "contact"} & set(version.json)
    assert version.json["name"] == restricted["name"]
