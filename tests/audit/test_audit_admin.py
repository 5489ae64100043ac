"""The audit trail as IG works it in admin: filtering the access log, "who has seen this record", streamed
CSV exports (themselves audited), the change log, and the break-glass review queue.

Every IG actor here is staff with the IG group's permissions, never a superuser, as in production.
"""

import csv
import datetime
import re
import uuid

import pytest
from django.contrib.admin.templatetags.admin_list import result_headers
from django.contrib.auth import get_user_model
from django.db import connection
from django.http import StreamingHttpResponse
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape

from audit import export as audit_export
from audit import writers
from audit.admin import CappedCountPaginator
from audit.models import AccessBasis, AccessEvent, AccessOutcome, AuditEvent
from audit.names import FAMILIES, Action
from sharing import actions
from sharing.models import BreakGlass
from tests import factories

pytestmark = pytest.mark.django_db

UTC = datetime.UTC
CHANGELIST = "admin:audit_accessevent_changelist"


@pytest.fixture(autouse=True)
def _admin_settings(admin_settings):
    """Admin pages render the same whatever the environment's static and TLS settings."""


def access(user=None, patient=None, *, at, **values):
    """An AccessEvent as the app writes them: who and whom kept as values."""
    professional = getattr(user, "professional", None) if user else None
    defaults = {
        "user_id": user.pk if user else None,
        "user_email": user.email if user else "",
        "professional_name": professional.name if professional else "",
        "organisation_code": professional.organisation.ods_code if professional else "",
        "patient_id": patient.pk if patient else None,
        "patient_nhs_number": patient.nhs_number if patient else "",
        "outcome": AccessOutcome.ALLOWED,
        "basis": AccessBasis.CARE_TEAM,
        "page": "record:summary",
    }
    return AccessEvent.objects.create(at=at, **{**defaults, **values})


def moment(*args):
    return datetime.datetime(*args, tzinfo=UTC)


@pytest.fixture
def log(patient, clinician, clinician_other_org):
    """A small access log: two professionals, two patients, three months, both outcomes and bases."""
    other_patient = factories.PatientFactory()
    return {
        "february": access(clinician, patient, at=moment(2025, 2, 20, 12)),
        "march": access(clinician, patient, at=moment(2025, 3, 10, 12)),
        "refused": access(
            clinician_other_org,
            patient,
            at=moment(2025, 3, 12, 9),
            outcome=AccessOutcome.REFUSED,
            basis=AccessBasis.NONE,
            reason="no-care-relationship",
        ),
        "break_glass": access(
            clinician_other_org, patient, at=moment(2025, 3, 12, 9, 5), basis=AccessBasis.BREAK_GLASS
        ),
        # 00:30 on 1 April in London (BST), though still 31 March in UTC.
        "april": access(clinician, other_patient, at=moment(2025, 3, 31, 23, 30)),
        "search": access(clinician, other_patient, at=moment(2025, 4, 5, 12), page="search:nhs-number"),
    }


def listed(client, **params):
    response = client.get(reverse(CHANGELIST), params)
    assert response.status_code == 200, response
    return set(response.context["cl"].result_list)


def test_ig_filters_the_access_log_by_professional(ig_client, log, clinician, clinician_other_org):
    by_clinician = {log[name] for name in ("february", "march", "april", "search")}
    assert listed(ig_client, professional=clinician.email.upper()) == by_clinician
    assert listed(ig_client, professional=clinician_other_org.email) == {log["refused"], log["break_glass"]}

    # The account's id, not the address: rows written before a change of address still count as theirs...
    get_user_model().objects.filter(pk=clinician.pk).update(email="renamed@test.carerecord.test")
    assert listed(ig_client, professional="renamed@test.carerecord.test") == by_clinician
    # ...and a deleted account's history is found by the address the rows kept.
    clinician_other_org.delete()
    assert listed(ig_client, professional=log["refused"].user_email) == {log["refused"], log["break_glass"]}


def test_ig_filters_the_access_log_by_patient(ig_client, log, patient):
    of_patient = {log[name] for name in ("february", "march", "refused", "break_glass")}
    assert listed(ig_client, patient=patient.nhs_number_display) == of_patient  # "999 500 0001", as on a letter
    assert listed(ig_client, patient=str(patient.pk)) == of_patient

    gone = access(None, None, at=moment(2025, 1, 1), patient_nhs_number="9990000018")
    assert listed(ig_client, patient="999 000 0018") == {gone}  # no longer in the record: by the kept number

    response = ig_client.get(reverse(CHANGELIST), {"patient": "Ada"})
    assert not response.context["cl"].result_list
    assert "not an NHS number or a patient id" in " ".join(str(m) for m in response.context["messages"])


def test_ig_filters_the_access_log_by_organisation_basis_outcome_and_page(
    ig_client, log, patient, clinician, clinician_other_org
):
    other_code = clinician_other_org.professional.organisation.ods_code
    assert listed(ig_client, organisation_code=other_code.lower()) == {log["refused"], log["break_glass"]}
    assert listed(ig_client, basis__exact=AccessBasis.BREAK_GLASS) == {log["break_glass"]}
    assert listed(ig_client, outcome__exact=AccessOutcome.REFUSED) == {log["refused"]}
    assert listed(ig_client, page="search:") == {log["search"]}
    assert listed(ig_client, professional=clinician.email, page="record:summary", patient=str(patient.pk)) == {
        log["february"],
        log["march"],
    }
    assert listed(ig_client, organisation_code=other_code, outcome__exact=AccessOutcome.ALLOWED) == {log["break_glass"]}


def test_ig_filters_the_access_log_by_a_date_range(ig_client, log):
    march = {log[name] for name in ("march", "refused", "break_glass")}
    # Typed dates mean local midnight: 00:30 BST on 1 April is April, whatever UTC says.
    assert listed(ig_client, at__gte="2025-03-01", at__lt="2025-04-01") == march
    assert listed(ig_client, at__gte="2025-04-01") == {log["april"], log["search"]}
    assert listed(ig_client, at__lt="2025-03-01", at__gte="") == {log["february"]}  # an empty box is no bound
    # The quick links' full datetimes are the same parameters.
    since = timezone.localtime(moment(2025, 3, 12, 0)).isoformat(sep=" ")
    assert listed(ig_client, at__gte=since, at__lt="2025-03-13") == {log["refused"], log["break_glass"]}

    response = ig_client.get(reverse(CHANGELIST), {"at__gte": "1 March"})
    assert response.status_code == 302 and response["Location"].endswith("?e=1")  # Django's bad-filter answer


def test_the_filters_render_as_forms_that_keep_the_rest_of_the_query(ig_client, log, clinician):
    response = ig_client.get(reverse(CHANGELIST), {"professional": clinician.email, "at__gte": "2025-03-01"})
    body = response.content.decode()
    for label in ("Email address", "NHS number or patient id", "ODS code", "From", "Before"):
        assert f">{label}</label>" in body
    assert 'name="at__gte" value="2025-03-01"' in body
    # The patient form carries the professional and date filters along.
    patient_form = body[body.index('id="filter-patient"') - 600 : body.index('id="filter-patient"')]
    assert f'name="professional" value="{clinician.email}"' in patient_form
    assert 'name="at__gte" value="2025-03-01"' in patient_form


def test_the_changelist_never_counts_the_whole_table(ig_client, log, monkeypatch):
    monkeypatch.setattr(CappedCountPaginator, "cap", 3)
    with CaptureQueriesContext(connection) as queries:
        response = ig_client.get(reverse(CHANGELIST), {"_facets": "1"})
    cl = response.context["cl"]
    assert cl.result_count == 3 and cl.paginator.capped
    assert "There are more than 3 access events" in response.content.decode()
    counts = [query["sql"] for query in queries if "COUNT(" in query["sql"].upper()]
    assert counts, "the paginator counts"
    assert all("LIMIT" in sql.upper() for sql in counts), counts  # bounded, never the whole table
    sortable = [header["text"] for header in result_headers(cl) if header["sortable"]]
    assert sortable == ["When"]  # `at`, the indexed column: any other would sort the whole table for one page
    assert not any("DISTINCT" in query["sql"].upper() for query in queries)  # no date_hierarchy or choice scans

    monkeypatch.setattr(CappedCountPaginator, "cap", 100)
    response = ig_client.get(reverse(CHANGELIST))
    assert response.context["cl"].result_count == len(log) and not response.context["cl"].paginator.capped


def test_searching_takes_an_email_a_name_or_an_nhs_number(ig_client, log, clinician, patient):
    assert listed(ig_client, q=clinician.email) == {log[n] for n in ("february", "march", "april", "search")}
    assert listed(ig_client, q=clinician.professional.name) >= {log["march"]}
    assert listed(ig_client, q=patient.nhs_number_display) == {
        log[n] for n in ("february", "march", "refused", "break_glass")
    }


def test_who_has_seen_this_record_lists_exactly_that_patients_accesses_newest_first(ig_client, log, patient):
    url = reverse("admin:audit_accessevent_patient", args=[patient.pk])
    response = ig_client.get(url)
    assert response.status_code == 200
    events = list(response.context["page_obj"].object_list)
    assert events == [log["break_glass"], log["refused"], log["march"], log["february"]]
    body = response.content.decode()
    assert patient.nhs_number_display in body
    assert escape(log["refused"].professional_name) in body and "Refused: no care relationship with the patient" in body


def test_who_has_seen_this_record_is_paginated(ig_client, patient, clinician):
    start = moment(2025, 1, 1)
    for minute in range(105):
        access(clinician, patient, at=start + datetime.timedelta(minutes=minute))
    url = reverse("admin:audit_accessevent_patient", args=[patient.pk])
    first = ig_client.get(url).context["page_obj"]
    assert len(first.object_list) == 100 and first.paginator.count == 105
    assert first.object_list[0].at == start + datetime.timedelta(minutes=104)
    assert len(ig_client.get(url, {"p": 2}).context["page_obj"].object_list) == 5


def test_who_has_seen_a_record_no_longer_there_shows_the_attempts(ig_client, clinician):
    missing = uuid.uuid4()
    attempt = AccessEvent.objects.create(
        user_id=clinician.pk, patient_id=missing, outcome="refused", basis="none", reason="no-such-patient", page="x"
    )
    response = ig_client.get(reverse("admin:audit_accessevent_patient", args=[missing]))
    assert list(response.context["page_obj"].object_list) == [attempt]
    assert "No patient with this id is in the record now" in response.content.decode()


def test_who_has_seen_this_record_is_linked_from_the_log_and_the_patient(ig_client, log, patient):
    url = reverse("admin:audit_accessevent_patient", args=[patient.pk])
    assert url in ig_client.get(reverse(CHANGELIST)).content.decode()
    assert url in ig_client.get(reverse("admin:audit_accessevent_change", args=[log["march"].pk])).content.decode()
    assert url in ig_client.get(reverse("admin:patients_patient_change", args=[patient.pk])).content.decode()


def read_csv(response):
    assert isinstance(response, StreamingHttpResponse)
    text = b"".join(response.streaming_content).decode("utf-8-sig")
    return list(csv.reader(text.splitlines()))


def test_the_csv_export_streams_the_filtered_log_and_is_audited(ig_client, ig_user, log, patient, monkeypatch):
    monkeypatch.setattr(audit_export, "CHUNK_SIZE", 2)  # several chunks, even from a small log
    url = reverse("admin:audit_accessevent_export")
    query = f"?patient={patient.pk}&at__gte=2025-03-01"
    response = ig_client.post(url + query)

    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="accessevent-')
    rows = read_csv(response)
    assert rows[0] == list(audit_export.ACCESS_EVENT_COLUMNS)
    expected = [log["break_glass"], log["refused"], log["march"]]  # the changelist's order: newest first
    assert [row[audit_export.ACCESS_EVENT_COLUMNS.index("request_id")] for row in rows[1:]] == [""] * 3
    assert [row[audit_export.ACCESS_EVENT_COLUMNS.index("at")] for row in rows[1:]] == [
        timezone.localtime(event.at).isoformat() for event in expected
    ]
    assert {row[audit_export.ACCESS_EVENT_COLUMNS.index("patient_nhs_number")] for row in rows[1:]} == {
        patient.nhs_number
    }

    exported = AuditEvent.objects.get(action="audit.exported")
    assert (exported.actor_id, exported.actor_email) == (ig_user.pk, ig_user.email)
    assert (exported.target_type, exported.target_id) == ("AuditTrail", "audit.accessevent")
    assert exported.patient_id == patient.pk  # the export shows in the patient's own audit
    assert exported.detail["filters"] == query[1:] and exported.detail["format"] == "csv"


def test_the_csv_export_of_everything_has_one_row_per_event(ig_client, log):
    rows = read_csv(ig_client.post(reverse("admin:audit_accessevent_export")))
    assert len(rows) == 1 + len(log)
    assert AuditEvent.objects.get(action="audit.exported").patient_id is None


@pytest.mark.django_db(transaction=True)
def test_the_csv_export_streams_in_autocommit_as_in_production(ig_client, log, monkeypatch):
    """Rows are read while the response streams, after the view has returned; on PostgreSQL that is a
    server-side cursor held outside any transaction."""
    monkeypatch.setattr(audit_export, "CHUNK_SIZE", 2)
    response = ig_client.post(reverse("admin:audit_accessevent_export"))
    assert len(read_csv(response)) == 1 + len(log)


def test_the_csv_export_defuses_spreadsheet_formulas(ig_client, patient):
    access(None, patient, at=moment(2025, 1, 1), professional_name='=HYPERLINK("http://x.test","Click")')
    rows = read_csv(ig_client.post(reverse("admin:audit_accessevent_export")))
    assert rows[1][audit_export.ACCESS_EVENT_COLUMNS.index("professional_name")].startswith("'=HYPERLINK")


def test_the_csv_export_needs_a_post_and_valid_filters(ig_client, log):
    url = reverse("admin:audit_accessevent_export")
    assert ig_client.get(url).status_code == 405
    response = ig_client.post(url + "?at__gte=last+Tuesday")
    assert response.status_code == 302 and response["Location"] == reverse(CHANGELIST)
    assert not AuditEvent.objects.filter(action="audit.exported").exists()


def test_the_change_log_exports_too(ig_client, ig_user, patient, clinician_other_org):
    actions.break_glass(by=clinician_other_org, patient=patient, reason_code="emergency-treatment")
    response = ig_client.post(reverse("admin:audit_auditevent_export") + "?action=break-glass")
    rows = read_csv(response)
    assert rows[0] == list(audit_export.AUDIT_EVENT_COLUMNS)
    assert [row[1] for row in rows[1:]] == ["break-glass.started"]
    assert '"reason": "emergency-treatment"' in rows[1][audit_export.AUDIT_EVENT_COLUMNS.index("detail")]
    assert AuditEvent.objects.get(action="audit.exported").target_id == "audit.auditevent"


@pytest.fixture
def staff_without_permissions():
    return factories.UserFactory(is_staff=True)


@pytest.mark.parametrize("who", ["anonymous", "clinician", "staff_without_permissions"])
def test_only_ig_may_see_filter_or_export_the_audit_trails(client, who, request, log, patient):
    if who != "anonymous":
        client.force_login(request.getfixturevalue(who))
    pages = [
        ("get", reverse(CHANGELIST) + f"?patient={patient.pk}"),
        ("get", reverse("admin:audit_accessevent_change", args=[log["march"].pk])),
        ("get", reverse("admin:audit_accessevent_patient", args=[patient.pk])),
        ("post", reverse("admin:audit_accessevent_export")),
        ("get", reverse("admin:audit_auditevent_changelist")),
        ("post", reverse("admin:audit_auditevent_export")),
        ("get", reverse("admin:sharing_breakglass_changelist")),
    ]
    for method, url in pages:
        response = getattr(client, method)(url)
        if who == "staff_without_permissions":
            assert response.status_code == 403, url
        else:  # not staff, or not signed in: a sign-in page, and nothing else
            assert response.status_code == 302 and "/login/" in response["Location"], url
    assert not AuditEvent.objects.filter(action="audit.exported").exists()


@pytest.mark.parametrize("model", [AccessEvent, AuditEvent])
def test_audit_rows_cannot_be_added_changed_or_deleted_in_admin(ig_client, model, log, ig_user):
    row = (
        log["march"]
        if model is AccessEvent
        else writers.audit(by=ig_user, action=Action.AUDIT_EXPORTED, target=ig_user)
    )
    name = f"admin:{model._meta.app_label}_{model._meta.model_name}"
    assert ig_client.get(reverse(f"{name}_add")).status_code == 403
    assert ig_client.post(reverse(f"{name}_change", args=[row.pk]), {"page": "edited"}).status_code == 403
    assert ig_client.get(reverse(f"{name}_delete", args=[row.pk])).status_code == 403
    assert ig_client.post(reverse(f"{name}_delete", args=[row.pk]), {"post": "yes"}).status_code == 403
    view = ig_client.get(reverse(f"{name}_change", args=[row.pk]))
    assert view.status_code == 200 and b'name="_save"' not in view.content
    assert model.objects.filter(pk=row.pk).exists()


@pytest.fixture
def changes(ig_user, patient, clinician_other_org, care_team):
    """A change log: a professional's break glass, IG's review of it, and a system-made involvement."""
    grant = actions.break_glass(by=clinician_other_org, patient=patient, reason_code="emergency-treatment")
    actions.review_break_glass(by=ig_user, break_glass=grant, outcome="appropriate")
    other_patient = factories.PatientFactory()
    actions.start_involvement(by=None, patient=other_patient, care_team=care_team, reason="referral")
    return grant


def audit_listed(client, **params):
    response = client.get(reverse("admin:audit_auditevent_changelist"), params)
    assert response.status_code == 200
    return {event.action for event in response.context["cl"].result_list}


def test_ig_filters_the_change_log_by_action_actor_patient_and_date(ig_client, ig_user, changes, patient):
    assert audit_listed(ig_client, action="break-glass") == {"break-glass.started", "break-glass.reviewed"}
    assert audit_listed(ig_client, actor=ig_user.email) == {"break-glass.reviewed"}
    assert "involvement.started" in audit_listed(ig_client, actor="system")
    assert "break-glass.reviewed" not in audit_listed(ig_client, actor="system")
    of_patient = ig_client.get(reverse("admin:audit_auditevent_changelist"), {"patient": patient.nhs_number_display})
    assert {event.patient_id for event in of_patient.context["cl"].result_list} == {patient.pk}
    assert {event.action for event in of_patient.context["cl"].result_list} >= {
        "break-glass.started",
        "break-glass.reviewed",
    }
    today = timezone.localdate()
    assert "break-glass.reviewed" in audit_listed(ig_client, at__gte=today.isoformat())
    assert not audit_listed(ig_client, at__lt="2000-01-01")
    assert audit_listed(ig_client, q=str(patient.pk)) == {
        "involvement.started",  # the patient fixture's registration
        "break-glass.started",
        "break-glass.reviewed",
    }
    assert audit_listed(ig_client, q="break-glass.reviewed") == {"break-glass.reviewed"}


def test_every_audited_action_belongs_to_a_filter_family():
    """The action filter is a fixed list (a DISTINCT over the table would scan it): every action is in it."""
    families = {family for family, _ in FAMILIES}
    assert {action.family for action in Action} <= families


def test_an_action_that_is_not_in_the_enum_is_refused(clinician):
    """A misspelt action name must fail loudly, not write a row that no filter finds."""
    before = AuditEvent.objects.count()
    with pytest.raises(ValueError, match="not a valid Action"):
        writers.audit(by=clinician, action="break-glass.reviwed", target=clinician)
    assert AuditEvent.objects.count() == before


# --- the break-glass review queue ---------------------------------------------------------------------------------


def grant_at(user, patient, started_at, outcome=""):
    grant = actions.break_glass(by=user, patient=patient, reason_code="emergency-treatment")
    BreakGlass.objects.filter(pk=grant.pk).update(started_at=started_at, review_outcome=outcome)
    grant.refresh_from_db()
    return grant


@pytest.mark.hazard("H-12")
def test_the_queue_is_unreviewed_first_then_oldest_first(ig_client, patient, clinician_other_org):
    now = timezone.now()
    reviewed_oldest = grant_at(clinician_other_org, patient, now - datetime.timedelta(days=9), "appropriate")
    pending_newer = grant_at(clinician_other_org, patient, now - datetime.timedelta(days=1))
    follow_up = grant_at(clinician_other_org, patient, now - datetime.timedelta(days=5), "follow-up")
    pending_older = grant_at(clinician_other_org, patient, now - datetime.timedelta(days=3))

    response = ig_client.get(reverse("admin:sharing_breakglass_changelist"), {"status": "all"})
    assert list(response.context["cl"].result_list)[:2] == [pending_older, pending_newer]
    assert set(response.context["cl"].result_list) == {reviewed_oldest, pending_newer, follow_up, pending_older}

    # The queue opens on what needs action (issue 18), the same as ?status=open.
    for query in ({}, {"status": "open"}):
        needing_action = ig_client.get(reverse("admin:sharing_breakglass_changelist"), query)
        assert list(needing_action.context["cl"].result_list) == [pending_older, pending_newer, follow_up]


@pytest.fixture
def grant(patient, clinician_other_org):
    return actions.break_glass(
        by=clinician_other_org, patient=patient, reason_code="unable-to-consent", reason_text="Unconscious"
    )


def review(client, grant, outcome, note=""):
    return client.post(
        reverse("admin:sharing_breakglass_change", args=[grant.pk]), {"review_outcome": outcome, "review_note": note}
    )


@pytest.mark.hazard("H-12")
def test_reviewing_in_admin_records_the_outcome_through_the_action(ig_client, ig_user, grant):
    page = ig_client.get(reverse("admin:sharing_breakglass_change", args=[grant.pk])).content.decode()
    assert "Unconscious" in page and "What they opened" in page

    response = review(ig_client, grant, "appropriate", "Paramedic at the scene of a collapse")
    assert response.status_code == 302
    grant.refresh_from_db()
    assert grant.review_outcome == BreakGlass.Outcome.APPROPRIATE
    assert grant.review_note == "Paramedic at the scene of a collapse"
    assert grant.reviewed_by == ig_user and grant.reviewed_at is not None
    reviewed = AuditEvent.objects.get(action="break-glass.reviewed")
    assert reviewed.actor_email == ig_user.email and reviewed.patient_id == grant.patient_id
    assert reviewed.detail == {"outcome": "appropriate", "note": "Paramedic at the scene of a collapse"}


@pytest.mark.hazard("H-12")
def test_a_final_review_cannot_be_changed(ig_client, grant):
    review(ig_client, grant, "inappropriate", "No care relationship; spoken to their manager")
    page = ig_client.get(reverse("admin:sharing_breakglass_change", args=[grant.pk]))
    assert page.status_code == 200 and b'name="_save"' not in page.content  # shown read-only

    assert review(ig_client, grant, "appropriate", "changed my mind").status_code == 403
    grant.refresh_from_db()
    assert grant.review_outcome == BreakGlass.Outcome.INAPPROPRIATE
    assert AuditEvent.objects.filter(action="break-glass.reviewed").count() == 1


@pytest.mark.hazard("H-12")
def test_a_follow_up_is_concluded_later_and_each_step_is_audited(ig_client, grant):
    assert review(ig_client, grant, "follow-up", "Asked the crew's manager for the call log").status_code == 302
    page = ig_client.post(
        reverse("admin:sharing_breakglass_change", args=[grant.pk]),
        {"review_outcome": "follow-up", "review_note": "Asked the crew's manager for the call log"},
    )
    assert page.status_code == 302  # saved unchanged: not a second review
    assert AuditEvent.objects.filter(action="break-glass.reviewed").count() == 1

    assert review(ig_client, grant, "appropriate", "Call log confirms a 999 call").status_code == 302
    outcomes = AuditEvent.objects.filter(action="break-glass.reviewed").order_by("at", "pk")
    assert [event.detail["outcome"] for event in outcomes] == ["follow-up", "appropriate"]


@pytest.mark.hazard("H-12")
@pytest.mark.parametrize(
    ("outcome", "note", "error"),
    [
        ("", "", "Choose the outcome of the review"),
        ("inappropriate", "  ", "Say why, and what happens next"),
        ("follow-up", "", "Say why, and what happens next"),
    ],
)
def test_a_review_needs_an_outcome_and_a_reason_for_concern(ig_client, grant, outcome, note, error):
    response = review(ig_client, grant, outcome, note)
    assert response.status_code == 200 and error in response.content.decode()
    grant.refresh_from_db()
    assert grant.review_outcome == BreakGlass.Outcome.PENDING
    assert not AuditEvent.objects.filter(action="break-glass.reviewed").exists()


@pytest.mark.hazard("H-12")
def test_no_one_reviews_their_own_emergency_access(client, ig_user, patient):
    own = actions.break_glass(by=ig_user, patient=patient, reason_code="emergency-treatment")
    client.force_login(ig_user)
    response = review(client, own, "appropriate", "Fine")
    assert response.status_code == 200 and "cannot review your own emergency access" in response.content.decode()
    own.refresh_from_db()
    assert own.review_outcome == BreakGlass.Outcome.PENDING


def test_the_review_links_to_what_the_professional_opened(ig_client, grant, patient, clinician_other_org):
    before = access(clinician_other_org, patient, at=grant.started_at - datetime.timedelta(hours=1))
    during = access(clinician_other_org, patient, at=grant.started_at, basis=AccessBasis.BREAK_GLASS)
    page = ig_client.get(reverse("admin:sharing_breakglass_change", args=[grant.pk])).content.decode()
    link = re.search(r'href="([^"]*accessevent/\?[^"]*)"', page).group(1).replace("&amp;", "&")
    opened = ig_client.get(link).context["cl"].result_list
    assert list(opened) == [during] and before not in opened


# --- issue 11, finding 1: IG's own looks in admin are in the log, under their own basis -----------------------


@pytest.mark.hazard("H-01")
def test_finding_1_ig_admin_looks_are_filtered_by_basis_and_page(ig_client, ig_user, log, patient):
    look = access(ig_user, patient, at=moment(2025, 4, 6, 9), basis=AccessBasis.IG_ADMIN, page="admin:patient")
    listing = access(patient=None, at=moment(2025, 4, 6, 10), page="my-patients")
    assert AccessBasis.IG_ADMIN.value == "ig-admin" and AccessBasis.IG_ADMIN.label == "IG administration"
    assert listed(ig_client, basis__exact=AccessBasis.IG_ADMIN) == {look}
    assert listed(ig_client, page="admin:") == {look}
    assert listed(ig_client, page="my-patients") == {listing}
    page = ig_client.get(reverse("admin:audit_accessevent_patient", args=[patient.pk]))
    assert look in page.context["page_obj"].object_list
    assert "IG administration" in page.content.decode()


@pytest.mark.hazard("H-01")
def test_finding_1_list_writers_write_one_row_per_patient_shown(rf, ig_user, patient):
    other = factories.PatientFactory()
    request = rf.get("/admin/patients/patient/", {"q": patient.nhs_number})
    request.user = ig_user
    professional = ig_user.professional
    rows = writers.record_admin_view(
        request=request, professional=professional, patients=[patient, other, patient], page="admin:patient-search"
    )
    assert [row.patient_id for row in rows] == [patient.pk, other.pk]  # once each, in the order shown
    assert {(row.basis, row.outcome, row.path, row.organisation_code) for row in rows} == {
        (AccessBasis.IG_ADMIN, AccessOutcome.ALLOWED, "/admin/patients/patient/", professional.organisation.ods_code)
    }
    assert writers.record_admin_view(request=request, professional=professional, patients=[], page="admin:x") == []
    (miss,) = writers.record_admin_view(
        request=request, professional=professional, patients=[], page="admin:x", record_none=True
    )
    assert (miss.patient_id, miss.reason) == (None, "no-match")
    with pytest.raises(ValueError, match="admin"):
        writers.record_admin_view(request=request, professional=professional, patients=[patient], page="patient")
