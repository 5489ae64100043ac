"""django-allauth's OpenID Connect provider, extended for what an NHS identity provider needs (settings swap it in:
SOCIALACCOUNT_PROVIDERS["openid_connect"]["provider_class"]).

What is added, and only that:
- private-key JWT client authentication (RFC 7523, OIDC Core §9 `private_key_jwt`): the token request carries a
  short-lived assertion signed with the service's key instead of a client secret (CIS2 recommends it);
- the raw ID token kept in the session (for the provider's end-session: `id_token_hint`) and its `acr` read by
  identity.adapters (a smartcard sign-in needs no TOTP here);
- RP-initiated logout: `end_session_url()` from the discovery document's `end_session_endpoint`.
allauth's own views are used with this adapter (identity.views_sso), so state, PKCE and ID token checks stay
allauth's.
"""

import time
import uuid
from pathlib import Path
from urllib.parse import urlencode

import jwt
import requests
from allauth.socialaccount.helpers import render_authentication_error
from allauth.socialaccount.providers.oauth2.client import OAuth2Error
from allauth.socialaccount.providers.openid_connect.provider import OpenIDConnectProvider
from allauth.socialaccount.providers.openid_connect.views import OpenIDConnectOAuth2Adapter
from django.conf import settings

ID_TOKEN_SESSION_KEY = "carerecord_sso_id_token"  # noqa: S105 (a session key name, not a secret)
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ASSERTION_SECONDS = 60


class CareIdentityAdapter(OpenIDConnectOAuth2Adapter):
    @property
    def openid_config(self):
        """The provider's discovery document; unreachable, an OAuth2Error, which allauth's views answer with the
        "signing in did not work" page (never a server error)."""
        try:
            return super().openid_config
        except requests.RequestException as error:
            raise OAuth2Error(f"The identity provider's discovery document could not be read: {error}") from error

    @property
    def private_key_jwt(self) -> bool:
        return self.get_provider().app.settings.get("token_auth_method") == "private_key_jwt"

    @property
    def basic_auth(self):
        return False if self.private_key_jwt else super().basic_auth

    def get_client(self, request, app):
        client = super().get_client(request, app)
        if self.private_key_jwt:
            client.consumer_secret = ""  # never sent: the assertion proves who is asking (empty keys are stripped)
        return client

    def get_access_token_data(self, request, app, client, pkce_code_verifier=None):
        if not self.private_key_jwt:
            return super().get_access_token_data(request, app, client, pkce_code_verifier=pkce_code_verifier)
        code = request.GET.get("code")
        assertion = client_assertion(app.client_id, self.access_token_url)
        return client.get_access_token(
            code,
            pkce_code_verifier=pkce_code_verifier,
            extra_data={"client_assertion_type": ASSERTION_TYPE, "client_assertion": assertion},
        )

    def complete_login(self, request, app, token, **kwargs):
        id_token = kwargs["response"].get("id_token")
        if id_token:
            request.session[ID_TOKEN_SESSION_KEY] = id_token
        return super().complete_login(request, app, token, **kwargs)


def client_assertion(client_id: str, token_endpoint: str, *, now: float | None = None) -> str:
    """The signed client assertion: iss = sub = the client id, aud = the token endpoint, a fresh jti, one minute."""
    now = time.time() if now is None else now
    claims = {
        "iss": client_id,
        "sub": client_id,
        "aud": token_endpoint,
        "jti": uuid.uuid4().hex,
        "iat": int(now),
        "exp": int(now) + ASSERTION_SECONDS,
    }
    headers = {"kid": settings.SSO_PRIVATE_KEY_ID} if settings.SSO_PRIVATE_KEY_ID else None
    return jwt.encode(claims, private_key(), algorithm="RS256", headers=headers)


def private_key() -> str:
    if not settings.SSO_PRIVATE_KEY_FILE:
        raise RuntimeError("SSO_CLIENT_AUTH=private_key_jwt needs SSO_PRIVATE_KEY_FILE (a PEM private key).")
    return Path(settings.SSO_PRIVATE_KEY_FILE).read_text()


class CareIdentityProvider(OpenIDConnectProvider):
    oauth2_adapter_class = CareIdentityAdapter
    package = "allauth.socialaccount.providers.openid_connect"  # its URLs (allauth.urls includes the package's)

    def redirect(self, request, process, next_url=None, data=None, **kwargs):
        """To the provider's sign-in; the provider unreachable (its discovery document), the "signing in did not
        work" page rather than a server error (allauth's login view does not catch it)."""
        try:
            return super().redirect(request, process, next_url=next_url, data=data, **kwargs)
        except OAuth2Error as error:
            return render_authentication_error(request, self, exception=error)

    def end_session_url(self, request, *, id_token: str, post_logout_redirect_uri: str) -> str:
        """The provider's end-session (RP-initiated logout) address, or "" when it offers none."""
        endpoint = self.get_oauth2_adapter(request).openid_config.get("end_session_endpoint")
        if not endpoint:
            return ""
        query = {"post_logout_redirect_uri": post_logout_redirect_uri, "client_id": self.app.client_id}
        if id_token:
            query["id_token_hint"] = id_token
        return f"{endpoint}?{urlencode(query)}"
