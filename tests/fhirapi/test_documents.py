"""Documents: a DocumentReference's content kept with its letter and served as a FHIR Binary through the letter's
access decision (H-11); a size limit and integrity checks that refuse a document whole (H-05); a `document`
Bundle that must start with its Composition, whose sections are one letter under their titles (H-04)."""

import base64
import hashlib
import json

import pytest
from fhir.resources.R4B.binary import Binary
from fhir.resources.R4B.documentreference import DocumentReference

from audit.models import AccessEvent, AuditEvent
from audit.names import Action
from directory.actions import create_api_token
from fhirapi.mapping.letters import KEPT_CONTENT
from fhirapi.models import ReceivedResource
from patients import models as record
from sharing.models import SharingAgreement
from tests import factories
from tests.sharing.test_coverage import upheld_objection

from .conftest import bundle, example, example_resource, import_bytes, import_json, patient_resource

pytestmark = pytest.mark.django_db

PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
SUBJECT = {"reference": "Patient/p1"}


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def document_reference(resource_id="d1", *, attachment=None, **extra):
    return {
        "resourceType": "DocumentReference",
        "id": resource_id,
        "status": "current",
        "type": {"coding": [{"system": "http://snomed.info/sct", "code": "373942005", "display": "Discharge summary"}]},
        "subject": SUBJECT,
        "date": "2025-03-01T10:00:00Z",
        "content": [
            {"attachment": attachment or {"contentType": "application/pdf", "data": b64(PDF), "title": "Discharge"}}
        ],
        **extra,
    }


def binary(resource_id="b1", data=PDF, content_type="application/pdf"):
    return {"resourceType": "Binary", "id": resource_id, "contentType": content_type, "data": b64(data)}


@pytest.fixture
def ours(sender, patient):
    """The reader's patient, as the sender knows them (Patient/p1)."""
    import_json(patient_resource(nhs_number=patient.nhs_number, family=patient.family_name), sender)
    return patient


def statuses(report):
    return [outcome.status for outcome in report.outcomes]


def json_of(response):
    assert response.status_code == 200, response.content
    return json.loads(response.content)


# --- in: the content kept with its letter ---------------------------------------------------------------------


@pytest.mark.hazard("H-05")
def test_an_inline_pdf_is_kept_with_its_letter_once(sender, ours):
    report = import_json(document_reference(), sender)
    assert statuses(report) == ["created"]
    letter = record.Letter.objects.get()
    [attachment] = letter.attachments.all()
    assert (attachment.content_type, bytes(attachment.data), attachment.size) == ("application/pdf", PDF, len(PDF))
    assert (attachment.sha256, attachment.title, attachment.patient_id) == (
        hashlib.sha256(PDF).hexdigest(),
        "Discharge",
        ours.pk,
    )
    assert "Discharge (PDF, attached)" in letter.body
    # Kept once: the kept DocumentReference names the content instead of holding it again.
    [kept] = ReceivedResource.objects.filter(resource_type="DocumentReference")
    kept_attachment = kept.json["content"][0]["attachment"]
    assert "data" not in kept_attachment
    assert kept_attachment["extension"] == [{"url": KEPT_CONTENT, "valueString": attachment.sha256}]

    again = import_json(document_reference(), sender)
    assert statuses(again) == ["unchanged"]
    assert record.LetterAttachment.objects.count() == 1
    assert ReceivedResource.objects.filter(resource_type="DocumentReference").count() == 1


@pytest.mark.hazard("H-05")
@pytest.mark.parametrize(
    "url, full_url",
    [
        ("urn:uuid:5b0e6a1e-1d8f-4c39-9e0e-0f7f7f1d2a11", "urn:uuid:5b0e6a1e-1d8f-4c39-9e0e-0f7f7f1d2a11"),
        ("Binary/b1", None),
        ("https://trust.example.nhs.uk/fhir/Binary/b1", "https://trust.example.nhs.uk/fhir/Binary/b1"),
    ],
)
def test_a_binary_sent_with_its_document_reference_is_its_content(sender, ours, url, full_url):
    reference = document_reference(attachment={"contentType": "application/pdf", "url": url, "title": "Letter"})
    sent = bundle("transaction", binary(), reference, full_urls=[full_url, None])
    report = import_json(sent, sender)
    assert statuses(report) == ["created", "created"], [o.issues for o in report.outcomes]
    [attachment] = record.LetterAttachment.objects.all()
    assert bytes(attachment.data) == PDF and attachment.letter.source_id == "DocumentReference/d1"
    assert report.outcomes[0].patient_id == ours.pk
    # The kept Binary holds no second copy of the content either.
    [kept] = ReceivedResource.objects.filter(resource_type="Binary")
    assert "data" not in kept.json and kept.json["meta"]["tag"] == [{"system": KEPT_CONTENT, "code": attachment.sha256}]

    again = import_json(sent, sender)
    assert statuses(again) == ["unchanged", "unchanged"]
    assert record.LetterAttachment.objects.count() == 1 and ReceivedResource.objects.count() == 3


@pytest.mark.hazard("H-05")
def test_a_new_version_with_other_content_replaces_the_letters_attachment(sender, ours):
    import_json(document_reference(), sender)
    newer = PDF.replace(b"Catalog", b"Catalog2")
    report = import_json(
        document_reference(attachment={"contentType": "application/pdf", "data": b64(newer), "title": "Corrected"}),
        sender,
    )
    assert statuses(report) == ["updated"]
    [attachment] = record.LetterAttachment.objects.all()
    assert (bytes(attachment.data), attachment.title) == (newer, "Corrected")


@pytest.mark.hazard("H-05")
def test_content_over_the_size_limit_refuses_the_document_and_keeps_nothing_of_it(sender, ours, settings):
    settings.FHIR_ATTACHMENT_MAX_BYTES = len(PDF) - 1
    report = import_json(
        bundle(
            "batch",
            binary(),
            document_reference(attachment={"contentType": "application/pdf", "url": "Binary/b1"}),
            condition(),
        ),
        sender,
    )
    binary_outcome, document, kept = report.outcomes
    assert (binary_outcome.status, document.status, kept.status) == ("rejected", "rejected", "created")
    [issue] = document.issues
    assert issue.code == "too-costly" and "FHIR_ATTACHMENT_MAX_BYTES" in issue.diagnostics
    assert issue.expression == "Bundle.entry[1].resource.content[0].attachment"
    assert "Nothing of this DocumentReference was kept" in issue.diagnostics
    assert not record.Letter.objects.exists() and not record.LetterAttachment.objects.exists()
    assert not ReceivedResource.objects.filter(resource_type__in=["Binary", "DocumentReference"]).exists()


@pytest.mark.hazard("H-05")
def test_a_transaction_with_content_over_the_limit_is_a_422_and_changes_nothing(api, sender_token, settings):
    settings.FHIR_ATTACHMENT_MAX_BYTES = 10
    sent = bundle("transaction", patient_resource(), document_reference())
    response = api.post("/fhir/", sent, token=sender_token)
    assert response.status_code == 422
    issues = json.loads(response.content)["issue"]
    assert [issue["code"] for issue in issues] == ["processing", "too-costly"]
    assert issues[1]["expression"] == ["Bundle.entry[1].resource.content[0].attachment"]
    assert not record.Patient.objects.exists() and not record.LetterAttachment.objects.exists()


def condition():
    return {"resourceType": "Condition", "id": "c1", "code": {"text": "Asthma"}, "subject": SUBJECT}


@pytest.mark.hazard("H-05")
@pytest.mark.parametrize(
    "attachment, code, element",
    [
        ({"contentType": "application/pdf", "data": b64(PDF), "size": len(PDF) - 5}, "invalid", "size"),
        ({"contentType": "application/pdf", "data": b64(PDF), "hash": b64(b"x" * 20)}, "invalid", "hash"),
        ({"data": b64(PDF)}, "required", "contentType"),
        ({"contentType": "application/pdf", "url": "Binary/missing"}, "not-found", "url"),
        (
            {"contentType": "application/pdf", "url": "urn:uuid:0f0e6a1e-1d8f-4c39-9e0e-0f7f7f1d2a11"},
            "not-found",
            "url",
        ),
    ],
)
def test_content_that_cannot_be_kept_whole_refuses_its_document(sender, ours, attachment, code, element):
    [outcome] = import_json(document_reference(attachment=attachment), sender).outcomes
    assert outcome.status == "rejected"
    [issue] = outcome.issues
    assert (issue.code, issue.expression) == (code, f"DocumentReference.content[0].attachment.{element}")
    assert not record.Letter.objects.exists()


def test_matching_size_and_hash_are_accepted(sender, ours):
    attachment = {
        "contentType": "application/pdf",
        "data": b64(PDF),
        "size": len(PDF),
        "hash": b64(hashlib.sha1(PDF).digest()),  # noqa: S324 - FHIR's Attachment.hash is SHA-1
    }
    assert statuses(import_json(document_reference(attachment=attachment), sender)) == ["created"]


@pytest.mark.hazard("H-05")
def test_a_binary_on_its_own_is_not_kept_and_says_why(api, sender_token):
    response = api.post("/fhir/Binary", binary(), token=sender_token)
    assert response.status_code == 422
    [issue] = json.loads(response.content)["issue"]
    assert (
        issue["code"] == "not-supported" and "kept only as the content of a DocumentReference" in issue["diagnostics"]
    )
    assert not ReceivedResource.objects.exists() and not record.LetterAttachment.objects.exists()


@pytest.mark.hazard("H-05")
def test_an_unreferenced_binary_does_not_fail_a_transaction(sender, ours):
    report = import_json(bundle("transaction", binary(), condition()), sender)
    assert statuses(report) == ["rejected", "created"]
    assert report.outcomes[0].issues[0].severity == "warning"


def test_a_url_elsewhere_stays_a_link_and_is_never_fetched(sender, ours):
    link = {"contentType": "application/pdf", "url": "https://health.trust.uk/CarePlanReport.pdf", "title": "Plan"}
    assert statuses(import_json(document_reference(attachment=link), sender)) == ["created"]
    letter = record.Letter.objects.get()
    assert not letter.attachments.exists()
    assert "Plan (application/pdf): https://health.trust.uk/CarePlanReport.pdf" in letter.body


@pytest.mark.hazard("H-05")
def test_a_content_type_not_kept_leaves_the_letter_without_it_saying_so(sender, ours):
    word = {"contentType": "application/msword", "data": b64(b"\xd0\xcf\x11\xe0 word"), "title": "Referral"}
    [outcome] = import_json(document_reference(attachment=word), sender).outcomes
    assert outcome.status == "created"
    [issue] = outcome.issues
    assert (issue.severity, issue.code) == ("warning", "not-supported")
    assert issue.expression == "DocumentReference.content[0].attachment.contentType"
    letter = record.Letter.objects.get()
    assert "Referral (application/msword: not kept here)" in letter.body and not letter.attachments.exists()
    [in_a_batch] = import_json(bundle("batch", document_reference("d2", attachment=word)), sender).outcomes
    assert in_a_batch.issues[0].expression == "Bundle.entry[0].resource.content[0].attachment.contentType"


def test_html_content_is_kept_whole_and_its_words_are_the_body(sender, ours):
    page = b"<html><body><h1>Clinic letter</h1><p>Seen today.</p><script>alert(1)</script></body></html>"
    html = {"contentType": "text/html; charset=UTF-8", "data": b64(page)}
    import_json(document_reference(attachment=html), sender)
    letter = record.Letter.objects.get()
    assert letter.body.splitlines() == ["Clinic letter", "Seen today."]
    [attachment] = letter.attachments.all()
    assert (attachment.content_type, bytes(attachment.data)) == ("text/html; charset=utf-8", page)


# --- out: Binary, through the letter's access decision ------------------------------------------------------


@pytest.fixture
def pdf_letter(sender, ours):
    import_json(document_reference(), sender)
    return record.LetterAttachment.objects.get()


@pytest.mark.hazard("H-04")
def test_the_document_reference_read_gives_carerecords_binary_as_its_url(api, reader_token, pdf_letter):
    data = json_of(api.get(f"/fhir/DocumentReference/{pdf_letter.letter_id}", token=reader_token))
    DocumentReference.model_validate(data)
    [content] = data["content"]
    assert content["attachment"] == {
        "contentType": "application/pdf",
        "title": "Discharge",
        "url": f"Binary/{pdf_letter.pk}",
    }
    everything = json_of(api.get(f"/fhir/Patient/{pdf_letter.patient_id}/$everything", token=reader_token))
    [document] = [e["resource"] for e in everything["entry"] if e["resource"]["resourceType"] == "DocumentReference"]
    assert document["content"][0]["attachment"]["url"] == f"Binary/{pdf_letter.pk}"
    assert KEPT_CONTENT not in json.dumps(everything)


def test_a_letter_not_received_as_fhir_gives_its_attachment_as_content_too(
    api, reader_token, patient, other_organisation
):
    letter = factories.LetterFactory(patient=patient, source_organisation=other_organisation, source_id="letter-1")
    held = record.LetterAttachment.objects.create(
        letter=letter, patient=patient, title="Scan", content_type="image/png", data=b"\x89PNG", size=4, sha256="a" * 64
    )
    data = json_of(api.get(f"/fhir/DocumentReference/{letter.pk}", token=reader_token))
    assert data["content"][0]["attachment"]["contentType"] == "text/plain; charset=utf-8"
    assert data["content"][1]["attachment"] == {
        "contentType": "image/png",
        "url": f"Binary/{held.pk}",
        "size": 4,
        "title": "Scan",
    }


@pytest.mark.hazard("H-11")
def test_binary_read_gives_the_resource_to_a_fhir_client_and_the_bytes_otherwise(api, reader_token, pdf_letter):
    resource = api.get(f"/fhir/Binary/{pdf_letter.pk}", token=reader_token, HTTP_ACCEPT="application/fhir+json")
    binary_resource = Binary.model_validate(json_of(resource))
    assert (binary_resource.contentType, binary_resource.data) == ("application/pdf", PDF)
    assert binary_resource.securityContext.reference == f"DocumentReference/{pdf_letter.letter_id}"
    assert json.loads(api.get(f"/fhir/Binary/{pdf_letter.pk}?_format=json", token=reader_token).content)["id"] == str(
        pdf_letter.pk
    )

    raw = api.get(f"/fhir/Binary/{pdf_letter.pk}", token=reader_token, HTTP_ACCEPT="application/pdf, */*")
    assert raw.status_code == 200 and raw.content == PDF
    assert raw["Content-Type"] == "application/pdf"
    assert raw["Content-Disposition"] == 'inline; filename="Discharge.pdf"'
    assert raw["X-Content-Type-Options"] == "nosniff" and "no-store" in raw["Cache-Control"]
    pages = list(AccessEvent.objects.order_by("pk").values_list("page", "outcome"))
    assert pages == [("fhir:Binary:read", "allowed")] * 3


@pytest.mark.hazard("H-11")
def test_html_is_never_served_to_open_in_the_browser(api, reader_token, sender, ours):
    import_json(document_reference(attachment={"contentType": "text/html", "data": b64(b"<script>x</script>")}), sender)
    attachment = record.LetterAttachment.objects.get()
    raw = api.get(f"/fhir/Binary/{attachment.pk}", token=reader_token)
    assert raw["Content-Disposition"].startswith("attachment;")
    assert "sandbox" in raw["Content-Security-Policy"] and raw["X-Content-Type-Options"] == "nosniff"


def withhold_sensitive(attachment):
    record.Letter.objects.filter(pk=attachment.letter_id).update(sensitive=True)


def withdraw(attachment):
    record.Letter.objects.filter(pk=attachment.letter_id).update(entered_in_error=True)


def stop_sharing_letters(attachment):
    SharingAgreement.objects.filter(organisation=attachment.letter.source_organisation, category="letters").update(
        shares=False
    )


def uphold_an_objection(attachment):
    upheld_objection(attachment.patient, factories.UserFactory(is_staff=True))


@pytest.mark.hazard("H-11")
@pytest.mark.hazard("H-02")
@pytest.mark.parametrize("withheld", [withhold_sensitive, withdraw, stop_sharing_letters, uphold_an_objection])
def test_a_binary_follows_its_letter_and_a_viewer_who_may_not_read_it_gets_nothing(
    api, reader_token, pdf_letter, withheld
):
    assert api.get(f"/fhir/Binary/{pdf_letter.pk}", token=reader_token).status_code == 200
    withheld(pdf_letter)
    refused = api.get(f"/fhir/Binary/{pdf_letter.pk}", token=reader_token)
    unknown = api.get("/fhir/Binary/999999", token=reader_token)
    assert refused.status_code == unknown.status_code == 403 and refused.content == unknown.content
    assert PDF not in refused.content and b64(PDF).encode() not in refused.content
    listed = json_of(api.get(f"/fhir/DocumentReference?patient={pdf_letter.patient_id}", token=reader_token))
    assert "entry" not in listed
    assert AccessEvent.objects.filter(page="fhir:Binary:read").count() == 3


@pytest.mark.hazard("H-11")
@pytest.mark.hazard("H-03")
def test_a_viewer_without_a_relationship_gets_the_same_403_as_for_no_such_binary(api, pdf_letter, outsider):
    _, secret = create_api_token(by=None, name="outsider", user=outsider)
    refused = api.get(f"/fhir/Binary/{pdf_letter.pk}", token=secret)
    unknown = api.get("/fhir/Binary/not-ours", token=secret)
    assert refused.status_code == unknown.status_code == 403 and refused.content == unknown.content
    assert list(AccessEvent.objects.values_list("page", "outcome")) == [("fhir:Binary:read", "refused")] * 2


def test_the_source_organisation_reads_its_own_sensitive_letters_binary(api, sender, ours):
    restricted = {"security": [{"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "R"}]}
    import_json(document_reference(meta=restricted), sender)
    attachment = record.LetterAttachment.objects.get()
    team = factories.CareTeamFactory(organisation=sender)
    factories.InvolvementFactory(patient=ours, care_team=team)
    colleague = factories.ProfessionalFactory(organisation=sender)
    from directory.actions import add_team_member

    add_team_member(by=None, team=team, professional=colleague)
    _, secret = create_api_token(by=None, name="own", user=colleague.user)
    data = json_of(api.get(f"/fhir/Binary/{attachment.pk}?_format=json", token=secret))
    assert data["meta"]["security"] == [
        {"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "R", "display": "restricted"}
    ]


# --- document Bundles ---------------------------------------------------------------------------------------


@pytest.mark.hazard("H-04")
def test_a_document_must_start_with_its_composition(api, sender_token):
    sent = bundle("document", patient_resource(), condition())
    response = api.post("/fhir/", sent, token=sender_token)
    assert response.status_code == 400
    [issue] = json.loads(response.content)["issue"]
    assert (issue["code"], issue["expression"]) == ("invalid", ["Bundle.entry[0]"])
    assert "bdl-11" in issue["diagnostics"] and "Patient" in issue["diagnostics"]
    assert not record.Patient.objects.exists() and not record.Condition.objects.exists()
    [audited] = AuditEvent.objects.filter(action=Action.FHIR_SUBMISSION)
    assert "bdl-11" in audited.detail["refused"]


def discharge_document(sender):
    composition = example_resource("UKCore-Composition-Discharge-Example.xml")
    richard = json.loads(
        import_bytes(example("UKCore-Patient-RichardSmith-Example.xml"), sender)
        .outcomes[0]
        .entry.resource.model_dump_json(exclude_none=True)
    )
    allergy = {
        "resourceType": "AllergyIntolerance",
        "id": "a1",
        "code": {"text": "Penicillin -class of antibiotic"},
        "patient": {"reference": "urn:uuid:c8225cc8-8026-466f-80f8-fc2832a4b9d5"},
    }
    return {
        "resourceType": "Bundle",
        "type": "document",
        "identifier": {
            "system": "https://tools.ietf.org/html/rfc4122",
            "value": "2d361270-039f-4a48-827b-ef255ff8b6c4",
        },
        "timestamp": "2021-02-12T19:00:00+00:00",
        "entry": [
            {"fullUrl": "urn:uuid:2d361270-039f-4a48-827b-ef255ff8b6c4", "resource": composition},
            {"fullUrl": "urn:uuid:c8225cc8-8026-466f-80f8-fc2832a4b9d5", "resource": richard},
            {"fullUrl": "urn:uuid:b37c89af-c5da-425f-8e6d-58c043ccf94b", "resource": allergy},
        ],
    }, composition


@pytest.mark.hazard("H-04")
def test_a_discharge_document_is_one_letter_with_every_section_under_its_title(sender):
    document, composition = discharge_document(sender)
    report = import_json(document, sender)
    assert [o.status for o in report.outcomes] == ["created", "unchanged", "created"]
    letter = record.Letter.objects.get()
    assert (letter.kind, letter.title) == (record.Letter.Kind.DISCHARGE, "Accident & Emergency Discharge summary")
    lines = letter.body.splitlines()
    titles = [section["title"] for section in composition["section"]]
    assert len(titles) == 16
    positions = [lines.index(title) for title in titles]
    assert positions == sorted(positions)  # every section, in the author's order, each under its title
    assert lines[lines.index("Diagnoses") + 1] == "Diagnosis name Acute ST segment elevation myocardial infarction"
    assert "Causative agent Penicillin -class of antibiotic" in lines
    # What the sections list lands in its own category.
    assert record.Allergy.objects.get().patient == letter.patient


@pytest.mark.hazard("H-04")
def test_a_section_without_narrative_says_what_it_holds(sender, ours):
    composition = {
        "resourceType": "Composition",
        "id": "comp1",
        "status": "final",
        "type": {"text": "Discharge summary"},
        "subject": SUBJECT,
        "date": "2025-01-01",
        "author": [{"display": "Dr Jones"}],
        "title": "Discharge summary",
        "section": [
            {"title": "Allergies", "emptyReason": {"coding": [{"code": "nilknown", "display": "Nil Known"}]}},
            {
                "title": "Medications",
                "entry": [{"reference": "MedicationStatement/m1"}, {"reference": "MedicationStatement/m2"}],
            },
            {
                "title": "Plan",
                "section": [
                    {
                        "title": "Follow up",
                        "text": {
                            "status": "generated",
                            "div": '<div xmlns="http://www.w3.org/1999/xhtml">GP in 2 weeks</div>',
                        },
                    }
                ],
            },
        ],
    }
    import_json(bundle("document", composition), sender)
    assert record.Letter.objects.get().body.splitlines() == [
        "Allergies",
        "Nothing to report: nil known.",
        "",
        "Medications",
        "2 entries, in their own sections of the record.",
        "",
        "Plan",
        "Follow up",
        "GP in 2 weeks",
    ]


@pytest.mark.parametrize(
    "name, url",
    [
        (
            "UKCore-DocumentReference-CarePlanReportPDF-Example.xml",
            "https://health.trust.uk/CarePlanReport_44301kfgd.pdf",
        ),
        ("UKCore-DocumentReference-ECG-Example.xml", "DocumentReference/UKCore-DocumentReference-ECG-Example.pdf"),
    ],
)
def test_the_uk_core_document_references_import_and_read_back_their_link(
    api, reader_token, sender, care_team, name, url
):
    richard = import_bytes(example("UKCore-Patient-RichardSmith-Example.xml"), sender).outcomes[0].patient_id
    factories.InvolvementFactory(patient=record.Patient.objects.get(pk=richard), care_team=care_team)
    [outcome] = import_bytes(example(name), sender).outcomes
    assert outcome.status == "created", outcome.issues
    letter = record.Letter.objects.get()
    assert not letter.attachments.exists() and url in letter.body
    data = json_of(api.get(f"/fhir/DocumentReference/{letter.pk}", token=reader_token))
    DocumentReference.model_validate(data)
    assert data["content"][0]["attachment"]["url"] == url  # a link elsewhere, as sent
