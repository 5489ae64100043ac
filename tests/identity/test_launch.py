"""Launch in context from a partner's clinical system (identity.launch, identity.views), with real parts: RSA and EC
keys made with `cryptography`, tokens signed with PyJWT, a real OpenID Connect discovery document over loopback for
the sign-in redirect, and the real record page at the end.

Every bad token is refused with its own reason, audited (never the token), and opens nothing; a good one opens the
record only through the record page's own access decision, whose AccessEvent names the launch (H-19, H-03).
"""

import base64
import hashlib
import hmac
import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import NamedTuple
from urllib.parse import parse_qs, urlparse

import jwt
import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from django.db import transaction
from django.urls import reverse
from hypothesis import HealthCheck, event, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from audit.models import AccessEvent, AccessOutcome, AuditEvent
from audit.names import Action
from directory.models import Professional
from identity import actions
from identity import launch as launching
from identity.launch import PENDING_SESSION_KEY, Reason
from identity.models import LaunchPartner, LaunchUse
from sharing.access import LAUNCH_SESSION_KEY
from sharing.access import Reason as AccessReason
from tests import factories, sso_provider

pytestmark = pytest.mark.django_db

LAUNCH = reverse("launch")
CONTINUE = reverse("launch-continue")
AUDIENCE = "http://testserver/launch/"  # the test client's /launch/, as the request reaches it
SUBJECT = "910000000001"  # a CIS2-style user id: the identity provider's `sub` for the clinician
OTHER_RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC_KEY = ec.generate_private_key(ec.SECP256R1())
DROP = object()  # a claim left out
REFUSED_PAGE = "We could not open this record"


@dataclass
class Launcher:
    """Makes launch tokens as a partner's clinical system would: for `patient`, naming `subject` as the user."""

    partner: LaunchPartner
    patient: object
    subject: str = SUBJECT
    key: object = field(default_factory=factories.launch_private_key)

    def claims(self, **changes) -> dict:
        now = int(time.time())
        claims = {
            "iss": self.partner.issuer,
            "aud": AUDIENCE,
            "iat": now,
            "exp": now + 30,
            "jti": uuid.uuid4().hex,
            "sub": self.subject,
            "nhs_number": self.patient.nhs_number,
        }
        for name, value in changes.items():
            if value is DROP:
                claims.pop(name)
            else:
                claims[name] = value
        return claims

    def token(self, *, key=None, algorithm=None, headers=None, **changes) -> str:
        algorithm = algorithm or self.partner.algorithm
        return jwt.encode(self.claims(**changes), key or self.key, algorithm=algorithm, headers=headers)

    def params(self, **kwargs) -> dict:
        return {"launch": self.token(**kwargs)}


def link_subject(user, subject=SUBJECT):
    """Link a user's professional to an identity provider subject (as a first single sign-on would)."""
    Professional.objects.filter(user=user).update(sso_subject=subject)
    return user


def jwks(*keys) -> str:
    """A JWKS document of public keys: (kid, private key) pairs."""
    entries = []
    for kid, private_key in keys:
        algorithm = (
            jwt.algorithms.RSAAlgorithm if isinstance(private_key, rsa.RSAPrivateKey) else jwt.algorithms.ECAlgorithm
        )
        entries.append({**json.loads(algorithm.to_jwk(private_key.public_key())), "kid": kid, "use": "sig"})
    return json.dumps({"keys": entries})


def _b64(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def forged_hs256(claims: dict, secret: str) -> str:
    """HS256 "signed" with the partner's public key text as the HMAC secret: the classic algorithm-confusion attack.
    Made by hand, since PyJWT rightly refuses a PEM key as an HMAC secret."""
    signing_input = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode()) + b"." + _b64(json.dumps(claims).encode())
    signature = hmac.new(secret.encode(), signing_input, hashlib.sha256).digest()
    return (signing_input + b"." + _b64(signature)).decode()


def wrong_check_digit(nhs_number: str) -> str:
    return nhs_number[:9] + str((int(nhs_number[9]) + 1) % 10)


def _deactivated(launcher):
    LaunchPartner.objects.filter(pk=launcher.partner.pk).update(active=False)
    return launcher.params()


def _organisation_closed(launcher):
    type(launcher.partner.organisation).objects.filter(pk=launcher.partner.organisation_id).update(active=False)
    return launcher.params()


def _jwks_without_the_kid(launcher):
    LaunchPartner.objects.filter(pk=launcher.partner.pk).update(public_key=jwks(("2026-01", launcher.key)))
    return launcher.params(headers={"kid": "2026-02"})


def _key_unreadable(launcher):
    """A key admin would refuse, put there some other way: refused as unusable, never a server error."""
    LaunchPartner.objects.filter(pk=launcher.partner.pk).update(public_key="-----BEGIN PUBLIC KEY-----\nbroken")
    return launcher.params()


def _used_once_already(launcher):
    params = launcher.params()
    actions.use_token(launching.verify(params["launch"], audience=AUDIENCE))  # the first use, through the real code
    return params


def _now():
    return int(time.time())


class BadToken(NamedTuple):
    make: object  # Launcher -> the query parameters sent to /launch/
    reason: Reason
    claim: str = ""
    partner_known: bool = True  # the refusal's audit row names the partner


BAD_TOKENS = {
    "no token": BadToken(lambda launcher: {}, Reason.NO_TOKEN, partner_known=False),
    "malformed": BadToken(lambda launcher: {"launch": "not-a.jwt"}, Reason.MALFORMED, partner_known=False),
    "alg none": BadToken(
        lambda launcher: {"launch": jwt.encode(launcher.claims(), None, algorithm="none")},
        Reason.ALGORITHM_NOT_ALLOWED,
        partner_known=False,
    ),
    "HS256 signed with the public key text": BadToken(
        lambda launcher: {"launch": forged_hs256(launcher.claims(), launcher.partner.public_key)},
        Reason.ALGORITHM_NOT_ALLOWED,
        partner_known=False,
    ),
    "alg mismatch (PS256 for an RS256 partner)": BadToken(
        lambda launcher: launcher.params(algorithm="PS256"), Reason.ALGORITHM_MISMATCH
    ),
    "unknown iss": BadToken(
        lambda launcher: launcher.params(iss="https://unknown.test"), Reason.UNKNOWN_ISSUER, partner_known=False
    ),
    "missing iss": BadToken(
        lambda launcher: launcher.params(iss=DROP), Reason.MISSING_CLAIM, "iss", partner_known=False
    ),
    "iss parameter not the token's": BadToken(
        lambda launcher: {**launcher.params(), "iss": "https://other.test"}, Reason.ISSUER_MISMATCH, partner_known=False
    ),
    "inactive partner": BadToken(_deactivated, Reason.PARTNER_INACTIVE),
    "partner of an inactive organisation": BadToken(_organisation_closed, Reason.ORGANISATION_INACTIVE),
    "registered key unusable": BadToken(_key_unreadable, Reason.KEY_UNUSABLE),
    "signed with another key": BadToken(lambda launcher: launcher.params(key=OTHER_RSA_KEY), Reason.BAD_SIGNATURE),
    "JWKS with no key of the token's kid": BadToken(_jwks_without_the_kid, Reason.UNKNOWN_KEY),
    "wrong aud": BadToken(
        lambda launcher: launcher.params(aud="https://elsewhere.test/launch/"), Reason.WRONG_AUDIENCE
    ),
    "missing aud": BadToken(lambda launcher: launcher.params(aud=DROP), Reason.MISSING_CLAIM, "aud"),
    "missing exp": BadToken(lambda launcher: launcher.params(exp=DROP), Reason.MISSING_CLAIM, "exp"),
    "missing iat": BadToken(lambda launcher: launcher.params(iat=DROP), Reason.MISSING_CLAIM, "iat"),
    "missing jti": BadToken(lambda launcher: launcher.params(jti=DROP), Reason.MISSING_CLAIM, "jti"),
    "missing sub": BadToken(lambda launcher: launcher.params(sub=DROP), Reason.MISSING_CLAIM, "sub"),
    "missing nhs_number": BadToken(
        lambda launcher: launcher.params(nhs_number=DROP), Reason.MISSING_CLAIM, "nhs_number"
    ),
    "exp not a number": BadToken(lambda launcher: launcher.params(exp="soon"), Reason.INVALID_CLAIM, "exp"),
    "sub not a string": BadToken(lambda launcher: launcher.params(sub=910000000001), Reason.INVALID_CLAIM, "sub"),
    "sub holding a lone surrogate": BadToken(
        lambda launcher: launcher.params(sub="910\ud800"), Reason.INVALID_CLAIM, "sub"
    ),
    "jti holding a NUL": BadToken(lambda launcher: launcher.params(jti="a\x00b"), Reason.INVALID_CLAIM, "jti"),
    "exp infinite": BadToken(lambda launcher: launcher.params(exp=float("inf")), Reason.INVALID_CLAIM, "exp"),
    "jti too long to keep": BadToken(lambda launcher: launcher.params(jti="j" * 201), Reason.INVALID_CLAIM, "jti"),
    "expired": BadToken(lambda launcher: launcher.params(iat=_now() - 50, exp=_now() - 20), Reason.EXPIRED),
    "issued in the future": BadToken(
        lambda launcher: launcher.params(iat=_now() + 120, exp=_now() + 150), Reason.NOT_YET_VALID
    ),
    "exp - iat over 60 s": BadToken(
        lambda launcher: launcher.params(iat=_now(), exp=_now() + 61), Reason.TOO_LONG_LIVED
    ),
    "replayed jti": BadToken(_used_once_already, Reason.REPLAYED),
    "invalid NHS number": BadToken(
        lambda launcher: launcher.params(nhs_number=wrong_check_digit(launcher.patient.nhs_number)),
        Reason.INVALID_NHS_NUMBER,
    ),
    "NHS number with spaces": BadToken(
        lambda launcher: launcher.params(nhs_number=launcher.patient.nhs_number_display), Reason.INVALID_NHS_NUMBER
    ),
}


@pytest.fixture
def partner(organisation):
    return factories.LaunchPartnerFactory(organisation=organisation, name="EMIS Web, Riverside")


@pytest.fixture
def launcher(partner, patient):
    return Launcher(partner=partner, patient=patient)


def refusals():
    return AuditEvent.objects.filter(action=Action.LAUNCH_REFUSED)


def assert_nothing_opened(client, response, patient):
    body = response.content.decode()
    assert patient.nhs_number not in body and patient.nhs_number_display not in body
    assert patient.family_name not in body and patient.family_name.upper() not in body
    assert LAUNCH_SESSION_KEY not in client.session
    assert not AuditEvent.objects.filter(action=Action.LAUNCHED).exists()


def assert_token_not_kept(token: str):
    """Neither the token nor any of its parts is in any audit row."""
    for part in [token, *token.split(".")]:
        if len(part) >= 8:
            assert not any(part in json.dumps(event.detail) for event in AuditEvent.objects.all())
            assert not AccessEvent.objects.filter(path__contains=part).exists()


# --- every bad token -----------------------------------------------------------------------------------------------


@pytest.mark.hazard("H-19")
@pytest.mark.parametrize("case", list(BAD_TOKENS))
def test_each_bad_token_is_refused_with_its_reason_and_audited(client, launcher, patient, case):
    bad = BAD_TOKENS[case]
    params = bad.make(launcher)
    uses = LaunchUse.objects.count()
    response = client.get(LAUNCH, params)
    assert response.status_code == 400
    assert response.templates[0].name == "identity/launch_refused.html"
    body = response.content.decode()
    assert REFUSED_PAGE in body and "Search for the patient" in body and response["X-Request-ID"] in body
    (event,) = refusals()
    assert (event.detail["reason"], event.detail.get("claim", "")) == (bad.reason.value, bad.claim)
    assert event.detail["request_id"] == response["X-Request-ID"]
    assert event.actor_id is None
    if bad.partner_known:
        assert (event.target_type, event.target_id) == ("LaunchPartner", str(launcher.partner.pk))
        assert event.detail["partner"] == launcher.partner.issuer
    else:
        assert event.target_type == "LaunchRequest" and "partner" not in event.detail
    assert LaunchUse.objects.count() == uses  # a refused token is not spent (the replayed one was, once, before)
    assert_nothing_opened(client, response, patient)
    assert PENDING_SESSION_KEY not in client.session
    assert AccessEvent.objects.count() == 0
    if params.get("launch"):
        assert_token_not_kept(params["launch"])


@pytest.mark.hazard("H-19")
def test_each_reason_says_what_went_wrong_in_its_own_words():
    explanations = [launching.EXPLANATIONS[reason] for reason in Reason if reason != Reason.NO_SUCH_PATIENT]
    assert len(set(explanations)) == len(explanations) and all(explanations)


@pytest.mark.hazard("H-19")
def test_a_token_posted_is_checked_the_same(client, launcher):
    response = client.post(LAUNCH, launcher.params(key=OTHER_RSA_KEY))
    assert response.status_code == 400
    assert refusals().get().detail["reason"] == Reason.BAD_SIGNATURE


@pytest.mark.hazard("H-19")
def test_the_configured_audience_replaces_the_request_url(client, settings, launcher):
    settings.LAUNCH_AUDIENCE = "https://carerecord.example.nhs.uk/launch/"
    assert client.get(LAUNCH, launcher.params()).status_code == 400  # aud is the request's URL: not this one
    assert refusals().get().detail["reason"] == Reason.WRONG_AUDIENCE
    signed_in = link_subject(factories.ProfessionalFactory().user)
    client.force_login(signed_in)
    response = client.get(LAUNCH, launcher.params(aud=settings.LAUNCH_AUDIENCE))
    assert (response.status_code, response["Location"]) == (302, CONTINUE)


# --- opening the record ------------------------------------------------------------------------------------------


def open_launch(client, params, *, method="get"):
    """/launch/ → /launch/continue/ → the record page; each response."""
    first = getattr(client, method)(LAUNCH, params)
    assert (first.status_code, first["Location"]) == (302, CONTINUE), first.content[:500]
    second = client.get(CONTINUE)
    return first, second


@pytest.mark.hazard("H-19")
@pytest.mark.hazard("H-03")
@pytest.mark.parametrize("method", ["get", "post"])
def test_a_clinician_in_the_care_team_lands_on_the_record_and_its_access_event_names_the_launch(
    client, launcher, clinician, patient, method
):
    client.force_login(link_subject(clinician))
    params = launcher.params()
    _, landed = open_launch(client, params, method=method)
    record = reverse("record-summary", args=[patient.pk])
    assert (landed.status_code, landed["Location"]) == (302, record)
    (launched,) = AuditEvent.objects.filter(action=Action.LAUNCHED)
    jti = jwt.decode(params["launch"], options={"verify_signature": False})["jti"]
    assert (launched.actor_id, launched.patient_id, launched.detail["jti"]) == (clinician.pk, patient.pk, jti)
    assert launched.detail["partner"] == launcher.partner.issuer
    response = client.get(record)
    assert response.status_code == 200
    (event,) = AccessEvent.objects.all()
    assert (event.outcome, event.user_id, event.patient_id) == (AccessOutcome.ALLOWED, clinician.pk, patient.pk)
    assert event.launch == f"EMIS Web, Riverside ({launcher.partner.issuer}) jti={jti}"
    # Named once: the next record page is an ordinary look.
    client.get(record)
    assert AccessEvent.objects.order_by("-pk").first().launch == ""
    assert LaunchUse.objects.filter(partner=launcher.partner, jti=jti).count() == 1
    assert not refusals().exists()
    assert_token_not_kept(params["launch"])


@pytest.mark.hazard("H-19")
@pytest.mark.hazard("H-03")
def test_an_outsider_launched_is_refused_by_the_record_page_whose_access_event_names_the_launch(
    client, launcher, outsider, patient
):
    client.force_login(link_subject(outsider))
    _, landed = open_launch(client, launcher.params())
    record = reverse("record-summary", args=[patient.pk])
    assert landed["Location"] == record
    response = client.get(record)
    assert response.status_code == 403
    body = response.content.decode()
    assert "You cannot see this record" in body
    assert reverse("break-glass", args=[patient.pk]) in body  # the usual emergency access offer
    assert patient.family_name.upper() not in body.upper()
    (event,) = AccessEvent.objects.all()
    assert (event.outcome, event.reason) == (AccessOutcome.REFUSED, AccessReason.NO_RELATIONSHIP)
    assert event.launch.startswith(f"EMIS Web, Riverside ({launcher.partner.issuer}) jti=")


@pytest.mark.hazard("H-19")
def test_a_token_opens_the_record_once_and_is_refused_the_second_time(client, launcher, clinician, patient):
    client.force_login(link_subject(clinician))
    params = launcher.params()
    _, landed = open_launch(client, params)
    assert landed["Location"] == reverse("record-summary", args=[patient.pk])
    again = client.get(LAUNCH, params)
    assert again.status_code == 400 and REFUSED_PAGE in again.content.decode()
    assert refusals().get().detail["reason"] == Reason.REPLAYED
    assert AuditEvent.objects.filter(action=Action.LAUNCHED).count() == 1


@pytest.mark.hazard("H-19")
def test_two_uses_of_one_token_at_once_open_it_once(launcher):
    """The database's unique (partner, jti) decides, not a read before the write: the second insert fails."""
    launch = launching.verify(launcher.token(), audience=AUDIENCE)
    actions.use_token(launch)
    with pytest.raises(launching.LaunchRefused) as refused:
        actions.use_token(launch)
    assert refused.value.reason == Reason.REPLAYED
    assert LaunchUse.objects.count() == 1


@pytest.mark.hazard("H-19")
@pytest.mark.parametrize("algorithm", ["ES256", "PS256"])
def test_ec_and_rsa_pss_partners(client, organisation, patient, clinician, algorithm):
    key = EC_KEY if algorithm == "ES256" else OTHER_RSA_KEY
    partner = factories.LaunchPartnerFactory(
        organisation=organisation, algorithm=algorithm, public_key=factories.public_pem(key)
    )
    client.force_login(link_subject(clinician))
    _, landed = open_launch(client, Launcher(partner=partner, patient=patient, key=key).params())
    assert landed["Location"] == reverse("record-summary", args=[patient.pk])


@pytest.mark.hazard("H-19")
def test_a_jwks_partner_signs_with_either_key_while_rotating(client, organisation, patient, clinician):
    old, new = factories.launch_private_key(), OTHER_RSA_KEY
    partner = factories.LaunchPartnerFactory(organisation=organisation, public_key=jwks(("old", old), ("new", new)))
    client.force_login(link_subject(clinician))
    for kid, key in (("old", old), ("new", new)):
        launcher = Launcher(partner=partner, patient=patient, key=key)
        _, landed = open_launch(client, launcher.params(headers={"kid": kid}))
        assert landed["Location"] == reverse("record-summary", args=[patient.pk]), kid
    wrong = Launcher(partner=partner, patient=patient, key=new).params(headers={"kid": "old"})
    assert client.get(LAUNCH, wrong).status_code == 400
    assert refusals().get().detail["reason"] == Reason.BAD_SIGNATURE


# --- the user -------------------------------------------------------------------------------------------------------


@pytest.mark.hazard("H-19")
def test_a_launch_for_someone_else_is_refused_and_the_user_stays_signed_in(client, partner, patient, clinician):
    client.force_login(link_subject(clinician))
    launcher = Launcher(partner=partner, patient=patient, subject="910000000999")
    first = client.get(LAUNCH, launcher.params())
    assert first["Location"] == CONTINUE
    response = client.get(CONTINUE)
    assert response.status_code == 403
    assert REFUSED_PAGE in response.content.decode()
    assert "different person" in response.content.decode()
    event = refusals().get()
    assert (event.detail["reason"], event.detail["subject"], event.actor_id) == (
        Reason.USER_MISMATCH,
        "910000000999",
        clinician.pk,
    )
    assert PENDING_SESSION_KEY not in client.session  # dropped: continuing again finds nothing waiting
    assert client.session["_auth_user_id"] == str(clinician.pk)
    assert_nothing_opened(client, response, patient)
    assert AccessEvent.objects.count() == 0
    assert client.get(CONTINUE).status_code == 400
    assert refusals().order_by("-pk").first().detail["reason"] == Reason.NO_PENDING


@pytest.mark.hazard("H-19")
def test_signed_in_without_a_single_sign_on_subject_is_refused(client, launcher, clinician, patient):
    client.force_login(clinician)  # signed in locally; never linked to an identity provider subject
    _, response = open_launch(client, launcher.params())
    assert response.status_code == 403
    assert "not linked to an NHS Care Identity" in response.content.decode()
    assert refusals().get().detail["reason"] == Reason.NO_SUBJECT
    assert_nothing_opened(client, response, patient)


@pytest.mark.hazard("H-19")
@pytest.mark.hazard("H-03")
def test_no_patient_with_that_nhs_number_gets_the_record_pages_own_refusal(client, partner, clinician, patient):
    client.force_login(link_subject(clinician))
    nobody = factories.PatientFactory.build().nhs_number  # a valid NHS number no patient here has
    launcher = Launcher(partner=partner, patient=patient)
    _, response = open_launch(client, launcher.params(nhs_number=nobody))
    assert response.status_code == 403
    body = response.content.decode()
    assert "You cannot see this record" in body and "or the record does not exist" in body
    assert "break-glass" not in body  # no patient to break glass for
    (event,) = AccessEvent.objects.all()
    assert (event.outcome, event.reason, event.page, event.patient_id) == (
        AccessOutcome.REFUSED,
        AccessReason.NO_SUCH_PATIENT,
        "launch",
        None,
    )
    assert (event.user_id, event.path) == (clinician.pk, CONTINUE)
    refused = refusals().get()
    assert (refused.detail["reason"], refused.detail["partner"]) == (Reason.NO_SUCH_PATIENT, partner.issuer)
    assert nobody not in json.dumps(refused.detail)
    assert LAUNCH_SESSION_KEY not in client.session


@pytest.mark.hazard("H-19")
def test_anonymous_with_single_sign_on_off_is_told_launch_needs_it(client, launcher, patient):
    response = client.get(LAUNCH, launcher.params())
    assert response.status_code == 403
    assert "needs single sign-on" in response.content.decode()
    assert refusals().get().detail["reason"] == Reason.SSO_NOT_ENABLED
    assert PENDING_SESSION_KEY not in client.session
    assert_nothing_opened(client, response, patient)


# --- the sign-in a launch needs -------------------------------------------------------------------------------------


class _Discovery(BaseHTTPRequestHandler):
    document = b""

    def do_GET(self):
        if self.path != "/.well-known/openid-configuration":
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(self.document)

    def log_message(self, *args):
        pass


@pytest.fixture
def identity_provider(settings):
    """Single sign-on configured against an OpenID Connect discovery document served on loopback: enough for
    carerecord to build the real authorization request (the sign-in itself is the lead's provider-backed journey)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Discovery)
    issuer = f"http://127.0.0.1:{server.server_port}"
    _Discovery.document = json.dumps(
        {
            "issuer": issuer,
            "authorization_endpoint": f"{issuer}/authorize",
            "token_endpoint": f"{issuer}/token",
            "userinfo_endpoint": f"{issuer}/userinfo",
            "jwks_uri": f"{issuer}/jwks",
            "end_session_endpoint": f"{issuer}/session/end",
        }
    ).encode()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    app = {
        "provider_id": "cis2",
        "name": "NHS Care Identity",
        "client_id": "carerecord-test",
        "secret": "test-secret",
        "settings": {"server_url": issuer, "token_auth_method": "client_secret_basic", "oauth_pkce_enabled": True},
    }
    settings.SSO_ISSUER = issuer
    providers = dict(settings.SOCIALACCOUNT_PROVIDERS)
    providers["openid_connect"] = {**providers["openid_connect"], "APPS": [app]}
    settings.SOCIALACCOUNT_PROVIDERS = providers
    yield issuer
    server.shutdown()
    server.server_close()


@pytest.mark.hazard("H-19")
@pytest.mark.hazard("H-03")
def test_anonymous_is_sent_to_a_silent_sign_in_then_the_launch_continues(
    client, identity_provider, launcher, clinician, patient
):
    response = client.get(LAUNCH, launcher.params())
    assert response.status_code == 302
    location = urlparse(response["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == f"{identity_provider}/authorize"
    query = parse_qs(location.query)
    assert query["prompt"] == ["none"] and query["client_id"] == ["carerecord-test"]
    assert query["redirect_uri"] == ["http://testserver/accounts/oidc/cis2/login/callback/"]
    pending = client.session[PENDING_SESSION_KEY]
    assert (pending["sub"], pending["nhs_number"], pending["partner_id"]) == (
        SUBJECT,
        patient.nhs_number,
        launcher.partner.pk,
    )
    assert time.time() + 290 < pending["expires_at"] <= time.time() + 300
    assert LAUNCH_SESSION_KEY not in client.session and AccessEvent.objects.count() == 0
    # The provider signs the clinician in and sends them back to /launch/continue/ (the lead's journey drives the
    # provider's own pages; here the sign-in is force_login on the same session).
    client.force_login(link_subject(clinician))
    landed = client.get(CONTINUE)
    record = reverse("record-summary", args=[patient.pk])
    assert (landed.status_code, landed["Location"]) == (302, record)
    assert client.get(record).status_code == 200
    assert AccessEvent.objects.get().launch.endswith(f"jti={pending['jti']}")


@pytest.mark.hazard("H-19")
def test_a_launch_left_waiting_too_long_is_refused(client, identity_provider, launcher, clinician, patient):
    assert client.get(LAUNCH, launcher.params()).status_code == 302
    session = client.session
    session[PENDING_SESSION_KEY] = {**session[PENDING_SESSION_KEY], "expires_at": time.time() - 1}
    session.save()
    client.force_login(link_subject(clinician))
    response = client.get(CONTINUE)
    assert response.status_code == 400 and "waited too long" in response.content.decode()
    event = refusals().get()
    assert (event.detail["reason"], event.actor_id, event.detail["partner"]) == (
        Reason.PENDING_EXPIRED,
        clinician.pk,
        launcher.partner.issuer,
    )
    assert_nothing_opened(client, response, patient)


@pytest.mark.hazard("H-19")
@pytest.mark.parametrize("switched_off", ["partner", "organisation"])
def test_a_partner_switched_off_during_the_sign_in_opens_nothing(
    client, identity_provider, launcher, clinician, patient, switched_off
):
    assert client.get(LAUNCH, launcher.params()).status_code == 302
    if switched_off == "partner":
        LaunchPartner.objects.filter(pk=launcher.partner.pk).update(active=False)
    else:
        type(launcher.partner.organisation).objects.filter(pk=launcher.partner.organisation_id).update(active=False)
    client.force_login(link_subject(clinician))
    response = client.get(CONTINUE)
    assert response.status_code == 400
    expected = Reason.PARTNER_INACTIVE if switched_off == "partner" else Reason.ORGANISATION_INACTIVE
    assert refusals().get().detail["reason"] == expected
    assert_nothing_opened(client, response, patient)


@pytest.mark.hazard("H-19")
def test_continue_with_nothing_waiting_is_a_clear_page(client, clinician):
    client.force_login(link_subject(clinician))
    response = client.get(CONTINUE)
    assert response.status_code == 400
    assert "no launch from your clinical system waiting" in response.content.decode()
    event = refusals().get()
    assert (event.detail["reason"], event.actor_id, event.target_type) == (
        Reason.NO_PENDING,
        clinician.pk,
        "LaunchRequest",
    )


def test_continue_needs_a_signed_in_user(client):
    response = client.get(CONTINUE)
    assert response.status_code == 302 and response["Location"].startswith(reverse("account_login"))


@pytest.mark.django_db(transaction=True)
@pytest.mark.hazard("H-19")
@pytest.mark.hazard("H-03")
def test_through_a_real_provider_a_launch_signs_the_clinician_in_then_signs_in_silently(
    settings, live_server, test_provider_factory, launcher, clinician, patient, organisation
):
    """carerecord on a live server and npm's oidc-provider (tests/sso_provider.py), a requests.Session as the browser:
    the first launch finds no provider session (login_required), so the clinician signs in on the provider's page and
    lands on the record; the second, with the provider's session live, signs in with no page at all."""
    link_subject(clinician)
    callback = f"{live_server.url}/accounts/oidc/cis2/login/callback/"
    person = sso_provider.account(
        SUBJECT, username="ada@nhs.test", roles=[sso_provider.role("555000000001", organisation.ods_code, "R0260")]
    )
    provider = test_provider_factory(
        clients=[sso_provider.client("carerecord", redirect_uri=callback, secret="launch-secret")], accounts=[person]
    )
    app = {
        "provider_id": "cis2",
        "name": "NHS Care Identity",
        "client_id": "carerecord",
        "secret": "launch-secret",
        "settings": {
            "server_url": provider.issuer,
            "token_auth_method": "client_secret_basic",
            "fetch_userinfo": True,
            "scope": settings.SSO_SCOPES,  # CIS2's, with the roles and the selected role
        },
    }
    settings.SSO_ISSUER = provider.issuer
    settings.SOCIALACCOUNT_PROVIDERS = {
        "openid_connect": {**settings.SOCIALACCOUNT_PROVIDERS["openid_connect"], "APPS": [app]}
    }
    browser = requests.Session()
    record = f"{live_server.url}{reverse('record-summary', args=[patient.pk])}"

    def launch(token):
        sent = browser.get(f"{live_server.url}{LAUNCH}", params={"launch": token}, allow_redirects=False)
        assert sent.status_code == 302 and "prompt=none" in sent.headers["Location"], sent.text[:500]
        return sso_provider.follow(
            browser, browser.get(sent.headers["Location"], allow_redirects=False), stop_at=callback
        )

    def continue_to_record(back):
        landed = browser.get(back, allow_redirects=False)
        assert (landed.status_code, landed.headers["Location"]) == (302, CONTINUE), landed.text[:500]
        opened = browser.get(f"{live_server.url}{CONTINUE}", allow_redirects=False)
        assert (opened.status_code, opened.headers["Location"]) == (302, record.removeprefix(live_server.url))
        page = browser.get(record, allow_redirects=False)
        assert page.status_code == 200 and patient.nhs_number_display in page.text

    first = launcher.token(aud=f"{live_server.url}{LAUNCH}")
    back = launch(first)
    assert "error=login_required" in back  # no provider session yet: silent sign-in cannot be done
    interactive = browser.get(back, allow_redirects=False)
    assert interactive.status_code == 302 and "prompt=none" not in interactive.headers["Location"]
    back = sso_provider.sign_in(
        browser,
        interactive.headers["Location"],
        redirect_uri=callback,
        username="ada@nhs.test",
        password=person["password"],
    )
    continue_to_record(back)
    # Signed out of carerecord only (its session cookie gone); the provider's session is still live.
    for cookie in [cookie for cookie in browser.cookies if cookie.name == "sessionid"]:
        browser.cookies.clear(cookie.domain, cookie.path, cookie.name)
    second = launcher.token(aud=f"{live_server.url}{LAUNCH}")
    back = launch(second)
    assert "code=" in back  # silent: straight back with a code, no page shown
    continue_to_record(back)
    labels = list(AccessEvent.objects.order_by("pk").values_list("launch", flat=True))
    jtis = [jwt.decode(token, options={"verify_signature": False})["jti"] for token in (first, second)]
    assert [label.rsplit("jti=", 1)[-1] for label in labels] == jtis
    assert AuditEvent.objects.filter(action=Action.LAUNCHED, actor_id=clinician.pk).count() == 2


# --- fuzzing the parameter ----------------------------------------------------------------------------------------

_text = st.text(alphabet=st.characters(exclude_categories=("Cs",)), max_size=300)
_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
_CLAIM_NAMES = st.sampled_from(["iss", "aud", "exp", "iat", "nbf", "jti", "sub", "nhs_number"]) | st.text(max_size=8)


def _segment(value) -> str:
    return _b64(json.dumps(value).encode()).decode()


@st.composite
def _jwt_shaped(draw, issuer: str):
    """Three base64url segments: mostly a header naming a partner's algorithm over a JSON payload from the partner,
    with a signature of random bytes."""
    algorithms = st.sampled_from(["RS256", "PS256", "ES256", "HS256", "none"]) | st.text(max_size=8)
    header = draw(
        st.fixed_dictionaries(
            {"alg": st.just("RS256") | algorithms},
            optional={"kid": st.text(max_size=12) | _json_values, "typ": st.just("JWT") | _json_values},
        )
    )
    payload = draw(st.dictionaries(_CLAIM_NAMES, _json_values, max_size=8))
    if draw(st.integers(0, 4)):
        payload["iss"] = issuer  # past the partner look-up, to the signature
    body = _segment(payload) if draw(st.integers(0, 4)) else _b64(draw(st.binary(max_size=64))).decode()
    return f"{_segment(header)}.{body}.{_b64(draw(st.binary(max_size=300))).decode()}"


@st.composite
def _signed(draw, issuer: str):
    """Genuinely signed by the partner's key, with claims replaced by anything or left out: past the signature, to
    the claim checks and the single-use insert."""
    now = int(time.time())
    claims = {"iss": issuer, "aud": AUDIENCE, "iat": now, "exp": now + 30, "jti": uuid.uuid4().hex}
    claims |= {"sub": SUBJECT, "nhs_number": "9990000018"}
    for name in draw(st.lists(st.sampled_from([*claims, "nbf"]), max_size=3, unique=True)):
        if draw(st.booleans()):
            claims[name] = draw(_json_values | st.integers(min_value=-(2**70), max_value=2**70))
        else:
            claims.pop(name, None)
    # PyJWS signs the payload as given (PyJWT's encode would refuse a non-string iss before signing).
    return jwt.PyJWS().encode(json.dumps(claims).encode(), factories.launch_private_key(), algorithm="RS256")


_huge = st.integers(min_value=8_000, max_value=60_000).flatmap(
    lambda n: st.sampled_from(["a" * n, "e" * n + "." + "e" * n + "." + "e" * n, _segment({"iss": "x" * n}) + ".e.e"])
)


@pytest.mark.hazard("H-19")
@hypothesis_settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture], database=None
)
@given(data=st.data())
def test_fuzz_whatever_the_launch_parameter_holds_nothing_opens_and_nothing_breaks(client, partner, data):
    value = data.draw(st.one_of(_text, _jwt_shaped(partner.issuer), _signed(partner.issuer), _huge), label="launch")
    method = data.draw(st.sampled_from(["get", "post"]), label="method")
    with transaction.atomic():
        response = getattr(client, method)(LAUNCH, {"launch": value})
        launched = AuditEvent.objects.filter(action=Action.LAUNCHED).exists()
        reasons = [refused.detail["reason"] for refused in refusals()]
        transaction.set_rollback(True)
    event(f"{response.status_code} {reasons}")
    # A token that passes every check still opens nothing for an anonymous user with single sign-on off.
    assert response.status_code == (403 if reasons == [Reason.SSO_NOT_ENABLED] else 400), response.content[:500]
    assert not launched and LAUNCH_SESSION_KEY not in client.session and PENDING_SESSION_KEY not in client.session
