"""Every record URL: allowed for the care team, refused for everyone else, and audited either way."""

import re
import uuid

import pytest
from django.urls import reverse

from audit.models import AccessBasis, AccessEvent, AccessOutcome
from patients.categories import Category
from sharing.access import Reason
from sharing.models import Involvement
from tests import factories
from tests.test_url_matrix import record_urls, sign_in_redirect

pytestmark = pytest.mark.django_db

# Outside the care team, or in it but not (or no longer) an active professional: the reason each is refused.
REFUSED = {
    "outsider": Reason.NO_RELATIONSHIP,
    "clinician_other_org": Reason.NO_RELATIONSHIP,
    "ig_officer": Reason.NO_RELATIONSHIP,
    "inactive_professional": Reason.INACTIVE,
    "professional_at_inactive_organisation": Reason.INACTIVE,
    "no_profile_user": Reason.NO_PROFESSIONAL,
}


@pytest.fixture
def all_urls(patient, full_record):
    return record_urls(patient)


def test_every_record_page_is_covered(patient, all_urls):
    """The list comes from the resolver: the pages a hand-kept list once missed are in it."""
    assert reverse("record-coverage", args=[patient.pk]) in all_urls
    assert reverse("record-objection", args=[patient.pk]) in all_urls
    for category in Category:
        assert reverse(f"record-{category.value}", args=[patient.pk]) in all_urls


def test_care_team_member_reads_every_page_and_each_view_is_audited_once(client, clinician, patient, all_urls):
    client.force_login(clinician)
    for url in all_urls:
        before = AccessEvent.objects.count()
        response = client.get(url)
        assert response.status_code == 200, url
        body = response.content.decode()
        # The banner: given name, family name in capitals, NHS number.
        assert "Ada TESTPERSON" in body and patient.nhs_number_display in body, url
        assert AccessEvent.objects.count() == before + 1, url
        (event,) = AccessEvent.objects.filter(request_id=response["X-Request-ID"])
        assert event.outcome == AccessOutcome.ALLOWED
        assert event.basis == AccessBasis.CARE_TEAM
        assert event.reason == ""
        assert event.user_id == clinician.pk
        assert event.patient_id == patient.pk
        assert event.path == url


def assert_nothing_of_the_patient(body, patient, url):
    assert patient.nhs_number not in body and patient.nhs_number_display not in body, url
    assert patient.full_name not in body, url
    # "TESTPERSON" in the banner, "Bernard Testperson" in the support network: no case of it may appear.
    assert patient.family_name.lower() not in body.lower(), url
    assert "Type 2 diabetes" not in body and "Penicillin" not in body, url


@pytest.mark.parametrize("actor", REFUSED)
def test_everyone_outside_the_care_team_is_refused_on_every_page(request, client, patient, all_urls, actor):
    user = request.getfixturevalue(actor)
    client.force_login(user)
    for url in all_urls:
        before = AccessEvent.objects.count()
        response = client.get(url)
        assert response.status_code == 403, url
        assert_nothing_of_the_patient(response.content.decode(), patient, url)
        assert AccessEvent.objects.count() == before + 1, url
        (event,) = AccessEvent.objects.filter(request_id=response["X-Request-ID"])
        assert (event.outcome, event.basis, event.reason) == (AccessOutcome.REFUSED, AccessBasis.NONE, REFUSED[actor])
        assert (event.user_id, event.patient_id, event.path) == (user.pk, patient.pk, url)


def test_refusals_are_audited(client, outsider, patient, all_urls):
    client.force_login(outsider)
    for url in all_urls:
        client.get(url)
    refused = AccessEvent.objects.filter(user_id=outsider.pk, outcome=AccessOutcome.REFUSED)
    assert refused.count() == len(all_urls)
    assert {event.patient_id for event in refused} == {patient.pk}
    assert {event.reason for event in refused} == {"no-care-relationship"}


@pytest.mark.parametrize("actor", ["anonymous", "deactivated"])
def test_no_signed_in_user_is_sent_to_sign_in(request, client, patient, all_urls, actor):
    """A deactivated account's session no longer authenticates: it is treated exactly like no session."""
    if actor != "anonymous":
        client.force_login(request.getfixturevalue(actor))
    for url in all_urls:
        response = client.get(url)
        assert (response.status_code, response["Location"]) == (302, sign_in_redirect(url)), url
    assert not AccessEvent.objects.exists()


def test_missing_patient_looks_exactly_like_a_refused_one(client, outsider, patient):
    client.force_login(outsider)
    refused = client.get(reverse("record-summary", args=[patient.pk]))
    missing = client.get(reverse("record-summary", args=[uuid.uuid4()]))
    assert refused.status_code == missing.status_code == 403

    def without_path(response):
        body = response.content.decode().replace(response.wsgi_request.path, "")
        return re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "", body)

    assert without_path(refused) == without_path(missing)


def test_ended_involvement_revokes_the_pages(client, clinician, patient):
    from sharing import actions

    client.force_login(clinician)
    url = reverse("record-summary", args=[patient.pk])
    assert client.get(url).status_code == 200
    actions.end_involvement(by=None, involvement=Involvement.objects.get(patient=patient))
    assert client.get(url).status_code == 403


def test_summary_shows_every_category_with_source_and_date(client, clinician, patient, full_record, other_organisation):
    client.force_login(clinician)
    body = client.get(reverse("record-summary", args=[patient.pk])).content.decode()
    for category in Category:
        assert category.label in body
    assert body.count(other_organisation.name) >= len(full_record)
    assert "Riverside practice team" in body  # involved team
    assert "Bernard Testperson" in body  # support network
    assert "not live" in body and "as of the last time it sent anything" in body


def test_sensitive_entry_from_another_organisation_is_withheld(client, clinician, patient, other_organisation):
    factories.ConditionFactory(patient=patient, source_organisation=other_organisation, name="Visible condition")
    factories.ConditionFactory(
        patient=patient, source_organisation=other_organisation, name="Secret condition", sensitive=True
    )
    client.force_login(clinician)
    body = client.get(reverse("record-conditions", args=[patient.pk])).content.decode()
    assert "Visible condition" in body
    assert "Secret condition" not in body


def test_category_page_is_paginated(client, clinician, patient, settings):
    settings.RECORD_PAGE_SIZE = 5
    for n in range(12):
        factories.AppointmentFactory(patient=patient, service=f"Clinic number {n:02d}")
    client.force_login(clinician)
    url = reverse("record-appointments", args=[patient.pk])
    first = client.get(url)
    assert len(first.context["page"].object_list) == 5
    third = client.get(url, {"page": 3})
    assert len(third.context["page"].object_list) == 2
    assert client.get(url, {"page": "nonsense"}).status_code == 200


def test_htmx_request_gets_the_fragment_only(client, clinician, patient, full_record):
    client.force_login(clinician)
    url = reverse("record-appointments", args=[patient.pk])
    fragment = client.get(url, headers={"HX-Request": "true"})
    assert fragment.status_code == 200
    assert "<html" not in fragment.content.decode()
    assert AccessEvent.objects.filter(page="record:appointments", outcome="allowed").count() == 1


def test_results_page_groups_by_test_with_latest_value_and_flag(client, clinician, patient, other_organisation):
    import datetime
    from decimal import Decimal

    for year, value in [(2021, "44"), (2022, "52"), (2023, "39")]:
        result = factories.ResultFactory(
            patient=patient,
            source_organisation=other_organisation,
            effective_at=datetime.datetime(year, 3, 1, 9, 0, tzinfo=datetime.UTC),
        )
        factories.ObservationFactory(result=result, value=Decimal(value), flag="" if value == "39" else "H")
    client.force_login(clinician)
    response = client.get(reverse("record-results", args=[patient.pk]))
    tests = response.context["tests"]
    assert len(tests) == 1
    assert tests[0].value == Decimal("39")
    assert tests[0].count == 3


def test_trend_page_draws_every_point_and_a_table(client, clinician, patient, other_organisation):
    import datetime
    from decimal import Decimal

    for year in range(2018, 2024):
        result = factories.ResultFactory(
            patient=patient,
            source_organisation=other_organisation,
            effective_at=datetime.datetime(year, 6, 1, 9, 0, tzinfo=datetime.UTC),
        )
        factories.ObservationFactory(result=result, value=Decimal(40 + year - 2018))
    client.force_login(clinician)
    response = client.get(reverse("record-result-trend", args=[patient.pk, "4548-4"]))
    assert response.status_code == 200
    body = response.content.decode()
    assert "<svg" in body and "<polyline" in body
    assert len(response.context["chart"].points) == 6
    assert body.count("<tr") >= 7  # header + 6 rows
    assert client.get(reverse("record-result-trend", args=[patient.pk, "no-such-test"])).status_code == 404


def _patient_with_results(care_team, organisation, n_results):
    from django.utils import timezone

    from patients.models import Observation, Result

    patient = factories.PatientFactory()
    factories.InvolvementFactory(patient=patient, care_team=care_team)
    now = timezone.now()
    results = Result.objects.bulk_create(
        Result(
            patient=patient,
            source_organisation=organisation,
            source_id=f"{patient.pk}-{n}",
            name="Full blood count",
            effective_at=now,
            source_updated_at=now,
        )
        for n in range(n_results)
    )
    Observation.objects.bulk_create(
        Observation(result=r, patient=patient, code=code, name=code, effective_at=r.effective_at)
        for r in results
        for code in ("718-7", "6690-2")
    )
    for model, entry_factory in factories.ENTRY_FACTORIES.items():
        if model is not Result:
            entry_factory.create_batch(3, patient=patient, source_organisation=organisation)
    return patient


def test_record_query_count_does_not_grow_with_the_record(client, clinician, care_team, other_organisation):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    small = _patient_with_results(care_team, other_organisation, 10)
    large = _patient_with_results(care_team, other_organisation, 1000)
    client.force_login(clinician)
    counts = {}
    for name in ("record-summary", "record-results"):
        for patient in (small, large):
            url = reverse(name, args=[patient.pk])
            client.get(url)  # warm per-process caches (content types, permissions)
            with CaptureQueriesContext(connection) as queries:
                assert client.get(url).status_code == 200
            counts[name, patient.nhs_number == large.nhs_number] = len(queries)
    assert counts["record-summary", False] == counts["record-summary", True]
    assert counts["record-results", False] == counts["record-results", True]
    # session, user, MFA, patient, profile, grant, objection, audit, support network, the sections' counts (one
    # UNION), 9 sections + the results' observations, current teams, the banner's demographics (22 today)
    assert counts["record-summary", True] <= 30


def test_summary_lists_current_teams_and_the_teams_page_also_past_ones(client, clinician, patient, organisation):
    from datetime import timedelta

    from django.utils import timezone

    past_team = factories.CareTeamFactory(organisation=organisation, name="Discharged district nursing team")
    past = factories.InvolvementFactory(patient=patient, care_team=past_team)
    Involvement.objects.filter(pk=past.pk).update(
        started_at=timezone.now() - timedelta(days=400), ended_at=timezone.now() - timedelta(days=30)
    )
    client.force_login(clinician)
    summary = client.get(reverse("record-summary", args=[patient.pk])).content.decode()
    assert "Riverside practice team" in summary
    assert "Discharged district nursing team" not in summary
    assert "Team members, and past teams" in summary
    teams = client.get(reverse("record-teams", args=[patient.pk])).content.decode()
    assert "Riverside practice team" in teams and "Discharged district nursing team" in teams
