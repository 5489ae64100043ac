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
from patients.models import Letter, LetterAttachment
from sharing import actions
from sharing.access import Reason
from sharing.models import BreakGlass
from tests import factories
from tests.identity.test_launch import BAD_TOKENS, Launcher, link_subject

pytestmark = pytest.mark.django_db

# name -> kind. Record pages show patient data; "signed-in" pages show none without a search.
RECORD = "record"
SIGNED_IN = "signed-in"
PUBLIC = "public"
POST_ONLY = "post-only"
DOCUMENT = "document"  # under a patient, serving a document's content rather than a page: test_record_documents
LAUNCH = "launch"  # in-context launch from a clinical system: test_launch_refuses_every_bad_token_for_every_actor
SCRAPER = "scraper"  # Prometheus's, with METRICS_TOKEN, never a session: tests/carerecord/test_metrics.py
CLASSIFIED = {
    # Public for GET (issue 18): signed out, the landing page; signed in, the professional's home, so it is checked
    # with the signed-in pages too (SIGNED_IN_TOO). Its POST searches for a professional only:
    # tests/carerecord/test_home_nhs_number.py.
    "home": PUBLIC,
    "my-patients": SIGNED_IN,
    "patient-search": SIGNED_IN,
    "healthz": PUBLIC,
    "metrics": SCRAPER,  # issue 20: no patient data in any label; 404 unless configured, 401 without the token
    "optout-information": PUBLIC,
    "optout-partners": PUBLIC,
    "optout-how": PUBLIC,
    "optout-request": PUBLIC,
    "optout-request-check": PUBLIC,  # "Check your answers": back to the form without answers in the session
    "optout-request-done": PUBLIC,
    "break-glass": POST_ONLY,  # under a patient, but an action: tested by test_break_glass_endpoint
    "record-letter-attachment": DOCUMENT,
    "launch": LAUNCH,  # no sign-in needed (the signed token is the proof); opens a record only through its page
    "launch-continue": LAUNCH,  # signed in: where the sign-in a launch needed comes back to
    # Single sign-on (identity.views_sso): allauth's callback with carerecord's adapter, changing role, signed out.
    "openid_connect_callback": "auth",
    "change-role": SIGNED_IN,
    "stay-signed-in": SIGNED_IN,  # the timeout warning's POST: renews the session, 204, no patient data
    "signed-out": PUBLIC,
    "account_email": "auth",  # 404 for everyone (identity.views_sso.not_offered)
    "socialaccount_connections": "auth",
}
# Signed-in URLs that are actions, not pages: POSTed, and what they answer.
SIGNED_IN_POSTS = {"stay-signed-in": 204}
# Public pages that are signed-in pages once signed in: anyone else gets the public page (200), no patient data.
SIGNED_IN_TOO = {"home"}
# A value for every route parameter a record URL may have; an unknown one fails `record_urls()`.
TREND_CODE = "4548-4"  # the observation code `full_record` has
ROUTE_PARAMETER = re.compile(r"<(?:\w+:)?(\w+)>")
# The content `full_record`'s letter holds (a letter's attachment is a record URL serving the content itself).
ATTACHMENT = b"%PDF-1.4\n% Discharge summary of a test patient\n%%EOF\n"
ATTACHMENT_URL = "record-letter-attachment"

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
        # Token or session auth, OperationOutcome answers: tests/fhirapi/ covers every route (test_api_read,
        # test_read_routes_refused, test_history, test_search_types).
        return "fhir"
    if callback.__module__.startswith("allauth.") or (
        route.startswith("accounts/social/") and callback.__module__ == "django.views.generic.base"
    ):
        return "auth"  # allauth's, and its redirects from old social account paths
    if name in CLASSIFIED:
        return CLASSIFIED[name]
    if "patient_id" in ROUTE_PARAMETER.findall(route):
        return RECORD
    return None


@pytest.mark.parametrize("actor", ACTORS)
def test_the_metrics_endpoint_answers_no_session_only_its_token(actor, request, client, settings):
    """Signed in as anyone (IG included), /metrics is refused without the scraper's token, and not there at all
    while no token is configured."""
    user = None if actor == "anonymous" else request.getfixturevalue(actor)
    if user is not None:
        client.force_login(user)
    settings.METRICS_TOKEN = ""
    assert client.get(reverse("metrics")).status_code == 404
    settings.METRICS_TOKEN = "scraper-token-for-the-matrix"
    assert client.get(reverse("metrics")).status_code == 401


@pytest.mark.hazard("H-03")
def test_every_url_is_classified():
    unknown = [(name, route) for name, route, p in iter_patterns() if kind_of(name, route, p.callback) is None]
    assert unknown == [], "classify these URLs in tests/test_url_matrix.py"


def test_every_actor_has_expectations():
    assert set(ACTORS) == SENT_TO_SIGN_IN | set(ON_RECORD)
    assert SENT_TO_SIGN_IN.isdisjoint(ON_RECORD)


@pytest.fixture
def full_record(full_record, patient):
    """The shared `full_record`, its letter holding a PDF (the attachment URL needs a real one to serve)."""
    attach_pdf(full_record[Letter])
    return full_record


def attach_pdf(letter):
    import hashlib

    return LetterAttachment.objects.create(
        letter=letter,
        patient_id=letter.patient_id,
        title="Discharge summary",
        content_type="application/pdf",
        data=ATTACHMENT,
        size=len(ATTACHMENT),
        sha256=hashlib.sha256(ATTACHMENT).hexdigest(),
    )


def reported_entry(patient):
    """The entry the report-a-problem page names (issue 17): `full_record`'s procedure, shared with the clinician,
    and the broken-glass professional's own organisation's."""
    from patients.models import Procedure
    from sharing.problems import entry_name

    procedure = Procedure.objects.filter(patient=patient).order_by("pk").first()
    return entry_name(procedure) if procedure else "procedures-1"


def record_urls(patient):
    """Every record page of `patient`: each URL pattern under a patient that is not classified otherwise."""
    values = {"patient_id": patient.pk, "code": TREND_CODE, "entry": reported_entry(patient)}
    urls = []
    for name, route, entry in iter_patterns():
        if kind_of(name, route, entry.callback) == RECORD:
            parameters = ROUTE_PARAMETER.findall(route)
            missing = set(parameters) - set(values)
            assert not missing, f"give record_urls() a value for {missing} ({name})"
            urls.append(reverse(name, kwargs={p: values[p] for p in parameters}))
    return urls


@pytest.mark.hazard("H-03")
def test_record_urls_are_every_page_under_a_patient(patient):
    urls = record_urls(patient)
    assert len(urls) == len(set(urls))
    for name in ("record-summary", "record-coverage", "record-objection", "record-conditions"):
        assert reverse(name, args=[patient.pk]) in urls
    assert reverse("record-result-trend", args=[patient.pk, TREND_CODE]) in urls
    assert reverse("break-glass", args=[patient.pk]) not in urls
    assert reverse(ATTACHMENT_URL, args=[patient.pk, 1]) not in urls  # a document, not a page: test_record_documents


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


@pytest.mark.hazard("H-03")
@pytest.mark.hazard("H-06")
@pytest.mark.hazard("H-12")
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


def document_urls(patient):
    """Every URL under a patient that serves a document (kind DOCUMENT), with a real one of `patient`'s
    (`full_record`'s letter holds a PDF): each must have a value here, or this fails."""
    attachment = LetterAttachment.objects.get(patient=patient)
    values = {"patient_id": patient.pk, "attachment_id": attachment.pk}
    urls = []
    for name, route, entry in iter_patterns():
        if kind_of(name, route, entry.callback) == DOCUMENT:
            parameters = ROUTE_PARAMETER.findall(route)
            assert set(parameters) <= set(values), f"give document_urls() a value for {name}"
            urls.append(reverse(name, kwargs={p: values[p] for p in parameters}))
    assert urls
    return urls


@pytest.mark.hazard("H-03")
@pytest.mark.hazard("H-11")
@pytest.mark.parametrize("actor", ACTORS)
def test_record_documents(request, signed_in, actor, patient, full_record):
    """A letter's attachment, for every actor: exactly the record pages' decision and audit, and the content
    itself only to those the record is open to."""
    client = signed_in(actor)
    user = user_of(request, actor)
    for url in document_urls(patient):
        before = AccessEvent.objects.count()
        response = client.get(url)
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
            assert (response.content, response["Content-Type"]) == (ATTACHMENT, "application/pdf"), url
            assert "no-store" in response["Cache-Control"] and response["X-Content-Type-Options"] == "nosniff"
        else:
            assert_no_patient_data(response.content.decode(), patient, url)


# A letter's attachment after the patient's objection is upheld: its letter came from another organisation than
# the clinician's, so it is gone for them (404: the record opens, the letter is not in it); the professional of
# the letter's own organisation (broken glass) still has it; everyone else is refused, or sent to sign in, as on
# every record page.
AFTER_OBJECTION = {"clinician": 404, "break_glass_active": 200}


@pytest.mark.hazard("H-02")
@pytest.mark.hazard("H-11")
@pytest.mark.parametrize("actor", ACTORS)
def test_an_attachment_follows_its_letter_for_every_actor_once_the_patient_has_objected(
    request, signed_in, actor, patient, full_record, organisation
):
    from tests.sharing.test_coverage import upheld_objection

    upheld_objection(patient, factories.UserFactory(is_staff=True))
    client = signed_in(actor)
    attachment = LetterAttachment.objects.get(patient=patient)
    url = reverse(ATTACHMENT_URL, args=[patient.pk, attachment.pk])
    before = AccessEvent.objects.count()
    response = client.get(url)
    if actor in SENT_TO_SIGN_IN:
        assert (response.status_code, response["Location"]) == (302, sign_in_redirect(url))
        assert AccessEvent.objects.count() == before
        return
    status = AFTER_OBJECTION.get(actor, ON_RECORD[actor][0])
    assert response.status_code == status
    assert (response.content == ATTACHMENT) == (status == 200)
    (event,) = AccessEvent.objects.filter(request_id=response["X-Request-ID"])
    assert event.outcome == (AccessOutcome.REFUSED if status == 403 else AccessOutcome.ALLOWED)


@pytest.mark.hazard("H-03")
@pytest.mark.parametrize("actor", ACTORS)
def test_signed_in_pages_show_no_patient_data_without_a_search(signed_in, actor, patient, full_record):
    client = signed_in(actor)
    for name, kind in CLASSIFIED.items():
        if kind != SIGNED_IN and name not in SIGNED_IN_TOO:
            continue
        url = reverse(name)
        response = client.post(url) if name in SIGNED_IN_POSTS else client.get(url)
        if actor in SENT_TO_SIGN_IN and name not in SIGNED_IN_TOO:
            assert (response.status_code, response["Location"]) == (302, sign_in_redirect(url)), name
            continue
        refused = actor in NOT_AN_ACTIVE_PROFESSIONAL and name in ("my-patients", "patient-search")
        assert response.status_code == (403 if refused else SIGNED_IN_POSTS.get(name, 200)), name
        body = response.content.decode()
        if name == "my-patients" and actor == "clinician":
            # Their own patient, by demographics only.
            assert patient.full_name in body and patient.nhs_number_display in body
            assert not any(marker in body for marker in CLINICAL_MARKERS)
        else:
            assert_no_patient_data(body, patient, name)


@pytest.mark.hazard("H-12")
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
        # Nobody is listed until a search, for staff too: there is no browsing the patient index.
        assert_no_patient_data(response.content.decode(), patient, url)
    if actor in STAFF:
        # IG find a patient here by searching (demographics only), and the search is in the access log.
        response = client.get(reverse("admin:patients_patient_changelist"), {"q": patient.nhs_number_display})
        assert patient.nhs_number_display in response.content.decode()
        assert not any(marker in response.content.decode() for marker in CLINICAL_MARKERS)
        (event,) = AccessEvent.objects.filter(request_id=response["X-Request-ID"])
        assert (event.basis, event.page, event.patient_id) == (AccessBasis.IG_ADMIN, "admin:patient-search", patient.pk)


# --- admin, as the IG officer: every admin URL, what IG get, and what of a patient it shows (issue 11) ----------
#
# IG (staff, the IG group's permissions, not superuser) work objections, break glass, the audit trail, the
# directory and sharing agreements in admin; no clinical entry is there. Each admin URL is classified by what it
# shows of a patient, and the class is checked on the page, with its AccessEvents:
ADMIN_DETAILS = "details"  # demographics, or the context of a look at the record: one AccessEvent per patient shown
ADMIN_NAMES = "names"  # IG's own records naming a patient (name, NHS number) and nothing more: no AccessEvent
ADMIN_NOTHING = "nothing"  # nothing of any patient: no AccessEvent
# What IG open (200) per registered model; every other view of it refuses them (403). A model registered in
# admin but missing here fails `test_every_admin_url_is_classified_for_ig`: decide first what IG see of it.
IG_OPENS = {
    "auth.group": set(),
    "auth.user": set(),
    "account.emailaddress": set(),
    "mfa.authenticator": set(),
    "audit.accessevent": {"changelist", "change", "history", "patient", "subjectaccess", "letter"},
    "audit.auditevent": {"changelist", "change", "history"},
    "audit.auditseal": {"changelist", "change", "history", "check"},  # issue 21: the seals, and the check
    "audit.auditarchive": {"changelist", "change", "history"},  # issue 20: months archived (ids, counts, digests)
    "bulk.job": {"changelist", "change", "history"},  # issue 20: bulk loads (inputs named and sized, never shown)
    "bulk.deadletter": {"changelist", "change", "history"},
    "directory.organisation": {"changelist", "add", "change", "history"},
    "directory.professional": {"changelist", "add", "change", "history"},
    "directory.careteam": {"changelist", "add", "change", "history"},
    "directory.careteammembership": {"changelist", "add", "change", "history", "delete"},
    "directory.apitoken": {"changelist", "change", "history"},
    "sharing.sharingagreement": {"changelist", "add", "change", "history"},
    "sharing.involvement": {"changelist", "add", "change", "history"},
    "sharing.breakglass": {"changelist", "change", "history"},
    "optout.regionalprocess": {"changelist", "change", "history"},
    "optout.objection": {"changelist", "change", "history"},
    "patients.patient": {"changelist", "change", "history"},
    # Added beside this work (issue 11, privacy alerts): a proxy of the access log; its owner confirms.
    "sharing.privacyalert": {"changelist", "change", "history"},
    # Added beside this work (issue 14, provenance): what partners sent, no patient data (fhirapi/admin.py).
    "fhir.submission": {"changelist", "change", "history"},
    # Added beside this work (issue 15, HL7 v2 feeds: feeds/admin.py): feeds and code mappings IG configure, and
    # the queue of messages (read-only; opening one shows its raw text, patient data: an AccessEvent).
    "feeds.feed": {"changelist", "add", "change", "history"},
    "feeds.codemapping": {"changelist", "add", "change", "history"},
    "feeds.message": {"changelist", "change", "history"},
    # Added beside this work (issue 16, launch partners: identity/admin.py): IG register partners and their keys;
    # partners are deactivated, never deleted. No patient data.
    "identity.launchpartner": {"changelist", "add", "change", "history"},
    # Added beside this work (issue 17, problems reported with entries: sharing/admin.py): IG follow them up; never
    # added or deleted in admin.
    "sharing.entryproblem": {"changelist", "change", "history"},
}
# (model, view) -> class; anything not listed shows nothing of a patient.
ADMIN_SHOWS = {
    ("patients.patient", "change"): ADMIN_DETAILS,  # page "admin:patient"
    ("patients.patient", "history"): ADMIN_NAMES,
    # The list shows nobody until a search: its searches are ADMIN_SEARCHES below.
    ("sharing.breakglass", "change"): ADMIN_DETAILS,  # page "admin:break-glass-review"
    ("sharing.breakglass", "changelist"): ADMIN_NAMES,
    ("sharing.breakglass", "history"): ADMIN_NAMES,
    ("optout.objection", "change"): ADMIN_DETAILS,  # candidates to match: page "admin:objection-match"
    ("optout.objection", "changelist"): ADMIN_NAMES,
    ("optout.objection", "history"): ADMIN_NAMES,
    ("sharing.involvement", "changelist"): ADMIN_NAMES,
    ("sharing.involvement", "change"): ADMIN_NAMES,
    ("sharing.involvement", "history"): ADMIN_NAMES,
    ("audit.accessevent", "changelist"): ADMIN_NAMES,
    ("audit.accessevent", "change"): ADMIN_NAMES,
    ("audit.accessevent", "history"): ADMIN_NAMES,
    ("audit.accessevent", "patient"): ADMIN_NAMES,  # "who has seen this record"
    # Issue 18, subject access: the period form names the patient; the letter shows their address (an AccessEvent,
    # page "admin:subject-access").
    ("audit.accessevent", "subjectaccess"): ADMIN_NAMES,
    ("audit.accessevent", "letter"): ADMIN_DETAILS,
    ("audit.auditevent", "changelist"): ADMIN_NAMES,
    ("audit.auditevent", "change"): ADMIN_NAMES,
    ("audit.auditevent", "history"): ADMIN_NAMES,
    ("sharing.privacyalert", "changelist"): ADMIN_NAMES,
    ("sharing.privacyalert", "change"): ADMIN_NAMES,
    ("sharing.privacyalert", "history"): ADMIN_NAMES,
    ("feeds.message", "change"): ADMIN_DETAILS,  # the raw message: page "admin:hl7-message"
    ("feeds.message", "changelist"): ADMIN_NAMES,  # opens on what needs action (the world's message is applied)
    # A report shows the entry's words and the patient's NHS number: page "admin:entry-problem" (its history too,
    # whose title names the entry). The list names no patient.
    ("sharing.entryproblem", "change"): ADMIN_DETAILS,
    ("sharing.entryproblem", "history"): ADMIN_DETAILS,
}
# The admin's own pages (not a model's): the status IG get on a GET, and what of a patient they show.
ADMIN_SITE = {
    "admin:index": (200, ADMIN_NOTHING),
    "admin:login": (302, ADMIN_NOTHING),  # already signed in: on to the index
    "admin:logout": (405, ADMIN_NOTHING),  # POST only
    "admin:password_change": (200, ADMIN_NOTHING),
    "admin:password_change_done": (200, ADMIN_NOTHING),
    "admin:jsi18n": (200, ADMIN_NOTHING),
    "admin:autocomplete": (403, ADMIN_NOTHING),  # without its parameters; with them, ADMIN_SEARCHES
    "admin:view_on_site": (404, ADMIN_NOTHING),  # a patient has no page outside admin
    "admin:auth_user_password_change": (403, ADMIN_NOTHING),
}
ADMIN_POST_ONLY = {"export", "match", "verify", "uphold", "reject", "withdraw"}  # a GET is refused (405)
ADMIN_MODEL_VIEW = re.compile(r"^admin:(?P<app>[a-z]+)_(?P<model>[a-z]+)_(?P<view>[a-z]+)$")


def admin_model_view(name):
    """("app.model", view) for a model's admin URL name, None for the site's own."""
    from django.contrib import admin

    match = ADMIN_MODEL_VIEW.match(name)
    if name in ADMIN_SITE or not match:
        return None
    label = f"{match['app']}.{match['model']}"
    assert any(model._meta.label_lower == label for model in admin.site._registry), name
    return label, match["view"]


@pytest.fixture
def admin_world(patient, full_record, clinician, clinician_other_org, ig_user, organisation):
    """One row of everything admin lists, around `patient`: an objection that matches them (by family name and
    date of birth; the requester gave another postcode), a break glass, a look at the record, an API token."""
    from allauth.account.models import EmailAddress
    from django.test import Client

    from directory import actions as directory_actions
    from directory.models import Region
    from fhirapi.models import Submission
    from optout import actions as optout_actions
    from optout.models import RegionalProcess

    looking = Client()
    looking.force_login(clinician)
    assert looking.get(reverse("record-summary", args=[patient.pk])).status_code == 200
    grant = actions.break_glass(by=clinician_other_org, patient=patient, reason_code="emergency-treatment")
    objection = optout_actions.submit_objection(
        given_name=patient.given_name,
        family_name=patient.family_name,
        date_of_birth=patient.date_of_birth,
        postcode="EC1A 1BB",
        contact_email="requester@example.com",
        region=Region.SEL,
        reason="Keep my records separate.",
    )
    assert objection.postcode != patient.postcode
    RegionalProcess.objects.get_or_create(region=Region.SEL, defaults={"title": "South east London", "body": "."})
    directory_actions.create_api_token(by=None, name="GP feed", organisation=organisation)
    Submission.objects.create(organisation=organisation, received_at=timezone.now(), endpoint="POST /fhir/")
    EmailAddress.objects.get_or_create(user=ig_user, email=ig_user.email, defaults={"verified": True})
    _hl7_feed_world(patient, organisation)
    factories.LaunchPartnerFactory(organisation=organisation)  # issue 16: a clinical system that launches in context
    # Issue 17: a problem reported with the record's procedure (no clinical marker in its words).
    from patients.models import Procedure

    actions.report_entry_problem(
        by=clinician, patient=patient, entry=full_record[Procedure], what_is_wrong="It was the other hip."
    )
    from audit import seals

    seals.seal()  # issue 21: the audit rows so far sealed
    from audit.models import AuditArchive

    AuditArchive.objects.create(  # issue 20: a month once archived (the record only: no partition detached here)
        table="accessevent",
        partition="audit_accessevent_y2020m01",
        month=datetime.date(2020, 1, 1),
        scheme=seals.SCHEME,
        ranges=[[1, 3]],
        row_count=3,
        rows_digest="0" * 64,
        archived_by="command:audit_partitions@ig",
    )
    from bulk import actions as bulk

    job, _ = bulk.submit(  # issue 20: a bulk load, dead-lettered (so in both lists)
        kind="fhir.import",
        by=bulk.Requester(email="api-token:1:abc@X1"),
        inputs=[bulk.Input(name="POST /fhir/", content_type="application/fhir+json", data=b"{}")],
        total=1,
        organisation=organisation,
    )
    bulk.bury(bulk.claim(job.pk), "ValueError: a test failure")
    return {"patient": patient, "objection": objection, "grant": grant, "ig_user": ig_user}


def _hl7_feed_world(patient, organisation):
    """A feed, a code mapping and an applied ADT message about `patient` (issue 15, feeds/admin.py)."""
    from feeds.models import CodeMapping, Feed, Message

    feed = Feed.objects.create(organisation=organisation, name="Hospital PAS")
    CodeMapping.objects.create(organisation=organisation, local_code="HB", system="http://loinc.org", code="718-7")
    raw = f"MSH|^~\\&|PAS|H|||20240301||ADT^A01|URL-1|P|2.4\rPID|1||H1^^^H^MR~{patient.nhs_number}^^^NHS^NH"
    Message.objects.create(
        feed=feed,
        organisation=organisation,
        received_at=timezone.now(),
        raw=raw,
        control_id="URL-1",
        message_type="ADT^A01",
        status=Message.Status.APPLIED,
        patient=patient,
    )


def admin_cases(world):
    """(URL name, url, status, class, patients the page shows) for every admin URL pattern, as IG GET it."""
    from django.contrib import admin
    from django.contrib.contenttypes.models import ContentType

    from audit.models import AccessEvent
    from patients.models import Patient

    patient = world["patient"]
    registry = {model._meta.label_lower: model for model in admin.site._registry}
    instance = {
        "optout.objection": world["objection"],
        "sharing.breakglass": world["grant"],
        "patients.patient": patient,
        "audit.accessevent": AccessEvent.objects.filter(patient_id=patient.pk).first(),
    }
    cases = []
    for name, route, _ in iter_patterns():
        if not name.startswith("admin:"):
            continue
        parameters = ROUTE_PARAMETER.findall(route)
        if name == "admin:":  # unnamed: a model's bare object URL (to its change page), or the last catch-all
            if "url" in parameters:  # no entry model is in admin: where their pages were is not found
                for model in ("condition", "letter", "observation", "supportperson", "sourcepatientid"):
                    cases.append((name, f"/admin/patients/{model}/", 404, ADMIN_NOTHING, []))
            else:
                _, app, model_name, _ = route.split("/", 3)
                label = f"{app}.{model_name}"
                item = instance.get(label) or registry[label].objects.order_by("pk").first()
                cases.append((name, "/" + route.replace("<path:object_id>", str(item.pk)), 302, ADMIN_NOTHING, []))
            continue
        if name == "admin:app_list":
            for app in sorted({model._meta.app_label for model in registry.values()}):
                ig_has = any(label.startswith(f"{app}.") and IG_OPENS.get(label) for label in registry)
                url = reverse(name, kwargs={"app_label": app})
                cases.append((name, url, 200 if ig_has else 404, ADMIN_NOTHING, []))
            continue
        if name in ADMIN_SITE:
            status, shows = ADMIN_SITE[name]
            kwargs = {}
            if name == "admin:view_on_site":
                kwargs = {"content_type_id": ContentType.objects.get_for_model(Patient).pk, "object_id": patient.pk}
            elif name == "admin:auth_user_password_change":
                kwargs = {"id": world["ig_user"].pk}
            cases.append((name, reverse(name, kwargs=kwargs), status, shows, []))
            continue
        label, view = admin_model_view(name)
        assert label in IG_OPENS, f"classify {label} in IG_OPENS (tests/test_url_matrix.py)"
        model = registry[label]
        item = instance.get(label) or model.objects.order_by("pk").first()
        assert item is not None, label
        kwargs = {}
        if "object_id" in parameters:
            kwargs["object_id"] = item.pk
        if "patient_id" in parameters:
            kwargs["patient_id"] = patient.pk
        url = reverse(name, kwargs=kwargs)
        if view in ADMIN_POST_ONLY:
            cases.append((name, url, 405, ADMIN_NOTHING, []))
            continue
        status = 200 if view in IG_OPENS[label] else 403
        shows = ADMIN_SHOWS.get((label, view), ADMIN_NOTHING) if status == 200 else ADMIN_NOTHING
        cases.append((name, url, status, shows, [patient] if shows == ADMIN_DETAILS else []))
    # The patient list and the patient picker show nobody until a search; a search shows its patients.
    changelist = reverse("admin:patients_patient_changelist")
    picker = reverse("admin:autocomplete")
    pick = urlencode({"app_label": "sharing", "model_name": "involvement", "field_name": "patient"})
    search = "admin:patients_patient_changelist"
    cases += [
        (search, f"{changelist}?{urlencode({'q': patient.nhs_number_display})}", 200, ADMIN_DETAILS, [patient]),
        (search, f"{changelist}?{urlencode({'q': patient.family_name})}", 200, ADMIN_DETAILS, [patient]),
        ("admin:autocomplete", f"{picker}?{pick}", 200, ADMIN_NOTHING, []),
        (
            "admin:autocomplete",
            f"{picker}?{pick}&{urlencode({'term': patient.nhs_number})}",
            200,
            ADMIN_DETAILS,
            [patient],
        ),
    ]
    return cases


def assert_no_patient_details(body, patient, url):
    """A patient may be named (name, NHS number), nothing more: no address, postcode, phone, nor any entry."""
    for detail in (patient.postcode, patient.phone, patient.address):
        assert detail not in body, (url, detail)
    for marker in CLINICAL_MARKERS:
        assert marker not in body, (url, marker)


def test_every_admin_url_is_classified_for_ig(admin_world):
    cases = admin_cases(admin_world)
    urls = [url for _, url, *_ in cases]
    assert len(urls) == len(set(urls))
    patterns = {name for name, _, _ in iter_patterns() if name.startswith("admin:")}
    assert {name for name, *_ in cases} == patterns


@pytest.mark.hazard("H-01")
@pytest.mark.usefixtures("admin_settings")
def test_finding_1_every_admin_url_ig_reach_writes_an_access_event_exactly_when_it_shows_a_patient(
    client, ig_user, admin_world
):
    from audit.models import AccessEvent

    patient = admin_world["patient"]
    client.force_login(ig_user)
    for _, url, status, shows, shown in admin_cases(admin_world):
        before = AccessEvent.objects.count()
        response = client.get(url)
        assert response.status_code == status, url
        body = response.content.decode()
        events = list(AccessEvent.objects.filter(request_id=response["X-Request-ID"]))
        assert AccessEvent.objects.count() == before + len(events), url
        if shows == ADMIN_DETAILS:
            assert sorted(event.patient_id for event in events) == sorted(p.pk for p in shown), url
            for event in events:
                assert (event.outcome, event.basis, event.user_id) == (
                    AccessOutcome.ALLOWED,
                    AccessBasis.IG_ADMIN,
                    ig_user.pk,
                ), url
                assert event.page.startswith("admin:"), url
            assert not any(marker in body for marker in CLINICAL_MARKERS), url
            continue
        assert events == [], url
        if shows == ADMIN_NAMES:
            assert_no_patient_details(body, patient, url)
        else:
            assert_no_patient_data(body, patient, url)
    # Every look is in the patient's "who has seen this record", under IG's own basis.
    seen = client.get(reverse("admin:audit_accessevent_patient", args=[patient.pk]))
    pages = {event.page for event in seen.context["page_obj"].object_list if event.basis == AccessBasis.IG_ADMIN}
    assert pages == {
        "admin:patient",
        "admin:patient-search",
        "admin:patient-picker",
        "admin:break-glass-review",
        "admin:objection-match",
        "admin:hl7-message",
        "admin:entry-problem",
        "admin:subject-access",
    }


def test_public_urls_need_no_sign_in(client):
    for name, kind in CLASSIFIED.items():
        if kind == PUBLIC:
            response = client.get(reverse(name))
            # "Check your answers" and the confirmation exist only part way through a request: else, the form.
            without_answers = name in ("optout-request-check", "optout-request-done")
            expected = (302, reverse("optout-request")) if without_answers else (200, None)
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


# --- every partner-token write path (issue 11) ---------------------------------------------------------------------
#
# Each FHIR write path × each kind of token: the one exact status; refused, nothing is written (no record data, no
# involvement, no audit or access row); accepted, exactly one AuditEvent naming the token.

FHIR_WRITES = {
    "POST /fhir/ (Bundle)": ("post", "/fhir/"),
    "POST /fhir/{type}": ("post", "/fhir/Patient"),
    "PUT /fhir/{type}/{id}": ("put", "/fhir/Patient/p1"),
}
TOKEN_KINDS = ["organisation", "personal", "revoked", "none"]
WRITE_STATUS = {
    ("organisation", "POST /fhir/ (Bundle)"): 200,
    ("organisation", "POST /fhir/{type}"): 201,
    ("organisation", "PUT /fhir/{type}/{id}"): 201,
    **{(kind, path): 403 for kind in ["personal"] for path in FHIR_WRITES},
    **{(kind, path): 401 for kind in ["revoked", "none"] for path in FHIR_WRITES},
}


def _fhir_write_body(path_name, patient_nhs_number="9990000018"):
    import json

    subject = {"identifier": {"system": "https://fhir.nhs.uk/Id/nhs-number", "value": patient_nhs_number}}
    patient = {
        "resourceType": "Patient",
        "id": "p1",
        "identifier": [subject["identifier"]],
        "name": [{"family": "Writepath", "given": ["Token"]}],
        "birthDate": "1970-01-01",
    }
    if path_name != "POST /fhir/ (Bundle)":
        return json.dumps(patient).encode()
    condition = {
        "resourceType": "Condition",
        "id": "c1",
        "code": {"text": "Type 2 diabetes mellitus"},
        "subject": subject,
    }
    team = {"resourceType": "CareTeam", "id": "ct1", "status": "active", "name": "Diabetes clinic", "subject": subject}
    entries = [
        {"resource": r, "request": {"method": "POST", "url": r["resourceType"]}} for r in (patient, condition, team)
    ]
    return json.dumps({"resourceType": "Bundle", "type": "transaction", "entry": entries}).encode()


def _written():
    from patients.models import Condition, Patient, SourcePatientId
    from sharing.models import Involvement

    models = (Patient, SourcePatientId, Condition, Involvement, AuditEvent, AccessEvent)
    return {model.__name__: model.objects.count() for model in models}


@pytest.fixture
def write_tokens(other_organisation, clinician):
    from directory.actions import create_api_token, revoke_api_token

    organisation_token, organisation_secret = create_api_token(
        by=None, name="EPR feed", organisation=other_organisation
    )
    _, personal_secret = create_api_token(by=None, name="Viewer", user=clinician)
    revoked, revoked_secret = create_api_token(by=None, name="Old feed", organisation=other_organisation)
    revoke_api_token(by=None, token=revoked)
    secrets = {
        "organisation": organisation_secret,
        "personal": personal_secret,
        "revoked": revoked_secret,
        "none": None,
    }
    return organisation_token, secrets


def test_every_partner_write_path_and_token_kind_is_classified():
    assert set(WRITE_STATUS) == {(kind, path) for kind in TOKEN_KINDS for path in FHIR_WRITES}
    fhir_write_names = {"fhir:base", "fhir:type", "fhir:instance"}
    assert fhir_write_names <= {name for name, _, _ in iter_patterns()}


@pytest.mark.parametrize("kind", TOKEN_KINDS)
@pytest.mark.parametrize("path_name", list(FHIR_WRITES))
def test_every_partner_token_write_path(client, write_tokens, patient, kind, path_name):
    organisation_token, secrets = write_tokens
    method, path = FHIR_WRITES[path_name]
    headers = {"HTTP_AUTHORIZATION": f"Bearer {secrets[kind]}"} if secrets[kind] else {}
    before = _written()
    response = getattr(client, method)(
        path, _fhir_write_body(path_name), content_type="application/fhir+json", **headers
    )
    assert response.status_code == WRITE_STATUS[kind, path_name], response.content
    after = _written()
    if response.status_code >= 400:
        assert after == before  # refused for who is calling: nothing is written
        assert "Writepath" not in response.content.decode()
        return
    [event] = AuditEvent.objects.filter(action=Action.FHIR_SUBMISSION)
    assert after["AuditEvent"] - before["AuditEvent"] == 1 + (path_name == "POST /fhir/ (Bundle)")  # + involvement
    assert (
        event.actor_email
        == f"api-token:{organisation_token.pk}:{organisation_token.prefix}@{organisation_token.organisation.ods_code}"
    )
    assert (event.detail["token"], event.detail["endpoint"]) == (str(organisation_token.pk), f"{method.upper()} {path}")
    assert after["Patient"] == before["Patient"] + 1 and after["AccessEvent"] == before["AccessEvent"]


# --- launch in context from a clinical system (issue 16) ----------------------------------------------------------
#
# /launch/ with each bad token (tests/identity/test_launch.py's BAD_TOKENS) × actors: refused with its reason (400),
# audited as the actor, no patient data, no record opened, no 500; and /launch/continue/ after it finds nothing
# waiting. The token names each actor's own identity provider subject, so only the token is wrong.
LAUNCH_ACTORS = ["anonymous", "outsider", "clinician", "ig_officer", "inactive_professional"]


@pytest.mark.hazard("H-19")
@pytest.mark.hazard("H-03")
@pytest.mark.parametrize("case", list(BAD_TOKENS))
@pytest.mark.parametrize("actor", LAUNCH_ACTORS)
def test_launch_refuses_every_bad_token_for_every_actor(request, signed_in, actor, case, patient, full_record):
    from identity.launch import PENDING_SESSION_KEY
    from sharing.access import LAUNCH_SESSION_KEY

    client = signed_in(actor)
    user = user_of(request, actor)
    if user is not None:
        link_subject(user)
    bad = BAD_TOKENS[case]
    launcher = Launcher(partner=factories.LaunchPartnerFactory(organisation=patient.registered_gp), patient=patient)
    response = client.get(reverse("launch"), bad.make(launcher))
    body = response.content.decode()
    assert response.status_code == 400, case
    assert "We could not open this record" in body
    assert_no_patient_data(body, patient, case)
    (event,) = AuditEvent.objects.filter(action=Action.LAUNCH_REFUSED)
    assert (event.detail["reason"], event.actor_id) == (bad.reason, user.pk if user else None), case
    assert not AuditEvent.objects.filter(action=Action.LAUNCHED).exists()
    assert LAUNCH_SESSION_KEY not in client.session and PENDING_SESSION_KEY not in client.session
    after = client.get(reverse("launch-continue"))
    if user is None:
        assert (after.status_code, after["Location"]) == (302, sign_in_redirect(reverse("launch-continue")))
    else:
        assert after.status_code == 400
        assert_no_patient_data(after.content.decode(), patient, case)
    assert AccessEvent.objects.count() == 0
