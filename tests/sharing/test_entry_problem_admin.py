"""IG's admin for problems reported with entries (issue 17): the list names no patient; a report's page shows the
entry's words and the patient's NHS number, and each view of it is an AccessEvent; status and note change through
`actions.change_entry_problem` (audited); reports are never added or deleted here."""

import pytest
from django.contrib.admin.models import LogEntry
from django.urls import reverse

from audit.models import AccessBasis, AccessEvent, AccessOutcome, AuditEvent
from audit.names import FAMILIES, Action
from demo.accounts import information_governance_group
from patients.models import Condition
from sharing import actions
from sharing.models import EntryProblem
from tests import factories

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("admin_settings")]

WHAT_IS_WRONG = "Onset date looks ten years out."


@pytest.fixture
def problem(clinician, patient, full_record):
    return actions.report_entry_problem(
        by=clinician, patient=patient, entry=full_record[Condition], what_is_wrong=WHAT_IS_WRONG
    )


def admin_url(view, *args):
    return reverse(f"admin:sharing_entryproblem_{view}", args=args)


def events_of(response):
    return list(AccessEvent.objects.filter(request_id=response["X-Request-ID"]))


def test_the_ig_group_may_view_and_change_reports_but_not_add_or_delete_them(ig_user):
    assert {"sharing.view_entryproblem", "sharing.change_entryproblem"} <= ig_user.get_all_permissions()
    codenames = set(information_governance_group().permissions.values_list("codename", flat=True))
    assert {"add_entryproblem", "delete_entryproblem"}.isdisjoint(codenames)


def test_the_list_shows_status_source_and_when_and_names_no_patient(ig_client, problem, patient, other_organisation):
    response = ig_client.get(admin_url("changelist"))
    assert response.status_code == 200
    assert list(response.context["cl"].result_list) == [problem]
    body = response.content.decode()
    assert "Open" in body and other_organisation.name in body and problem.reporter_organisation_code in body
    for detail in (patient.nhs_number, patient.nhs_number_display, patient.family_name.upper(), "Type 2 diabetes"):
        assert detail not in body, detail
    assert events_of(response) == []
    filtered = ig_client.get(admin_url("changelist"), {"status__exact": EntryProblem.Status.CLOSED})
    assert list(filtered.context["cl"].result_list) == []


def test_a_reports_page_shows_the_entry_and_nhs_number_and_is_an_access_event(
    ig_client, ig_user, problem, patient, full_record
):
    response = ig_client.get(admin_url("change", problem.pk))
    assert response.status_code == 200
    body = response.content.decode()
    assert "Diagnosed conditions: Type 2 diabetes mellitus" in body
    assert patient.nhs_number_display in body and WHAT_IS_WRONG in body
    assert f"the source&#x27;s identifier {full_record[Condition].source_id}" in body
    assert patient.postcode not in body and patient.full_name not in body and patient.family_name not in body
    (event,) = events_of(response)
    assert (event.page, event.basis, event.outcome, event.user_id, event.patient_id) == (
        "admin:entry-problem",
        AccessBasis.IG_ADMIN,
        AccessOutcome.ALLOWED,
        ig_user.pk,
        patient.pk,
    )
    history = ig_client.get(admin_url("history", problem.pk))
    assert history.status_code == 200
    assert [e.page for e in events_of(history)] == ["admin:entry-problem"]


def test_an_entry_no_longer_held_is_said_so(ig_client, problem, full_record):
    Condition.objects.filter(pk=full_record[Condition].pk).delete()
    body = ig_client.get(admin_url("change", problem.pk)).content.decode()
    assert "Diagnosed conditions: no longer held" in body


def test_ig_change_the_status_and_note_through_the_audited_action(ig_client, ig_user, problem, patient):
    response = ig_client.post(
        admin_url("change", problem.pk), {"status": EntryProblem.Status.PASSED_ON, "ig_note": " Phoned the trust. "}
    )
    assert response.status_code == 302
    problem.refresh_from_db()
    assert (problem.status, problem.ig_note) == (EntryProblem.Status.PASSED_ON, "Phoned the trust.")
    (row,) = AuditEvent.objects.filter(action=Action.ENTRY_PROBLEM_CHANGED)
    assert (row.actor_id, row.patient_id, row.target_id) == (ig_user.pk, patient.pk, str(problem.pk))
    assert row.detail == {"previous_status": "open", "status": "passed-on", "ig_note": "Phoned the trust."}
    # Admin's own log names the report by number, never the entry's words.
    (logged,) = LogEntry.objects.filter(object_id=str(problem.pk))
    assert logged.object_repr == f"Entry problem {problem.pk}"
    # Saved again unchanged: nothing more in the trail.
    ig_client.post(
        admin_url("change", problem.pk), {"status": EntryProblem.Status.PASSED_ON, "ig_note": "Phoned the trust."}
    )
    assert AuditEvent.objects.filter(action=Action.ENTRY_PROBLEM_CHANGED).count() == 1
    # Only the note: audited with what changed.
    ig_client.post(
        admin_url("change", problem.pk), {"status": EntryProblem.Status.PASSED_ON, "ig_note": "Closed by trust."}
    )
    latest = AuditEvent.objects.filter(action=Action.ENTRY_PROBLEM_CHANGED).order_by("-pk").first()
    assert latest.detail == {"previous_status": "passed-on", "ig_note": "Closed by trust."}


def test_an_unknown_status_is_refused(ig_client, ig_user, problem):
    response = ig_client.post(admin_url("change", problem.pk), {"status": "deleted", "ig_note": ""})
    assert response.status_code == 200 and response.context["adminform"].form.errors["status"]
    with pytest.raises(ValueError, match="Not an entry problem status"):
        actions.change_entry_problem(by=ig_user, problem=problem, status="deleted")
    problem.refresh_from_db()
    assert problem.status == EntryProblem.Status.OPEN
    assert not AuditEvent.objects.filter(action=Action.ENTRY_PROBLEM_CHANGED).exists()


def test_reports_are_never_added_or_deleted_in_admin(ig_client, problem):
    assert ig_client.get(admin_url("add")).status_code == 403
    assert ig_client.get(admin_url("delete", problem.pk)).status_code == 403
    assert ig_client.post(admin_url("delete", problem.pk), {"post": "yes"}).status_code == 403
    assert EntryProblem.objects.filter(pk=problem.pk).exists()


def test_ig_find_the_actions_under_their_own_family():
    assert ("entry-problem", "Problems reported with entries") in FAMILIES
    assert Action.ENTRY_PROBLEM_REPORTED.family == Action.ENTRY_PROBLEM_CHANGED.family == "entry-problem"


def test_the_organisation_page_has_the_contact_for_problems(ig_client, organisation):
    change = reverse("admin:directory_organisation_change", args=[organisation.pk])
    body = ig_client.get(change).content.decode()
    assert 'name="problem_contact_email"' in body
    assert "Contact for problems with its entries" in body


def test_someone_without_the_permission_cannot_open_reports(client, problem):
    staff = factories.UserFactory(is_staff=True)
    client.force_login(staff)
    assert client.get(admin_url("change", problem.pk)).status_code == 403
    assert client.get(admin_url("changelist")).status_code == 403
