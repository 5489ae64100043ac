"""A FHIR request with a token takes the lean path (issue 19): straight to its view past the page middleware,
the token and its professional in one query, the patient and what the decision reads in another, the audit row
the third. Nothing of the decision is kept between requests: the next request after an involvement ends, an
objection is upheld, an agreement stops sharing, a token is revoked or a professional is made inactive refuses or
narrows at once."""

import datetime
import json

import pytest
from django.utils import timezone

from audit.models import AccessEvent
from directory.actions import create_api_token, deactivate_professional, revoke_api_token
from directory.models import ApiToken, Region
from optout import actions as optout_actions
from patients.categories import Category
from sharing.actions import end_involvement, set_sharing
from sharing.models import Involvement
from tests import factories

pytestmark = pytest.mark.django_db


def ids(response) -> set[str]:
    return {entry["resource"]["id"] for entry in json.loads(response.content).get("entry", [])}


def test_a_token_request_skips_the_page_middleware_and_keeps_the_api_headers(api, reader_token, patient):
    response = api.get(f"/fhir/Patient/{patient.pk}", token=reader_token)
    assert response.status_code == 200
    assert "Set-Cookie" not in response and "Cookie" not in response.get("Vary", "")  # no session touched
    assert response["Content-Security-Policy"] == "default-src 'none'; frame-ancestors 'none'; sandbox"
    assert response["X-Frame-Options"] == "DENY"
    assert "no-store" in response["Cache-Control"] and len(response["X-Request-ID"]) == 32
    [event] = AccessEvent.objects.all()
    assert event.request_id == response["X-Request-ID"]


def test_a_session_request_to_the_api_still_takes_the_page_stack(client, clinician, patient):
    client.force_login(clinician)
    response = client.get(f"/fhir/Patient/{patient.pk}")
    assert response.status_code == 200
    assert "default-src 'none'" not in response["Content-Security-Policy"]  # the pages' own policy (django-csp)


def test_an_unknown_api_path_with_a_token_is_a_404_not_an_error(api, reader_token):
    assert api.get("/fhir/Patient/a/b/c/d", token=reader_token).status_code == 404


@pytest.mark.hazard("H-03")
def test_a_patient_read_costs_three_queries_once_the_token_was_used_this_minute(
    api, reader_token, patient, django_assert_num_queries
):
    api.get(f"/fhir/Patient/{patient.pk}", token=reader_token)  # first use: writes last_used_at
    # the token with its professional and organisation; the patient with the decision's facts; the AccessEvent
    with django_assert_num_queries(3):
        response = api.get(f"/fhir/Patient/{patient.pk}", token=reader_token)
    assert response.status_code == 200
    assert AccessEvent.objects.filter(outcome="allowed").count() == 2


def test_last_used_is_written_at_most_once_a_minute(api, reader_token, patient):
    api.get(f"/fhir/Patient/{patient.pk}", token=reader_token)
    token = ApiToken.objects.get(user__isnull=False)
    first = token.last_used_at
    assert first is not None
    api.get(f"/fhir/Patient/{patient.pk}", token=reader_token)
    token.refresh_from_db()
    assert token.last_used_at == first
    ApiToken.objects.filter(pk=token.pk).update(last_used_at=first - datetime.timedelta(seconds=61))
    api.get(f"/fhir/Patient/{patient.pk}", token=reader_token)
    token.refresh_from_db()
    assert token.last_used_at > first


@pytest.mark.hazard("H-03")
def test_the_next_request_after_the_involvement_ends_is_refused(api, reader_token, patient, care_team):
    assert api.get(f"/fhir/Patient/{patient.pk}", token=reader_token).status_code == 200
    end_involvement(by=None, involvement=Involvement.objects.get(patient=patient, care_team=care_team))
    assert api.get(f"/fhir/Patient/{patient.pk}", token=reader_token).status_code == 403
    assert list(AccessEvent.objects.order_by("pk").values_list("outcome", flat=True)) == ["allowed", "refused"]


@pytest.mark.hazard("H-03")
def test_the_next_request_after_the_token_is_revoked_or_the_professional_made_inactive_is_refused(
    api, clinician, patient
):
    token, secret = create_api_token(by=None, name="viewer", user=clinician)
    assert api.get(f"/fhir/Patient/{patient.pk}", token=secret).status_code == 200
    revoke_api_token(by=None, token=token)
    assert api.get(f"/fhir/Patient/{patient.pk}", token=secret).status_code == 401
    _, secret = create_api_token(by=None, name="viewer again", user=clinician)
    assert api.get(f"/fhir/Patient/{patient.pk}", token=secret).status_code == 200
    deactivate_professional(by=None, professional=clinician.professional)  # ends their tokens too
    assert api.get(f"/fhir/Patient/{patient.pk}", token=secret).status_code == 401
    assert not ApiToken.objects.filter(user=clinician, revoked_at=None).exists()


@pytest.mark.hazard("H-03")
def test_the_next_request_after_the_organisation_is_made_inactive_is_refused(api, reader_token, patient, organisation):
    assert api.get(f"/fhir/Patient/{patient.pk}", token=reader_token).status_code == 200
    type(organisation).objects.filter(pk=organisation.pk).update(active=False)
    assert api.get(f"/fhir/Patient/{patient.pk}", token=reader_token).status_code == 403
    assert AccessEvent.objects.order_by("pk").last().reason == "inactive"


@pytest.mark.hazard("H-02")
def test_the_next_search_after_an_objection_is_upheld_or_sharing_stops_narrows(
    api, reader_token, patient, organisation, other_organisation, ig_user
):
    own = factories.ConditionFactory(patient=patient, source_organisation=organisation)
    theirs = factories.ConditionFactory(patient=patient, source_organisation=other_organisation)
    set_sharing(by=None, organisation=other_organisation, category=Category.CONDITIONS, shares=True)
    search = f"/fhir/Condition?patient={patient.pk}"
    assert ids(api.get(search, token=reader_token)) == {str(own.pk), str(theirs.pk)}
    set_sharing(by=None, organisation=other_organisation, category=Category.CONDITIONS, shares=False)
    assert ids(api.get(search, token=reader_token)) == {str(own.pk)}
    set_sharing(by=None, organisation=other_organisation, category=Category.CONDITIONS, shares=True)
    assert ids(api.get(search, token=reader_token)) == {str(own.pk), str(theirs.pk)}
    objection = optout_actions.record_professional_objection(
        by=ig_user, patient=patient, reason="Does not want sharing", how_told="in-person", region=Region.SEL
    )
    optout_actions.verify(by=ig_user, objection=objection, identity_check="documents")
    optout_actions.uphold(by=ig_user, objection=objection, reason="Patient's wish")
    assert ids(api.get(search, token=reader_token)) == {str(own.pk)}  # only the viewer's own organisation's


def test_a_token_used_long_ago_is_refused_once_expired(api, clinician, patient):
    token, secret = create_api_token(by=None, name="viewer", user=clinician)
    ApiToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - datetime.timedelta(seconds=1))
    assert api.get(f"/fhir/Patient/{patient.pk}", token=secret).status_code == 401
