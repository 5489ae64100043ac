"""The account adapter (ACCOUNT_ADAPTER): directory's provisioned-accounts rules, with the TOTP stage that knows
about single sign-on's assurance (identity.stages), and a sign-out that offers the provider's end-session."""

import logging

from django.urls import reverse

from directory.adapters import ProvisionedAccountAdapter

from . import sso
from .adapters import SIGN_IN_SESSION_KEY
from .provider import ID_TOKEN_SESSION_KEY
from .views_sso import END_SESSION_SESSION_KEY

MFA_STAGE = "allauth.mfa.stages.AuthenticateStage"
logger = logging.getLogger(__name__)


class SignInAccountAdapter(ProvisionedAccountAdapter):
    def get_login_stages(self) -> list[str]:
        return ["identity.stages.AssuredAuthenticateStage" if s == MFA_STAGE else s for s in super().get_login_stages()]

    def logout(self, request) -> None:
        """Ends the local session; after a single sign-on, the new (anonymous) session remembers the provider's
        end-session address for the signed-out page to offer (RP-initiated logout: the provider's session on this
        computer may outlive ours)."""
        end_session = _end_session_url(request) if request.session.get(SIGN_IN_SESSION_KEY) == "sso" else ""
        super().logout(request)
        if end_session:
            request.session[END_SESSION_SESSION_KEY] = end_session

    def get_logout_redirect_url(self, request) -> str:
        return reverse("signed-out") if sso.enabled() else super().get_logout_redirect_url(request)


def _end_session_url(request) -> str:
    try:
        return sso.provider(request).end_session_url(
            request,
            id_token=request.session.get(ID_TOKEN_SESSION_KEY, ""),
            post_logout_redirect_uri=request.build_absolute_uri(reverse("signed-out")),
        )
    except Exception:  # the provider unreachable: the local sign-out still happens, with no offer
        logger.warning("The identity provider's end-session address could not be read", exc_info=True)
        return ""
