"""Single sign-on from the rest of carerecord's point of view: is it on, send the browser to sign in, whose subject.

The OpenID Connect flow itself is django-allauth's (identity.provider extends it); what a sign-in means here
(claims → a professional in a role) is identity.adapters.
"""

from allauth.socialaccount.adapter import get_adapter
from allauth.socialaccount.providers.base import AuthProcess
from django.conf import settings

from directory.profiles import professional_for

PROVIDER_ID = "cis2"
# Set while a silent sign-in (prompt=none) is under way: if the provider answers login_required, the adapter
# sends the browser to the interactive sign-in with the same destination instead of an error page.
SILENT_SESSION_KEY = "carerecord_sso_silent"


def enabled() -> bool:
    return bool(settings.SSO_ISSUER)


def provider(request):
    return get_adapter().get_provider(request, PROVIDER_ID)


def redirect_to_sign_in(request, *, next_url: str, silent: bool = False):
    """A redirect to the identity provider's sign-in, coming back to `next_url` once signed in. `silent`
    (prompt=none): no page is shown when the provider's own session exists (a launch from a clinical system)."""
    sso = provider(request)
    auth_params = sso.get_auth_params()
    if silent:
        auth_params["prompt"] = "none"
        request.session[SILENT_SESSION_KEY] = next_url
    else:
        request.session.pop(SILENT_SESSION_KEY, None)
    return sso.redirect(request, AuthProcess.LOGIN, next_url=next_url, auth_params=auth_params)


def subject_of(user) -> str | None:
    """The identity provider's subject linked to the signed-in user's professional, or None."""
    professional = professional_for(user)
    return professional.sso_subject if professional is not None and professional.sso_subject else None
