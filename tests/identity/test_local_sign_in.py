"""IG's switch for the local sign-in (Organisation.local_sign_in): off, a professional of that organisation cannot
sign in with a password (told to use single sign-on, audited); single sign-on is unaffected; on, the password and
code sign in as before. Through allauth's real views, and the test OpenID provider for single sign-on."""

import pytest
from django.core.cache import cache
from django.test import override_settings
from django.urls import reverse

from audit.names import Action
from directory.models import Professional
from tests import factories
from tests.audit_rows import mark, written_since
from tests.sso_provider import client as provider_client

from .test_sign_in_audit import CALLBACK, DOCTOR, ODS, SECRET, single_sign_on, sso_settings

pytestmark = [pytest.mark.django_db, pytest.mark.hazard("H-19")]

UNUSED_ISSUER = "http://127.0.0.1:9"  # nothing listens: rendering the page must not fetch discovery
MESSAGE = (
    "Your organisation signs in through NHS Care Identity: use the \u201cSign in with NHS Care Identity\u201d button."
)


@pytest.fixture(autouse=True)
def _fresh_rate_limits():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def sso_only():
    return factories.OrganisationFactory(ods_code=ODS, name="Single Sign-on Only Trust", local_sign_in=False)


@pytest.fixture
def sso_only_doctor(sso_only):
    return factories.ProfessionalFactory(
        organisation=sso_only, role=Professional.Role.DOCTOR, sso_subject=DOCTOR["sub"]
    ).user


def password_step(client, email, password=factories.PASSWORD):
    return client.post(reverse("account_login"), {"login": email, "password": password})


def signed_in(client) -> bool:
    return client.get(reverse("my-patients")).status_code == 200


def test_a_professional_whose_organisation_switched_the_local_sign_in_off_is_refused_and_told_why(
    client, sso_only_doctor, settings
):
    start = mark()
    with override_settings(**sso_settings(UNUSED_ISSUER, settings)):
        response = password_step(client, sso_only_doctor.email)
    assert response.status_code == 200  # the sign-in page again, not the code step
    assert MESSAGE in response.content.decode()
    assert not signed_in(client)
    assert client.get(reverse("mfa_authenticate")).status_code == 302  # no half-done sign-in to continue
    [event] = written_since(start)
    assert event.action == Action.SIGN_IN_REFUSED
    assert (event.actor_id, event.target_type, event.target_id) == (sso_only_doctor.pk, "User", str(sso_only_doctor.pk))
    assert (event.detail["reason"], event.detail["via"], event.detail["organisation"]) == (
        "local-sign-in-off",
        "local",
        ODS,
    )


def test_without_single_sign_on_the_refusal_says_whom_to_ask(client, sso_only_doctor):
    response = password_step(client, sso_only_doctor.email)
    page = response.content.decode()
    assert "does not let its staff sign in here with a password" in page
    assert "button" not in page.split("There is a problem", 1)[1].split("</ul>", 1)[0]


def test_a_wrong_password_is_not_told_apart_from_anyone_elses(client, sso_only_doctor, clinician):
    """The refusal comes only after the password is right: otherwise the page would tell anyone which
    organisation an email address belongs to."""
    refused = password_step(client, sso_only_doctor.email, "wrong-password-123").content.decode()
    other = password_step(client, clinician.email, "wrong-password-123").content.decode()
    assert "The email address or password is not right" in refused
    assert "NHS Care Identity" not in refused and "does not let its staff" not in refused
    assert refused.count("is not right") == other.count("is not right")


def test_a_professional_whose_organisation_keeps_the_local_sign_in_still_signs_in(client, clinician):
    start = mark()
    assert password_step(client, clinician.email)["Location"] == reverse("mfa_authenticate")
    client.post(reverse("mfa_authenticate"), {"code": factories.totp_code()})
    assert signed_in(client)
    assert [event.action for event in written_since(start)] == [Action.SIGNED_IN]


def test_an_account_with_no_professional_profile_is_left_as_today(client, no_profile_user):
    """No profile, not staff: the password and code steps as before (and then no record to see)."""
    start = mark()
    assert password_step(client, no_profile_user.email)["Location"] == reverse("mfa_authenticate")
    client.post(reverse("mfa_authenticate"), {"code": factories.totp_code()})
    assert client.get(reverse("home")).status_code == 200
    assert [event.action for event in written_since(start)] == [Action.SIGNED_IN]


def test_single_sign_on_is_unaffected_by_the_switch(client, sso_only_doctor, test_provider_factory, settings):
    provider = test_provider_factory(
        clients=[provider_client("carerecord", redirect_uri=CALLBACK, secret=SECRET)], accounts=[DOCTOR]
    )
    with override_settings(**sso_settings(provider.issuer, settings)):
        start = mark()
        single_sign_on(client, DOCTOR)
        assert signed_in(client)
    sign_ins = [event for event in written_since(start) if event.action.startswith("sign-in.")]
    assert [(event.action, event.detail["via"]) for event in sign_ins] == [(Action.SIGNED_IN, "sso")]
