"""A clinician opens a patient's record from their clinical system: the launch token sends the browser to the real
test OpenID provider (npm's oidc-provider, CIS2-shaped claims), they sign in on its own pages, land on that
patient's record (the launch named on its AccessEvent), and sign out of both — accessibly (H-19, H-03)."""

import re
import time
import uuid

import jwt
import pytest
from playwright.sync_api import expect

from audit.models import AccessEvent, AuditEvent
from audit.names import Action
from directory.models import Professional
from tests import factories
from tests.sso_provider import account, client, configure, require_node, role, running_provider

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True), pytest.mark.hazard("H-19")]

SECRET = "journey-sso-secret"
SUBJECT = "910000000042"


@pytest.fixture
def provider(settings, live_server, organisation):
    require_node()
    person = account(SUBJECT, username="journey@nhs.test", roles=[role("555000000042", organisation.ods_code, "R0260")])
    metadata = client(
        "carerecord",
        redirect_uri=f"{live_server.url}/accounts/oidc/cis2/login/callback/",
        secret=SECRET,
        post_logout_redirect_uris=[f"{live_server.url}/accounts/signed-out/"],
    )
    with running_provider({"clients": [metadata], "accounts": [person]}) as running:
        configure(settings, running, secret=SECRET)
        settings.LAUNCH_AUDIENCE = f"{live_server.url}/launch/"
        yield running


def launch_token(partner, patient) -> str:
    now = int(time.time())
    claims = {
        "iss": partner.issuer,
        "aud": partner.audience,
        "iat": now,
        "exp": now + 55,
        "jti": uuid.uuid4().hex,
        "sub": SUBJECT,
        "nhs_number": patient.nhs_number,
    }
    return jwt.encode(claims, factories.launch_private_key(), algorithm="RS256")


@pytest.mark.hazard("H-03")
def test_launch_signs_in_at_the_provider_opens_the_record_and_signs_out_of_both(
    live_server, page, provider, clinician, patient, organisation, assert_accessible, csp_errors
):
    Professional.objects.filter(user=clinician).update(sso_subject=SUBJECT)
    partner = factories.LaunchPartnerFactory(organisation=organisation, name="Test GP system")
    partner.audience = f"{live_server.url}/launch/"

    page.goto(f"{live_server.url}/launch/?launch={launch_token(partner, patient)}")
    # Silent sign-in finds no provider session: the provider's own sign-in page.
    expect(page).to_have_url(re.compile(re.escape(provider.issuer)))
    assert_accessible()
    page.get_by_label(re.compile("username|email", re.I)).fill("journey@nhs.test")
    page.get_by_label(re.compile("password", re.I)).fill("correct horse")
    page.get_by_role("button", name=re.compile("sign in", re.I)).click()

    # A smartcard sign-in: no authenticator app code; straight to the launched patient's record.
    expect(page).to_have_url(f"{live_server.url}/patients/{patient.pk}/")
    expect(page.get_by_role("heading", level=1)).to_contain_text(patient.family_name.upper())
    assert_accessible()
    looked = AccessEvent.objects.get(patient_id=patient.pk, page="record:summary")
    assert (looked.outcome, looked.user_id, "Test GP system" in looked.launch) == ("allowed", clinician.pk, True)
    assert AuditEvent.objects.filter(action=Action.LAUNCHED, patient_id=patient.pk).count() == 1

    page.get_by_role("button", name="Sign out", exact=True).click()
    expect(page).to_have_url(f"{live_server.url}/accounts/signed-out/")
    assert_accessible()
    page.get_by_role("button", name="Sign out of NHS Care Identity too").click()
    # The provider signs out (its page submits itself for a known id_token_hint) and comes back, offering nothing.
    expect(page).to_have_url(f"{live_server.url}/accounts/signed-out/")
    expect(page.get_by_role("button", name="Sign out of NHS Care Identity too")).to_have_count(0)

    page.goto(f"{live_server.url}/patients/{patient.pk}/")
    expect(page).to_have_url(re.compile(r"/accounts/login/"))
    assert AuditEvent.objects.filter(action=Action.SIGNED_OUT).count() == 1
    assert csp_errors == []
