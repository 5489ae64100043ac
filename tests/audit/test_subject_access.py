"""Subject access: what a patient asking "who has looked at my record?" receives. The grouping (a plain function,
audit.subject_access.group), the letter IG open from "who has seen this record" (its content, the period, who may
open it, and the audit rows it writes), and its cost on a long history."""

import datetime
import html
import re
import uuid

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from audit import subject_access, subjects
from audit.models import AccessBasis, AccessEvent, AccessOutcome, AuditEvent
from audit.names import Action
from sharing import actions
from tests import factories
from tests.audit.test_audit_admin import access, moment

UTC = datetime.UTC


@pytest.fixture(autouse=True)
def _admin_settings(admin_settings):
    """Admin pages render the same whatever the environment's static and TLS settings."""


def row(at, **values):
    """One access row as the letter's query reads it."""
    defaults = {
        "user_id": 1,
        "user_email": "ada.gp@test.carerecord.test",
        "professional_name": "Dr Ada Lovelace",
        "professional_role": "General practitioner",
        "organisation_code": "A12345",
        "outcome": AccessOutcome.ALLOWED,
        "basis": AccessBasis.CARE_TEAM,
        "reason": "",
        "page": "record:summary",
    }
    return {"at": at, **defaults, **values}


# --- the grouping: no database ------------------------------------------------------------------------------------


@pytest.mark.hazard("H-03")
def test_looks_are_grouped_per_day_and_person_with_first_and_last_time_and_the_pages_in_words():
    rows = [
        row(moment(2026, 12, 2, 9, 5)),
        row(moment(2026, 12, 2, 9, 7), page="record:letters"),
        row(moment(2026, 12, 2, 18, 47), page="record:summary"),
        row(moment(2026, 12, 3, 10, 0)),
    ]
    asked = []
    history = subject_access.group(
        rows, organisation_names=lambda codes: asked.append(codes) or {"A12345": "Riverside Medical Centre"}
    )
    assert asked == [{"A12345"}]  # once, for every code seen
    assert [day for day, _ in history.days] == [datetime.date(2026, 12, 2), datetime.date(2026, 12, 3)]
    (first_day,) = history.days[0][1]
    assert first_day.person == "Dr Ada Lovelace" and first_day.role == "General practitioner"
    assert (first_day.organisation, first_day.organisation_code) == ("Riverside Medical Centre", "A12345")
    assert first_day.basis == "Care team" and first_day.count == 3
    assert (first_day.first.time(), first_day.last.time()) == (datetime.time(9, 5), datetime.time(18, 47))
    assert first_day.pages == ["Record summary", "Letters and discharge information"]  # once each, as first seen
    assert history.events == 4 and history.refused == []


@pytest.mark.hazard("H-03")
def test_a_day_is_a_uk_day_and_each_basis_and_role_is_its_own_line():
    rows = [
        row(moment(2026, 3, 31, 23, 30)),  # 00:30 on 1 April in London (BST)
        row(moment(2026, 4, 1, 8, 0), basis=AccessBasis.BREAK_GLASS),
        row(moment(2026, 4, 1, 9, 0), professional_role="Consultant, acting for the hospital"),
    ]
    history = subject_access.group(rows)
    ((day, visits),) = history.days
    assert day == datetime.date(2026, 4, 1)
    assert [(visit.basis, visit.role) for visit in visits] == [
        ("Care team", "General practitioner"),
        ("Emergency access (break glass)", "General practitioner"),
        ("Care team", "Consultant, acting for the hospital"),
    ]


@pytest.mark.hazard("H-03")
def test_a_role_not_recorded_is_said_so_never_guessed_and_a_system_is_named_by_its_organisation():
    rows = [
        row(moment(2026, 1, 5, 10), professional_role=""),  # written before roles were kept
        row(moment(2026, 1, 5, 11), user_id=None, user_email="", professional_name="", professional_role=""),
    ]
    history = subject_access.group(rows, organisation_names=lambda codes: {"A12345": "Riverside Medical Centre"})
    person, system = history.visits
    assert (person.person, person.role) == ("Dr Ada Lovelace", subject_access.NOT_RECORDED)
    assert (system.person, system.role, system.is_system) == ("Riverside Medical Centre's clinical system", "", True)


@pytest.mark.hazard("H-03")
def test_refusals_are_apart_and_say_why_and_searches_say_no_record_was_opened():
    rows = [
        row(moment(2026, 1, 5, 10), outcome=AccessOutcome.REFUSED, basis="none", reason="no-care-relationship"),
        row(moment(2026, 1, 5, 10, 1), outcome=AccessOutcome.REFUSED, basis="none", reason="no-care-relationship"),
        row(moment(2026, 1, 5, 10, 2), basis="none", page="search:nhs"),
        row(moment(2026, 1, 5, 10, 3), basis="none", page="my-patients"),
    ]
    history = subject_access.group(rows)
    (refused,) = history.refused
    assert refused.count == 2 and refused.reasons == ["no care relationship with the patient"]
    assert [(visit.basis, visit.pages) for visit in history.visits] == [
        ("Search (no record opened)", ["Search by NHS number"]),
        ("List of patients", ["List of their patients"]),
    ]
    assert "No basis" not in {visit.basis for visit in history.visits}


@pytest.mark.hazard("H-12")
def test_an_emergency_access_carries_the_reason_given_and_reasons_are_asked_for_only_when_there_is_one():
    asked = []

    def started(user_ids, earliest, latest):
        asked.append((user_ids, earliest, latest))
        return [(1, moment(2026, 1, 4, 8), "safeguarding"), (1, moment(2026, 1, 5, 9), "emergency-treatment")]

    bg = row(moment(2026, 1, 5, 9, 30), basis=AccessBasis.BREAK_GLASS)
    history = subject_access.group([bg], break_glass_reasons=started)
    assert history.visits[0].reasons == ["to give you emergency treatment"]  # the latest started before it
    assert asked == [({1}, timezone.localtime(bg["at"]), timezone.localtime(bg["at"]))]

    asked.clear()
    subject_access.group([row(moment(2026, 1, 5, 9, 30))], break_glass_reasons=started)
    assert asked == []


# --- the letter, in admin ---------------------------------------------------------------------------------------------


def words(body):
    """A page's text as a reader meets it: tags gone, entities read, spaces collapsed."""
    return " ".join(html.unescape(re.sub(r"<wbr>", "", re.sub(r"<(?!wbr)[^>]+>", " ", body))).split())


def letter_url(patient_id, **period):
    url = reverse("admin:audit_accessevent_letter", args=[patient_id])
    return url + ("?" + "&".join(f"{key}={value}" for key, value in period.items()) if period else "")


@pytest.fixture
def seen(patient, clinician, clinician_other_org, ig_user):
    """A patient whose record was looked at over two days, with an emergency access and a refused attempt, and
    another patient looked at too (none of which is theirs to be told)."""
    patient.postcode = "SW91NQ"
    patient.address = "1 Acre Lane\nBrixton"
    patient.save()
    gp_role = clinician.professional.job_title
    access(clinician, patient, at=moment(2025, 11, 5, 9, 5), professional_role=gp_role)
    access(clinician, patient, at=moment(2025, 11, 5, 18, 47), professional_role=gp_role, page="record:letters")
    access(
        clinician_other_org,
        patient,
        at=moment(2025, 11, 6, 14, 0),
        outcome=AccessOutcome.REFUSED,
        basis=AccessBasis.NONE,
        reason="no-care-relationship",
    )
    grant = actions.break_glass(by=clinician_other_org, patient=patient, reason_code="unable-to-consent")
    opened = grant.started_at + datetime.timedelta(minutes=1)  # the record opens after the emergency access starts
    access(clinician_other_org, patient, at=opened, basis=AccessBasis.BREAK_GLASS, page="record:emergency")
    access(clinician, patient, at=moment(2025, 11, 7, 10), basis=AccessBasis.NONE, page="search:nhs")
    other = factories.PatientFactory(given_name="Someone", family_name="Else")
    access(clinician, other, at=moment(2025, 11, 5, 10), page="record:medications", professional_name="Dr Not Theirs")
    return patient


@pytest.mark.django_db
@pytest.mark.hazard("H-03")
def test_the_letter_names_the_patient_and_groups_their_accesses_for_them_to_read(
    ig_client, seen, clinician, clinician_other_org, organisation
):
    patient = seen
    response = ig_client.get(letter_url(patient.pk))
    assert response.status_code == 200
    body = response.content.decode()
    text = words(body)
    # Whom it is for.
    assert patient.full_name in text and patient.nhs_number_display in text
    assert "1 Acre Lane" in text and "SW9 1NQ" in text and "SW91NQ" not in text
    assert f"Your date of birth {patient.date_of_birth:%-d %b %Y}" in text
    assert f"Date {timezone.localdate():%-d %b %Y}" in text
    assert re.search(r"Our reference SAR-\d{6}", text)
    # What each basis means, in plain words.
    for basis in ("Care team", "Emergency access (break glass)", "Information governance", "Search (no record opened)"):
        assert f"{basis} " in text, basis
    # Per day, per person: the role then, the organisation by name and code, first to last time, pages in words.
    assert "Wednesday 5 Nov 2025" in text
    professional = clinician.professional
    assert f"09:05 to 18:47 {professional.name} Role: {professional.job_title}" in text
    assert f"{organisation.name} ({organisation.ods_code})" in text
    assert "Record summary" in text and "Letters and discharge information" in text
    assert "record:letters" not in body and "record:summary" not in body
    # The emergency access and the reason given; the search as what it was.
    assert "Reason given: you were unable to consent at the time" in text
    assert "Emergency view" in text
    assert "Search by NHS number" in text and "No basis" not in text
    # Refused apart: who tried, and that nothing was shown.
    refused = text[text.index("Attempts that were refused") :]
    assert clinician_other_org.professional.name in refused and "nothing of your record was shown" in refused
    assert "No care relationship with the patient" in refused
    # The patient's own data only.
    assert "Dr Not Theirs" not in text and "Medications" not in text


@pytest.mark.django_db
@pytest.mark.hazard("H-03")
def test_the_letter_says_role_not_recorded_for_older_rows(ig_client, patient, clinician):
    access(clinician, patient, at=moment(2025, 6, 1, 12))  # no role kept: written before issue 18
    text = words(ig_client.get(letter_url(patient.pk)).content.decode())
    assert f"{clinician.professional.name} Role: not recorded" in text


@pytest.mark.django_db
@pytest.mark.hazard("H-03")
def test_opening_the_letter_writes_one_access_event_and_one_audit_event(ig_client, ig_user, seen):
    patient = seen
    before = AccessEvent.objects.count()
    response = ig_client.get(letter_url(patient.pk, since="2025-11-01", until="2025-11-06"))
    assert response.status_code == 200
    (look,) = AccessEvent.objects.filter(request_id=response["X-Request-ID"])
    assert AccessEvent.objects.count() == before + 1
    assert (look.patient_id, look.patient_nhs_number) == (patient.pk, patient.nhs_number)
    assert (look.outcome, look.basis) == (AccessOutcome.ALLOWED, AccessBasis.IG_ADMIN)
    assert look.page == "admin:subject-access"
    assert (look.user_id, look.user_email) == (ig_user.pk, ig_user.email)
    (letter,) = AuditEvent.objects.filter(action=Action.SUBJECT_ACCESS_LETTER)
    assert Action(letter.action).family == "audit"
    assert (letter.actor_id, letter.patient_id, letter.target_id) == (ig_user.pk, patient.pk, "audit.accessevent")
    assert letter.detail == {
        "kind": "subject-access",
        "since": "2025-11-01",
        "until": "2025-11-06",
        "rows": "3",  # 5 and 6 November: two looks and a refusal (the search is later; the emergency access, today)
        "looks": "1",
        "refused": "1",
    }
    assert f"SAR-{letter.pk:06d}" in response.content.decode()


@pytest.mark.django_db
def test_the_access_event_names_ig_when_the_directory_tells_audit_who_they_are(ig_client, ig_user, seen, monkeypatch):
    from directory.profiles import professional_for

    monkeypatch.setitem(subjects._lookups, "professional_for", professional_for)
    response = ig_client.get(letter_url(seen.pk))
    (look,) = AccessEvent.objects.filter(request_id=response["X-Request-ID"])
    professional = ig_user.professional
    assert (look.professional_name, look.organisation_code) == (professional.name, professional.organisation.ods_code)


@pytest.mark.django_db
@pytest.mark.hazard("H-03")
def test_the_period_narrows_the_letter_to_whole_uk_days(ig_client, seen, clinician_other_org):
    text = ig_client.get(letter_url(seen.pk, since="2025-11-06", until="2025-11-06")).content.decode()
    assert "from 6 Nov 2025 to 6 Nov 2025" in text
    assert "Wednesday 5 Nov 2025" not in text and "No one looked at your record in this period." in text
    assert clinician_other_org.professional.name in text  # the refusal on the 6th
    response = ig_client.get(letter_url(seen.pk, until="2025-11-05"))
    assert "from when your record was first kept to 5 Nov 2025" in response.content.decode()
    assert "No one was refused your record in this period." in response.content.decode()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "period, message",
    [
        ({"since": "2026-13-01"}, "Enter the first day as a date"),
        ({"until": "yesterday"}, "Enter the last day as a date"),
        ({"since": "2025-11-06", "until": "2025-11-01"}, "The first day is after the last day"),
        ({"until": "9999-12-31"}, "Enter a day between 1900 and 2999"),
    ],
)
def test_a_bad_period_is_a_clear_message_never_a_500_and_shows_nothing(ig_client, seen, period, message):
    response = ig_client.get(letter_url(seen.pk, **period))
    assert response.status_code == 400
    body = response.content.decode()
    assert message in body and "Open the letter" in body
    assert "1 Acre Lane" not in body and "SW9 1NQ" not in body
    assert not AuditEvent.objects.filter(action=Action.SUBJECT_ACCESS_LETTER).exists()
    assert not AccessEvent.objects.filter(page="admin:subject-access").exists()


@pytest.mark.django_db
def test_an_unknown_patient_has_no_letter(ig_client, clinician):
    missing = uuid.uuid4()
    access(clinician, None, at=moment(2026, 1, 1), patient_id=missing, outcome="refused", reason="no-such-patient")
    for url in (letter_url(missing), reverse("admin:audit_accessevent_subjectaccess", args=[missing])):
        response = ig_client.get(url)
        assert response.status_code == 404, url
        assert "No patient with this id is in the record now" in response.content.decode()
    assert not AuditEvent.objects.filter(action=Action.SUBJECT_ACCESS_LETTER).exists()
    assert not AccessEvent.objects.filter(page="admin:subject-access").exists()


@pytest.mark.django_db
def test_a_restricted_patients_address_is_not_on_the_letter(ig_client, seen):
    seen.restricted = True
    seen.save()
    body = ig_client.get(letter_url(seen.pk)).content.decode()
    assert "1 Acre Lane" not in body and "SW9 1NQ" not in body
    assert "Restricted record (S-flag)" in body and seen.full_name in body


@pytest.mark.django_db
@pytest.mark.hazard("H-03")
def test_the_form_opens_from_who_has_seen_this_record_and_names_the_patient_only(ig_client, seen):
    who = ig_client.get(reverse("admin:audit_accessevent_patient", args=[seen.pk])).content.decode()
    form_url = reverse("admin:audit_accessevent_subjectaccess", args=[seen.pk])
    assert form_url in who
    before = AccessEvent.objects.count()
    response = ig_client.get(form_url)
    assert response.status_code == 200
    body = response.content.decode()
    assert f'action="{reverse("admin:audit_accessevent_letter", args=[seen.pk])}"' in body
    assert 'name="since"' in body and 'name="until"' in body and 'method="get"' in body
    assert seen.nhs_number_display in body and "1 Acre Lane" not in body and "SW9 1NQ" not in body
    assert AccessEvent.objects.count() == before  # names only: the letter is the look


@pytest.fixture
def staff_without_permissions():
    return factories.UserFactory(is_staff=True)


@pytest.mark.django_db
@pytest.mark.hazard("H-03")
@pytest.mark.parametrize("who", ["anonymous", "clinician", "staff_without_permissions", "ig_user"])
def test_only_ig_open_the_subject_access_form_and_letter(client, who, request, seen):
    if who != "anonymous":
        client.force_login(request.getfixturevalue(who))
    for url in (reverse("admin:audit_accessevent_subjectaccess", args=[seen.pk]), letter_url(seen.pk)):
        response = client.get(url)
        if who == "ig_user":
            assert response.status_code == 200, url
        elif who == "staff_without_permissions":
            assert response.status_code == 403, url
        else:  # not staff, or not signed in: admin's sign-in page, and nothing else
            assert response.status_code == 302 and "/login/" in response["Location"], url
    opened = AuditEvent.objects.filter(action=Action.SUBJECT_ACCESS_LETTER).count()
    assert opened == (1 if who == "ig_user" else 0)


def bulk_history(patient, professional, count, start):
    """`count` looks over many days, written at once (the letter's cost is what is tested, not the writing)."""
    AccessEvent.objects.bulk_create(
        AccessEvent(
            at=start + datetime.timedelta(minutes=37 * number),
            user_id=professional.user_id,
            user_email=professional.user.email,
            professional_name=professional.name,
            professional_role=professional.job_title,
            organisation_code=professional.organisation.ods_code,
            patient_id=patient.pk,
            patient_nhs_number=patient.nhs_number,
            outcome=AccessOutcome.ALLOWED,
            basis=AccessBasis.BREAK_GLASS if number % 50 == 0 else AccessBasis.CARE_TEAM,
            page=("record:summary", "record:letters", "record:timeline")[number % 3],
        )
        for number in range(count)
    )


def letter_queries(client, patient):
    """The letter's queries, less the session's own (saved when it is renewed, which depends on the clock)."""
    with CaptureQueriesContext(connection) as queries:
        response = client.get(letter_url(patient.pk))
    assert response.status_code == 200
    sql = [
        query["sql"] for query in queries if "django_session" not in query["sql"] and "SAVEPOINT" not in query["sql"]
    ]
    # One read of the history (on PostgreSQL a server-side cursor, DECLARE ... FOR SELECT, fetched in chunks).
    assert len([query for query in sql if 'FROM "audit_accessevent"' in query and "SELECT" in query]) == 1
    return response, len(sql)


@pytest.mark.django_db
@pytest.mark.hazard("H-03")
def test_a_long_history_costs_the_letter_no_query_per_event(ig_client, patient, clinician):
    start = moment(2024, 1, 1)
    bulk_history(patient, clinician.professional, 10, start)
    _, few = letter_queries(ig_client, patient)
    bulk_history(patient, clinician.professional, 4990, start + datetime.timedelta(days=30))
    response, many = letter_queries(ig_client, patient)
    assert many == few and many <= 14
    assert AuditEvent.objects.filter(action=Action.SUBJECT_ACCESS_LETTER).first().detail["rows"] == "5001"
    assert response.content.decode().count("<section") > 100  # the whole history, a section a day
