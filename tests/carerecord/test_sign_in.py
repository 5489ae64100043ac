"""Sign-in: password then TOTP, lockout after repeated failures, session limits, security headers."""

import time
from datetime import timedelta

import pytest
import time_machine
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone

from carerecord.middleware import SIGNED_IN_AT
from tests import factories

pytestmark = pytest.mark.django_db


def sign_in(client, email, password=factories.PASSWORD):
    return client.post(reverse("account_login"), {"login": email, "password": password})


def test_password_then_totp_signs_in(client, clinician):
    response = sign_in(client, clinician.email)
    assert response.status_code == 302
    assert response["Location"] == reverse("mfa_authenticate")
    assert client.get(reverse("my-patients")).status_code == 302  # not signed in until the code is given
    response = client.post(reverse("mfa_authenticate"), {"code": factories.totp_code()})
    assert response.status_code == 302
    assert client.get(reverse("my-patients")).status_code == 200


def test_a_wrong_totp_code_does_not_sign_in(client, clinician):
    sign_in(client, clinician.email)
    response = client.post(reverse("mfa_authenticate"), {"code": "000000"})
    assert response.status_code == 200
    assert "Incorrect code" in response.content.decode()
    assert client.get(reverse("my-patients")).status_code == 302


def test_without_an_authenticator_every_page_leads_to_setting_one_up(client, organisation):
    user = factories.ProfessionalFactory(organisation=organisation, user__totp=False).user
    client.force_login(user)
    for url in [reverse("home"), reverse("patient-search"), reverse("my-patients")]:
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("mfa_activate_totp"))
    # allauth asks for the password again (recent authentication) before showing the QR code.
    assert client.get(reverse("mfa_activate_totp"))["Location"].startswith(reverse("account_reauthenticate"))


def test_repeated_failed_sign_ins_lock_the_account_out(client, clinician):
    for _ in range(5):
        assert sign_in(client, clinician.email, "wrong-password-123").status_code == 200
    response = sign_in(client, clinician.email)  # even the right password is refused for now
    assert response.status_code == 200  # the sign-in form again, with the message, not signed in
    assert "_auth_user_id" not in client.session
    assert "You have tried to sign in too many times" in response.content.decode()


def _session_expiry(client):
    from django.contrib.sessions.models import Session

    return Session.objects.get(session_key=client.session.session_key).expire_date


def test_session_idle_timeout_is_renewed_by_use_at_most_once_a_minute(client, clinician, settings):
    assert settings.SESSION_COOKIE_AGE == 15 * 60
    client.force_login(clinician)
    with time_machine.travel(timezone.now(), tick=False) as clock:
        client.get(reverse("home"))
        first = _session_expiry(client)
        assert first == timezone.now() + timedelta(minutes=15)
        clock.shift(timedelta(seconds=30))
        client.get(reverse("home"))
        assert _session_expiry(client) == first  # not written again within the minute
        clock.shift(timedelta(seconds=31))
        client.get(reverse("home"))
        assert _session_expiry(client) == first + timedelta(seconds=61)  # renewed by use


@pytest.mark.hazard("H-11")
def test_session_ends_after_fifteen_idle_minutes(client, clinician):
    client.force_login(clinician)
    with time_machine.travel(timezone.now(), tick=False) as clock:
        assert client.get(reverse("home")).status_code == 200
        clock.shift(timedelta(minutes=14))
        assert client.get(reverse("home")).status_code == 200
        clock.shift(timedelta(minutes=15, seconds=1))
        response = client.get(reverse("my-patients"))  # not "/": signed out, that is the public landing page
        assert response.status_code == 302 and response["Location"].startswith(reverse("account_login"))


@pytest.mark.hazard("H-11")
def test_session_ends_after_its_absolute_age(client, clinician):
    client.force_login(clinician)
    assert client.get(reverse("home")).status_code == 200
    session = client.session
    session[SIGNED_IN_AT] = time.time() - 13 * 3600
    session.save()
    response = client.get(reverse("home"))
    assert response.status_code == 302 and response["Location"].startswith(reverse("account_login"))
    assert client.get(reverse("my-patients")).status_code == 302


def test_passwords_need_twelve_characters():
    with pytest.raises(ValidationError):
        validate_password("Short1pass!")
    validate_password("a-much-longer-passphrase")


def test_sign_out_is_a_post(client, clinician):
    client.force_login(clinician)
    assert client.post(reverse("account_logout")).status_code == 302
    assert client.get(reverse("my-patients")).status_code == 302


def test_security_headers(client):
    response = client.get(reverse("account_login"))
    policy = response["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy
    assert "frame-ancestors 'none'" in policy
    assert response["X-Frame-Options"] == "DENY"
    assert response["Referrer-Policy"] == "same-origin"
