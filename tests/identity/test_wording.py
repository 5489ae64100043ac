"""The sign-in pages speak plain English (NHS.UK content style), not allauth's: no "Sign In", "Two-Factor
Authentication", "Login" or "third-party account"; one h1 each; and the sign-in page offers single sign-on first,
only when it is on."""

from html.parser import HTMLParser

import pytest
from allauth.mfa.recovery_codes.internal.auth import RecoveryCodes
from django.core.cache import cache
from django.test import override_settings
from django.urls import reverse

from tests import factories

from .test_sign_in_audit import sso_settings

pytestmark = pytest.mark.django_db

UNUSED_ISSUER = "http://127.0.0.1:9"  # nothing listens there: drawing the pages must not fetch discovery
SSO_START = "/accounts/oidc/cis2/login/"
OLD_WORDING = [
    "Sign In",
    "Sign Out",
    "Sign Up",
    "Signup",
    "Two-Factor",
    "two-factor",
    "Login",
    "login",
    "Log in",
    "logged in",
    "Third-Party",
    "third-party",
    "Confirm Access",
    "reauthenticate",
    "Authenticator App",
    "Authenticator code",
    "Recovery Codes",
    "Account Inactive",
    "Password Reset",
    "Change Password",
    "Set Password",
    "New Password",
    "Bad Token",
    "Please",
    "Incorrect password",
    "Alternative options",
]


class _Text(HTMLParser):
    """What a person reads: the text of the page and the title, not its markup (names, URLs) or scripts."""

    def __init__(self):
        super().__init__()
        self.parts, self.h1s, self._skip = [], 0, 0

    def handle_starttag(self, tag, attrs):
        self.h1s += tag == "h1"
        self._skip += tag in ("script", "style")
        for name, value in attrs:
            if name in ("alt", "aria-label", "value") and value and tag != "input":
                self.parts.append(value)

    def handle_endtag(self, tag):
        self._skip -= tag in ("script", "style")

    def handle_data(self, data):
        if not self._skip:
            self.parts.append(data)


def read(response, status=200):
    assert response.status_code == status, (response.status_code, response.get("Location"))
    parser = _Text()
    parser.feed(response.content.decode())
    return " ".join(" ".join(parser.parts).split()), parser.h1s


def assert_plain(response, status=200):
    text, h1s = read(response, status)
    assert h1s == 1
    assert [old for old in OLD_WORDING if old in text] == []
    return text


@pytest.fixture(autouse=True)
def _fresh_rate_limits():
    cache.clear()
    yield
    cache.clear()


def signed_in_fully(client, user):
    """Through the password and code steps (allauth then counts the sign-in as recent: no password asked again)."""
    client.post(reverse("account_login"), {"login": user.email, "password": factories.PASSWORD})
    client.post(reverse("mfa_authenticate"), {"code": factories.totp_code()})


def confirmed(client):
    """allauth asks for the password again before the authenticator app's and recovery codes' pages."""
    client.post(reverse("account_reauthenticate"), {"password": factories.PASSWORD})


ANONYMOUS_PAGES = [
    "account_login",
    "account_signup",
    "account_reset_password",
    "account_reset_password_done",
    "account_inactive",
    "socialaccount_login_cancelled",
]


@pytest.mark.parametrize("name", ANONYMOUS_PAGES)
def test_pages_before_signing_in(client, name):
    assert_plain(client.get(reverse(name)))


def test_a_password_reset_link_that_does_not_work(client):
    url = reverse("account_reset_password_from_key", kwargs={"uidb36": "1", "key": "not-a-key"})
    assert "This link does not work" in assert_plain(client.get(url))


def test_the_sign_in_page_with_a_wrong_password(client, clinician):
    response = client.post(reverse("account_login"), {"login": clinician.email, "password": "wrong-password-123"})
    assert "The email address or password is not right" in assert_plain(response)


def test_the_code_page_and_its_error(client, clinician):
    client.post(reverse("account_login"), {"login": clinician.email, "password": factories.PASSWORD})
    text = assert_plain(client.get(reverse("mfa_authenticate")))
    assert "Enter the code from your authenticator app" in text
    assert "Incorrect code" in assert_plain(client.post(reverse("mfa_authenticate"), {"code": "000000"}))


def test_the_lockout_message(client, clinician):
    for _ in range(5):
        client.post(reverse("account_login"), {"login": clinician.email, "password": "wrong-password-123"})
    response = client.post(reverse("account_login"), {"login": clinician.email, "password": factories.PASSWORD})
    assert "You have tried to sign in too many times" in assert_plain(response)


@pytest.mark.parametrize(
    "name",
    [
        "account_logout",
        "account_reauthenticate",
        "mfa_reauthenticate",
        "mfa_index",
        "mfa_deactivate_totp",
        "mfa_view_recovery_codes",
        "mfa_generate_recovery_codes",
        "account_change_password",
    ],
)
def test_pages_once_signed_in(client, clinician, name):
    RecoveryCodes.activate(clinician)
    signed_in_fully(client, clinician)
    confirmed(client)
    assert_plain(client.get(reverse(name)))


def test_setting_up_an_authenticator_app(client, organisation):
    user = factories.ProfessionalFactory(organisation=organisation, user__totp=False).user
    client.post(reverse("account_login"), {"login": user.email, "password": factories.PASSWORD})
    confirmed(client)
    page = client.get(reverse("mfa_activate_totp"))
    assert "Set up an authenticator app" in assert_plain(page)
    assert 'src="data:image/svg+xml;base64,' in page.content.decode()  # the QR code (the CSP allows data: images)
    assert "Incorrect code" in assert_plain(client.post(reverse("mfa_activate_totp"), {"code": "000000"}))


def test_confirming_with_a_wrong_password(client, clinician):
    signed_in_fully(client, clinician)
    response = client.post(reverse("account_reauthenticate"), {"password": "wrong-password-123"})
    assert "The password is not right" in assert_plain(response)


def test_the_sign_in_page_offers_single_sign_on_first_only_when_it_is_on(client, settings):
    page = client.get(reverse("account_login")).content.decode()
    assert "NHS Care Identity" not in page and SSO_START not in page
    with override_settings(**sso_settings(UNUSED_ISSUER, settings)):
        response = client.get(reverse("account_login") + "?next=/patients/")
    text = assert_plain(response)
    assert text.index("Sign in with NHS Care Identity") < text.index("Or sign in with your email address")
    page = response.content.decode()
    sso_form = page.split(f'<form method="post" action="{SSO_START}"', 1)[1].split("</form>", 1)[0]
    assert 'name="csrfmiddlewaretoken"' in sso_form
    assert '<input type="hidden" name="next" value="/patients/">' in sso_form
    assert page.index(SSO_START) < page.index('action="/accounts/login/"')


def test_the_single_sign_on_pages(client, settings):
    with override_settings(**sso_settings(UNUSED_ISSUER, settings)):
        confirm = assert_plain(client.get(SSO_START))
        error = client.get("/accounts/oidc/cis2/login/callback/?error=server_error&state=forged")
    assert "Continue to NHS Care Identity" in confirm
    text = assert_plain(error, status=401)
    assert "Signing in through NHS Care Identity did not work" in text
    assert "Try signing in again" in text
    assert [word for word in ("state", "server_error", "forged", "error", "Error") if word in text] == []
