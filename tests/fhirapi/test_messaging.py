"""FHIR messaging, `POST /fhir/$process-message`: a message's content imported all or nothing (H-05), answered
with a response message (ok / fatal-error / transient-error, with an OperationOutcome), idempotent by message
id so a re-sent message imports nothing twice (H-14), authorised like every other write, and audited."""

import json
import threading
from decimal import Decimal
from unittest import mock

import pytest
from django.db import OperationalError, connection
from fhir.resources.R4B.bundle import Bundle

from audit.models import AuditEvent
from audit.names import Action
from directory.actions import create_api_token, revoke_api_token
from fhirapi import messaging
from fhirapi.ingest import Channel
from fhirapi.models import ProcessedMessage, ReceivedResource
from fhirapi.parse import read
from fhirapi.systems import LOINC, ODS_CODE, SNOMED
from patients import models as record

from .conftest import FHIR_XML, patient_resource

pytestmark = pytest.mark.django_db

URL = "/fhir/$process-message"
PATHOLOGY = {"system": SNOMED, "code": "371528001", "display": "Pathology report"}
LAB_ENDPOINT = "https://lims.example.nhs.uk/fhir/$process-message"
PATIENT_URL = "urn:uuid:2b1c3e8a-5a4e-4f0b-9d43-0c1f5e0a9a01"
REPORT_URL = "urn:uuid:2b1c3e8a-5a4e-4f0b-9d43-0c1f5e0a9a02"


def observation(n, value=4.2):
    return {
        "fullUrl": f"urn:uuid:2b1c3e8a-5a4e-4f0b-9d43-0c1f5e0a9b0{n}",
        "resource": {
            "resourceType": "Observation",
            "id": f"obs-{n}",
            "status": "final",
            "code": {"coding": [{"system": LOINC, "code": f"2823-{n}", "display": f"Potassium {n}"}]},
            "subject": {"reference": PATIENT_URL},
            "effectiveDateTime": "2025-03-01T09:00:00Z",
            "valueQuantity": {
                "value": value,
                "unit": "mmol/L",
                "system": "http://unitsofmeasure.org",
                "code": "mmol/L",
            },
        },
    }


def header(*, event=None, focus=(REPORT_URL,), header_id="mh-1", **extra):
    return {
        "fullUrl": f"urn:uuid:2b1c3e8a-5a4e-4f0b-9d43-0c1f5e0a9e0{header_id[-1]}",
        "resource": {
            "resourceType": "MessageHeader",
            "id": header_id,
            **(event or {"eventCoding": PATHOLOGY}),
            "source": {"name": "Riverside LIMS", "endpoint": LAB_ENDPOINT},
            "sender": {"identifier": {"system": ODS_CODE, "value": "RX1"}},
            "focus": [{"reference": reference} for reference in focus],
            **extra,
        },
    }


def pathology_message(
    message_id="urn:uuid:7f0c7c4e-1111-4c3a-9a55-000000000001", *, values=(4.2, 5.1), patient=None, **kw
):
    """A pathology result message as NHS England's pathology FHIR messages are built: MessageHeader (event
    SNOMED CT 371528001 "Pathology report", focus the DiagnosticReport), the patient, the report, its
    observations, and a Specimen (which the record has no place for)."""
    observations = [observation(n, value) for n, value in enumerate(values)]
    report = {
        "fullUrl": REPORT_URL,
        "resource": {
            "resourceType": "DiagnosticReport",
            "id": "report-1",
            "status": "final",
            "code": {"coding": [{"system": SNOMED, "code": "1000731000000107", "display": "Serum potassium"}]},
            "subject": {"reference": PATIENT_URL},
            "issued": "2025-03-01T12:00:00Z",
            "result": [{"reference": entry["fullUrl"]} for entry in observations],
        },
    }
    specimen = {
        "fullUrl": "urn:uuid:2b1c3e8a-5a4e-4f0b-9d43-0c1f5e0a9a03",
        "resource": {"resourceType": "Specimen", "id": "specimen-1", "subject": {"reference": PATIENT_URL}},
    }
    entries = [
        header(**kw),
        {"fullUrl": PATIENT_URL, "resource": patient or patient_resource()},
        report,
        *observations,
        specimen,
    ]
    return {
        "resourceType": "Bundle",
        "id": "request-bundle",
        "identifier": {"system": "urn:ietf:rfc:3986", "value": message_id},
        "type": "message",
        "timestamp": "2025-03-01T12:01:00Z",
        "entry": entries,
    }


def response_of(response):
    """The response message: valid R4 (R4B), a message Bundle whose first entry is its MessageHeader."""
    body = json.loads(response.content)
    Bundle.model_validate(body)
    assert body["type"] == "message" and body["entry"][0]["resource"]["resourceType"] == "MessageHeader"
    return body


def answer_of(body):
    """(response.code, the issues of the OperationOutcome its details point to, or [])."""
    answer = body["entry"][0]["resource"]["response"]
    if "details" not in answer:
        return answer["code"], []
    [outcome] = [e["resource"] for e in body["entry"] if e["fullUrl"] == answer["details"]["reference"]]
    assert outcome["resourceType"] == "OperationOutcome"
    return answer["code"], outcome["issue"]


def submissions():
    return list(AuditEvent.objects.filter(action=Action.FHIR_SUBMISSION).order_by("pk"))


# Processed


@pytest.mark.hazard("H-05")
def test_a_pathology_message_puts_its_results_on_the_record_and_answers_ok(api, sender_token, sender):
    response = api.post(URL, pathology_message(), token=sender_token)
    assert response.status_code == 200, response.content
    body = response_of(response)
    answer = body["entry"][0]["resource"]
    assert answer["response"]["identifier"] == "mh-1"
    assert answer["eventCoding"]["code"] == "371528001"
    assert answer["source"] == {"name": "carerecord", "endpoint": "http://testserver/fhir/$process-message"}
    assert answer["destination"] == [
        {
            "endpoint": LAB_ENDPOINT,
            "receiver": {"identifier": {"system": ODS_CODE, "value": sender.ods_code}, "display": sender.name},
        }
    ]
    assert body["id"] != "request-bundle" and body["timestamp"]
    code, issues = answer_of(body)
    assert code == "ok"
    [specimen] = issues  # said, never silently dropped: the Specimen has no place in the record
    assert (specimen["severity"], specimen["code"]) == ("warning", "not-supported")
    assert specimen["expression"] == ["Bundle.entry[5].resource"]

    result = record.Result.objects.get()
    assert (result.name, result.source_organisation, result.patient.nhs_number) == (
        "Serum potassium",
        sender,
        "9990000018",
    )
    assert sorted(result.observations.values_list("value", flat=True)) == [Decimal("4.2"), Decimal("5.1")]
    held = ProcessedMessage.objects.get()
    assert (held.organisation, held.message_id, held.outcome) == (
        sender,
        pathology_message()["identifier"]["value"],
        "ok",
    )
    assert held.event == f"{SNOMED}|371528001"
    [audit] = submissions()
    assert audit.detail["bundle_type"] == "message" and audit.detail["applied"] == "True"
    assert audit.detail["message_id"] == held.message_id and audit.detail["endpoint"] == f"POST {URL}"
    assert audit.detail["count:Observation"] == "created=2"


def test_the_message_header_is_not_a_record_entry(api, sender_token):
    api.post(URL, pathology_message(), token=sender_token)
    kept = set(ReceivedResource.objects.values_list("resource_type", flat=True))
    assert kept == {"Patient", "DiagnosticReport", "Observation"}


@pytest.mark.hazard("H-14")
def test_a_message_sent_again_gets_the_same_response_and_imports_nothing(api, sender_token):
    first = api.post(URL, pathology_message(), token=sender_token)
    kept = ReceivedResource.objects.count()
    again = pathology_message()
    again["timestamp"] = "2025-03-01T12:30:00Z"  # a re-send may be restamped: it is still the same message
    second = api.post(URL, again, token=sender_token)
    assert second.status_code == 200
    assert second.content == first.content
    assert record.Result.objects.count() == 1 and record.Observation.objects.count() == 2
    assert ReceivedResource.objects.count() == kept and ProcessedMessage.objects.count() == 1
    original, repeat = submissions()  # one audit row per message, the repeat saying so
    assert original.detail["applied"] == "True" and "repeat_of" not in original.detail
    assert repeat.detail["applied"] == "False" and repeat.detail["repeat_of"].endswith(" ok")
    assert repeat.detail["message_id"] == original.detail["message_id"]


@pytest.mark.hazard("H-14")
def test_a_message_id_reused_for_other_content_is_a_fatal_error_naming_the_conflict(api, sender_token):
    api.post(URL, pathology_message(values=(4.2, 5.1)), token=sender_token)
    response = api.post(URL, pathology_message(values=(4.2, 9.9)), token=sender_token)
    assert response.status_code == 200
    code, [issue] = answer_of(response_of(response))
    assert code == "fatal-error"
    assert issue["code"] == "business-rule" and issue["expression"] == ["Bundle.identifier"]
    assert "with other content" in issue["diagnostics"]
    assert sorted(record.Observation.objects.values_list("value", flat=True)) == [Decimal("4.2"), Decimal("5.1")]
    assert submissions()[-1].detail["refused"].startswith("The message id")


@pytest.mark.hazard("H-14")
def test_without_a_bundle_identifier_the_message_header_id_is_the_message_id(api, sender_token):
    message = pathology_message()
    del message["identifier"]
    api.post(URL, message, token=sender_token)
    assert ProcessedMessage.objects.get().message_id == "mh-1"
    changed = pathology_message(values=(1.0, 2.0))
    del changed["identifier"]
    code, [issue] = answer_of(response_of(api.post(URL, changed, token=sender_token)))
    assert (code, issue["expression"]) == ("fatal-error", ["Bundle.entry[0].resource.id"])


def test_message_ids_are_per_sending_organisation(api, sender_token, organisation):
    _, other_token = create_api_token(by=None, name="GP system", organisation=organisation)
    api.post(URL, pathology_message(), token=sender_token)
    response = api.post(URL, pathology_message(values=(1.0, 2.0)), token=other_token)
    assert answer_of(response_of(response))[0] == "ok"
    assert ProcessedMessage.objects.count() == 2 and record.Result.objects.count() == 2


def test_a_message_in_xml_is_answered_in_xml(api, sender_token):
    xml = Bundle.model_validate(pathology_message()).model_dump_xml()
    response = api.post(URL, xml, token=sender_token, content_type=FHIR_XML)
    assert response.status_code == 200 and response["Content-Type"].startswith(FHIR_XML)
    body = json.loads(Bundle.model_validate_xml(response.content).model_dump_json())
    assert answer_of(body)[0] == "ok"
    assert ProcessedMessage.objects.get().message_id == pathology_message()["identifier"]["value"]


def test_a_focus_may_name_its_entry_as_type_and_id(api, sender_token):
    response = api.post(URL, pathology_message(focus=["DiagnosticReport/report-1"]), token=sender_token)
    assert answer_of(response_of(response))[0] == "ok"


def test_a_bars_booking_request_books_the_appointment(api, sender_token):
    appointment = {
        "fullUrl": "urn:uuid:2b1c3e8a-5a4e-4f0b-9d43-0c1f5e0a9c01",
        "resource": {
            "resourceType": "Appointment",
            "id": "booking-1",
            "status": "booked",
            "description": "Urgent treatment centre",
            "start": "2025-03-02T10:00:00Z",
            "end": "2025-03-02T10:30:00Z",
            "participant": [{"actor": {"reference": PATIENT_URL}, "status": "accepted"}],
        },
    }
    bars = {"system": "https://fhir.nhs.uk/CodeSystem/message-events-bars", "code": "booking-request"}
    message = pathology_message(event={"eventCoding": bars}, focus=[appointment["fullUrl"]])
    message["entry"] = [message["entry"][0], message["entry"][1], appointment]
    code, issues = answer_of(response_of(api.post(URL, message, token=sender_token)))
    assert (code, issues) == ("ok", [])
    assert record.Appointment.objects.get().patient.nhs_number == "9990000018"


def test_a_transfer_of_care_document_message_becomes_a_letter(api, sender_token):
    document = {
        "fullUrl": "urn:uuid:2b1c3e8a-5a4e-4f0b-9d43-0c1f5e0a9d01",
        "resource": {
            "resourceType": "DocumentReference",
            "id": "discharge-1",
            "status": "current",
            "type": {"coding": [{"system": SNOMED, "code": "373942005", "display": "Discharge summary"}]},
            "subject": {"reference": PATIENT_URL},
            "date": "2025-03-03T16:00:00Z",
            "content": [{"attachment": {"contentType": "text/plain", "data": "RGlzY2hhcmdlZCBob21lLg=="}}],
        },
    }
    event = {"system": "https://fhir.nhs.uk/CodeSystem/message-event", "code": "document"}
    message = pathology_message(event={"eventCoding": event}, focus=[document["fullUrl"]])
    message["entry"] = [message["entry"][0], message["entry"][1], document]
    assert answer_of(response_of(api.post(URL, message, token=sender_token)))[0] == "ok"
    assert record.Letter.objects.get().patient.nhs_number == "9990000018"


# Refused: fatal-error, nothing imported


@pytest.mark.hazard("H-05")
def test_a_bad_focus_resource_rolls_the_whole_message_back_naming_the_element(api, sender_token):
    message = pathology_message()
    message["entry"][2]["resource"]["issued"] = "this afternoon"
    response = api.post(URL, message, token=sender_token)
    assert response.status_code == 200
    code, issues = answer_of(response_of(response))
    assert code == "fatal-error"
    assert issues[0]["code"] == "processing" and "nothing was changed" in issues[0]["diagnostics"]
    assert ["Bundle.entry[2].resource.issued"] in [issue.get("expression") for issue in issues]
    assert not record.Patient.objects.exists() and not record.Result.objects.exists()  # all or nothing
    assert not ReceivedResource.objects.exists() and not ProcessedMessage.objects.exists()
    [audit] = submissions()
    assert audit.detail["applied"] == "False" and audit.detail["bundle_type"] == "message"


@pytest.mark.hazard("H-05")
def test_an_entry_that_cannot_be_mapped_rolls_the_message_back(api, sender_token):
    message = pathology_message()
    message["entry"][3]["resource"]["subject"] = {"reference": "Patient/nobody"}
    code, issues = answer_of(response_of(api.post(URL, message, token=sender_token)))
    assert code == "fatal-error"
    assert any(issue["code"] == "not-found" for issue in issues)
    assert not record.Patient.objects.exists() and not record.Observation.objects.exists()


@pytest.mark.hazard("H-05")
def test_a_failed_message_is_not_remembered_so_it_can_be_sent_again_corrected(api, sender_token):
    broken = pathology_message()
    broken["entry"][2]["resource"]["issued"] = "this afternoon"
    api.post(URL, broken, token=sender_token)
    response = api.post(URL, pathology_message(), token=sender_token)
    assert answer_of(response_of(response))[0] == "ok"
    assert record.Result.objects.count() == 1


@pytest.mark.hazard("H-05")
def test_a_focus_pointing_nowhere_is_a_fatal_error(api, sender_token):
    message = pathology_message(focus=["urn:uuid:00000000-0000-4000-8000-000000000000"])
    code, [issue] = answer_of(response_of(api.post(URL, message, token=sender_token)))
    assert (code, issue["code"]) == ("fatal-error", "not-found")
    assert issue["expression"] == ["Bundle.entry[0].resource.focus[0]"]
    assert not record.Patient.objects.exists()
    assert submissions()[0].detail["refused"].startswith("The focus")


def test_a_message_naming_no_focus_is_a_fatal_error(api, sender_token):
    code, [issue] = answer_of(response_of(api.post(URL, pathology_message(focus=()), token=sender_token)))
    assert (code, issue["code"], issue["expression"]) == ("fatal-error", "required", ["Bundle.entry[0].resource.focus"])


@pytest.mark.parametrize(
    "event, element",
    [
        ({"eventCoding": {"system": "https://example.org/events", "code": "do-something"}}, "eventCoding"),
        ({"eventUri": "https://example.org/events/do-something"}, "eventUri"),
        (
            {
                "eventCoding": {
                    "system": "https://fhir.nhs.uk/CodeSystem/message-events-bars",
                    "code": "booking-response",
                }
            },
            "eventCoding",
        ),
    ],
)
def test_an_event_carerecord_does_not_understand_is_not_supported(api, sender_token, event, element):
    code, [issue] = answer_of(response_of(api.post(URL, pathology_message(event=event), token=sender_token)))
    assert (code, issue["code"]) == ("fatal-error", "not-supported")
    assert issue["expression"] == [f"Bundle.entry[0].resource.{element}"]
    assert not record.Result.objects.exists()


def test_a_focus_the_event_does_not_take_is_not_supported(api, sender_token):
    """A pathology *request* (its focus a ServiceRequest, or here the patient) is not a result."""
    code, [issue] = answer_of(response_of(api.post(URL, pathology_message(focus=[PATIENT_URL]), token=sender_token)))
    assert (code, issue["code"]) == ("fatal-error", "not-supported")
    assert "pathology and other results" in issue["diagnostics"]


def test_a_response_message_or_a_deletion_is_refused(api, sender_token):
    response = {"response": {"identifier": "their-request", "code": "ok"}}
    code, issues = answer_of(response_of(api.post(URL, pathology_message(**response), token=sender_token)))
    assert code == "fatal-error" and issues[0]["expression"] == ["Bundle.entry[0].resource.response"]
    delete = {"reason": {"coding": [{"system": messaging.BARS_MESSAGE_REASON, "code": "delete"}]}}
    code, [issue] = answer_of(response_of(api.post(URL, pathology_message(**delete), token=sender_token)))
    assert (code, issue["expression"]) == ("fatal-error", ["Bundle.entry[0].resource.reason"])
    assert not record.Patient.objects.exists()


def test_a_message_header_that_is_not_first_is_a_fatal_error(api, sender_token):
    message = pathology_message()
    message["entry"] = [message["entry"][1], message["entry"][0], *message["entry"][2:]]
    code, [issue] = answer_of(response_of(api.post(URL, message, token=sender_token)))
    assert (code, issue["code"], issue["expression"]) == ("fatal-error", "structure", ["Bundle.entry[0]"])


def test_a_message_with_two_message_headers_is_a_fatal_error(api, sender_token):
    message = pathology_message()
    message["entry"].append(header(header_id="mh-2"))
    code, [issue] = answer_of(response_of(api.post(URL, message, token=sender_token)))
    assert (code, issue["code"], issue["expression"]) == ("fatal-error", "structure", ["Bundle.entry[6].resource"])
    assert not record.Patient.objects.exists()


# Not a message that can be answered: 400 OperationOutcome


def outcome_of(response):
    body = json.loads(response.content)
    assert body["resourceType"] == "OperationOutcome"
    return body["issue"]


@pytest.mark.hazard("H-05")
def test_a_message_without_a_message_header_is_refused_400(api, sender_token):
    message = pathology_message()
    message["entry"] = message["entry"][1:]
    response = api.post(URL, message, token=sender_token)
    assert response.status_code == 400
    [issue] = outcome_of(response)
    assert (issue["code"], issue["expression"]) == ("structure", ["Bundle.entry[0]"])
    assert not record.Patient.objects.exists()
    assert submissions()[0].detail["refused"].startswith("A message starts with a MessageHeader")


def test_a_message_header_without_an_event_or_an_id_is_refused_400(api, sender_token):
    message = pathology_message()
    del message["entry"][0]["resource"]["eventCoding"]
    response = api.post(URL, message, token=sender_token)
    assert response.status_code == 400
    assert outcome_of(response)[0]["expression"][0].startswith("Bundle.entry[0].resource")
    message = pathology_message()
    del message["entry"][0]["resource"]["id"]
    response = api.post(URL, message, token=sender_token)
    assert response.status_code == 400
    assert outcome_of(response)[0]["expression"] == ["Bundle.entry[0].resource.id"]
    assert not record.Patient.objects.exists()


def test_only_a_message_bundle_is_processed_and_a_message_is_refused_elsewhere(api, sender_token):
    transaction = {"resourceType": "Bundle", "type": "transaction", "entry": []}
    response = api.post(URL, transaction, token=sender_token)
    assert response.status_code == 400 and outcome_of(response)[0]["expression"] == ["Bundle.type"]
    assert api.post(URL, patient_resource(), token=sender_token).status_code == 400
    assert api.post(URL, b"{not json", token=sender_token).status_code == 400
    elsewhere = api.post("/fhir/", pathology_message(), token=sender_token)
    assert elsewhere.status_code == 400
    [issue] = outcome_of(elsewhere)
    assert "$process-message" in issue["diagnostics"] and issue["expression"] == ["Bundle.type"]
    assert not record.Patient.objects.exists()
    assert len(submissions()) == 4  # each audited


def test_an_itk3_stu3_message_is_answered_that_it_is_stu3(api, sender_token):
    """ITK3 transfer of care (and the pathology adaptor's output) is STU3: one clear refusal, not R4 errors."""
    itk3 = {
        "resourceType": "Bundle",
        "type": "message",
        "entry": [
            {
                "resource": {
                    "resourceType": "MessageHeader",
                    "id": "itk3",
                    "event": {"system": "https://fhir.nhs.uk/STU3/CodeSystem/ITK-MessageEvent-2", "code": "ITK003D"},
                    "timestamp": "2025-03-01T12:00:00Z",
                    "source": {"endpoint": "urn:nhs-uk:addressing:ods:RX1"},
                }
            }
        ],
    }
    response = api.post(URL, itk3, token=sender_token)
    assert response.status_code == 400
    [issue] = outcome_of(response)
    assert issue["code"] == "not-supported" and "STU3" in issue["diagnostics"]


def test_asynchronous_messaging_is_not_offered(api, sender_token):
    response = api.post(f"{URL}?async=true", pathology_message(), token=sender_token)
    assert response.status_code == 400 and outcome_of(response)[0]["code"] == "not-supported"
    assert not record.Patient.objects.exists()


def test_get_is_not_allowed(api, sender_token):
    assert api.get(URL, token=sender_token).status_code == 405


# Who may send


@pytest.mark.parametrize("authorization", [None, "Bearer not-a-token"])
def test_sending_a_message_needs_a_valid_token(client, authorization):
    extra = {"HTTP_AUTHORIZATION": authorization} if authorization else {}
    response = client.post(URL, json.dumps(pathology_message()), content_type="application/fhir+json", **extra)
    assert response.status_code == 401
    assert outcome_of(response)[0]["code"] == "login"
    assert not record.Patient.objects.exists() and not AuditEvent.objects.exists()


def test_a_revoked_or_personal_token_cannot_send_a_message(api, sender, reader_token):
    token, secret = create_api_token(by=None, name="old feed", organisation=sender)
    revoke_api_token(by=None, token=token)
    assert api.post(URL, pathology_message(), token=secret).status_code == 401
    assert api.post(URL, pathology_message(), token=reader_token).status_code == 403
    assert not record.Patient.objects.exists() and not ProcessedMessage.objects.exists()


def test_an_inactive_organisations_token_is_refused(api, sender, sender_token):
    sender.active = False
    sender.save(update_fields=["active"])
    response = api.post(URL, pathology_message(), token=sender_token)
    assert response.status_code == 403 and outcome_of(response)[0]["code"] == "forbidden"
    assert not record.Patient.objects.exists() and not ProcessedMessage.objects.exists()
    assert not submissions()


# Transient failures, and two copies at once


@pytest.mark.hazard("H-05")
def test_a_database_or_lock_timeout_is_a_transient_error_and_remembers_nothing(api, sender_token):
    with mock.patch.object(
        messaging, "ingest", side_effect=OperationalError("canceling statement due to lock timeout")
    ):
        response = api.post(URL, pathology_message(), token=sender_token)
    assert response.status_code == 503 and response["Retry-After"] == messaging.RETRY_AFTER_SECONDS
    code, [issue] = answer_of(response_of(response))
    assert (code, issue["code"]) == ("transient-error", "transient")
    assert not record.Patient.objects.exists() and not ProcessedMessage.objects.exists()
    assert submissions()[0].detail["refused"].startswith("The message could not be processed now")
    retried = api.post(URL, pathology_message(), token=sender_token)  # sent again: processed
    assert answer_of(response_of(retried))[0] == "ok"


@pytest.mark.hazard("H-14")
def test_a_copy_that_lost_the_race_is_answered_as_a_repeat(sender):
    """The other copy committed between this one's look-up and its insert: the unique index refuses the
    insert, this copy's import is rolled back, and it is answered with the other's response."""
    body = json.dumps(pathology_message()).encode()
    first = messaging.process(read(body), organisation=sender, channel=Channel(), endpoint="https://cr/$pm")
    with mock.patch.object(messaging, "_held", side_effect=[None, ProcessedMessage.objects.get()]):
        second = messaging.process(read(body), organisation=sender, channel=Channel(), endpoint="https://cr/$pm")
    assert second.response == first.response
    assert record.Observation.objects.count() == 2 and ProcessedMessage.objects.count() == 1


@pytest.mark.hazard("H-14")
@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="SQLite serialises writers: nothing to race")
def test_simultaneous_copies_of_one_message_import_it_once(sender):
    body = json.dumps(pathology_message()).encode()
    start, answers, failures = threading.Barrier(4), [], []

    def run():
        try:
            start.wait()
            answers.append(
                messaging.process(read(body), organisation=sender, channel=Channel(), endpoint="https://cr/$pm")
            )
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
    assert {json.dumps(answer.response, sort_keys=True) for answer in answers} == {
        json.dumps(ProcessedMessage.objects.get().response["message"], sort_keys=True)
    }
    assert record.Result.objects.count() == 1 and record.Observation.objects.count() == 2
    assert sorted(e.detail["applied"] for e in submissions()) == ["False", "False", "False", "True"]


def test_a_message_costs_the_same_queries_whatever_its_size(api, sender_token, organisation):
    """Messaging adds a fixed few queries (look-up, claim, answer) to the import's, none per entry: two senders'
    first messages, of 2 and of 6 results, for two new patients."""
    from django.db import connection as db
    from django.test.utils import CaptureQueriesContext

    _, other_token = create_api_token(by=None, name="GP system", organisation=organisation)
    sent = [
        (sender_token, pathology_message(values=(1.0, 2.0))),
        (other_token, pathology_message(values=(1, 2, 3, 4, 5, 6), patient=patient_resource(nhs_number="9990000026"))),
    ]
    counts = []
    for token, message in sent:
        with CaptureQueriesContext(db) as queries:
            assert answer_of(response_of(api.post(URL, message, token=token)))[0] == "ok"
        counts.append(len(queries.captured_queries))
    assert counts[0] == counts[1]


# Declared


def test_the_capability_statement_lists_process_message_and_the_events(api):
    statement = json.loads(api.get("/fhir/metadata").content)
    [rest] = statement["rest"]
    assert {"name": "process-message", "definition": messaging_definition()} in rest["operation"]
    [declared] = statement["messaging"]
    assert declared["endpoint"][0]["address"] == "http://testserver/fhir/$process-message"
    assert f"{SNOMED}|371528001" in declared["documentation"]
    assert "message-events-bars|booking-request" in declared["documentation"]


def messaging_definition():
    return "http://hl7.org/fhir/OperationDefinition/MessageHeader-process-message"


def test_every_event_names_a_pattern_whose_focus_types_are_fhir_resources():
    from fhirapi.parse import resource_class

    for (system, code), pattern in messaging.EVENTS.items():
        assert system.startswith("http") and code
        assert pattern.focus and all(resource_class(kind) is not None for kind in pattern.focus)
