"""A real OpenID Connect provider for the tests: npm's oidc-provider (OpenID Certified) run by node from
tests/js/oidc/provider.mjs, with CIS2-shaped claims, on loopback (tests/js/oidc/README.md has the config format).

`running_provider(config)` starts one and stops it; `sign_in(...)` plays a person at its pages with `requests` (no
JavaScript: the pages need none) up to the relying party's redirect_uri; `rsa_key_pair()` makes a client's key for
private_key_jwt. Outside CI a missing node skips the test that needs it; in CI (CI, REQUIRE_NODE or
REQUIRE_BROWSER set) it fails, so the suite never passes without the provider.
"""

import base64
import hashlib
import json
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlencode, urljoin

import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

NODE = shutil.which("node")
JS = Path(__file__).resolve().parent / "js"
PROVIDER_SCRIPT = JS / "oidc" / "provider.mjs"
START_TIMEOUT = 90  # seconds: node's start (oidc-provider's import, its keys) is slow on a loaded CI machine
# CI has seen node start and never listen (alive, silent, 90 s): the 90 s go in three starts of 30 s each.
START_ATTEMPTS = 3
STOP_TIMEOUT = 5
PASSWORD = "correct horse"  # the test accounts' default password at the test provider


def missing() -> str:
    """Why the provider cannot run here, or ""."""
    if NODE is None:
        return "node is not installed"
    if not (JS / "node_modules" / "oidc-provider").is_dir():
        return "tests/js/node_modules is missing: make install (npm ci --prefix tests/js)"
    return ""


def require_node() -> None:
    """Skip the calling test when node or oidc-provider is missing; fail it in CI."""
    reason = missing()
    if reason and any(os.environ.get(name) for name in ("CI", "REQUIRE_NODE", "REQUIRE_BROWSER")):
        pytest.fail(f"the test OpenID provider is required in CI: {reason}")
    if reason:
        pytest.skip(reason)


@dataclass
class Provider:
    issuer: str
    port: int
    config: dict
    log_path: Path
    process: subprocess.Popen = field(repr=False)

    def output(self) -> str:
        """What the provider has printed so far (a line per request, and its errors)."""
        return self.log_path.read_text(errors="replace")

    def discovery(self) -> dict:
        return requests.get(f"{self.issuer}/.well-known/openid-configuration", timeout=5).json()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def running_provider(config: dict) -> Iterator[Provider]:
    """The provider serving `config` (issuer and port filled in when absent) until the block ends."""
    port = config.get("port") or free_port()
    config = {**config, "port": port, "issuer": config.get("issuer") or f"http://127.0.0.1:{port}"}
    with tempfile.TemporaryDirectory(prefix="oidc-provider-") as folder:
        config_path, log_path = Path(folder) / "config.json", Path(folder) / "provider.log"
        config_path.write_text(json.dumps(config))
        provider = None
        try:
            for attempt in range(1, START_ATTEMPTS + 1):
                provider = Provider(config["issuer"], port, config, log_path, _spawn(config_path, log_path))
                if _wait_until_ready(provider, last=attempt == START_ATTEMPTS):
                    break
                _stop(provider.process)  # started but never listening (seen in CI): start it again
            yield provider
        finally:
            if provider is not None:
                _stop(provider.process)


def _spawn(config_path: Path, log_path: Path) -> subprocess.Popen:
    # Output to a file, not a pipe: nobody reads a pipe while the test runs, and a full one would stall node.
    with log_path.open("a") as log:
        return subprocess.Popen(
            [NODE, str(PROVIDER_SCRIPT), "--config", str(config_path)],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )


def _wait_until_ready(provider: Provider, *, last: bool) -> bool:
    """True once the provider answers; False after START_TIMEOUT / START_ATTEMPTS s of silence (the caller starts
    it again), and on the last attempt an error with what it printed."""
    deadline = time.monotonic() + START_TIMEOUT / START_ATTEMPTS
    while time.monotonic() < deadline:
        if provider.process.poll() is not None:
            raise RuntimeError(f"the test OpenID provider exited ({provider.process.returncode}):\n{provider.output()}")
        try:
            if requests.get(f"{provider.issuer}/.well-known/openid-configuration", timeout=1).ok:
                return True
        except requests.RequestException:  # not listening yet, or too busy to answer within the probe's second
            pass
        time.sleep(0.1)
    if not last:
        return False
    raise RuntimeError(
        f"the test OpenID provider did not answer in {START_ATTEMPTS} starts of {START_TIMEOUT // START_ATTEMPTS} s:\n"
        f"{provider.output()}"
    )


def _stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@dataclass(frozen=True)
class KeyPair:
    kid: str
    private_pem: bytes
    public_jwk: dict  # with kid, alg RS256 and use sig: what a client's "jwks" lists


def rsa_key_pair(kid: str = "") -> KeyPair:
    """A fresh RSA key for private_key_jwt: the PEM signs client assertions, the JWK goes in the client's jwks."""
    kid = kid or secrets.token_hex(8)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    jwk = {**RSAAlgorithm.to_jwk(key.public_key(), as_dict=True), "kid": kid, "alg": "RS256", "use": "sig"}
    return KeyPair(kid=kid, private_pem=pem, public_jwk=jwk)


# What a person does at the provider's pages, with requests.


@dataclass(frozen=True)
class Pkce:
    verifier: str
    challenge: str

    @classmethod
    def new(cls) -> "Pkce":
        verifier = secrets.token_urlsafe(48)
        digest = hashlib.sha256(verifier.encode()).digest()
        return cls(verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode())


def authorize_url(provider: Provider, *, client_id: str, redirect_uri: str, pkce: Pkce | None, **params) -> str:
    query = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": redirect_uri,
        "scope": "openid profile email nationalrbacaccess selectedrole",
        "state": secrets.token_urlsafe(16),
        "nonce": secrets.token_urlsafe(16),
        **({"code_challenge": pkce.challenge, "code_challenge_method": "S256"} if pkce else {}),
        **params,
    }
    return f"{provider.discovery()['authorization_endpoint']}?{urlencode(query)}"


@dataclass
class Form:
    action: str
    method: str
    fields: dict = field(default_factory=dict)  # hidden and text inputs: name -> value
    choices: dict = field(default_factory=dict)  # radios: name -> [values]
    buttons: list = field(default_factory=list)  # (name, value) of submit buttons


class _Forms(HTMLParser):
    def __init__(self):
        super().__init__()
        self.forms: list[Form] = []
        self.by_id: dict[str, Form] = {}

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag == "form":
            form = Form(action=attributes.get("action", ""), method=attributes.get("method", "get").lower())
            self.forms.append(form)
            if attributes.get("id"):
                self.by_id[attributes["id"]] = form
            return
        form = self.by_id.get(attributes.get("form", "")) or (self.forms[-1] if self.forms else None)
        if form is None or tag not in ("input", "button"):
            return
        kind, name = attributes.get("type", "submit" if tag == "button" else "text"), attributes.get("name")
        if kind == "submit":
            form.buttons.append((name, attributes.get("value", "")))
        elif kind == "radio" and name:
            form.choices.setdefault(name, []).append(attributes.get("value", ""))
        elif name:
            form.fields[name] = attributes.get("value", "")


def forms_of(html: str) -> list[Form]:
    parser = _Forms()
    parser.feed(html)
    return parser.forms


def submit(browser: requests.Session, page: requests.Response, **values) -> requests.Response:
    """Submit the page's (first) form with these values filled in, and its first named button pressed."""
    form = forms_of(page.text)[0]
    data = {**form.fields, **values}
    button = next(((name, value) for name, value in form.buttons if name), None)
    if button:
        data.setdefault(*button)
    return browser.request(form.method, urljoin(page.url, form.action), data=data, allow_redirects=False)


def follow(browser: requests.Session, response: requests.Response, *, stop_at: str) -> requests.Response | str:
    """Follow redirects until a page (returned) or an address starting with `stop_at` (the relying party's
    redirect_uri or post_logout_redirect_uri: returned unvisited, as a string)."""
    while response.is_redirect:
        location = urljoin(response.url, response.headers["location"])
        if location.startswith(stop_at):
            return location
        response = browser.get(location, allow_redirects=False)
    return response


def sign_in(
    browser: requests.Session, url: str, *, redirect_uri: str, username: str, password: str, role_id: str = ""
) -> str:
    """From an authorization URL to the relying party's callback address (with a code or an error): the sign-in
    page, and the role page when the account holds several roles (`role_id` chosen there)."""
    page = follow(browser, browser.get(url, allow_redirects=False), stop_at=redirect_uri)
    if isinstance(page, str):
        return page
    page = follow(browser, submit(browser, page, username=username, password=password), stop_at=redirect_uri)
    if isinstance(page, str):
        return page
    if page.status_code != 200 or "role" not in forms_of(page.text)[0].choices:
        raise AssertionError(f"expected the role page, got {page.status_code}:\n{page.text}")
    return follow(browser, submit(browser, page, role=role_id), stop_at=redirect_uri)


# CIS2-shaped test data.


NATIONAL_ROLE_NAMES = {"R8000": "Clinical Practitioner Access Role", "R8001": "Nurse Access Role"}


def role(person_roleid: str, org_code: str, national_role: str = "R8000", **extra) -> dict:
    """One nhsid_nrbac_roles entry (national_role is the R code of role_code), named as CIS2 names roles."""
    name = NATIONAL_ROLE_NAMES.get(national_role, f"Access Role {national_role}")
    return {
        "person_roleid": person_roleid,
        "person_orgid": f"9{person_roleid[1:]}",
        "org_code": org_code,
        "role_code": f"S8000:G8000:{national_role}",
        "role_name": f'"Clinical":"Clinical Provision":"{name}"',
        "activity_codes": ["B0360", "B0264"],
        "activities": ["Manage Patient Record", "View Patient Medical Record"],
        **extra,
    }


def account(sub: str, *, username: str, password: str = PASSWORD, roles: list, smartcard: bool = True, **extra):
    """A provider account: smartcard (acr AAL3_ANY, amr SCRD) unless told otherwise (AAL2_OR_ABOVE, PWD + OTP)."""
    given, family = extra.pop("given_name", "Ada"), extra.pop("family_name", "Testperson")
    return {
        "sub": sub,
        "uid": sub,
        "username": username,
        "password": password,
        "given_name": given,
        "family_name": family,
        "email": username,
        "acr": "AAL3_ANY" if smartcard else "AAL2_OR_ABOVE",
        "amr": ["SCRD"] if smartcard else ["PWD", "OTP"],
        "roles": roles,
        **extra,
    }


def client(client_id: str, *, redirect_uri: str, secret: str = "", jwk: dict | None = None, **extra) -> dict:
    """Client metadata: client_secret_basic with a secret, private_key_jwt with a public JWK."""
    metadata = {"client_id": client_id, "redirect_uris": [redirect_uri], **extra}
    if jwk:
        return {**metadata, "token_endpoint_auth_method": "private_key_jwt", "jwks": {"keys": [jwk]}}
    return {**metadata, "client_secret": secret, "token_endpoint_auth_method": "client_secret_basic"}


# carerecord pointed at a running provider (pytest-django's `settings` fixture).


def configure(settings, provider, *, client_id="carerecord", secret="", auth="client_secret_basic", key_file=""):
    """carerecord's single sign-on pointed at the test provider, as carerecord/settings.py builds it."""
    settings.SSO_ISSUER = provider.issuer
    settings.SSO_CLIENT_AUTH = auth
    settings.SSO_PRIVATE_KEY_FILE = key_file
    settings.SSO_PRIVATE_KEY_ID = ""
    settings.SOCIALACCOUNT_PROVIDERS = {
        "openid_connect": {
            "provider_class": "identity.provider.CareIdentityProvider",
            "OAUTH_PKCE_ENABLED": True,
            "APPS": [
                {
                    "provider_id": "cis2",
                    "name": "NHS Care Identity",
                    "client_id": client_id,
                    "secret": secret if auth != "private_key_jwt" else "",
                    "settings": {
                        "server_url": provider.issuer,
                        "token_auth_method": auth,
                        "fetch_userinfo": True,
                        "oauth_pkce_enabled": True,
                        "scope": ["openid", "profile", "email", "nationalrbacaccess", "selectedrole"],
                    },
                }
            ],
        }
    }
