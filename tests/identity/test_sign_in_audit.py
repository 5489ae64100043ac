"""Both ways in leave the audit rows IG expect: a sign-in (who, how, the acting organisation, from where, which
request), a failed one (the email address tried, never the password), a lockout and a sign-out. The local sign-in
runs through allauth's real views; the single sign-on through the test OpenID provider (tests/sso_provider.py)."""

import pytest
import requests
from django.core.cache import cache
from django.test import override_settings
from django.urls import reverse

from audit.names import Action
from directory.actions import add_role_profile
from directory.adapters import NoAccount
from directory.models import Professional
from tests import factories
from tests.audit_rows import mark, written_since
from tests.sso_provider import account, role, sign_in
from tests.sso_provider import client as provider_client

pytestmark = [pytest.mark.django_db, pytest.mark.hazard("H-19")]

ADDRESS = "203.0.113.7"


@pytest.fixture(autouse=True)
def _fresh_rate_limits():
    """allauth counts failed sign-ins in the cache, per address and per account: each test starts from none, and
    leaves none for the next."""
    cache.clear()
    yield
    cache.clear()


def post(client, name, data):
    return client.post(reverse(name), data, REMOTE_ADDR=ADDRESS)


def password_step(client, email, password=factories.PASSWORD):
    return post(client, "account_login", {"login": email, "password": password})


def code_step(client, code=None):
    return post(client, "mfa_authenticate", {"code": code or factories.totp_code()})


def signed_in(client) -> bool:
    return client.get(reverse("my-patients")).status_code == 200


def details(events) -> list[str]:
    return [value for event in events for value in event.detail.values()]


def test_a_local_sign_in_is_audited_once_with_who_how_where_and_which_request(client, clinician, organisation):
    start = mark()
    assert password_step(client, clinician.email)["Location"] == reverse("mfa_authenticate")
    assert written_since(start) == []  # not signed in yet: the code is still to come
    response = code_step(client)
    assert signed_in(client)
    [event] = written_since(start)
    assert event.action == Action.SIGNED_IN
    assert (event.actor_id, event.actor_email) == (clinician.pk, clinician.email)
    assert (event.target_type, event.target_id) == ("User", str(clinician.pk))
    assert event.detail == {
        "via": "local",
        "organisation": organisation.ods_code,
        "address": ADDRESS,
        "request_id": response["X-Request-ID"],
    }


def test_a_wrong_password_is_audited_with_the_email_tried_and_never_the_password(client, clinician):
    start = mark()
    response = password_step(client, clinician.email.upper(), "not-my-password-at-all")
    assert "The email address or password is not right" in response.content.decode()
    [event] = written_since(start)
    assert event.action == Action.SIGN_IN_FAILED
    assert (event.actor_id, event.actor_email) == (None, "")  # whoever typed it is not known
    assert (event.target_type, event.target_id) == ("User", str(clinician.pk))
    assert event.detail == {
        "via": "local",
        "step": "password",
        "reason": "incorrect-password",
        "email": clinician.email.lower(),
        "address": ADDRESS,
        "request_id": response["X-Request-ID"],
    }
    assert not any("not-my-password" in value for value in details([event]))


def test_an_email_address_no_account_has_is_audited_against_no_account(client):
    start = mark()
    password_step(client, "Nobody@Example.test", "a-guess-at-a-password")
    [event] = written_since(start)
    assert (event.action, event.target_type, event.target_id) == (Action.SIGN_IN_FAILED, NoAccount.__name__, "")
    assert event.detail["email"] == "nobody@example.test"
    assert not any("a-guess" in value for value in details([event]))


def test_a_wrong_code_is_audited_and_does_not_sign_in(client, clinician):
    password_step(client, clinician.email)
    start = mark()
    response = code_step(client, "000000")
    assert "Incorrect code" in response.content.decode()
    assert not signed_in(client)
    [event] = written_since(start)
    assert (event.action, event.target_type, event.target_id) == (
        Action.SIGN_IN_FAILED,
        "User",
        str(clinician.pk),
    )
    assert event.actor_id is None
    assert event.detail == {
        "via": "local",
        "step": "code",
        "reason": "incorrect-code",
        "email": clinician.email,
        "address": ADDRESS,
        "request_id": response["X-Request-ID"],
    }


def test_signing_out_is_audited(client, clinician, organisation):
    password_step(client, clinician.email)
    code_step(client)
    start = mark()
    response = post(client, "account_logout", {})
    assert response.status_code == 302 and not signed_in(client)
    [event] = written_since(start)
    assert (event.action, event.actor_id, event.target_id) == (Action.SIGNED_OUT, clinician.pk, str(clinician.pk))
    assert event.detail == {
        "via": "local",
        "organisation": organisation.ods_code,
        "address": ADDRESS,
        "request_id": response["X-Request-ID"],
    }


def test_a_locked_out_password_attempt_is_audited_as_failed_and_worded_plainly(client, clinician):
    for _ in range(5):
        password_step(client, clinician.email, "wrong-password-123")
    start = mark()
    response = password_step(client, clinician.email)  # the right password, refused for now
    page = response.content.decode()
    assert "You have tried to sign in too many times. Wait a few minutes, then try again." in page
    assert "login attempts" not in page
    assert not signed_in(client)
    [event] = written_since(start)
    assert event.action == Action.SIGN_IN_FAILED
    assert (event.target_type, event.target_id) == ("User", str(clinician.pk))
    assert (event.detail["step"], event.detail["reason"]) == ("password", "locked-out")


def test_a_locked_out_code_attempt_is_audited_as_failed(client, clinician):
    password_step(client, clinician.email)
    for _ in range(5):
        code_step(client, "000000")
    start = mark()
    response = code_step(client)  # the right code, refused for now
    assert "You have tried to sign in too many times" in response.content.decode()
    assert not signed_in(client)
    [event] = written_since(start)
    assert (event.action, event.target_id) == (Action.SIGN_IN_FAILED, str(clinician.pk))
    assert (event.detail["step"], event.detail["reason"], event.detail["via"]) == ("code", "locked-out", "local")


def test_a_wrong_password_when_confirming_who_you_are_names_the_signed_in_user(client, clinician):
    password_step(client, clinician.email)
    code_step(client)
    start = mark()
    post(client, "account_reauthenticate", {"password": "not-it-either-123"})
    [event] = written_since(start)
    assert (event.action, event.actor_id, event.target_id) == (Action.SIGN_IN_FAILED, clinician.pk, str(clinician.pk))
    assert event.detail["reauthentication"] == "yes"
    assert not any("not-it-either" in value for value in details([event]))


# Single sign-on, through the test OpenID provider.

CALLBACK = "http://testserver/accounts/oidc/cis2/login/callback/"
SECRET = "s3cret-for-tests"
ODS = "RSSO1"
DOCTOR = account("910000000101", username="sso.doctor@nhs.test", roles=[role("555000000101", ODS, "R8000")])


@pytest.fixture
def sso_provider(test_provider_factory):
    return test_provider_factory(
        clients=[provider_client("carerecord", redirect_uri=CALLBACK, secret=SECRET)], accounts=[DOCTOR]
    )


def sso_settings(issuer: str, settings) -> dict:
    providers = {**settings.SOCIALACCOUNT_PROVIDERS}
    app = {
        "provider_id": "cis2",
        "name": "NHS Care Identity",
        "client_id": "carerecord",
        "secret": SECRET,
        "settings": {
            "server_url": issuer,
            "token_auth_method": "client_secret_basic",
            "fetch_userinfo": True,
            "oauth_pkce_enabled": True,
            "scope": settings.SSO_SCOPES,
        },
    }
    providers["openid_connect"] = {**providers["openid_connect"], "APPS": [app]}
    return {"SSO_ISSUER": issuer, "SOCIALACCOUNT_PROVIDERS": providers}


def single_sign_on(client, who) -> None:
    """Start at carerecord's button, sign in at the provider's own pages, come back to the callback."""
    start = client.post(reverse("openid_connect_login", kwargs={"provider_id": "cis2"}), REMOTE_ADDR=ADDRESS)
    assert start.status_code == 302
    callback = sign_in(
        requests.Session(), start["Location"], redirect_uri=CALLBACK, username=who["username"], password=who["password"]
    )
    assert callback.startswith(CALLBACK) and "code=" in callback
    client.get(callback.removeprefix("http://testserver"), REMOTE_ADDR=ADDRESS)


@pytest.fixture
def sso_doctor():
    """Works at a practice (home) and also holds a role at the trust: the role the provider's sign-in selects."""
    practice = factories.OrganisationFactory(ods_code="RHOME1", name="Test Home Practice")
    trust = factories.OrganisationFactory(ods_code=ODS, name="Test SSO Trust")
    professional = factories.ProfessionalFactory(
        organisation=practice, role=Professional.Role.GP, sso_subject=DOCTOR["sub"]
    )
    add_role_profile(
        by=None,
        professional=professional,
        organisation=trust,
        role=Professional.Role.DOCTOR,
        provider_role_id=DOCTOR["roles"][0]["person_roleid"],
    )
    return professional.user


def test_a_single_sign_on_is_audited_as_sso_with_the_selected_roles_organisation(
    client, sso_provider, sso_doctor, settings
):
    with override_settings(**sso_settings(sso_provider.issuer, settings)):
        start = mark()
        single_sign_on(client, DOCTOR)
        assert signed_in(client)  # a smartcard sign-in: no code asked
        [event] = [event for event in written_since(start) if event.action.startswith("sign-in.")]
    assert event.action == Action.SIGNED_IN
    assert (event.actor_id, event.target_id) == (sso_doctor.pk, str(sso_doctor.pk))
    assert (event.detail["via"], event.detail["organisation"], event.detail["address"]) == ("sso", ODS, ADDRESS)
