"""Issue 13: "Currently in hospital" on every record page's banner when the viewer may see an open admission
(sharing.record.current_admissions), with when its source last sent anything (an admission never closed must not
read as current without the clue)."""

import datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from directory.actions import note_received
from optout import actions as optout
from patients.categories import Category
from sharing.access import decide
from sharing.record import current_admissions
from tests import factories

pytestmark = [pytest.mark.django_db, pytest.mark.hazard("H-08"), pytest.mark.hazard("H-04")]

RECORD_PAGES = ["record-summary", "record-medications", "record-appointments", "record-teams", "record-coverage"]
NOTICE = "Currently in hospital:"


@pytest.fixture
def hospital(other_organisation):
    note_received(other_organisation, timezone.now() - datetime.timedelta(hours=2, minutes=1))
    other_organisation.refresh_from_db()
    return other_organisation


def admitted(patient, organisation, **fields):
    return factories.AppointmentFactory(
        patient=patient,
        source_organisation=organisation,
        **{
            "kind": "admission",
            "encounter_class": "IMP",
            "status": "in-progress",
            "ends_at": None,
            "service": "Acute Medical Unit",
            "location": "Ward 7",
            "effective_at": datetime.datetime(2026, 3, 31, 23, 30, tzinfo=datetime.UTC),
            **fields,
        },
    )


def banner(client, user, patient, name="record-summary"):
    client.force_login(user)
    response = client.get(reverse(name, args=[patient.pk]))
    assert response.status_code == 200
    body = response.content.decode()
    start = body.index('class="app-patient-banner"')
    return body[start : body.index("</section>", start)]


def test_every_record_page_says_the_patient_is_in_hospital_where_and_since_when(client, clinician, patient, hospital):
    admitted(patient, hospital)
    for name in RECORD_PAGES:
        shown = banner(client, clinician, patient, name)
        assert (
            f"{NOTICE}</strong> Acute Medical Unit, Ward 7 at {hospital.name}, since "
            '<time class="app-nowrap" datetime="2026-04-01T00:30:00+01:00">1 Apr 2026</time>.'
        ) in shown, name  # in London time: the evening of 31 March in UTC is 1 April there
        assert f"{hospital.name} — last received 2\xa0hours ago (" in shown, name


def test_an_admission_never_closed_says_how_old_its_news_is(client, clinician, patient, other_organisation):
    note_received(other_organisation, timezone.now() - datetime.timedelta(days=95))
    hospital = other_organisation
    admitted(patient, hospital, effective_at=timezone.now() - datetime.timedelta(days=100))
    assert "last received 3\xa0months ago" in banner(client, clinician, patient)


@pytest.mark.hazard("H-09")
def test_an_admission_with_no_date_says_so(client, clinician, patient, hospital):
    admitted(patient, hospital, effective_at=None)
    assert "at St Elsewhere NHS Foundation Trust, admission date not recorded." in banner(client, clinician, patient)


@pytest.mark.parametrize(
    "fields",
    [
        {"ends_at": datetime.datetime(2026, 4, 3, tzinfo=datetime.UTC)},  # discharged
        {"status": "attended"},
        {"status": "booked"},  # a planned admission
        {"kind": "attendance", "encounter_class": "EMER"},  # in the emergency department, not admitted
        {"kind": "appointment"},
        {"entered_in_error": True},
    ],
    ids=["discharged", "attended", "planned", "emergency-attendance", "appointment", "entered-in-error"],
)
def test_no_notice_for_what_is_not_an_open_admission(fields, client, clinician, patient, hospital):
    admitted(patient, hospital, **fields)
    assert NOTICE not in banner(client, clinician, patient)


@pytest.mark.hazard("H-02")
@pytest.mark.hazard("H-11")
def test_no_notice_from_what_the_viewer_may_not_see(client, clinician, patient, organisation, hospital):
    admitted(patient, hospital, sensitive=True)
    silent = factories.OrganisationFactory(name="Quiet Hospital", shares=[Category.CONDITIONS])
    admitted(patient, silent, service="Not shared ward")
    assert NOTICE not in banner(client, clinician, patient)
    own = admitted(patient, organisation, service="Community ward", sensitive=True)  # its own: seen
    assert "Community ward" in banner(client, clinician, patient)
    own.delete()
    admitted(patient, hospital, service="Shared ward")
    objection = optout.record_professional_objection(
        by=None, patient=patient, reason="", how_told="In clinic", region="NCL"
    )
    assert "Shared ward" in banner(client, clinician, patient)  # received: nothing changes yet
    optout.verify(by=None, objection=objection, identity_check="documents")
    optout.uphold(by=None, objection=objection)
    assert NOTICE not in banner(client, clinician, patient)  # opted out: other organisations' entries are not shown


@pytest.mark.hazard("H-15")
def test_no_notice_for_a_patient_who_has_died(client, clinician, patient, hospital):
    admitted(patient, hospital)
    patient.date_of_death = timezone.localdate()
    patient.save()
    shown = banner(client, clinician, patient)
    assert "Deceased" in shown and NOTICE not in shown


def test_two_open_admissions_are_both_shown_newest_first(client, clinician, patient, hospital, organisation):
    admitted(patient, hospital, service="Older ward", effective_at=timezone.now() - datetime.timedelta(days=40))
    admitted(patient, organisation, service="Newer ward", effective_at=timezone.now() - datetime.timedelta(days=1))
    shown = banner(client, clinician, patient)
    assert shown.count(NOTICE) == 2 and shown.index("Newer ward") < shown.index("Older ward")


def test_the_notice_costs_one_query_whatever_it_finds(clinician, patient, hospital):
    decision = decide(clinician, patient)
    decision.shared()  # the sharing agreements, read once per decision, before any section's query
    with CaptureQueriesContext(connection) as none_open:
        assert current_admissions(patient, decision) == []
    for _ in range(5):
        admitted(patient, hospital)
    with CaptureQueriesContext(connection) as five_open:
        found = current_admissions(patient, decision)
        assert [admission.source_organisation.name for admission in found] == [hospital.name] * 3  # a few at most
    assert len(none_open) == len(five_open) == 1


def test_the_summary_costs_the_same_queries_whatever_the_admissions(client, clinician, patient, hospital):
    def queries():
        """The page's queries, but for the session's (saved when it has changed, which is not this test's)."""
        with CaptureQueriesContext(connection) as captured:
            assert client.get(reverse("record-summary", args=[patient.pk])).status_code == 200
        return len(
            [query for query in captured if "django_session" not in query["sql"] and "SAVEPOINT" not in query["sql"]]
        )

    client.force_login(clinician)
    none = queries()
    admitted(patient, hospital)
    one = queries()
    for _ in range(3):
        admitted(patient, hospital)
    assert queries() == one == none  # the notice is one query on every page, whatever it finds
