"""Every URL the project serves × every kind of user: who gets what, and where patient data may appear.

The URL list comes from the resolver, not a hand-kept list: a new URL that this matrix does not classify
fails `test_every_url_is_classified`, so nobody can add a page without deciding who may see it. A new page
under a patient (a `patient_id` in its route) is a record page unless classified otherwise, so it is in
`record_urls()` and every record test from the day it is added.
"""

import datetime
import re
from urllib.parse import urlencode

import pytest
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone

from audit.models import AccessBasis, AccessEvent, AccessOutcome, AuditEvent
from audit.names import Action
from sharing import actions
from sharing.access import Reason
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
    "break-glass": POST_ONLY,  # under a patient, but an action: tested by test_break_glass_endpoint
}
# A value for every route parameter a record URL may have; an unknown one fails `record_urls()`.
TREND_CODE = "4548-4"  # the observation code `full_record` has
ROUTE_PARAMETER = re.compile(r"<(?:\w+:)?(\w+)>")

ACTORS = [
    "anonymous",
    "outsider",
    "clinician_other_org",
    "clinician",
    "break_glass_active",
    "break_glass_expired",
    "ig_officer",
    "deactivated",
    "inactive_professional",
    "professional_at_inactive_organisation",
    "no_profile_user",
]
# No signed-in user at all (an inactive account's session does not authenticate): sent to sign in, nothing audited.
SENT_TO_SIGN_IN = {"anonymous", "deactivated"}
# Everyone else, on every record page: the status, and the one AccessEvent's outcome, basis and reason.
ON_RECORD = {
    "clinician": (200, AccessOutcome.ALLOWED, AccessBasis.CARE_TEAM, ""),
    "break_glass_active": (200, AccessOutcome.ALLOWED, AccessBasis.BREAK_GLASS, ""),
    "outsider": (403, AccessOutcome.REFUSED, AccessBasis.NONE, Reason.NO_RELATIONSHIP),
    "clinician_other_org": (403, AccessOutcome.REFUSED, AccessBasis.NONE, Reason.NO_RELATIONSHIP),
    "break_glass_expired": (403, AccessOutcome.REFUSED, AccessBasis.NONE, Reason.NO_RELATIONSHIP),
    "ig_officer": (403, AccessOutcome.REFUSED, AccessBasis.NONE, Reason.NO_RELATIONSHIP),
    "inactive_professional": (403, AccessOutcome.REFUSED, AccessBasis.NONE, Reason.INACTIVE),
    "professional_at_inactive_organisation": (403, AccessOutcome.REFUSED, AccessBasis.NONE, Reason.INACTIVE),
    "no_profile_user": (403, AccessOutcome.REFUSED, AccessBasis.NONE, Reason.NO_PROFESSIONAL),
}
# Signed in, but not an active professional: no search, no patient list, no break glass.
NOT_AN_ACTIVE_PROFESSIONAL = {"inactive_professional", "professional_at_inactive_organisation", "no_profile_user"}
STAFF = {"ig_officer"}


def iter_patterns(patterns=None, prefix="", namespace=""):
    for entry in get_resolver().url_patterns if patterns is None else patterns:
        if isinstance(entry, URLResolver):
            inner = f"{namespace}{entry.namespace}:" if entry.namespace else namespace
            yield from iter_patterns(entry.url_patterns, prefix + str(entry.pattern), inner)
        elif isinstance(entry, URLPattern):
            yield f"{namespace}{entry.name or ''}", prefix + str(entry.pattern), entry


def kind_of(name, route, callback):
    if name.startswith("admin:"):
        return "admin"
    if name.startswith("fhir:"):
        return "fhir"  # token or session auth, OperationOutcome answers: tests/sharing/fhir/ covers every route
    if callback.__module__.startswith("allauth."):
        return "auth"
    if name in CLASSIFIED:
        return CLASSIFIED[name]
    if "patient_id" in ROUTE_PARAMETER.findall(route):
        return RECORD
    return None


def test_every_url_is_classified():
    unknown = [(name, route) for name, route, p in iter_patterns() if kind_of(name, route, p.callback) is None]
    assert unknown == [], "classify these URLs in tests/test_url_matrix.py"


def test_every_actor_has_expectations():
    assert set(ACTORS) == SENT_TO_SIGN_IN | set(ON_RECORD)
    assert SENT_TO_SIGN_IN.isdisjoint(ON_RECORD)


def record_urls(patient):
    """Every record page of `patient`: each URL pattern under a patient that is not classified otherwise."""
    values = {"patient_id": patient.pk, "code": TREND_CODE}
    urls = []
    for name, route, entry in iter_patterns():
        if kind_of(name, route, entry.callback) == RECORD:
            parameters = ROUTE_PARAMETER.findall(route)
            missing = set(parameters) - set(values)
            assert not missing, f"give record_urls() a value for {missing} ({name})"
            urls.append(reverse(name, kwargs={p: values[p] for p in parameters}))
    return urls


def test_record_urls_are_every_page_under_a_patient(patient):
    urls = record_urls(patient)
    assert len(urls) == len(set(urls))
    for name in ("record-summary", "record-coverage", "record-objection", "record-conditions"):
        assert reverse(name, args=[patient.pk]) in urls
    assert reverse("record-result-trend", args=[patient.pk, TREND_CODE]) in urls
    assert reverse("break-glass", args=[patient.pk]) not in urls


def sign_in_redirect(path, login_url=None):
    """Where LoginRequiredMiddleware (or the admin, with its own login URL) sends someone not signed in."""
    return f"{login_url or reverse('account_login')}?{urlencode({'next': path}, safe='/')}"


def assert_break_glass_recorded(user, patient, *, active):
    grants = BreakGlass.objects.filter(user=user, patient=patient)
    now = timezone.now()
    grant = (grants.filter(expires_at__gt=now) if active else grants.filter(expires_at__lte=now)).get()
    started = AuditEvent.objects.filter(
        action=Action.BREAK_GLASS_STARTED, actor_id=user.pk, patient_id=patient.pk, target_id=str(grant.pk)
    )
    assert started.count() == 1
    return grant


@pytest.fixture
def break_glass_active(clinician_other_org, patient):
    actions.break_glass(by=clinician_other_org, patient=patient, reason_code="emergency-treatment")
    assert_break_glass_recorded(clinician_other_org, patient, active=True)
    return clinician_other_org


@pytest.fixture
def break_glass_expired(outsider, patient):
    grant = actions.break_glass(by=outsider, patient=patient, reason_code="emergency-treatment")
    BreakGlass.objects.filter(pk=grant.pk).update(expires_at=timezone.now() - datetime.timedelta(minutes=1))
    assert_break_glass_recorded(outsider, patient, active=False)
    return outsider


@pytest.fixture
def signed_in(request, client):
    def as_actor(actor):
        if actor != "anonymous":
            client.force_login(request.getfixturevalue(actor))
        return client

    return as_actor


def user_of(request, actor):
    return None if actor == "anonymous" else request.getfixturevalue(actor)


CLINICAL_MARKERS = ["Type 2 diabetes", "Penicillin", "Metformin", "Lives alone", "Discharge summary", "HbA1c"]


def assert_no_patient_data(body, patient, url):
    assert patient.nhs_number not in body and patient.nhs_number_display not in body, url
    # The banner shows "Ada TESTPERSON", the support network "Bernard Testperson": either case is a leak.
    assert patient.full_name not in body and patient.family_name.upper() not in body.upper(), url
    assert patient.postcode not in body and patient.phone not in body, url
    for marker in CLINICAL_MARKERS:
        assert marker not in body, (url, marker)


@pytest.mark.parametrize("actor", ACTORS)
def test_record_pages(request, signed_in, actor, patient, full_record):
    client = signed_in(actor)
    user = user_of(request, actor)
    for url in record_urls(patient):
        before = AccessEvent.objects.count()
        response = client.get(url)
        body = response.content.decode()
        if actor in SENT_TO_SIGN_IN:
            assert (response.status_code, response["Location"]) == (302, sign_in_redirect(url)), url
            assert AccessEvent.objects.count() == before, url
            continue
        status, outcome, basis, reason = ON_RECORD[actor]
        assert response.status_code == status, url
        (event,) = AccessEvent.objects.filter(request_id=response["X-Request-ID"])
        assert AccessEvent.objects.count() == before + 1, url
        assert (event.outcome, event.basis, event.reason) == (outcome, basis, reason), url
        assert (event.user_id, event.patient_id, event.path) == (user.pk, patient.pk, url), url
        if status == 200:
            # The banner: given name and family name in capitals ("Ada TESTPERSON"), and the NHS number.
            banner_name = f"{patient.given_name} {patient.family_name.upper()}"
            assert banner_name in body and patient.nhs_number_display in body, url
        else:
            assert_no_patient_data(body, patient, url)


@pytest.mark.parametrize("actor", ACTORS)
def test_signed_in_pages_show_no_patient_data_without_a_search(signed_in, actor, patient, full_record):
    client = signed_in(actor)
    for name, kind in CLASSIFIED.items():
        if kind != SIGNED_IN:
            continue
        url = reverse(name)
        response = client.get(url)
        if actor in SENT_TO_SIGN_IN:
            assert (response.status_code, response["Location"]) == (302, sign_in_redirect(url)), name
            continue
        refused = actor in NOT_AN_ACTIVE_PROFESSIONAL and name in ("my-patients", "patient-search")
        assert response.status_code == (403 if refused else 200), name
        body = response.content.decode()
        if name == "my-patients" and actor == "clinician":
            # Their own patient, by demographics only.
            assert patient.full_name in body and patient.nhs_number_display in body
            assert not any(marker in body for marker in CLINICAL_MARKERS)
        else:
            assert_no_patient_data(body, patient, name)


@pytest.mark.parametrize("actor", ACTORS)
def test_break_glass_endpoint(request, signed_in, actor, patient):
    client = signed_in(actor)
    user = user_of(request, actor)
    url = reverse("break-glass", args=[patient.pk])
    grants_before = BreakGlass.objects.count()
    get = client.get(url)
    response = client.post(url, {"reason_code": "emergency-treatment", "confirm": "on"})
    if actor in SENT_TO_SIGN_IN:
        assert (get.status_code, get["Location"]) == (302, sign_in_redirect(url))
        assert (response.status_code, response["Location"]) == (302, sign_in_redirect(url))
        assert BreakGlass.objects.count() == grants_before
        return
    assert get.status_code == 405
    if actor in NOT_AN_ACTIVE_PROFESSIONAL:
        assert response.status_code == 403
        assert_no_patient_data(response.content.decode(), patient, url)
        assert BreakGlass.objects.count() == grants_before
        return
    assert (response.status_code, response["Location"]) == (302, reverse("record-summary", args=[patient.pk]))
    if ON_RECORD[actor][0] == 200:
        # Already allowed (care team, or glass already broken): straight to the record, no new grant.
        assert BreakGlass.objects.count() == grants_before
    else:
        assert BreakGlass.objects.count() == grants_before + 1
        assert_break_glass_recorded(user, patient, active=True)
        assert client.get(reverse("record-summary", args=[patient.pk])).status_code == 200
        assert AccessEvent.objects.filter(user_id=user.pk, basis=AccessBasis.BREAK_GLASS).count() == 1


def admin_hops(actor, url):
    """Every response a GET of an admin URL leads to: (status, Location) per hop, the last one a page."""
    if actor in STAFF:
        return [(200, None)]
    admin_login = reverse("admin:login")
    if actor in SENT_TO_SIGN_IN:
        if url == reverse("admin:index"):
            # The admin sends to its own login, which (allauth's secure_admin_login) hands over to allauth's.
            return [
                (302, sign_in_redirect(url, admin_login)),
                (302, f"{reverse('account_login')}?{urlencode({'next': url})}"),
                (200, None),
            ]
        return [(302, sign_in_redirect(url)), (200, None)]
    # Signed in, not staff: the admin's login refuses them rather than asking for another account.
    return [(302, sign_in_redirect(url, admin_login)), (403, None)]


@pytest.mark.parametrize("actor", ACTORS)
def test_admin_is_for_staff_only(signed_in, actor, patient, full_record):
    client = signed_in(actor)
    for url in (reverse("admin:index"), reverse("admin:patients_patient_changelist")):
        hops = []
        response = client.get(url)
        hops.append((response.status_code, response.get("Location")))
        while response.status_code == 302 and len(hops) < 5:
            response = client.get(response["Location"])
            hops.append((response.status_code, response.get("Location")))
        assert hops == admin_hops(actor, url), url
        body = response.content.decode()
        if actor in STAFF and url == reverse("admin:patients_patient_changelist"):
            # IG finds patients here (demographics): the page really lists them.
            assert patient.nhs_number_display in body
        else:
            assert_no_patient_data(body, patient, url)


def test_public_urls_need_no_sign_in(client):
    for name, kind in CLASSIFIED.items():
        if kind == PUBLIC:
            response = client.get(reverse(name))
            # The confirmation page exists only after a request: without one it sends you to the form.
            expected = (302, reverse("optout-request")) if name == "optout-request-done" else (200, None)
            assert (response.status_code, response.get("Location")) == expected, name


def test_admin_sign_in_cannot_skip_the_second_factor(client, ig_officer):
    """Django's own admin login takes a password only: it must hand over to allauth's password + TOTP."""
    admin_login = reverse("admin:login")
    response = client.post(admin_login, {"username": ig_officer.username, "password": factories.PASSWORD})
    assert (response.status_code, response["Location"]) == (
        302,
        f"{reverse('account_login')}?{urlencode({'next': admin_login})}",
    )
    assert "_auth_user_id" not in client.session
    index = client.get(reverse("admin:index"))
    assert (index.status_code, index["Location"]) == (302, sign_in_redirect(reverse("admin:index"), admin_login))
