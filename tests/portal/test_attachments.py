"""A letter's attachment on the record: linked from the letter ("Open the letter (PDF, 1.2 KB)"), opened in the
browser if a PDF and downloaded otherwise, through the record's one access decision and one audit event (H-11:
visibility follows its letter; a viewer who may not read the letter gets nothing of it)."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from audit.models import AccessEvent
from patients import models as record
from sharing.models import SharingAgreement
from tests import factories
from tests.sharing.test_coverage import upheld_objection

pytestmark = pytest.mark.django_db

PDF = b"%PDF-1.4\n" + b"0" * 1200 + b"\n%%EOF\n"


def attach(letter, data=PDF, content_type="application/pdf", title="Discharge summary"):
    import hashlib

    return record.LetterAttachment.objects.create(
        letter=letter,
        patient=letter.patient,
        title=title,
        content_type=content_type,
        data=data,
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
    )


@pytest.fixture
def letter(patient, other_organisation):
    return factories.LetterFactory(patient=patient, source_organisation=other_organisation, title="Discharge summary")


@pytest.fixture
def pdf(letter):
    return attach(letter)


def url_of(attachment):
    return reverse("record-letter-attachment", args=[attachment.patient_id, attachment.pk])


def events_of(response):
    return list(AccessEvent.objects.filter(request_id=response["X-Request-ID"]))


@pytest.mark.hazard("H-11")
def test_a_pdf_opens_in_the_browser_with_one_audit_event(client, clinician, pdf):
    client.force_login(clinician)
    response = client.get(url_of(pdf))
    assert response.status_code == 200 and response.content == PDF
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"] == 'inline; filename="Discharge summary.pdf"'
    assert response["X-Content-Type-Options"] == "nosniff"
    assert "no-store" in response["Cache-Control"] and response["Pragma"] == "no-cache"
    assert "object-src 'self'" in response["Content-Security-Policy"]
    [event] = events_of(response)
    assert (event.page, event.outcome, event.patient_id, event.user_id) == (
        "record:letters:attachment",
        "allowed",
        pdf.patient_id,
        clinician.pk,
    )


@pytest.mark.hazard("H-11")
@pytest.mark.parametrize("content_type", ["text/html; charset=utf-8", "image/png", "text/plain"])
def test_anything_but_a_pdf_is_a_download_that_runs_nothing(client, clinician, letter, content_type):
    attachment = attach(letter, b"<script>alert(document.cookie)</script>", content_type, "Clinic letter")
    client.force_login(clinician)
    response = client.get(url_of(attachment))
    assert response.status_code == 200
    assert response["Content-Disposition"].startswith('attachment; filename="Clinic letter.')
    assert response["Content-Type"] == content_type
    assert "sandbox" in response["Content-Security-Policy"] and response["X-Content-Type-Options"] == "nosniff"


def test_a_title_cannot_smuggle_a_path_or_a_header(client, clinician, letter):
    attachment = attach(letter, title='../../etc/passwd"\r\nSet-Cookie: x=1')
    client.force_login(clinician)
    disposition = client.get(url_of(attachment))["Content-Disposition"]
    assert disposition == 'inline; filename="etcpasswdSet-Cookie x1.pdf"'


@pytest.mark.hazard("H-04")
def test_the_letters_page_and_the_summary_link_to_the_attachment(client, clinician, patient, pdf, letter):
    client.force_login(clinician)
    for name in ("record-letters", "record-summary"):
        body = client.get(reverse(name, args=[patient.pk])).content.decode()
        assert f'href="{url_of(pdf)}"' in body, name
        assert "Open the letter" in body and "(PDF, 1.2\xa0KB)" in body, name
    attach(letter, b"second", "text/plain", "Copy")
    body = client.get(reverse("record-letters", args=[patient.pk])).content.decode()
    assert body.count(f'href="{url_of(pdf)}"') == 1  # the PDF first
    assert "The source sent 2 documents with this letter" in body


def test_a_letter_without_an_attachment_has_no_link(client, clinician, patient, letter):
    client.force_login(clinician)
    body = client.get(reverse("record-letters", args=[patient.pk])).content.decode()
    assert "Open the letter" not in body and "Download the letter" not in body


def test_the_letters_page_costs_no_more_queries_with_attachments(client, clinician, patient, other_organisation):
    client.force_login(clinician)
    url = reverse("record-letters", args=[patient.pk])
    for _ in range(2):
        factories.LetterFactory(patient=patient, source_organisation=other_organisation)
    client.get(url)
    with CaptureQueriesContext(connection) as before:
        client.get(url)
    for letter in record.Letter.objects.all():
        attach(letter)
    with CaptureQueriesContext(connection) as after:
        body = client.get(url).content.decode()
    assert len(after) == len(before) and body.count("Open the letter") == 2
    assert not any('"data"' in query["sql"] for query in after.captured_queries)  # never the content itself


def sensitive(attachment):
    record.Letter.objects.filter(pk=attachment.letter_id).update(sensitive=True)


def entered_in_error(attachment):
    record.Letter.objects.filter(pk=attachment.letter_id).update(entered_in_error=True)


def not_shared(attachment):
    SharingAgreement.objects.filter(organisation=attachment.letter.source_organisation, category="letters").update(
        shares=False
    )


def objection_upheld(attachment):
    upheld_objection(attachment.patient, factories.UserFactory(is_staff=True))


@pytest.mark.hazard("H-11")
@pytest.mark.hazard("H-02")
@pytest.mark.parametrize("withheld", [sensitive, entered_in_error, not_shared, objection_upheld])
def test_an_attachment_follows_its_letter(client, clinician, patient, pdf, withheld):
    client.force_login(clinician)
    assert client.get(url_of(pdf)).status_code == 200
    withheld(pdf)
    response = client.get(url_of(pdf))
    missing = client.get(reverse("record-letter-attachment", args=[patient.pk, pdf.pk + 1000]))
    assert response.status_code == missing.status_code == 404
    assert PDF not in response.content
    assert [event.outcome for event in events_of(response)] == ["allowed"]  # the record was open; the letter not
    body = client.get(reverse("record-letters", args=[patient.pk])).content.decode()
    assert url_of(pdf) not in body


@pytest.mark.hazard("H-11")
def test_an_attachment_is_found_only_under_its_own_patient(client, clinician, pdf, care_team, other_organisation):
    other = factories.PatientFactory()
    factories.InvolvementFactory(patient=other, care_team=care_team)
    client.force_login(clinician)
    response = client.get(reverse("record-letter-attachment", args=[other.pk, pdf.pk]))
    assert response.status_code == 404 and PDF not in response.content


@pytest.mark.hazard("H-11")
@pytest.mark.hazard("H-03")
def test_a_refused_viewer_gets_the_same_403_as_for_a_patient_that_does_not_exist(client, outsider, pdf):
    client.force_login(outsider)
    refused = client.get(url_of(pdf))
    unknown = client.get(reverse("record-letter-attachment", args=["00000000-0000-4000-8000-000000000000", pdf.pk]))
    assert refused.status_code == unknown.status_code == 403
    assert PDF not in refused.content
    assert [event.outcome for event in events_of(refused)] == ["refused"]
