"""Single sign-on end to end against a real OpenID provider (npm's oidc-provider on loopback, CIS2-shaped claims)
and carerecord on pytest-django's live server, a requests.Session playing the browser (no JavaScript needed):
sign-in in the selected role, the assurance rule, refusals, private-key JWT, sign-out with the provider's
end-session (H-19)."""

import re
from urllib.parse import urljoin

import pytest
import requests

from audit.models import AccessEvent, AuditEvent
from audit.names import Action
from directory import actions
from directory.models import Professional
from tests import factories
from tests.sso_provider import account, client, configure, follow, forms_of, role, rsa_key_pair, sign_in, submit

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.hazard("H-19")]

SECRET = "test-sso-secret"
HOSPITAL_ROLE = role("555000000001", "RBA", "R8000")
PRACTICE_ROLE = role("555000000002", "F81001", "R0260")


@pytest.fixture
def places():
    hospital = factories.OrganisationFactory(ods_code="RBA", name="Test Acute Trust")
    practice = factories.OrganisationFactory(ods_code="F81001", name="Test Lane Surgery")
    return hospital, practice


@pytest.fixture
def doctor(places):
    """A hospital doctor who is also a GP at the practice (a role profile), in a team at each, one patient each."""
    hospital, practice = places
    professional = factories.ProfessionalFactory(
        organisation=hospital, role=Professional.Role.DOCTOR, sso_subject="910000000001"
    )
    actions.add_role_profile(
        by=None, professional=professional, organisation=practice, role="gp", provider_role_id="555000000002"
    )
    ward = factories.CareTeamFactory(organisation=hospital, members=[professional])
    surgery = factories.CareTeamFactory(organisation=practice, members=[professional])
    ward_patient, practice_patient = factories.PatientFactory(), factories.PatientFactory()
    factories.InvolvementFactory(patient=ward_patient, care_team=ward)
    factories.InvolvementFactory(patient=practice_patient, care_team=surgery)
    return professional, ward_patient, practice_patient


@pytest.fixture
def sso(settings, live_server, test_provider_factory):
    """Start a provider for these accounts (client_secret_basic, or private_key_jwt with a key) and point
    carerecord at it."""

    def start(*accounts, key=None, tmp_path=None):
        callback = f"{live_server.url}/accounts/oidc/cis2/login/callback/"
        signed_out = f"{live_server.url}/accounts/signed-out/"
        metadata = client(
            "carerecord",
            redirect_uri=callback,
            secret=SECRET,
            jwk=key.public_jwk if key else None,
            post_logout_redirect_uris=[signed_out],
        )
        provider = test_provider_factory(clients=[metadata], accounts=list(accounts))
        key_file = ""
        if key:
            key_file = tmp_path / "sso.pem"
            key_file.write_bytes(key.private_pem)
        auth = "private_key_jwt" if key else "client_secret_basic"
        configure(settings, provider, secret=SECRET, auth=auth, key_file=str(key_file))
        return provider, callback

    return start


def start_sign_in(browser: requests.Session, live_server) -> requests.Response:
    """Press "Sign in with NHS Care Identity": a POST (with the CSRF token) to allauth's provider login URL."""
    browser.get(f"{live_server.url}/accounts/login/")
    token = browser.cookies["csrftoken"]
    return browser.post(
        f"{live_server.url}/accounts/oidc/cis2/login/",
        data={"csrfmiddlewaretoken": token},
        headers={"Referer": f"{live_server.url}/accounts/login/"},
        allow_redirects=False,
    )


def sign_in_through_provider(browser, live_server, callback, who, role_id="") -> requests.Response:
    authorize = start_sign_in(browser, live_server)
    assert authorize.status_code == 302, authorize.text
    back = sign_in(
        browser,
        authorize.headers["Location"],
        redirect_uri=callback,
        username=who["username"],
        password=who["password"],
        role_id=role_id,
    )
    assert isinstance(back, str) and "code=" in back, back
    return browser.get(back, allow_redirects=False)


def test_a_smartcard_sign_in_needs_no_authenticator_app_code(sso, live_server, doctor):
    professional, ward_patient, practice_patient = doctor
    provider, callback = sso(account("910000000001", username="ada@nhs.test", roles=[HOSPITAL_ROLE, PRACTICE_ROLE]))
    browser = requests.Session()
    landed = sign_in_through_provider(browser, live_server, callback, provider.config["accounts"][0], "555000000001")
    assert landed.status_code == 302 and not re.search(r"/accounts/2fa/", landed.headers["Location"])
    home = browser.get(f"{live_server.url}/", allow_redirects=False)
    assert home.status_code == 200 and professional.name in home.text
    assert browser.get(f"{live_server.url}/patients/{ward_patient.pk}/", allow_redirects=False).status_code == 200
    assert browser.get(f"{live_server.url}/patients/{practice_patient.pk}/", allow_redirects=False).status_code == 403
    assert set(AccessEvent.objects.values_list("organisation_code", flat=True)) == {"RBA"}


def test_the_role_selected_at_the_provider_is_the_organisation_the_session_acts_for(sso, live_server, doctor):
    _professional, ward_patient, practice_patient = doctor
    provider, callback = sso(account("910000000001", username="ada@nhs.test", roles=[HOSPITAL_ROLE, PRACTICE_ROLE]))
    browser = requests.Session()
    sign_in_through_provider(browser, live_server, callback, provider.config["accounts"][0], "555000000002")
    assert "Test Lane Surgery" in browser.get(f"{live_server.url}/").text
    assert browser.get(f"{live_server.url}/patients/{practice_patient.pk}/", allow_redirects=False).status_code == 200
    assert browser.get(f"{live_server.url}/patients/{ward_patient.pk}/", allow_redirects=False).status_code == 403
    assert set(AccessEvent.objects.values_list("organisation_code", flat=True)) == {"F81001"}


def test_a_weaker_sign_in_still_needs_the_authenticator_app(sso, live_server, doctor):
    _professional, ward_patient, _ = doctor
    provider, callback = sso(account("910000000001", username="ada@nhs.test", smartcard=False, roles=[HOSPITAL_ROLE]))
    browser = requests.Session()
    landed = sign_in_through_provider(browser, live_server, callback, provider.config["accounts"][0])
    assert landed.status_code == 302 and "/accounts/2fa/authenticate/" in landed.headers["Location"]
    # Not signed in until the code is given: the record is not reachable.
    record = browser.get(f"{live_server.url}/patients/{ward_patient.pk}/", allow_redirects=False)
    assert record.status_code == 302 and "/accounts/login/" in record.headers["Location"]
    page = browser.get(urljoin(live_server.url, landed.headers["Location"]))
    form = next(f for f in forms_of(page.text) if "code" in f.fields)
    done = browser.post(
        urljoin(page.url, form.action),
        data={**form.fields, "code": factories.totp_code()},
        headers={"Referer": page.url},
        allow_redirects=False,
    )
    assert done.status_code == 302
    assert browser.get(f"{live_server.url}/patients/{ward_patient.pk}/", allow_redirects=False).status_code == 200


def test_an_organisation_carerecord_does_not_know_is_refused_with_a_page_and_audited(sso, live_server, doctor):
    provider, callback = sso(
        account("910000000001", username="ada@nhs.test", roles=[role("555000000009", "ZZZ99", "R8000")])
    )
    browser = requests.Session()
    landed = sign_in_through_provider(browser, live_server, callback, provider.config["accounts"][0])
    assert landed.status_code == 403
    assert "does not take part in this shared care record" in landed.text
    event = AuditEvent.objects.get(action=Action.SIGN_IN_REFUSED)
    assert (event.target_id, event.detail["reason"], event.detail["org_code"]) == (
        "910000000001",
        "unknown-organisation",
        "ZZZ99",
    )
    # Not "/": signed out, that is the public landing page (200 for anyone).
    assert browser.get(f"{live_server.url}/patients/", allow_redirects=False).status_code == 302  # not signed in


def test_someone_the_record_has_no_professional_for_is_refused(sso, live_server, places):
    provider, callback = sso(account("910000000077", username="new@nhs.test", roles=[HOSPITAL_ROLE]))
    browser = requests.Session()
    landed = sign_in_through_provider(browser, live_server, callback, provider.config["accounts"][0])
    assert landed.status_code == 403 and "information governance" in landed.text
    assert not Professional.objects.filter(sso_subject="910000000077").exists()


def test_just_in_time_creates_the_professional_at_the_first_sign_in(sso, live_server, places):
    hospital, _ = places
    hospital.sso_provisioning, hospital.sso_roles = "just-in-time", "doctor"
    hospital.save()
    provider, callback = sso(
        account(
            "910000000078", username="new@nhs.test", given_name="Nia", family_name="Newcombe", roles=[HOSPITAL_ROLE]
        )
    )
    browser = requests.Session()
    sign_in_through_provider(browser, live_server, callback, provider.config["accounts"][0])
    professional = Professional.objects.get(sso_subject="910000000078")
    assert (professional.organisation, professional.role, professional.user.get_full_name()) == (
        hospital,
        "doctor",
        "Nia Newcombe",
    )
    assert browser.get(f"{live_server.url}/", allow_redirects=False).status_code == 200


def test_private_key_jwt_client_authentication_signs_in(sso, live_server, doctor, tmp_path):
    _professional, ward_patient, _ = doctor
    provider, callback = sso(
        account("910000000001", username="ada@nhs.test", roles=[HOSPITAL_ROLE]), key=rsa_key_pair(), tmp_path=tmp_path
    )
    browser = requests.Session()
    sign_in_through_provider(browser, live_server, callback, provider.config["accounts"][0])
    assert browser.get(f"{live_server.url}/patients/{ward_patient.pk}/", allow_redirects=False).status_code == 200
    assert "client_assertion" not in provider.output()  # sent in the body, never logged in the request line


def test_sign_out_ends_the_session_and_offers_the_providers_end_session(sso, live_server, doctor):
    provider, callback = sso(account("910000000001", username="ada@nhs.test", roles=[HOSPITAL_ROLE]))
    browser = requests.Session()
    sign_in_through_provider(browser, live_server, callback, provider.config["accounts"][0])
    home = browser.get(f"{live_server.url}/")
    sign_out = next(f for f in forms_of(home.text) if f.action.endswith("/accounts/logout/"))
    out = browser.post(
        f"{live_server.url}/accounts/logout/",
        data=sign_out.fields,
        headers={"Referer": home.url},
        allow_redirects=False,
    )
    assert out.status_code == 302 and out.headers["Location"].endswith("/accounts/signed-out/")
    page = browser.get(urljoin(live_server.url, out.headers["Location"]))
    assert "You have signed out" in page.text
    end_session = re.search(r'href="([^"]+/session/end[^"]*)"', page.text)
    assert end_session, page.text
    assert browser.get(f"{live_server.url}/patients/", allow_redirects=False).status_code == 302  # signed out
    # At the provider: its sign-out page, its button, back to carerecord's signed-out page, and nothing offered.
    provider_page = browser.get(end_session.group(1).replace("&amp;", "&"))
    back = follow(browser, submit(browser, provider_page), stop_at=f"{live_server.url}/accounts/signed-out/")
    assert isinstance(back, str)
    again = browser.get(back)
    assert "You have signed out" in again.text and "/session/end" not in again.text


def test_an_unreachable_provider_gives_the_signing_in_did_not_work_page(settings, live_server, doctor, client):
    """Discovery cannot be read (the provider down): a plain page, never a 500 (a launch's silent sign-in goes
    through the same provider redirect)."""
    from tests.sso_provider import Provider, free_port

    dead = f"http://127.0.0.1:{free_port()}"
    configure(settings, Provider(dead, 0, {}, None, None), secret=SECRET)
    response = client.post("/accounts/oidc/cis2/login/")
    assert response.status_code == 401  # allauth's status for its authentication error page
    assert "NHS Care Identity" in response.content.decode() and "did not work" in response.content.decode()
    assert AuditEvent.objects.filter(action=Action.SIGN_IN_FAILED).count() == 1
