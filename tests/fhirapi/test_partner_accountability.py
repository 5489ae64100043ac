"""Issue 11, finding 2, and "partner systems are actors on the audit trail".

A partner's organisation token could give its staff standing access to any patient: one CareTeam naming one of
the sender's teams, with only an NHS number as subject, started an Involvement (a doctor went 403 -> 200 on an
unrelated patient), and the AuditEvent had no actor and did not name the token. Now an organisation asserts
involvements only for its own teams and only for patients it sends clinical data for; every submission writes one
AuditEvent naming the token, what changed and whom; partner-asserted involvements carry the token, a review date,
and wait in IG's review list.
"""

import datetime
import json

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEvent
from audit.names import Action
from directory.actions import add_team_member
from directory.models import ApiToken, Organisation
from fhirapi.ingest import PATIENTS_LISTED, Channel, audit_unread
from fhirapi.mapping.teams import patients_with_clinical_data
from fhirapi.outcome import error
from fhirapi.systems import NHS_NUMBER, ODS_CODE
from patients import models as record
from patients import nhs_numbers
from sharing import actions
from sharing.models import Involvement
from tests import factories

from .conftest import bundle, condition_resource, patient_resource

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("admin_settings")]


@pytest.fixture
def token(sender, sender_token):
    return ApiToken.objects.get(organisation=sender)


@pytest.fixture
def sender_team(sender):
    return factories.CareTeamFactory(organisation=sender, name="Diabetes clinic", kind="clinic")


@pytest.fixture
def doctor(sender, sender_team):
    """A doctor at the sending trust, in its diabetes clinic: nothing to do with `patient`."""
    professional = factories.ProfessionalFactory(organisation=sender)
    add_team_member(by=None, team=sender_team, professional=professional)
    return professional.user


def label(token):
    return f"api-token:{token.pk}:{token.prefix}@{token.organisation.ods_code}"


def care_team_resource(resource_id="ct1", *, subject, name="Diabetes clinic", **extra):
    return {
        "resourceType": "CareTeam",
        "id": resource_id,
        "status": "active",
        "name": name,
        "subject": subject,
        **extra,
    }


def by_nhs_number(patient):
    return {"identifier": {"system": NHS_NUMBER, "value": patient.nhs_number}}


def issues(response):
    return json.loads(response.content)["issue"]


def submissions():
    return list(AuditEvent.objects.filter(action=Action.FHIR_SUBMISSION).order_by("pk"))


def record_status(client, user, patient):
    client.force_login(user)
    status = client.get(reverse("record-summary", args=[patient.pk])).status_code
    client.logout()
    return status


# --- finding 2: what a token may assert ----------------------------------------------------------------------


@pytest.mark.hazard("H-03")
def test_finding_2_a_token_cannot_assert_a_relationship_for_a_patient_it_sends_nothing_about(
    api, client, sender_token, token, doctor, patient
):
    """The finding as reported: a bare CareTeam, the subject an NHS number only, the team one of the sender's."""
    assert record_status(client, doctor, patient) == 403
    response = api.post("/fhir/CareTeam", care_team_resource(subject=by_nhs_number(patient)), token=sender_token)
    assert response.status_code == 422
    [issue] = issues(response)
    assert (issue["code"], issue["expression"]) == ("business-rule", ["CareTeam.subject"])
    assert "holds no clinical data about this patient" in issue["diagnostics"]
    assert not Involvement.objects.filter(patient=patient, care_team__organisation__api_tokens__isnull=False).exists()
    assert record_status(client, doctor, patient) == 403
    [attempt] = submissions()  # the attempt is on the audit trail, naming the token and the patient
    assert (attempt.actor_email, attempt.patient_id) == (label(token), patient.pk)
    assert (attempt.detail["count:CareTeam"], attempt.detail["patients"]) == ("rejected=1", "")
    assert attempt.detail["refused_patients"] == str(patient.pk)
    # In a bundle, the issue names the entry.
    response = api.post(
        "/fhir/", bundle("batch", care_team_resource(subject=by_nhs_number(patient))), token=sender_token
    )
    outcome = json.loads(response.content)["entry"][0]["response"]["outcome"]
    assert outcome["issue"][0]["expression"] == ["Bundle.entry[0].resource.subject"]
    assert record_status(client, doctor, patient) == 403


def test_finding_2_a_patient_resource_alone_is_not_data_about_the_patient(api, client, sender_token, doctor, patient):
    """Demographics anyone can send: a Patient with the NHS number, then a CareTeam, is still refused."""
    sent = bundle(
        "transaction",
        patient_resource(nhs_number=patient.nhs_number, family=patient.family_name),
        care_team_resource(subject={"reference": "Patient/p1"}),
    )
    response = api.post("/fhir/", sent, token=sender_token)
    assert response.status_code == 422
    assert record_status(client, doctor, patient) == 403
    assert Involvement.objects.filter(patient=patient).count() == 1  # the GP practice's own


def test_finding_2_data_entered_in_error_does_not_count(api, client, sender_token, doctor, patient):
    withdrawn = condition_resource(patient="Patient/p1", verificationStatus={"coding": [{"code": "entered-in-error"}]})
    sent = bundle(
        "transaction",
        patient_resource(nhs_number=patient.nhs_number, family=patient.family_name),
        withdrawn,
        care_team_resource(subject={"reference": "Patient/p1"}),
    )
    assert api.post("/fhir/", sent, token=sender_token).status_code == 422
    assert record_status(client, doctor, patient) == 403


@pytest.mark.hazard("H-03")
def test_finding_2_a_token_cannot_assert_a_relationship_for_another_organisations_team(
    api, client, sender, sender_token, doctor, patient, organisation
):
    """Even for a patient it sends data about, a sender may not speak for another organisation's team."""
    api.post("/fhir/Condition", condition_resource(subject=by_nhs_number(patient)), token=sender_token)
    assert record.Condition.objects.filter(patient=patient, source_organisation=sender).count() == 1
    theirs = care_team_resource(
        subject=by_nhs_number(patient),
        name="Riverside practice team",
        managingOrganization=[{"identifier": {"system": ODS_CODE, "value": organisation.ods_code}}],
    )
    response = api.post("/fhir/CareTeam", theirs, token=sender_token)
    assert response.status_code == 422
    [issue] = issues(response)
    assert (issue["code"], issue["expression"]) == ("forbidden", ["CareTeam.managingOrganization[0]"])
    assert not Involvement.objects.filter(source_id="CareTeam/ct1").exists()
    assert not sender.care_teams.filter(name="Riverside practice team").exists()
    # The action refuses it too, whoever calls it.
    token = ApiToken.objects.get(organisation=sender)
    other_team = patient.involvements.get().care_team
    with pytest.raises(ValueError, match="own teams"):
        actions.start_involvement(by=None, patient=patient, care_team=other_team, reason="referral", token=token)


def test_finding_2_a_sender_that_holds_data_about_the_patient_asserts_its_own_team(
    api, client, sender, sender_token, token, doctor, patient
):
    """The legitimate case, in one submission: the clinic's encounter data and its CareTeam together."""
    sent = bundle(
        "transaction",
        condition_resource(subject=by_nhs_number(patient)),
        care_team_resource(
            subject=by_nhs_number(patient),
            managingOrganization=[{"identifier": {"system": ODS_CODE, "value": sender.ods_code}}],
        ),
    )
    response = api.post("/fhir/", sent, token=sender_token)
    assert response.status_code == 200, response.content
    assert record_status(client, doctor, patient) == 200
    involvement = Involvement.objects.get(source_id="CareTeam/ct1")
    assert involvement.asserted_by_token == token and involvement.asserted_by == label(token)
    assert involvement.review_on == timezone.localdate() + datetime.timedelta(days=365)
    assert involvement.reviewed_at is None
    started = AuditEvent.objects.get(action=Action.INVOLVEMENT_STARTED, target_id=str(involvement.pk))
    assert (started.actor_id, started.actor_email) == (None, label(token))
    assert started.detail == {
        "team": "Diabetes clinic",
        "token": str(token.pk),
        "token_prefix": token.prefix,
        "organisation": sender.ods_code,
        "review_on": str(involvement.review_on),
    }


def test_finding_2_data_already_held_counts_and_ending_is_always_accepted(
    api, client, sender, sender_token, token, doctor, patient
):
    api.post("/fhir/Condition", condition_resource(subject=by_nhs_number(patient)), token=sender_token)
    assert (
        api.post("/fhir/CareTeam", care_team_resource(subject=by_nhs_number(patient)), token=sender_token).status_code
        == 201
    )
    assert record_status(client, doctor, patient) == 200
    # The sender withdraws its data: it may no longer re-assert the relationship, but it may always end it.
    withdrawn = condition_resource(
        subject=by_nhs_number(patient), verificationStatus={"coding": [{"code": "entered-in-error"}]}
    )
    api.post("/fhir/Condition", withdrawn, token=sender_token)
    later = care_team_resource(subject=by_nhs_number(patient), period={"start": "2024-05-01T00:00:00Z"})
    assert api.post("/fhir/CareTeam", later, token=sender_token).status_code == 422
    assert (
        api.put(
            "/fhir/CareTeam/ct1", care_team_resource(subject=by_nhs_number(patient)), token=sender_token
        ).status_code
        == 200
    )
    ended = care_team_resource(subject=by_nhs_number(patient), status="inactive")
    assert api.put("/fhir/CareTeam/ct1", ended, token=sender_token).status_code == 200
    assert record_status(client, doctor, patient) == 403
    [end] = AuditEvent.objects.filter(action=Action.INVOLVEMENT_ENDED, actor_email=label(token))
    assert end.detail == {"token": str(token.pk), "token_prefix": token.prefix, "organisation": sender.ods_code}


def test_a_token_reopening_an_ended_relationship_sends_it_back_for_review(
    api, ig_user, sender, sender_token, token, patient
):
    api.post("/fhir/Condition", condition_resource(subject=by_nhs_number(patient)), token=sender_token)
    api.post("/fhir/CareTeam", care_team_resource(subject=by_nhs_number(patient)), token=sender_token)
    involvement = Involvement.objects.get(source_id="CareTeam/ct1")
    actions.review_involvement(by=ig_user, involvement=involvement, note="Known clinic patient")
    api.put(
        "/fhir/CareTeam/ct1", care_team_resource(subject=by_nhs_number(patient), status="inactive"), token=sender_token
    )
    involvement.refresh_from_db()
    assert involvement.reviewed_at is not None  # ending it needs no review
    api.put("/fhir/CareTeam/ct1", care_team_resource(subject=by_nhs_number(patient)), token=sender_token)
    involvement.refresh_from_db()
    assert involvement.is_current and involvement.reviewed_at is None and involvement.reviewed_by is None
    assert involvement.review_on == timezone.localdate() + datetime.timedelta(days=365)
    reopened = AuditEvent.objects.filter(action=Action.INVOLVEMENT_UPDATED, target_id=str(involvement.pk)).last()
    assert reopened.actor_email == label(token) and reopened.detail["token"] == str(token.pk)
    assert reopened.detail["reviewed_at"] == "" and reopened.detail["ended_at"] == ""


def test_the_held_data_check_is_one_query_for_all_the_care_teams(sender):
    patients = [factories.PatientFactory() for _ in range(5)]
    factories.ConditionFactory(patient=patients[0], source_organisation=sender)
    factories.AllergyFactory(patient=patients[1], source_organisation=sender)
    factories.ConditionFactory(patient=patients[2], source_organisation=sender, entered_in_error=True)
    factories.ConditionFactory(patient=patients[3], source_organisation=factories.OrganisationFactory())
    with CaptureQueriesContext(connection) as queries:
        held = patients_with_clinical_data(sender, [p.pk for p in patients])
    assert held == {patients[0].pk, patients[1].pk}
    assert len(queries) == 1


# --- every submission: one AuditEvent naming the token --------------------------------------------------------


@pytest.mark.hazard("H-05")
def test_every_submission_writes_one_audit_event_naming_the_token(api, sender, sender_token, token):
    sent = bundle(
        "batch",
        patient_resource(),
        condition_resource(),
        condition_resource("c2", patient="Patient/nobody"),
        {"resourceType": "Immunization", "id": "i1", "status": "completed"},
    )
    response = api.post("/fhir/", sent, token=sender_token)
    assert response.status_code == 200
    [event] = submissions()
    patient = record.Patient.objects.get(nhs_number="9990000018")
    assert (event.actor_id, event.actor_email) == (None, label(token))
    assert (event.target_type, event.target_id) == ("SubmissionTarget", response["X-Request-ID"])
    assert event.patient_id == patient.pk
    assert event.detail == {
        "organisation": sender.ods_code,
        "organisation_id": str(sender.pk),
        "token": str(token.pk),
        "token_prefix": token.prefix,
        "token_name": "EPR feed",
        "endpoint": "POST /fhir/",
        "bundle_type": "batch",
        "applied": "True",
        "entries": "4",
        "count:Condition": "created=1 rejected=1",
        "count:Immunization": "rejected=1",
        "count:Patient": "created=1",
        "patient_count": "1",
        "patients": str(patient.pk),
    }
    # Sent again: one more row, everything unchanged.
    api.post("/fhir/", sent, token=sender_token)
    assert len(submissions()) == 2
    assert submissions()[1].detail["count:Patient"] == "unchanged=1"


@pytest.mark.parametrize(
    ("method", "path", "endpoint"),
    [("post", "/fhir/Patient", "POST /fhir/Patient"), ("put", "/fhir/Patient/p1", "PUT /fhir/Patient/p1")],
)
def test_a_single_resource_writes_one_audit_event_too(api, sender_token, token, method, path, endpoint):
    response = getattr(api, method)(path, patient_resource(), token=sender_token)
    assert response.status_code == 201
    [event] = submissions()
    assert event.actor_email == label(token)
    assert (event.detail["endpoint"], event.detail["bundle_type"], event.detail["count:Patient"]) == (
        endpoint,
        "(resource)",
        "created=1",
    )


@pytest.mark.hazard("H-05")
def test_a_rolled_back_transaction_is_audited_with_nothing_touched(api, sender_token, token):
    sent = bundle("transaction", patient_resource(), condition_resource(patient="Patient/nobody"))
    assert api.post("/fhir/", sent, token=sender_token).status_code == 422
    assert not record.Patient.objects.exists()
    [event] = submissions()
    assert event.detail["applied"] == "False"
    assert (event.detail["count:Patient"], event.detail["count:Condition"]) == ("rejected=1", "rejected=1")
    assert (event.detail["patient_count"], event.detail["patients"], event.patient_id) == ("0", "", None)


@pytest.mark.hazard("H-05")
@pytest.mark.parametrize(
    ("body", "path"),
    [(b"{not json", "/fhir/"), (json.dumps(patient_resource()).encode(), "/fhir/"), (b"{}", "/fhir/Patient")],
)
def test_an_unreadable_or_misdirected_submission_is_audited(api, sender_token, token, body, path):
    response = api.post(path, body, token=sender_token)
    assert response.status_code == 400
    [event] = submissions()
    assert event.actor_email == label(token) and event.detail["applied"] == "False"
    assert event.detail["refused"] and event.detail["entries"] == "0"


def test_what_the_sender_controls_cannot_break_its_audit_row(sender):
    """A NUL (PostgreSQL's JSON refuses it) in what a sender controls is kept escaped, not a 500."""
    channel = Channel(endpoint="PUT /fhir/Patient/p\x001")
    audit_unread(organisation=sender, channel=channel, issues=[error("invalid", "Not a FHIR id.")])
    [event] = submissions()
    assert event.detail["endpoint"] == "PUT /fhir/Patient/p\\x001"


def test_the_patients_touched_are_listed_up_to_a_cap_and_counted(api, sender_token):
    numbers = nhs_numbers.test_range_numbers(start=7000)
    resources = [patient_resource(f"p{n}", nhs_number=next(numbers)) for n in range(PATIENTS_LISTED + 5)]
    assert api.post("/fhir/", bundle("batch", *resources), token=sender_token).status_code == 200
    [event] = submissions()
    assert event.detail["patient_count"] == str(PATIENTS_LISTED + 5)
    assert len(event.detail["patients"].split(",")) == PATIENTS_LISTED
    assert event.patient_id is None  # several patients: the row names them in its detail


def test_audit_adds_no_query_per_resource(api, sender_token):
    """One audit row per submission: 4 patients and 40 cost as many queries."""
    ApiToken.objects.update(last_used_at=timezone.now())  # "last used" is written at most once a minute
    Organisation.objects.update(last_received_at=timezone.now())  # and so is "last received"
    numbers = nhs_numbers.test_range_numbers(start=8000)
    counts = []
    for size in (4, 40):
        resources = [patient_resource(f"q{size}-{n}", nhs_number=next(numbers)) for n in range(size)]
        resources += [condition_resource(f"c{size}-{n}", patient=f"Patient/q{size}-{n}") for n in range(size)]
        with CaptureQueriesContext(connection) as queries:
            assert api.post("/fhir/", bundle("transaction", *resources), token=sender_token).status_code == 200
        counts.append(len(queries))
    assert counts[0] == counts[1]
    assert len(submissions()) == 2


def test_import_fhir_names_the_command_and_the_operator(tmp_path, sender, ig_user, capsys):
    (tmp_path / "patient.json").write_text(json.dumps(patient_resource()))
    (tmp_path / "tx.json").write_text(json.dumps(bundle("transaction", condition_resource())))
    call_command("import_fhir", str(tmp_path), organisation=sender.ods_code)
    together, transaction = submissions()
    assert together.actor_id is None and together.actor_email.startswith("command:import_fhir")
    assert together.detail["command"] == "import_fhir" and together.detail["run"] == transaction.detail["run"]
    assert (together.detail["source"], transaction.detail["source"]) == (
        str(tmp_path / "patient.json"),
        str(tmp_path / "tx.json"),
    )
    assert "token" not in together.detail and together.detail["organisation"] == sender.ods_code
    assert (together.detail["count:Patient"], transaction.detail["count:Condition"]) == ("created=1", "created=1")

    call_command("import_fhir", str(tmp_path), organisation=sender.ods_code, operator=ig_user.email)
    again = submissions()[-1]
    assert (again.actor_id, again.actor_email, again.detail["operator"]) == (ig_user.pk, ig_user.email, ig_user.email)
    with pytest.raises(Exception, match="No account"):
        call_command("import_fhir", str(tmp_path), organisation=sender.ods_code, operator="nobody@example.com")


def test_the_audit_trail_finds_everything_one_token_did(api, ig_client, sender_token, token, patient):
    api.post("/fhir/Condition", condition_resource(subject=by_nhs_number(patient)), token=sender_token)
    api.post("/fhir/CareTeam", care_team_resource(subject=by_nhs_number(patient)), token=sender_token)
    response = ig_client.get(reverse("admin:audit_auditevent_changelist"), {"actor": label(token)})
    assert response.status_code == 200
    actions_found = sorted(event.action for event in response.context["cl"].result_list)
    assert actions_found == [Action.FHIR_SUBMISSION, Action.FHIR_SUBMISSION, Action.INVOLVEMENT_STARTED]
    by_family = ig_client.get(reverse("admin:audit_auditevent_changelist"), {"action": "fhir"})
    assert {event.action for event in by_family.context["cl"].result_list} == {Action.FHIR_SUBMISSION}


# --- IG's review list -------------------------------------------------------------------------------------------


@pytest.fixture
def asserted(api, sender_token, patient):
    api.post("/fhir/Condition", condition_resource(subject=by_nhs_number(patient)), token=sender_token)
    api.post("/fhir/CareTeam", care_team_resource(subject=by_nhs_number(patient)), token=sender_token)
    return Involvement.objects.get(source_id="CareTeam/ct1")


def listed(ig_client, **filters):
    response = ig_client.get(reverse("admin:sharing_involvement_changelist"), filters)
    assert response.status_code == 200
    return list(response.context["cl"].result_list)


@pytest.mark.hazard("H-03")
def test_the_review_list_opens_on_what_partner_systems_asserted(ig_client, asserted, patient, care_team):
    mine = Involvement.objects.get(patient=patient, care_team=care_team)  # recorded here: not in the queue
    assert listed(ig_client) == [asserted]  # the list opens on the review queue (issue 18)
    assert listed(ig_client, asserted="partner", review="all") == [asserted]
    assert listed(ig_client, asserted="here", review="all") == [mine]
    assert listed(ig_client, review="unreviewed") == [asserted]
    assert listed(ig_client, review="needed") == [asserted]
    assert listed(ig_client, review="overdue") == []
    Involvement.objects.filter(pk=mine.pk).update(review_on=timezone.localdate() - datetime.timedelta(days=1))
    assert listed(ig_client, review="overdue") == [mine]
    assert listed(ig_client, review="needed") == [mine, asserted]  # oldest first (the fixture's started first)
    # An overdue one that has ended needs no review: it no longer grants anything.
    actions.end_involvement(by=None, involvement=mine)
    assert listed(ig_client, review="overdue") == []


@pytest.mark.hazard("H-03")
def test_ig_review_an_involvement_in_admin_and_it_is_audited(ig_client, ig_user, asserted):
    url = reverse("admin:sharing_involvement_change", args=[asserted.pk])
    page = ig_client.get(url)
    assert page.status_code == 200
    body = page.content.decode()
    assert "Mark as reviewed" in body and asserted.asserted_by in body
    next_review = timezone.localdate() + datetime.timedelta(days=90)
    response = ig_client.post(
        url,
        {
            "review_on": next_review.isoformat(),
            "reviewed": "on",
            "note": "Confirmed with the clinic",
            "ended_at_0": "",
            "ended_at_1": "",
        },
    )
    assert response.status_code == 302, response.context and response.context["adminform"].form.errors
    asserted.refresh_from_db()
    assert (asserted.reviewed_by, asserted.review_note, asserted.review_on) == (
        ig_user,
        "Confirmed with the clinic",
        next_review,
    )
    assert asserted.is_current
    event = AuditEvent.objects.get(action=Action.INVOLVEMENT_REVIEWED)
    assert (event.actor_id, event.target_id, event.patient_id) == (ig_user.pk, str(asserted.pk), asserted.patient_id)
    assert event.detail == {
        "note": "Confirmed with the clinic",
        "review_on": str(next_review),
        "asserted_by": asserted.asserted_by,
    }
    assert listed(ig_client, review="needed") == []
    assert listed(ig_client, review="reviewed") == [asserted]


def test_ig_end_a_relationship_that_should_not_be_there_in_the_same_review(ig_client, ig_user, asserted, client):
    url = reverse("admin:sharing_involvement_change", args=[asserted.pk])
    now = timezone.localtime()
    response = ig_client.post(
        url,
        {
            "ended_at_0": now.date().isoformat(),
            "ended_at_1": now.strftime("%H:%M:%S"),
            "review_on": asserted.review_on.isoformat(),
            "reviewed": "on",
            "note": "No referral on file",
        },
    )
    assert response.status_code == 302, response.context and response.context["adminform"].form.errors
    asserted.refresh_from_db()
    assert not asserted.is_current and asserted.reviewed_by == ig_user and asserted.review_on is None
    assert [e.action for e in AuditEvent.objects.filter(target_id=str(asserted.pk)).order_by("pk")][-2:] == [
        Action.INVOLVEMENT_ENDED,
        Action.INVOLVEMENT_REVIEWED,
    ]
