"""Filters on every category page: date range, source organisation, status where the model has one, and text in
letters and care plans. They only ever narrow what the access decision shows; a value the form cannot read is a
field error on the page, never a 500 (fuzzed with Hypothesis)."""

import datetime
import re
from datetime import UTC
from urllib.parse import quote_from_bytes

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from audit.models import AccessEvent
from patients.categories import Category, entry_model
from patients.models import Allergy, Appointment, Condition, Medication
from sharing import filters as record_filters
from sharing.models import Involvement
from tests import factories

pytestmark = pytest.mark.django_db

ENTRY_CATEGORIES = [c for c in Category if c != Category.TEAMS]


def at(year, month=1, day=1):
    return datetime.datetime(year, month, day, 9, 0, tzinfo=UTC)


def url_of(patient, category):
    return reverse(f"record-{Category(category).value}", args=[patient.pk])


def listed(response):
    return list(response.context["page"].object_list)


@pytest.fixture
def signed_in(client, clinician):
    client.force_login(clinician)
    return client


@pytest.mark.parametrize("category", ENTRY_CATEGORIES, ids=str)
def test_every_category_page_filters_by_date_and_organisation(signed_in, patient, other_organisation, category):
    third = factories.OrganisationFactory(name="Northside Community Trust")
    make = factories.ENTRY_FACTORIES[entry_model(category)]
    if category == Category.RESULTS:
        make = lambda **kwargs: factories.ResultFactory(kind="report", **kwargs)  # noqa: E731 - the page lists reports
    old = make(patient=patient, source_organisation=other_organisation, effective_at=at(2019, 5, 1))
    new = make(patient=patient, source_organisation=other_organisation, effective_at=at(2024, 5, 1))
    theirs = make(patient=patient, source_organisation=third, effective_at=at(2024, 6, 1))
    undated = make(patient=patient, source_organisation=third, effective_at=None)
    url = url_of(patient, category)
    assert listed(signed_in.get(url)) == [theirs, new, old, undated]
    assert listed(signed_in.get(url, {"date_from": "2020-01-01"})) == [theirs, new]
    assert listed(signed_in.get(url, {"date_to": "2024-05-31"})) == [new, old]
    assert listed(signed_in.get(url, {"organisation": third.ods_code})) == [theirs, undated]
    both = signed_in.get(url, {"organisation": other_organisation.ods_code, "date_from": "2020-01-01"})
    assert listed(both) == [new]
    assert "Entries with no date recorded are not shown when you filter by date" in both.content.decode()
    assert AccessEvent.objects.filter(page=f"record:{category.value}").count() == 5


@pytest.mark.hazard("H-03")
@pytest.mark.hazard("H-11")
def test_a_filter_never_widens_what_the_viewer_may_see(signed_in, patient, other_organisation):
    silent = factories.OrganisationFactory(name="Silent Trust", shares=[])
    clinic = factories.OrganisationFactory(name="Riverside Sexual Health Clinic")
    factories.ConditionFactory(patient=patient, source_organisation=other_organisation, name="Shared condition")
    factories.ConditionFactory(patient=patient, source_organisation=silent, name="Unshared condition")
    factories.ConditionFactory(patient=patient, source_organisation=clinic, name="Sensitive", sensitive=True)
    factories.ConditionFactory(
        patient=patient, source_organisation=other_organisation, name="Withdrawn", entered_in_error=True
    )
    url = url_of(patient, Category.CONDITIONS)
    page = signed_in.get(url)
    options = page.context["filter_form"].fields["organisation"].choices
    assert options == [("", "All organisations"), (other_organisation.ods_code, other_organisation.name)]
    for organisation in (silent, clinic):
        response = signed_in.get(url, {"organisation": organisation.ods_code})
        assert response.status_code == 200
        assert response.context["filter_form"].errors["organisation"]
        assert listed(response) == []
        body = response.content.decode()
        assert "Unshared condition" not in body and "Sensitive" not in body and organisation.name not in body
    # The filter functions alone narrow too: an organisation id the form would refuse still selects nothing more.
    for organisation in (silent, clinic):
        response = signed_in.get(url)
        entries = response.context["page"].paginator.object_list
        narrowed = record_filters.narrow(
            entries, Category.CONDITIONS, record_filters.Filters(organisation_id=organisation.pk)
        )
        assert list(narrowed) == []
    for status in ("active", "resolved", "remission"):
        assert "Withdrawn" not in [c.name for c in listed(signed_in.get(url, {"status": status}))]


@pytest.mark.hazard("H-07")
def test_medications_current_ended_and_events(signed_in, patient, other_organisation):
    source = {"patient": patient, "source_organisation": other_organisation}
    current = factories.MedicationFactory(**source, name="Current one")
    stopped = factories.MedicationFactory(**source, name="Stopped one", status=Medication.Status.STOPPED)
    completed = factories.MedicationFactory(**source, name="Completed one", status=Medication.Status.COMPLETED)
    dispensed = factories.MedicationFactory(**source, name="Dispensed one", event=Medication.Event.DISPENSED)
    url = url_of(patient, Category.MEDICATIONS)
    by_status = {
        status: {m.name for m in listed(signed_in.get(url, {"status": status}))}
        for status in ("current", "ended", "events")
    }
    assert by_status == {
        "current": {current.name},
        "ended": {stopped.name, completed.name},
        "events": {dispensed.name},
    }


@pytest.mark.hazard("H-07")
def test_a_current_allergy_includes_one_whose_status_was_not_recorded(signed_in, patient, other_organisation):
    source = {"patient": patient, "source_organisation": other_organisation}
    factories.AllergyFactory(**source, substance="Active", clinical_status=Allergy.ClinicalStatus.ACTIVE)
    factories.AllergyFactory(**source, substance="Not said", clinical_status=Allergy.ClinicalStatus.UNKNOWN)
    factories.AllergyFactory(**source, substance="Resolved", clinical_status=Allergy.ClinicalStatus.RESOLVED)
    factories.AllergyFactory(**source, substance="Inactive", clinical_status=Allergy.ClinicalStatus.INACTIVE)
    url = url_of(patient, Category.ALLERGIES)
    assert {a.substance for a in listed(signed_in.get(url, {"status": "current"}))} == {"Active", "Not said"}
    assert {a.substance for a in listed(signed_in.get(url, {"status": "resolved"}))} == {"Resolved"}
    assert {a.substance for a in listed(signed_in.get(url, {"status": "inactive"}))} == {"Inactive"}


def test_conditions_alerts_and_appointments_by_status(signed_in, patient, other_organisation):
    source = {"patient": patient, "source_organisation": other_organisation}
    factories.ConditionFactory(**source, name="Active problem")
    factories.ConditionFactory(**source, name="Resolved problem", clinical_status=Condition.Status.RESOLVED)
    factories.AlertFactory(**source, text="Live alert")
    factories.AlertFactory(**source, text="Old alert", active=False)
    factories.AppointmentFactory(**source, service="Booked clinic")
    factories.AppointmentFactory(**source, service="Missed clinic", status=Appointment.Status.DID_NOT_ATTEND)
    conditions = url_of(patient, Category.CONDITIONS)
    assert [c.name for c in listed(signed_in.get(conditions, {"status": "active"}))] == ["Active problem"]
    assert [c.name for c in listed(signed_in.get(conditions, {"status": "resolved"}))] == ["Resolved problem"]
    alerts = url_of(patient, Category.ALERTS)
    assert [a.text for a in listed(signed_in.get(alerts, {"status": "active"}))] == ["Live alert"]
    assert [a.text for a in listed(signed_in.get(alerts, {"status": "ended"}))] == ["Old alert"]
    appointments = url_of(patient, Category.APPOINTMENTS)
    assert [a.service for a in listed(signed_in.get(appointments, {"status": "noshow"}))] == ["Missed clinic"]


@pytest.mark.parametrize("category", [Category.LETTERS, Category.EVENTS, Category.RESULTS], ids=str)
def test_no_status_filter_where_the_model_has_none(signed_in, patient, full_record, category):
    response = signed_in.get(url_of(patient, category), {"status": "active"})
    assert "status" not in response.context["filter_form"].fields
    assert 'name="status"' not in response.content.decode()
    assert len(listed(response)) == 1  # not a filter here: the list is whole


def test_an_unknown_status_is_a_field_error(signed_in, patient, full_record):
    response = signed_in.get(url_of(patient, Category.MEDICATIONS), {"status": "everything"})
    assert response.status_code == 200
    assert response.context["filter_form"].errors["status"] == ["Select a status from the list"]
    assert listed(response) == []


def test_text_search_in_letters_and_care_plans_title_and_text_any_case(signed_in, patient, other_organisation):
    source = {"patient": patient, "source_organisation": other_organisation}
    factories.LetterFactory(**source, title="Cardiology clinic letter", body="Echo shows mild LV impairment.")
    factories.LetterFactory(**source, title="Discharge summary", body="Admitted with a FALL at home; no fracture.")
    factories.CarePlanFactory(**source, title="Falls prevention plan", description="Walking frame; home visits.")
    factories.CarePlanFactory(**source, title="Diabetes care plan", description="Annual review of feet and eyes.")
    letters = url_of(patient, Category.LETTERS)
    care_plans = url_of(patient, Category.CARE_PLANS)
    assert [e.title for e in listed(signed_in.get(letters, {"q": "cardiology"}))] == ["Cardiology clinic letter"]
    assert [e.title for e in listed(signed_in.get(letters, {"q": "fall"}))] == ["Discharge summary"]
    assert [e.title for e in listed(signed_in.get(letters, {"q": "  ECHO   lv "}))] == ["Cardiology clinic letter"]
    assert listed(signed_in.get(letters, {"q": "echo fracture"})) == []  # every word must be found
    assert [e.title for e in listed(signed_in.get(care_plans, {"q": "FALLS"}))] == ["Falls prevention plan"]
    assert [e.title for e in listed(signed_in.get(care_plans, {"q": "Feet"}))] == ["Diabetes care plan"]
    assert listed(signed_in.get(letters, {"q": "100%"})) == []  # LIKE's wildcards are only characters
    body = signed_in.get(letters, {"q": "nothing like it"}).content.decode()
    assert "No entries match these filters" in body


def test_text_search_only_where_entries_are_text(signed_in, patient, full_record):
    response = signed_in.get(url_of(patient, Category.CONDITIONS), {"q": "nothing"})
    assert "q" not in response.context["filter_form"].fields
    assert len(listed(response)) == 1
    assert record_filters.searches_text(Category.LETTERS) and record_filters.searches_text(Category.CARE_PLANS)


def test_the_teams_page_filters_current_and_ended_involvements(signed_in, patient, organisation, care_team):
    from django.utils import timezone

    past_team = factories.CareTeamFactory(organisation=organisation, name="Discharged district nursing team")
    past = factories.InvolvementFactory(patient=patient, care_team=past_team)
    Involvement.objects.filter(pk=past.pk).update(
        started_at=timezone.now() - datetime.timedelta(days=400), ended_at=timezone.now() - datetime.timedelta(days=30)
    )
    url = url_of(patient, Category.TEAMS)
    assert [i.care_team for i in listed(signed_in.get(url, {"status": "current"}))] == [care_team]
    assert [i.care_team for i in listed(signed_in.get(url, {"status": "ended"}))] == [past_team]
    long_ago = (timezone.now() - datetime.timedelta(days=380)).date().isoformat()
    assert [i.care_team for i in listed(signed_in.get(url, {"date_to": long_ago}))] == [past_team]


def test_pagination_keeps_the_filters_on_a_category_page(signed_in, patient, other_organisation, settings):
    settings.RECORD_PAGE_SIZE = 5
    third = factories.OrganisationFactory(name="Northside Community Trust")
    for n in range(12):
        factories.AppointmentFactory(
            patient=patient, source_organisation=third, service=f"Ours {n:02d}", effective_at=at(2000 + n)
        )
        factories.AppointmentFactory(
            patient=patient,
            source_organisation=other_organisation,
            service=f"Theirs {n:02d}",
            effective_at=at(2000 + n),
        )
    url = url_of(patient, Category.APPOINTMENTS)
    first = signed_in.get(url, {"organisation": third.ods_code})
    body = first.content.decode()
    next_link = re.search(r'href="(\?[^"]*page=2[^"]*)" rel="next"', body).group(1).replace("&amp;", "&")
    assert f"organisation={third.ods_code}" in next_link
    third_page = signed_in.get(url + next_link.replace("page=2", "page=3"))
    assert [a.service for a in listed(third_page)] == ["Ours 01", "Ours 00"]


def test_htmx_filter_submissions_get_the_list_alone(signed_in, patient, full_record, other_organisation):
    url = url_of(patient, Category.MEDICATIONS)
    response = signed_in.get(url, {"organisation": other_organisation.ods_code}, headers={"HX-Request": "true"})
    body = response.content.decode()
    assert response.status_code == 200 and "<html" not in body and 'id="record-list"' in body
    assert "Metformin" in body
    wrong = signed_in.get(url, {"date_from": "not a date"}, headers={"HX-Request": "true"})
    assert "There is a problem" in wrong.content.decode() and "Metformin" not in wrong.content.decode()


def test_the_filters_form_works_without_javascript(signed_in, patient, full_record):
    body = signed_in.get(url_of(patient, Category.LETTERS)).content.decode()
    start = body.index('aria-label="Filter this list"')
    form = body[body.rindex("<form", 0, start) : body.index("</form>", start)]
    assert form.startswith('<form method="get"')
    assert f'action="{url_of(patient, Category.LETTERS)}"' in form
    for name in ("date_from", "date_to", "organisation", "q"):
        assert f'name="{name}"' in form
    assert '<button class="nhsuk-button nhsuk-button--secondary" type="submit"' in form
    assert 'hx-target="#record-list"' in form


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"date_from": "2024-13-01"}, "date_from"),
        ({"date_to": "yesterday"}, "date_to"),
        ({"date_from": "2024-06-02", "date_to": "2024-06-01"}, "date_to"),
        ({"date_from": "1066-10-14"}, "date_from"),
        ({"organisation": "X99999"}, "organisation"),
        ({"status": "active' OR 1=1"}, "status"),
    ],
)
def test_wrong_values_are_field_errors_on_the_page(signed_in, patient, full_record, query, field):
    response = signed_in.get(url_of(patient, Category.CONDITIONS), query)
    assert response.status_code == 200
    assert field in response.context["filter_form"].errors
    body = response.content.decode()
    assert "There is a problem" in body and f'href="#id_{field}"' in body
    assert "nhsuk-form-group--error" in body


def test_a_filtered_results_page_costs_no_more_queries_for_a_bigger_record(
    client, clinician, care_team, other_organisation
):
    from tests.portal.test_record_views import _patient_with_results

    client.force_login(clinician)
    counts = []
    for n in (10, 300):
        patient = _patient_with_results(care_team, other_organisation, n)
        url = url_of(patient, Category.RESULTS)
        query = {"organisation": other_organisation.ods_code, "date_from": "2000-01-01"}
        client.get(url, query)
        with CaptureQueriesContext(connection) as queries:
            assert client.get(url, query).status_code == 200
        counts.append(len(queries))
    assert counts[0] == counts[1]


# Fuzzing: whatever the query string, a page (200, field errors where a value is wrong), or a 400 for a NUL
# (carerecord.middleware.RejectNulMiddleware refuses those before any view); never a 500.
FIELDS = ["date_from", "date_to", "organisation", "status", "q", "category", "page"]
TRICKY = st.sampled_from(
    [
        "",
        "2024-02-30",
        "0001-01-01",
        "9999-12-31",
        "31/12/9999",
        "2024-1-1",
        "١٢/٣/٢٠٢٤",
        "%",
        "_",
        "\\",
        "'",
        "active",
        "current",
        "letters",
        "T00001",
        "-1",
        "99999999999999999999",
        "\x00",
        "é" * 300,
    ]
)
VALUES = st.one_of(TRICKY, st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=40))
QUERIES = st.dictionaries(st.sampled_from(FIELDS), st.one_of(VALUES, st.lists(VALUES, max_size=3)), max_size=6)
FUZZ = settings(
    max_examples=60,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _expected_status(query_string: str) -> int:
    return 400 if "%00" in query_string or "\x00" in query_string else 200


@FUZZ
@given(query=QUERIES, category=st.sampled_from([*Category, "timeline"]))
def test_fuzzed_filter_values_never_give_a_500(signed_in, patient, full_record, query, category):
    from urllib.parse import urlencode

    url = reverse("record-timeline", args=[patient.pk]) if category == "timeline" else url_of(patient, category)
    query_string = urlencode(query, doseq=True)
    response = signed_in.get(url, QUERY_STRING=query_string)
    assert response.status_code == _expected_status(query_string), (url, query)


@FUZZ
@given(raw=st.binary(max_size=80), category=st.sampled_from([Category.LETTERS, Category.MEDICATIONS, "timeline"]))
def test_fuzzed_raw_query_strings_never_give_a_500(signed_in, patient, full_record, raw, category):
    url = reverse("record-timeline", args=[patient.pk]) if category == "timeline" else url_of(patient, category)
    query_string = quote_from_bytes(raw, safe="=&")
    response = signed_in.get(url, QUERY_STRING=query_string)
    assert response.status_code == _expected_status(query_string), (url, raw)
