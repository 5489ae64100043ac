"""The timeout warning's server side: "Stay signed in" renews the session (a POST, CSRF-protected, 204), and
every signed-in page tells the warning how long the session has left as of that response."""

import re
from datetime import timedelta

import pytest
import time_machine
from django.contrib.sessions.models import Session
from django.test import Client
from django.urls import reverse
from django.utils import timezone

pytestmark = pytest.mark.django_db

URL = reverse("stay-signed-in")


def session_expiry(client):
    return Session.objects.get(session_key=client.session.session_key).expire_date


def body_seconds(body):
    """<body data-idle-seconds=...>, data-idle-window-seconds and data-idle-after-request-seconds."""
    body_tag = re.search(r"<body[^>]*>", body).group(0)
    return dict(re.findall(r'data-(idle(?:-window|-after-request)?-seconds)="(\d+)"', body_tag))


@pytest.mark.hazard("H-11")
def test_stay_signed_in_renews_the_session_now(client, clinician):
    client.force_login(clinician)
    with time_machine.travel(timezone.now(), tick=False) as clock:
        client.get(reverse("home"))
        first = session_expiry(client)
        clock.shift(timedelta(seconds=20))  # within the minute in which use alone does not renew it
        response = client.post(URL)
        assert (response.status_code, response.content) == (204, b"")
        assert session_expiry(client) == first + timedelta(seconds=20)
        assert session_expiry(client) == timezone.now() + timedelta(minutes=15)


def test_stay_signed_in_needs_the_csrf_token(clinician):
    client = Client(enforce_csrf_checks=True)
    client.force_login(clinician)
    page = client.get(reverse("home")).content.decode()
    token = re.search(r'data-timeout-stay>\s*<input type="hidden" name="csrfmiddlewaretoken" value="([^"]+)"', page)
    assert client.post(URL).status_code == 403
    assert client.post(URL, {"csrfmiddlewaretoken": token.group(1)}).status_code == 204


def test_stay_signed_in_is_a_post_and_renews_nobody_who_is_signed_out(client, clinician):
    client.force_login(clinician)
    assert client.get(URL).status_code == 405
    client.logout()
    response = client.post(URL)
    assert response.status_code == 302 and response["Location"].startswith(reverse("account_login"))
    assert "_auth_user_id" not in client.session


def test_a_signed_in_page_says_how_long_its_session_has_left(client, clinician):
    client.force_login(clinician)
    with time_machine.travel(timezone.now(), tick=False) as clock:
        assert body_seconds(client.get(reverse("home")).content.decode()) == {
            "idle-seconds": "900",
            "idle-window-seconds": "900",
            "idle-after-request-seconds": "840",
        }
        clock.shift(timedelta(seconds=45))
        # Not renewed within the minute: the page counts from the last renewal, not from now.
        assert body_seconds(client.get(reverse("home")).content.decode())["idle-seconds"] == "855"
        clock.shift(timedelta(seconds=30))
        assert body_seconds(client.get(reverse("home")).content.decode())["idle-seconds"] == "900"


def test_the_warning_is_only_for_someone_signed_in(client, clinician):
    public = client.get(reverse("optout-information")).content.decode()
    assert body_seconds(public) == {} and "data-timeout-dialog" not in public and "timeout.js" not in public
    client.force_login(clinician)
    page = client.get(reverse("home")).content.decode()
    assert "data-timeout-dialog" in page and "carerecord/js/timeout.js" in page
    # The dialog's "Sign out" is the header's: a POST to allauth's sign-out.
    assert f'<form method="post" action="{reverse("account_logout")}" data-timeout-sign-out>' in page
