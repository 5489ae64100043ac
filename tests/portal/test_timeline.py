"""The timeline: every category's entries merged newest first, through the one access decision, filtered by a GET
form that only ever narrows it; undated entries last and labelled, never given a date."""

import datetime
import re
from datetime import UTC

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from audit.models import AccessEvent, AccessOutcome
from patients.categories import Category
from sharing import timeline
from sharing.access import decide
from sharing.filters import Filters
from tests import factories
from tests.sharing.test_coverage import upheld_objection

pytestmark = pytest.mark.django_db


def at(year, month=1, day=1, hour=9):
    return datetime.datetime(year, month, day, hour, 0, tzinfo=UTC)


def url_of(patient):
    return reverse("record-timeline", args=[patient.pk])


def listed(response):
    """The page's rows as (category, what), in order."""
    return [(row.category, row.what) for group in response.context["groups"] for row in group.rows]


def whats(response):
    return [what for _, what in listed(response)]


@pytest.fixture
def signed_in(client, clinician):
    client.force_login(clinician)
    return client


@pytest.mark.hazard("H-03")
def test_each_view_writes_one_access_event_for_the_timeline(signed_in, clinician, patient, full_record):
    for headers in ({}, {"HX-Request": "true"}):
        before = AccessEvent.objects.count()
        response = signed_in.get(url_of(patient), {"category": "medications"}, headers=headers)
        assert response.status_code == 200
        (event,) = AccessEvent.objects.filter(request_id=response["X-Request-ID"])
        assert AccessEvent.objects.count() == before + 1
        assert (event.page, event.outcome, event.user_id, event.patient_id) == (
            "record:timeline",
            AccessOutcome.ALLOWED,
            clinician.pk,
            patient.pk,
        )
    assert "<html" not in response.content.decode()  # htmx gets the list alone


@pytest.mark.hazard("H-03")
def test_outside_the_care_team_the_timeline_is_refused_and_audited(client, outsider, patient, full_record):
    client.force_login(outsider)
    response = client.get(url_of(patient))
    assert response.status_code == 403
    assert "Penicillin" not in response.content.decode()
    (event,) = AccessEvent.objects.filter(request_id=response["X-Request-ID"])
    assert (event.page, event.outcome) == ("record:timeline", AccessOutcome.REFUSED)


def test_every_category_merged_newest_first(signed_in, patient, other_organisation):
    source = {"patient": patient, "source_organisation": other_organisation}
    factories.MedicationFactory(**source, name="Ramipril 5mg capsules", effective_at=at(2021))
    factories.LetterFactory(**source, title="Clinic letter, cardiology", effective_at=at(2024))
    factories.AllergyFactory(**source, substance="Latex", effective_at=at(2019))
    factories.ConditionFactory(**source, name="Hypertension", effective_at=at(2023))
    response = signed_in.get(url_of(patient))
    assert listed(response) == [
        (Category.LETTERS, "Clinic letter, cardiology"),
        (Category.CONDITIONS, "Hypertension"),
        (Category.MEDICATIONS, "Ramipril 5mg capsules"),
        (Category.ALLERGIES, "Latex"),
    ]
    assert [group.title for group in response.context["groups"]] == ["2024", "2023", "2021", "2019"]
    body = response.content.decode()
    assert body.index("Clinic letter, cardiology") < body.index("Hypertension") < body.index("Latex")
    assert other_organisation.name in body


def test_every_entry_category_is_on_the_timeline(signed_in, patient, full_record):
    response = signed_in.get(url_of(patient))
    assert {category for category, _ in listed(response)} == set(timeline.categories())
    assert set(timeline.categories()) == {c for c in Category if c != Category.TEAMS}


@pytest.mark.hazard("H-09")
def test_undated_entries_come_last_under_date_not_recorded_and_are_never_given_a_date(
    signed_in, patient, other_organisation
):
    source = {"patient": patient, "source_organisation": other_organisation}
    factories.ConditionFactory(**source, name="Hip replacement", effective_at=None)
    factories.AllergyFactory(**source, substance="Peanut", effective_at=None)
    factories.MedicationFactory(**source, name="Amlodipine 5mg tablets", effective_at=at(2015))
    # No clinical date, but a date its source recorded it: placed by that, and shown as recorded, not as onset.
    factories.ConditionFactory(**source, name="Asthma", effective_at=None, recorded_at=at(2020, 3, 3))
    response = signed_in.get(url_of(patient))
    groups = response.context["groups"]
    assert [(group.title, group.undated) for group in groups] == [
        ("2020", False),
        ("2015", False),
        ("Date not recorded", True),
    ]
    assert [row.what for row in groups[0].rows] == ["Asthma"]
    assert {row.what for row in groups[-1].rows} == {"Hip replacement", "Peanut"}
    body = response.content.decode()
    heading = body.index(">Date not recorded</h2>")
    assert body.index("Amlodipine") < heading < body.index("Hip replacement")
    row = body[body.index("Hip replacement") - 1500 : body.index("Hip replacement")]
    row = row[row.rindex("<tr") :]
    assert "Date not recorded" in row and "Received" in row
    asthma = body[body.index(">2020</h2>") : body.index("Asthma")]
    assert "Date not recorded" in asthma and "Recorded <time" in asthma and "3 Mar 2020" in asthma


@pytest.mark.hazard("H-11")
@pytest.mark.hazard("H-02")
def test_sensitive_and_withdrawn_entries_never_appear(signed_in, patient, organisation, other_organisation):
    source = {"patient": patient, "source_organisation": other_organisation}
    factories.ConditionFactory(**source, name="Shared condition")
    factories.ConditionFactory(**source, name="Sensitive condition", sensitive=True)
    factories.LetterFactory(**source, title="Withdrawn letter", entered_in_error=True)
    factories.LetterFactory(
        patient=patient, source_organisation=organisation, title="Own withdrawn", entered_in_error=True
    )
    silent = factories.OrganisationFactory(name="Silent Trust", shares=[])
    factories.ConditionFactory(patient=patient, source_organisation=silent, name="Unshared condition")
    response = signed_in.get(url_of(patient))
    assert whats(response) == ["Shared condition"]
    body = response.content.decode()
    for hidden in ("Sensitive condition", "Withdrawn letter", "Own withdrawn", "Unshared condition", "Silent Trust"):
        assert hidden not in body
    # Nor can a filter name them into view.
    assert response.context["form"].fields["organisation"].choices == [
        ("", "All organisations"),
        (other_organisation.ods_code, other_organisation.name),
    ]


@pytest.mark.hazard("H-02")
def test_an_opted_out_patient_shows_own_organisation_entries_only(signed_in, patient, organisation, other_organisation):
    factories.ConditionFactory(patient=patient, source_organisation=organisation, name="Own condition")
    factories.ConditionFactory(patient=patient, source_organisation=other_organisation, name="Their condition")
    upheld_objection(patient, factories.UserFactory(is_staff=True))
    response = signed_in.get(url_of(patient))
    assert whats(response) == ["Own condition"]
    body = response.content.decode()
    assert "Their condition" not in body and other_organisation.name not in body
    response = signed_in.get(url_of(patient), {"organisation": other_organisation.ods_code})
    assert response.context["form"].errors["organisation"] and whats(response) == []
    assert "Their condition" not in response.content.decode()


@pytest.mark.hazard("H-03")
def test_filters_narrow_and_never_widen(signed_in, patient, organisation, other_organisation):
    third = factories.OrganisationFactory(name="Northside Community Trust")
    silent = factories.OrganisationFactory(name="Silent Trust", shares=[])
    factories.ConditionFactory(patient=patient, source_organisation=other_organisation, name="From St Elsewhere")
    factories.MedicationFactory(patient=patient, source_organisation=third, name="From Northside")
    factories.LetterFactory(patient=patient, source_organisation=organisation, title="From our practice")
    factories.ConditionFactory(patient=patient, source_organisation=silent, name="From Silent")
    everything = whats(signed_in.get(url_of(patient)))
    assert sorted(everything) == ["From Northside", "From St Elsewhere", "From our practice"]

    by_organisation = signed_in.get(url_of(patient), {"organisation": third.ods_code})
    assert whats(by_organisation) == ["From Northside"]
    by_category = signed_in.get(url_of(patient), {"category": ["conditions", "letters"]})
    assert sorted(whats(by_category)) == ["From St Elsewhere", "From our practice"]
    both = signed_in.get(url_of(patient), {"category": "conditions", "organisation": third.ods_code})
    assert whats(both) == []
    assert "No entries match these filters" in both.content.decode()

    # An organisation that shares nothing with the viewer is not offered, and naming it shows nothing of it.
    options = [value for value, _ in by_category.context["form"].fields["organisation"].choices]
    assert silent.ods_code not in options
    refused = signed_in.get(url_of(patient), {"organisation": silent.ods_code})
    assert refused.status_code == 200
    assert refused.context["form"].errors["organisation"] == ["Select a source organisation from the list"]
    assert whats(refused) == []
    assert "From Silent" not in refused.content.decode()
    assert "Silent Trust" not in refused.content.decode()


@pytest.mark.hazard("H-09")
def test_the_date_range_is_by_london_days_and_leaves_undated_entries_out_saying_so(
    signed_in, patient, other_organisation
):
    source = {"patient": patient, "source_organisation": other_organisation}
    # 23:30 UTC on 30 June is 00:30 on 1 July in London (BST): in July's range, not June's.
    midnight = datetime.datetime(2024, 6, 30, 23, 30, tzinfo=UTC)
    factories.AppointmentFactory(**source, service="Midnight clinic", effective_at=midnight)
    factories.AppointmentFactory(**source, service="June clinic", effective_at=at(2024, 6, 10))
    factories.AppointmentFactory(**source, service="August clinic", effective_at=at(2024, 8, 2))
    factories.AppointmentFactory(**source, service="Undated clinic", effective_at=None)
    july = signed_in.get(url_of(patient), {"date_from": "2024-07-01", "date_to": "2024-07-31"})
    assert whats(july) == ["Midnight clinic"]
    assert "Entries with no date recorded are not shown when you filter by date" in july.content.decode()
    june = signed_in.get(url_of(patient), {"date_to": "30/06/2024"})  # typed, as without a date picker
    assert whats(june) == ["June clinic"]
    since_july = signed_in.get(url_of(patient), {"date_from": "2024-07-01"})
    assert whats(since_july) == ["August clinic", "Midnight clinic"]
    assert "Undated clinic" in whats(signed_in.get(url_of(patient)))


def test_wrong_filters_are_field_errors_never_a_500(signed_in, patient, full_record):
    for query, field in [
        ({"date_from": "31/02/2024"}, "date_from"),
        ({"date_from": "2024-05-01", "date_to": "2024-04-01"}, "date_to"),
        ({"date_from": "0001-01-01"}, "date_from"),
        ({"date_to": "9999-12-31"}, "date_to"),
        ({"category": "nonsense"}, "category"),
        ({"organisation": "X99999"}, "organisation"),
        ({"organisation": "'; DROP TABLE patients_patient; --"}, "organisation"),
    ]:
        response = signed_in.get(url_of(patient), query)
        assert response.status_code == 200, query
        assert field in response.context["form"].errors, query
        body = response.content.decode()
        assert "There is a problem" in body and f'href="#id_{field}"' in body, query
        assert whats(response) == [], query


def test_pagination_keeps_the_filters(signed_in, patient, other_organisation, settings):
    settings.RECORD_PAGE_SIZE = 5
    source = {"patient": patient, "source_organisation": other_organisation}
    for n in range(12):
        factories.ConditionFactory(**source, name=f"Condition {n:02d}", effective_at=at(2010 + n))
        factories.MedicationFactory(**source, name=f"Medication {n:02d}", effective_at=at(2010 + n))
    first = signed_in.get(url_of(patient), {"category": "conditions", "date_from": "2012-01-01"})
    assert first.context["page"].paginator.count == 10
    body = first.content.decode()
    next_link = re.search(r'href="(\?[^"]*page=2[^"]*)" rel="next"', body).group(1).replace("&amp;", "&")
    assert "category=conditions" in next_link and "date_from=2012-01-01" in next_link
    second = signed_in.get(url_of(patient) + next_link)
    assert whats(second) == [f"Condition {n:02d}" for n in range(6, 1, -1)]
    assert 'hx-get="?' in second.content.decode()  # htmx fetches the same filtered URL


def test_the_timeline_functions_go_through_the_access_decision(clinician, outsider, patient, other_organisation):
    factories.ConditionFactory(patient=patient, source_organisation=other_organisation)
    allowed, refused = decide(clinician, patient), decide(outsider, patient)
    assert len(list(timeline.keys(patient, allowed, Filters()))) == 1
    assert list(timeline.keys(patient, refused, Filters())) == []
    assert timeline.organisations(patient, refused) == []
    assert timeline.rows([(0, at(2020), 3, 1)], patient, refused) == []


def _record_of_size(patient, sources, n):
    """`n` entries of every category, one of each a year: any page of 25 holds every category."""
    for entry_factory in factories.ENTRY_FACTORIES.values():
        for i in range(n):
            entry_factory(patient=patient, source_organisation=sources[i % len(sources)], effective_at=at(2000 + i))


def test_query_count_does_not_grow_with_the_record(client, clinician, care_team, other_organisation):
    third = factories.OrganisationFactory(name="Northside Community Trust")
    counts = []
    client.force_login(clinician)
    for n in (4, 40):
        patient = factories.PatientFactory()
        factories.InvolvementFactory(patient=patient, care_team=care_team)
        _record_of_size(patient, [other_organisation, third, care_team.organisation], n)
        client.get(url_of(patient))  # warm per-process caches
        with CaptureQueriesContext(connection) as queries:
            response = client.get(url_of(patient), {"date_from": "2001-01-01", "organisation": third.ods_code})
        assert response.status_code == 200 and listed(response)
        counts.append(len(queries))
    assert counts[0] == counts[1]


def test_a_page_of_the_timeline_costs_a_fixed_number_of_queries(
    client, clinician, patient, other_organisation, django_assert_max_num_queries
):
    for entry_factory in factories.ENTRY_FACTORIES.values():
        for year in range(2000, 2030):
            entry_factory(patient=patient, source_organisation=other_organisation, effective_at=at(year))
    client.force_login(clinician)
    client.get(url_of(patient))
    # session, user, MFA, patient, profile, grant, objection, audit, the banner's notes and admissions, the
    # filter's organisations, the count, the page's keys, and one per category on the page (11 at most).
    with django_assert_max_num_queries(28):  # 24 today
        response = client.get(url_of(patient))
    assert len(listed(response)) == 25
