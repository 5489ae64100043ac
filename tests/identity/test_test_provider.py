"""The test OpenID provider behaves as the sign-in tests assume: discovery, the authorization code flow with PKCE,
both ways a client authenticates, CIS2's claims in the ID token and userinfo, the role page, silent sign-in,
RP-initiated sign-out and its refusals. Everything here is real: node's oidc-provider on loopback, driven with
requests, its tokens checked with PyJWT against its own JWKS."""

import re
import secrets
import time
from urllib.parse import parse_qs, urljoin, urlsplit

import jwt
import pytest
import requests

from tests.sso_provider import (
    Pkce,
    account,
    authorize_url,
    client,
    follow,
    forms_of,
    require_node,
    role,
    rsa_key_pair,
    running_provider,
    sign_in,
    submit,
)

REDIRECT_URI = "http://127.0.0.1:8000/accounts/oidc/cis2/login/callback/"
SIGNED_OUT = "http://127.0.0.1:8000/accounts/signed-out/"
SECRET = "s3cret-for-tests"
DOCTOR_ROLE = role("555000000001", "RX1", "R8000")
NURSE_ROLE = role("555000000002", "RX2", "R8001")
DOCTOR = account(
    "910000000001", username="ada@nhs.test", given_name="Ada", family_name="Lovelace", roles=[DOCTOR_ROLE, NURSE_ROLE]
)
PHARMACIST = account("910000000002", username="bo@nhs.test", smartcard=False, roles=[role("555000000003", "RX3")])


@pytest.fixture(scope="module")
def provider():
    """One provider for the module (each test's requests.Session is a browser of its own); tests that need other
    clients start their own with test_provider_factory."""
    require_node()
    config = {
        "clients": [
            client("carerecord", redirect_uri=REDIRECT_URI, secret=SECRET, post_logout_redirect_uris=[SIGNED_OUT])
        ],
        "accounts": [DOCTOR, PHARMACIST],
    }
    with running_provider(config) as running:
        yield running


def query(url: str) -> dict:
    return {key: values[0] for key, values in parse_qs(urlsplit(url).query).items()}


def signed_in(provider, browser, pkce, *, who=DOCTOR, role_id=NURSE_ROLE["person_roleid"], client_id="carerecord"):
    callback = sign_in(
        browser,
        authorize_url(provider, client_id=client_id, redirect_uri=REDIRECT_URI, pkce=pkce),
        redirect_uri=REDIRECT_URI,
        username=who["username"],
        password=who["password"],
        role_id=role_id,
    )
    return query(callback)


def exchange(provider, code, pkce, **auth) -> requests.Response:
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI}
    data |= {"code_verifier": pkce.verifier} if pkce else {}
    return requests.post(provider.discovery()["token_endpoint"], data=data | auth.pop("data", {}), timeout=5, **auth)


def verified(provider, id_token: str, audience="carerecord") -> dict:
    key = jwt.PyJWKClient(provider.discovery()["jwks_uri"]).get_signing_key_from_jwt(id_token)
    return jwt.decode(id_token, key, algorithms=["RS256"], audience=audience, issuer=provider.issuer)


def assertion(key, client_id: str, audience: str) -> str:
    now = int(time.time())
    claims = {"iss": client_id, "sub": client_id, "aud": audience, "jti": secrets.token_hex(16)}
    claims |= {"iat": now, "exp": now + 60}
    return jwt.encode(claims, key.private_pem, algorithm="RS256", headers={"kid": key.kid})


def test_discovery_lists_the_endpoints_and_client_authentication_methods(provider):
    discovery = provider.discovery()
    assert discovery["issuer"] == provider.issuer
    for endpoint in ("authorization", "token", "userinfo", "end_session"):
        assert discovery[f"{endpoint}_endpoint"].startswith(f"{provider.issuer}/")
    assert discovery["jwks_uri"].startswith(f"{provider.issuer}/")
    assert set(discovery["token_endpoint_auth_methods_supported"]) == {
        "client_secret_basic",
        "client_secret_post",
        "private_key_jwt",
    }
    assert discovery["code_challenge_methods_supported"] == ["S256"]
    assert {"openid", "profile", "email", "nationalrbacaccess", "selectedrole"} <= set(discovery["scopes_supported"])
    assert {"AAL3_ANY", "AAL2_OR_ABOVE"} <= set(discovery["acr_values_supported"])


def test_sign_in_with_a_role_chosen_and_a_client_secret(provider):
    browser, pkce = requests.Session(), Pkce.new()
    callback = signed_in(provider, browser, pkce)
    assert "error" not in callback
    assert callback["iss"] == provider.issuer

    response = exchange(provider, callback["code"], pkce, auth=("carerecord", SECRET))
    assert response.status_code == 200, response.text
    tokens = response.json()
    claims = verified(provider, tokens["id_token"])
    assert claims["sub"] == DOCTOR["sub"]
    assert claims["acr"] == "AAL3_ANY"
    assert claims["amr"] == ["SCRD"]
    assert claims["selected_roleid"] == NURSE_ROLE["person_roleid"]
    assert claims["authentication_assurance_level"] == "3"
    assert claims["id_assurance_level"] == "3"
    assert "nhsid_nrbac_roles" not in claims  # the roles come from userinfo, as in CIS2

    userinfo = requests.get(
        provider.discovery()["userinfo_endpoint"],
        headers={"Authorization": f"Bearer {tokens['access_token']}"},
        timeout=5,
    ).json()
    assert userinfo["sub"] == DOCTOR["sub"]
    assert userinfo["nhsid_nrbac_roles"] == [DOCTOR_ROLE, NURSE_ROLE]
    assert (userinfo["given_name"], userinfo["family_name"], userinfo["email"]) == ("Ada", "Lovelace", "ada@nhs.test")


def test_the_role_page_offers_each_role_by_organisation_and_name(provider):
    browser = requests.Session()
    url = authorize_url(provider, client_id="carerecord", redirect_uri=REDIRECT_URI, pkce=Pkce.new())
    page = follow(browser, browser.get(url, allow_redirects=False), stop_at=REDIRECT_URI)
    page = follow(
        browser, submit(browser, page, username="ada@nhs.test", password="correct horse"), stop_at=REDIRECT_URI
    )
    assert page.status_code == 200
    assert forms_of(page.text)[0].choices == {"role": ["555000000001", "555000000002"]}
    assert "RX1: Clinical Practitioner Access Role</label>" in page.text
    assert "RX2: Nurse Access Role</label>" in page.text

    assert " checked" not in page.text  # no role chosen for them
    for wrong in ("", "555000000003"):  # none, and another account's role
        refused = submit(browser, page, role=wrong)
        assert refused.status_code == 400
        assert "Select the role you are working in." in refused.text


def test_one_role_is_chosen_without_asking_and_a_password_sign_in_is_aal2(provider):
    browser, pkce = requests.Session(), Pkce.new()
    url = authorize_url(provider, client_id="carerecord", redirect_uri=REDIRECT_URI, pkce=pkce)
    page = follow(browser, browser.get(url, allow_redirects=False), stop_at=REDIRECT_URI)
    callback = follow(
        browser, submit(browser, page, username="BO@nhs.test", password="correct horse"), stop_at=REDIRECT_URI
    )
    assert isinstance(callback, str), callback.text  # straight back to the relying party: no role page

    tokens = exchange(provider, query(callback)["code"], pkce, auth=("carerecord", SECRET)).json()
    claims = verified(provider, tokens["id_token"])
    assert claims["sub"] == PHARMACIST["sub"]
    assert claims["selected_roleid"] == "555000000003"
    assert (claims["acr"], claims["amr"], claims["authentication_assurance_level"]) == (
        "AAL2_OR_ABOVE",
        ["PWD", "OTP"],
        "2",
    )


def test_private_key_jwt_client_authentication(test_provider_factory):
    key, stranger = rsa_key_pair(), rsa_key_pair()
    provider = test_provider_factory(
        clients=[client("carerecord-jwt", redirect_uri=REDIRECT_URI, jwk=key.public_jwk)], accounts=[DOCTOR]
    )
    token_endpoint = provider.discovery()["token_endpoint"]
    browser, pkce = requests.Session(), Pkce.new()
    code = signed_in(provider, browser, pkce, client_id="carerecord-jwt")["code"]
    jwt_bearer = {"client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}

    wrong_key = exchange(
        provider,
        code,
        pkce,
        data=jwt_bearer | {"client_assertion": assertion(stranger, "carerecord-jwt", token_endpoint)},
    )
    assert wrong_key.status_code == 401
    assert wrong_key.json()["error"] == "invalid_client"

    response = exchange(
        provider, code, pkce, data=jwt_bearer | {"client_assertion": assertion(key, "carerecord-jwt", token_endpoint)}
    )
    assert response.status_code == 200, response.text
    claims = verified(provider, response.json()["id_token"], audience="carerecord-jwt")
    assert (claims["sub"], claims["selected_roleid"]) == (DOCTOR["sub"], NURSE_ROLE["person_roleid"])


def test_client_secret_post_client_authentication(test_provider_factory):
    posting = client("carerecord", redirect_uri=REDIRECT_URI, secret=SECRET) | {
        "token_endpoint_auth_method": "client_secret_post"
    }
    provider = test_provider_factory(clients=[posting], accounts=[PHARMACIST])
    browser, pkce = requests.Session(), Pkce.new()
    code = signed_in(provider, browser, pkce, who=PHARMACIST)["code"]
    response = exchange(provider, code, pkce, data={"client_id": "carerecord", "client_secret": SECRET})
    assert response.status_code == 200, response.text
    assert verified(provider, response.json()["id_token"])["sub"] == PHARMACIST["sub"]


def test_cancelling_the_sign_in_returns_access_denied(provider):
    browser = requests.Session()
    url = authorize_url(provider, client_id="carerecord", redirect_uri=REDIRECT_URI, pkce=Pkce.new())
    page = follow(browser, browser.get(url, allow_redirects=False), stop_at=REDIRECT_URI)
    cancel = re.search(r'<a href="([^"]+)">Cancel sign-in</a>', page.text).group(1)
    callback = follow(browser, browser.get(urljoin(page.url, cancel), allow_redirects=False), stop_at=REDIRECT_URI)
    assert query(callback)["error"] == "access_denied"


def test_the_code_needs_the_pkce_verifier_and_the_client_secret(provider):
    browser, pkce = requests.Session(), Pkce.new()
    code = signed_in(provider, browser, pkce)["code"]
    wrong_secret = exchange(provider, code, pkce, auth=("carerecord", "not-the-secret"))
    assert wrong_secret.status_code == 401
    wrong_verifier = exchange(provider, code, Pkce.new(), auth=("carerecord", SECRET))
    assert wrong_verifier.json()["error"] == "invalid_grant"


def test_an_authorization_request_without_pkce_is_refused(provider):
    url = authorize_url(provider, client_id="carerecord", redirect_uri=REDIRECT_URI, pkce=None)
    callback = follow(requests.Session(), requests.get(url, allow_redirects=False, timeout=5), stop_at=REDIRECT_URI)
    assert query(callback)["error"] == "invalid_request"


def test_a_wrong_password_shows_the_error_and_signs_no_one_in(provider):
    browser = requests.Session()
    url = authorize_url(provider, client_id="carerecord", redirect_uri=REDIRECT_URI, pkce=Pkce.new())
    page = follow(browser, browser.get(url, allow_redirects=False), stop_at=REDIRECT_URI)
    refused = submit(browser, page, username="ada@nhs.test", password="wrong")
    assert refused.status_code == 401
    assert "The username or password is not right." in refused.text
    assert forms_of(refused.text)[0].fields["username"] == "ada@nhs.test"  # kept; the password is not


def test_prompt_none_without_a_session_returns_login_required(provider):
    url = authorize_url(provider, client_id="carerecord", redirect_uri=REDIRECT_URI, pkce=Pkce.new(), prompt="none")
    callback = follow(requests.Session(), requests.get(url, allow_redirects=False, timeout=5), stop_at=REDIRECT_URI)
    assert query(callback)["error"] == "login_required"


def test_prompt_none_with_a_session_signs_in_silently_in_the_same_role(provider):
    browser = requests.Session()
    signed_in(provider, browser, Pkce.new())
    pkce = Pkce.new()
    url = authorize_url(provider, client_id="carerecord", redirect_uri=REDIRECT_URI, pkce=pkce, prompt="none")
    callback = follow(browser, browser.get(url, allow_redirects=False), stop_at=REDIRECT_URI)
    tokens = exchange(provider, query(callback)["code"], pkce, auth=("carerecord", SECRET)).json()
    claims = verified(provider, tokens["id_token"])
    assert (claims["sub"], claims["selected_roleid"]) == (DOCTOR["sub"], NURSE_ROLE["person_roleid"])


def test_prompt_none_signs_in_to_another_client_of_the_provider_in_the_same_role(test_provider_factory):
    provider = test_provider_factory(
        clients=[
            client("carerecord", redirect_uri=REDIRECT_URI, secret=SECRET),
            client("other-service", redirect_uri=REDIRECT_URI, secret="other-secret"),
        ],
        accounts=[DOCTOR],
    )
    browser, pkce = requests.Session(), Pkce.new()
    signed_in(provider, browser, Pkce.new(), role_id=DOCTOR_ROLE["person_roleid"])
    url = authorize_url(provider, client_id="other-service", redirect_uri=REDIRECT_URI, pkce=pkce, prompt="none")
    callback = follow(browser, browser.get(url, allow_redirects=False), stop_at=REDIRECT_URI)
    tokens = exchange(provider, query(callback)["code"], pkce, auth=("other-service", "other-secret")).json()
    claims = verified(provider, tokens["id_token"], audience="other-service")
    assert (claims["sub"], claims["selected_roleid"]) == (DOCTOR["sub"], DOCTOR_ROLE["person_roleid"])


def test_rp_initiated_sign_out_returns_to_the_relying_party_and_ends_the_session(provider):
    browser, pkce = requests.Session(), Pkce.new()
    code = signed_in(provider, browser, pkce)["code"]
    id_token = exchange(provider, code, pkce, auth=("carerecord", SECRET)).json()["id_token"]
    end_session = provider.discovery()["end_session_endpoint"]

    page = browser.get(
        end_session,
        params={"id_token_hint": id_token, "post_logout_redirect_uri": SIGNED_OUT, "state": "bye"},
        allow_redirects=False,
    )
    assert page.status_code == 200
    assert forms_of(page.text)[0].buttons == [("logout", "yes")]  # "Sign out"
    assert "requestSubmit" in page.text  # with a valid id_token_hint, JavaScript presses it
    returned = follow(browser, submit(browser, page), stop_at=SIGNED_OUT)
    assert returned == f"{SIGNED_OUT}?state=bye"

    url = authorize_url(provider, client_id="carerecord", redirect_uri=REDIRECT_URI, pkce=Pkce.new(), prompt="none")
    callback = follow(browser, browser.get(url, allow_redirects=False), stop_at=REDIRECT_URI)
    assert query(callback)["error"] == "login_required"


def test_sign_out_to_an_unregistered_address_is_refused(provider):
    response = requests.get(
        provider.discovery()["end_session_endpoint"],
        params={"client_id": "carerecord", "post_logout_redirect_uri": "http://evil.test/"},
        allow_redirects=False,
        timeout=5,
    )
    assert response.status_code == 400
    assert "post_logout_redirect_uri not registered" in response.text


def test_the_provider_logs_each_request(provider):
    provider.discovery()
    assert "GET /.well-known/openid-configuration 200" in provider.output()
