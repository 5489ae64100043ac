"""Every URL the project serves × every kind of user: who gets what, and where patient data may appear.

The URL list comes from the resolver, not a hand-kept list: a new URL that this matrix does not classify
fails `test_every_url_is_classified`, so nobody can add a page without deciding who may see it.
"""

import datetime

import pytest
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone

from sharing import actions
from sharing.models import BreakGlass
from tests import factories

pytestmark = pytest.mark.django_db

# name -> kind. Record pages show patient data; "signed-in" pages show none without a search.
RECORD = "record"
SIGNED_IN = "signed-in"
PUBLIC = "public"
POST_ONLY = "post-only"
CLASSIFIED = {
    "home": SIGNED_IN,
    "my-patients": SIGNED_IN,
    "patient-search": SIGNED_IN,
    "healthz": PUBLIC,
    "optout-information": PUBLIC,
    "optout-partners": PUBLIC,
    "optout-how": PUBLIC,
    "optout-request": PUBLIC,
    "optout-request-done": PUBLIC,
    "break-glass": POST_ONLY,
    "record-summary": RECORD,
    "record-result-trend": RECORD,
}
ACTORS = [
    "anonymous",
    "outsider",
    "clinician_other_org",
    "clinician",
    "break_glass_active",
    "break_glass_expired",
    "ig_officer",
    "deactivated",
]
ALLOWED_ON_RECORD = {"clinician", "break_glass_active"}


def iter_patterns(patterns=None, prefix="", namespace=""):
    for entry in get_resolver().url_patterns if patterns is None else patterns:
        if isinstance(entry, URLResolver):
            inner = f"{namespace}{entry.namespace}:" if entry.namespace else namespace
            yield from iter_patterns(entry.url_patterns, prefix + str(entry.pattern), inner)
        elif isinstance(entry, URLPattern):
            yield f"{namespace}{entry.name or ''}", prefix + str(entry.pattern), entry


def kind_of(name, callback):
    if name.startswith("record-"):
        return RECORD
    if name.startswith("admin:"):
        return "admin"
    if name.startswith("fhir:"):
        return "fhir"  # token or session auth, OperationOutcome answers: tests/sharing/fhir/ covers every route
    if callback.__module__.startswith("allauth."):
        return "auth"
    return CLASSIFIED.get(name)


def test_every_url_is_classified():
    unknown = [(name, route) for name, route, p in iter_patterns() if kind_of(name, p.callback) is None]
    assert unknown == [], "classify these URLs in tests/test_url_matrix.py"


@pytest.fixture
def break_glass_active(clinician_other_org, patient):
    actions.break_glass(by=clinician_other_org, patient=patient, reason_code="emergency-treatment")
    return clinician_other_org


@pytest.fixture
def break_glass_expired(outsider, patient):
    grant = actions.break_glass(by=outsider, patient=patient, reason_code="emergency-treatment")
    BreakGlass.objects.filter(pk=grant.pk).update(expires_at=timezone.now() - datetime.timedelta(minutes=1))
    return outsider


@pytest.fixture
def signed_in(request, client):
    def as_actor(actor):
        if actor != "anonymous":
            client.force_login(request.getfixturevalue(actor))
        return client

    return as_actor


def record_urls(patient):
    urls = []
    for name, _, entry in iter_patterns():
        if kind_of(name, entry.callback) == RECORD:
            kwargs = {"patient_id": patient.pk}
            if "code" in entry.pattern.converters:
                kwargs["code"] = "4548-4"
            urls.append(reverse(name, kwargs=kwargs))
    return urls


def assert_no_patient_data(body, patient, url):
    assert patient.nhs_number not in body and patient.nhs_number_display not in body, url
    assert patient.family_name.upper() not in body.upper(), url
    assert "Type 2 diabetes" not in body and "Penicillin" not in body, url


@pytest.mark.parametrize("actor", ACTORS)
def test_record_pages(signed_in, actor, patient, full_record):
    client = signed_in(actor)
    for url in record_urls(patient):
        response = client.get(url)
        body = response.content.decode()
        if actor in ALLOWED_ON_RECORD:
            assert response.status_code == 200, url
            assert patient.nhs_number_display in body
        elif actor in ("anonymous", "deactivated"):
            assert response.status_code == 302 and "/accounts/login/" in response["Location"], url
        else:
            assert response.status_code == 403, url
            assert_no_patient_data(body, patient, url)


@pytest.mark.parametrize("actor", ACTORS)
def test_signed_in_pages_show_no_patient_data_without_a_search(signed_in, actor, patient, full_record):
    client = signed_in(actor)
    for name, kind in CLASSIFIED.items():
        if kind != SIGNED_IN:
            continue
        response = client.get(reverse(name))
        if actor in ("anonymous", "deactivated"):
            assert response.status_code == 302, name
            continue
        assert response.status_code == 200, name
        if name != "my-patients" or actor != "clinician":
            assert_no_patient_data(response.content.decode(), patient, name)


@pytest.mark.parametrize("actor", ACTORS)
def test_break_glass_endpoint(signed_in, actor, patient):
    client = signed_in(actor)
    url = reverse("break-glass", args=[patient.pk])
    assert client.get(url).status_code in (302, 405)
    response = client.post(url, {"reason_code": "emergency-treatment", "confirm": "on"})
    if actor in ("anonymous", "deactivated"):
        assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    else:
        # Professionals without a relationship may break glass; those already allowed go straight to the record.
        assert response.status_code == 302 and response["Location"] == reverse("record-summary", args=[patient.pk])


@pytest.mark.parametrize("actor", ACTORS)
def test_admin_is_for_staff_only(signed_in, actor, patient, full_record):
    client = signed_in(actor)
    response = client.get(reverse("admin:index"))
    if actor == "ig_officer":
        assert response.status_code == 200
    else:
        assert response.status_code == 302 and "login/" in response["Location"]
    patient_admin = client.get(reverse("admin:patients_patient_changelist"))
    if actor != "ig_officer":
        assert_no_patient_data(patient_admin.content.decode(), patient, "admin")


def test_public_urls_need_no_sign_in(client):
    for name, kind in CLASSIFIED.items():
        if kind == PUBLIC:
            response = client.get(reverse(name))
            # The confirmation page exists only after a request: without one it sends you to the form.
            expected = (302, reverse("optout-request")) if name == "optout-request-done" else (200, None)
            assert (response.status_code, response.get("Location")) == expected, name


def test_admin_sign_in_cannot_skip_the_second_factor(client, ig_officer):
    """Django's own admin login takes a password only: it must hand over to allauth's password + TOTP."""
    response = client.post(reverse("admin:login"), {"username": ig_officer.username, "password": factories.PASSWORD})
    assert client.get(reverse("admin:index")).status_code == 302
    assert response.status_code in (200, 302)
