"""sso_demo_accounts writes the test provider's config for the demo accounts: CIS2-shaped roles from the home role
and the role profiles, a stable subject and role ids, and carerecord as the client."""

import io
import json
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest
import requests
from django.core.management import CommandError, call_command

from directory.actions import add_role_profile
from directory.models import Professional, RoleProfile
from tests import factories
from tests.sso_provider import Pkce, authorize_url, free_port, require_node, running_provider, sign_in

pytestmark = pytest.mark.django_db

Role = Professional.Role


def run(tmp_path, *args):
    out, output = io.StringIO(), tmp_path / "sso.json"
    call_command("sso_demo_accounts", "--output", str(output), *args, stdout=out)
    return json.loads(output.read_text()), out.getvalue()


@pytest.fixture
def demo_staff(settings):
    settings.DEBUG = True
    doctor = factories.ProfessionalFactory(
        user__email="doctor@demo.carerecord.test", user__first_name="Daniel", user__last_name="Mensah", role=Role.DOCTOR
    )
    paramedic = factories.ProfessionalFactory(
        user__email="paramedic@demo.carerecord.test", role=Role.PARAMEDIC, sso_subject="already-linked-subject"
    )
    practice = factories.OrganisationFactory(name="Riverside Medical Centre")
    add_role_profile(by=None, professional=doctor, organisation=practice, role=Role.GP, activities="B0360,B0264")
    return doctor, paramedic, practice


def test_writes_the_client_and_one_account_per_active_demo_professional(tmp_path, demo_staff):
    factories.ProfessionalFactory(user__email="left@demo.carerecord.test", active=False)
    factories.ProfessionalFactory(user__email="someone@trust.nhs.test")  # not a demo account

    config, out = run(tmp_path, "--port", "9100", "--client-secret", "another-secret")

    assert (config["issuer"], config["port"]) == ("http://127.0.0.1:9100", 9100)
    [client] = config["clients"]
    assert client["client_id"] == "carerecord-demo"
    assert client["client_secret"] == "another-secret"
    assert client["redirect_uris"] == [
        "http://127.0.0.1:8000/accounts/oidc/cis2/login/callback/",
        "http://localhost:8000/accounts/oidc/cis2/login/callback/",
    ]
    assert client["post_logout_redirect_uris"] == [
        "http://127.0.0.1:8000/accounts/signed-out/",
        "http://localhost:8000/accounts/signed-out/",
    ]
    assert [account["username"] for account in config["accounts"]] == [
        "doctor@demo.carerecord.test",
        "paramedic@demo.carerecord.test",
    ]
    assert "password demo-password" in out
    assert "SSO_ISSUER=http://127.0.0.1:9100 SSO_CLIENT_ID=carerecord-demo SSO_CLIENT_SECRET=another-secret" in out


def test_a_doctor_has_a_smartcard_and_a_role_for_home_and_each_role_profile(tmp_path, demo_staff):
    doctor, _, practice = demo_staff
    config, _ = run(tmp_path)
    account = config["accounts"][0]

    doctor.refresh_from_db()
    profile = RoleProfile.objects.get(professional=doctor)
    assert account["sub"] == doctor.sso_subject and len(doctor.sso_subject) == 36  # a new uuid4, stored
    assert (account["password"], account["given_name"], account["family_name"]) == ("demo-password", "Daniel", "Mensah")
    assert (account["acr"], account["amr"]) == ("AAL3_ANY", ["SCRD"])
    home, held = account["roles"]
    assert home["person_roleid"] == f"1{doctor.pk:011d}"
    assert (home["org_code"], home["role_code"]) == (doctor.organisation.ods_code, "S8000:G8000:R8000")
    assert held["person_roleid"] == profile.provider_role_id == f"2{profile.pk:011d}"
    assert (held["org_code"], held["role_code"]) == (practice.ods_code, "S8000:G8000:R0260")
    assert held["activity_codes"] == ["B0360", "B0264"]


def test_a_paramedic_signs_in_with_a_password_and_code_and_keeps_their_subject(tmp_path, demo_staff):
    config, _ = run(tmp_path)
    account = config["accounts"][1]
    assert account["sub"] == "already-linked-subject"
    assert (account["acr"], account["amr"]) == ("AAL2_OR_ABOVE", ["PWD", "OTP"])
    assert [role["role_code"] for role in account["roles"]] == ["S8000:G8000:R1290"]


def test_a_second_run_gives_the_same_subjects_and_role_ids(tmp_path, demo_staff):
    first, _ = run(tmp_path)
    second, _ = run(tmp_path)
    assert first["accounts"] == second["accounts"]


def test_refuses_when_debug_is_off(tmp_path, demo_staff, settings):
    settings.DEBUG = False
    with pytest.raises(CommandError, match="DEBUG"):
        run(tmp_path)
    assert not (tmp_path / "sso.json").exists()
    assert Professional.objects.filter(sso_subject__isnull=True).exists()  # nothing written either


def test_refuses_without_demo_accounts(tmp_path, settings):
    settings.DEBUG = True
    with pytest.raises(CommandError, match="seed_demo"):
        run(tmp_path)


def test_the_test_provider_signs_a_demo_doctor_in_with_the_config(tmp_path, demo_staff):
    """The file as written runs the real provider: the doctor signs in there in their role profile."""
    require_node()
    doctor, _, _ = demo_staff
    port = free_port()
    config, _ = run(tmp_path, "--port", str(port))
    profile = RoleProfile.objects.get(professional=doctor)
    callback_url = config["clients"][0]["redirect_uris"][0]
    with running_provider(config) as provider:
        browser, pkce = requests.Session(), Pkce.new()
        url = authorize_url(provider, client_id="carerecord-demo", redirect_uri=callback_url, pkce=pkce)
        callback = sign_in(
            browser,
            url,
            redirect_uri=callback_url,
            username="doctor@demo.carerecord.test",
            password="demo-password",
            role_id=profile.provider_role_id,
        )
        code = parse_qs(urlsplit(callback).query)["code"][0]
        token_endpoint, jwks_uri = provider.discovery()["token_endpoint"], provider.discovery()["jwks_uri"]
        id_token = requests.post(
            token_endpoint,
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": callback_url,
                "code_verifier": pkce.verifier,
            },
            auth=("carerecord-demo", "demo-sso-secret-not-for-production"),
            timeout=5,
        ).json()["id_token"]
        key = jwt.PyJWKClient(jwks_uri).get_signing_key_from_jwt(id_token)
        claims = jwt.decode(id_token, key, algorithms=["RS256"], audience="carerecord-demo", issuer=provider.issuer)
    doctor.refresh_from_db()
    assert (claims["sub"], claims["selected_roleid"], claims["acr"]) == (
        doctor.sso_subject,
        profile.provider_role_id,
        "AAL3_ANY",
    )
