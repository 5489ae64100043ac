"""Report a problem with an entry (issue 17): from any item of a record a professional tells the organisation it came
from that it looks wrong. The entry is found only among what the viewer may see; the report is recorded, audited,
emailed to the source's nominated contact (naming the entry by the source's id and the patient by NHS number only),
and left for IG when it cannot go."""

import logging
import re
import socket

import pytest
from django.core import mail
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape

from audit.models import AccessBasis, AccessEvent, AccessOutcome, AuditEvent
from audit.names import Action
from patients.categories import Category
from patients.models import Condition, Letter, Procedure, Result
from portal.problem_form import WHAT_IS_WRONG_MAX
from sharing import actions
from sharing.models import EntryProblem
from sharing.problems import entry_name
from tests import factories
from tests.sharing.test_coverage import upheld_objection

pytestmark = pytest.mark.django_db

CONTACT = "records.safety@st-elsewhere.test"
WHAT_IS_WRONG = "The onset date is ten years out: diagnosed in 2019, not 2009."


def url_for(patient, entry):
    return reverse("record-report-problem", args=[patient.pk, entry_name(entry)])


@pytest.fixture
def condition(full_record):
    return full_record[Condition]


@pytest.fixture
def with_contact(other_organisation):
    other_organisation.problem_contact_email = CONTACT
    other_organisation.save(update_fields=["problem_contact_email"])
    return other_organisation


@pytest.fixture
def signed_in_clinician(client, clinician):
    client.force_login(clinician)
    return client


def the_event(response):
    (event,) = AccessEvent.objects.filter(request_id=response["X-Request-ID"])
    return event


def test_the_page_shows_the_entry_and_asks_what_looks_wrong_one_access_event_per_view(
    signed_in_clinician, clinician, patient, condition
):
    url = url_for(patient, condition)
    for _ in range(2):
        before = AccessEvent.objects.count()
        response = signed_in_clinician.get(url)
        assert response.status_code == 200
        assert AccessEvent.objects.count() == before + 1
        event = the_event(response)
        assert (event.page, event.outcome, event.basis) == (
            "record:report-problem",
            AccessOutcome.ALLOWED,
            AccessBasis.CARE_TEAM,
        )
        assert (event.user_id, event.patient_id, event.path) == (clinician.pk, patient.pk, url)
    body = response.content.decode()
    assert "Diagnosed conditions: Type 2 diabetes mellitus" in body
    assert escape(condition.source_organisation.name) in body
    local = timezone.localtime(condition.effective_at)  # shown in Europe/London
    assert f">{local.day} {local:%b %Y, %H:%M}</time>" in body
    assert condition.source_id in body
    assert '<label class="nhsuk-label" for="id_what_is_wrong">What looks wrong?</label>' in body
    assert "do not include other patient details" in body
    assert 'name="csrfmiddlewaretoken"' in body
    assert EntryProblem.objects.count() == 0


@pytest.mark.hazard("H-10")
def test_a_report_is_recorded_sent_to_the_sources_contact_and_audited(
    signed_in_clinician, clinician, patient, condition, with_contact
):
    url = url_for(patient, condition)
    response = signed_in_clinician.post(url, {"what_is_wrong": f"  {WHAT_IS_WRONG}  "})
    assert response.status_code == 200
    problem = EntryProblem.objects.get()
    professional = clinician.professional
    assert (problem.patient, problem.source_organisation, problem.entry_model, problem.entry_id) == (
        patient,
        with_contact,
        "patients.condition",
        str(condition.pk),
    )
    assert problem.entry_summary == "Diagnosed conditions: Type 2 diabetes mellitus"
    assert (problem.reported_by, problem.reporter_name, problem.reporter_organisation_code) == (
        clinician,
        professional.name,
        professional.organisation.ods_code,
    )
    assert problem.what_is_wrong == WHAT_IS_WRONG
    assert (problem.sent_to, problem.status) == (CONTACT, EntryProblem.Status.PASSED_ON)
    assert problem.sent_at is not None
    # One access event for the page, one audit row for the report.
    assert the_event(response).page == "record:report-problem"
    (row,) = AuditEvent.objects.filter(action=Action.ENTRY_PROBLEM_REPORTED)
    assert (row.actor_id, row.patient_id, row.target_type, row.target_id) == (
        clinician.pk,
        patient.pk,
        "EntryProblem",
        str(problem.pk),
    )
    assert row.detail == {
        "organisation": with_contact.ods_code,
        "entry": f"patients.condition:{condition.pk}",
        "source_id": condition.source_id,
        "sent_to": CONTACT,
        "not_sent": "",
    }
    # The confirmation: a panel, and what happens next.
    body = response.content.decode()
    assert '<div class="nhsuk-panel app-panel-confirmation">' in body
    assert f"Reference: entry problem {problem.pk}" in body
    assert "nominated contact" in body and "Information governance will pass it on" not in body


@pytest.mark.hazard("H-10")
def test_the_email_names_the_entry_by_its_source_id_and_the_patient_by_nhs_number_only(
    signed_in_clinician, clinician, patient, condition, full_record, with_contact
):
    signed_in_clinician.post(url_for(patient, condition), {"what_is_wrong": WHAT_IS_WRONG})
    (email,) = mail.outbox
    problem = EntryProblem.objects.get()
    assert email.to == [CONTACT]
    assert "a problem reported with one of your entries" in email.subject
    body = email.body
    assert f"Entry: Diagnosed conditions, your identifier {condition.source_id}" in body
    assert f"Patient: NHS number {patient.nhs_number_display}" in body
    professional = clinician.professional
    organisation = professional.organisation
    assert f"Reported by: {professional.name}, {organisation.name} ({organisation.ods_code})\n" in body
    assert clinician.email in body
    assert WHAT_IS_WRONG in body and f"Reference: entry problem {problem.pk}" in body
    # Nothing else of the record: not who the patient is beyond the NHS number, not the entry's words, not any
    # other entry.
    for detail in (patient.given_name, patient.family_name, patient.postcode, patient.phone, patient.address):
        assert detail not in body and detail not in email.subject, detail
    assert patient.date_of_birth.strftime("%d %b %Y") not in body
    assert patient.date_of_birth.isoformat() not in body
    for marker in ("Type 2 diabetes", "Penicillin", "Metformin", "Lives alone", "Discharge summary", "HbA1c"):
        assert marker not in body, marker
    assert re.findall(r"src-\d+", body) == [condition.source_id]  # no other entry's id either


@pytest.mark.hazard("H-10")
def test_without_a_nominated_contact_nothing_is_sent_and_ig_will_pass_it_on(
    signed_in_clinician, patient, condition, other_organisation
):
    assert other_organisation.problem_contact_email == ""
    response = signed_in_clinician.post(url_for(patient, condition), {"what_is_wrong": WHAT_IS_WRONG})
    assert response.status_code == 200
    assert mail.outbox == []
    problem = EntryProblem.objects.get()
    assert (problem.status, problem.sent_to, problem.sent_at) == (EntryProblem.Status.OPEN, "", None)
    (row,) = AuditEvent.objects.filter(action=Action.ENTRY_PROBLEM_REPORTED)
    assert (row.detail["sent_to"], row.detail["not_sent"]) == ("", "no contact")
    assert "Information governance will pass it on." in response.content.decode()


@pytest.fixture
def closed_port():
    """A local port nothing listens on: connecting to it is refused at once."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.hazard("H-10")
def test_when_the_email_cannot_go_the_report_is_kept_open_logged_and_never_a_500(
    settings, signed_in_clinician, patient, condition, with_contact, closed_port, caplog
):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", closed_port, 2
    settings.EMAIL_USE_TLS = False
    with caplog.at_level(logging.ERROR, logger="sharing.actions"):
        response = signed_in_clinician.post(url_for(patient, condition), {"what_is_wrong": WHAT_IS_WRONG})
    assert response.status_code == 200
    problem = EntryProblem.objects.get()
    assert (problem.status, problem.sent_to, problem.sent_at) == (EntryProblem.Status.OPEN, "", None)
    (row,) = AuditEvent.objects.filter(action=Action.ENTRY_PROBLEM_REPORTED)
    assert (row.detail["sent_to"], row.detail["not_sent"]) == ("", "email failed")
    (record,) = [r for r in caplog.records if r.name == "sharing.actions"]
    assert f"Entry problem {problem.pk} could not be emailed" in record.getMessage()
    assert isinstance(record.exc_info[1], ConnectionRefusedError)
    assert patient.nhs_number not in record.getMessage()
    assert "Information governance will pass it on." in response.content.decode()


def test_a_report_needs_what_looks_wrong_and_no_more_than_the_limit(signed_in_clinician, patient, condition):
    url = url_for(patient, condition)
    for posted, message in (
        ("   ", "Enter what looks wrong with the entry"),
        ("x" * (WHAT_IS_WRONG_MAX + 1), f"What looks wrong must be {WHAT_IS_WRONG_MAX:,} characters or fewer"),
    ):
        response = signed_in_clinician.post(url, {"what_is_wrong": posted})
        assert response.status_code == 400
        body = response.content.decode()
        assert "<title>Error: Report a problem with an entry" in body
        assert f'<li><a href="#id_what_is_wrong">{message}</a></li>' in body  # the error summary
        assert (
            f'<span class="nhsuk-error-message" id="id_what_is_wrong-error"><span class="nhsuk-u-visually-hidden">'
            f"Error: </span>{message}</span>"
        ) in body
        assert the_event(response).page == "record:report-problem"
    assert EntryProblem.objects.count() == 0
    assert not AuditEvent.objects.filter(action=Action.ENTRY_PROBLEM_REPORTED).exists()
    assert mail.outbox == []


def test_a_post_without_the_csrf_token_is_refused_and_writes_nothing(clinician, patient, condition, with_contact):
    client = Client(enforce_csrf_checks=True)
    client.force_login(clinician)
    response = client.post(url_for(patient, condition), {"what_is_wrong": WHAT_IS_WRONG})
    assert response.status_code == 403
    assert EntryProblem.objects.count() == 0 and mail.outbox == []


def _not_shared(patient, other_organisation, **_):
    actions.set_sharing(by=None, organisation=other_organisation, category=Category.CONDITIONS, shares=False)
    return entry_name(Condition.objects.get(patient=patient, source_organisation=other_organisation))


def _sensitive(patient, other_organisation, **_):
    return entry_name(
        factories.ConditionFactory(patient=patient, source_organisation=other_organisation, sensitive=True)
    )


def _withdrawn(patient, other_organisation, **_):
    entry = factories.ConditionFactory(patient=patient, source_organisation=other_organisation, entered_in_error=True)
    return entry_name(entry)


def _another_patients(patient, other_organisation, organisation, **_):
    # Another patient's entry, from the clinician's own organisation even: never through this patient's record.
    return entry_name(factories.ConditionFactory(patient=factories.PatientFactory(), source_organisation=organisation))


def _opted_out(patient, other_organisation, **_):
    upheld_objection(patient, factories.UserFactory(is_staff=True))
    return entry_name(Condition.objects.get(patient=patient, source_organisation=other_organisation))


def _no_such_entry(patient, **_):
    return f"conditions-{Condition.objects.order_by('-pk').first().pk + 1000}"


def _wrong_category(patient, other_organisation, **_):
    # The id of a condition under "procedures": looked up as a procedure, which it is not.
    condition = factories.ConditionFactory(patient=patient, source_organisation=other_organisation)
    while Procedure.objects.filter(pk=condition.pk).exists():  # ids are per table: take one no procedure has
        condition = factories.ConditionFactory(patient=patient, source_organisation=other_organisation)
    return f"procedures-{condition.pk}"


NOT_VISIBLE = {
    "not shared by its organisation": _not_shared,
    "sensitive at another organisation": _sensitive,
    "withdrawn as entered in error": _withdrawn,
    "another patient's entry": _another_patients,
    "after an upheld objection": _opted_out,
    "no such entry": _no_such_entry,
    "an id under the wrong category": _wrong_category,
    "involved teams (no entries)": lambda **_: "teams-1",
    "not a category": lambda **_: "diagnoses-1",
    "not an id": lambda **_: "conditions-abc",
    "a leading zero": lambda **_: "conditions-01",
    "no id": lambda **_: "conditions",
}


@pytest.mark.hazard("H-03")
@pytest.mark.hazard("H-11")
@pytest.mark.parametrize("case", NOT_VISIBLE)
def test_an_entry_the_viewer_may_not_see_is_a_404_that_says_nothing_and_writes_nothing(
    case, signed_in_clinician, patient, full_record, organisation, other_organisation, with_contact
):
    name = NOT_VISIBLE[case](patient=patient, organisation=organisation, other_organisation=other_organisation)
    url = reverse("record-report-problem", args=[patient.pk, name])
    for response in (signed_in_clinician.get(url), signed_in_clinician.post(url, {"what_is_wrong": WHAT_IS_WRONG})):
        assert response.status_code == 404
        body = response.content.decode()
        assert "Page not found" in body
        for said in ("Type 2 diabetes", escape(other_organisation.name), patient.nhs_number_display, "What looks"):
            assert said not in body, said
        # The record was opened (the decision allowed it): one AccessEvent, as for any page view.
        event = the_event(response)
        assert (event.page, event.outcome) == ("record:report-problem", AccessOutcome.ALLOWED)
    assert EntryProblem.objects.count() == 0
    assert not AuditEvent.objects.filter(action=Action.ENTRY_PROBLEM_REPORTED).exists()
    assert mail.outbox == []


def test_someone_refused_the_record_cannot_report_and_nothing_is_written(
    client, outsider, patient, condition, with_contact
):
    client.force_login(outsider)
    url = url_for(patient, condition)
    for response in (client.get(url), client.post(url, {"what_is_wrong": WHAT_IS_WRONG})):
        assert response.status_code == 403
        assert "Type 2 diabetes" not in response.content.decode()
        assert the_event(response).outcome == AccessOutcome.REFUSED
    assert EntryProblem.objects.count() == 0 and mail.outbox == []


def test_the_viewers_own_organisations_entry_can_be_reported_too_sensitive_or_not(
    signed_in_clinician, patient, organisation
):
    """They hold it, and may need to correct it themselves: the report goes to their own organisation's contact."""
    organisation.problem_contact_email = "own.records@riverside.test"
    organisation.save(update_fields=["problem_contact_email"])
    own = factories.ConditionFactory(patient=patient, source_organisation=organisation, name="Asthma", sensitive=True)
    response = signed_in_clinician.post(url_for(patient, own), {"what_is_wrong": "Not asthma: COPD."})
    assert response.status_code == 200
    problem = EntryProblem.objects.get()
    assert (problem.source_organisation, problem.sent_to) == (organisation, "own.records@riverside.test")
    assert [m.to for m in mail.outbox] == [["own.records@riverside.test"]]


def test_break_glass_viewers_can_report_what_they_see(client, clinician_other_org, patient, condition):
    actions.break_glass(by=clinician_other_org, patient=patient, reason_code="emergency-treatment")
    client.force_login(clinician_other_org)
    response = client.post(url_for(patient, condition), {"what_is_wrong": WHAT_IS_WRONG})
    assert response.status_code == 200
    assert the_event(response).basis == AccessBasis.BREAK_GLASS
    assert EntryProblem.objects.get().reported_by == clinician_other_org


@pytest.mark.hazard("H-10")
def test_every_entry_on_the_record_pages_has_a_quiet_report_a_problem_link_naming_it_for_screen_readers(
    signed_in_clinician, patient, full_record
):
    summary = signed_in_clinician.get(reverse("record-summary", args=[patient.pk])).content.decode()
    for model, entry in full_record.items():
        page = signed_in_clinician.get(reverse(f"record-{model.category.value}", args=[patient.pk]))
        body = page.content.decode()
        link = f'<a class="app-report-problem" href="{url_for(patient, entry)}">Report a problem'
        assert link in body, model.__name__
        assert link in summary, model.__name__
        hidden = re.search(re.escape(link) + r'<span class="nhsuk-u-visually-hidden"> with ([^<]*)</span></a>', body)
        assert hidden, model.__name__
        local = timezone.localtime(entry.effective_at)
        assert hidden[1].endswith(f", {local.day} {local:%b %Y}"), hidden[1]
    # A table row carries it in the "From" cell as a note; a report and a letter under their text.
    conditions = signed_in_clinician.get(reverse("record-conditions", args=[patient.pk])).content.decode()
    assert (
        f'<span class="app-cell-note"><a class="app-report-problem" href="{url_for(patient, full_record[Condition])}"'
        in conditions
    )
    for model in (Result, Letter):
        page = signed_in_clinician.get(reverse(f"record-{model.category.value}", args=[patient.pk])).content.decode()
        href = url_for(patient, full_record[model])
        link = f'<p class="nhsuk-body-s app-entry__report"><a class="app-report-problem" href="{href}"'
        assert link in page, model.__name__


def test_an_undated_entrys_link_says_its_date_is_not_recorded(signed_in_clinician, patient, other_organisation):
    entry = factories.ConditionFactory(patient=patient, source_organisation=other_organisation, effective_at=None)
    body = signed_in_clinician.get(reverse("record-conditions", args=[patient.pk])).content.decode()
    assert (
        f'href="{url_for(patient, entry)}">Report a problem<span class="nhsuk-u-visually-hidden"> with '
        "Type 2 diabetes mellitus, date not recorded</span></a>"
    ) in body
    page = signed_in_clinician.get(url_for(patient, entry)).content.decode()
    assert "Date not recorded" in page


def test_the_action_refuses_an_entry_of_another_patient(clinician, patient, condition):
    with pytest.raises(ValueError, match="not this patient's"):
        actions.report_entry_problem(
            by=clinician, patient=factories.PatientFactory(), entry=condition, what_is_wrong=WHAT_IS_WRONG
        )
    assert EntryProblem.objects.count() == 0
