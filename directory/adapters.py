"""django-allauth's account adapter, with carerecord's rules for the local sign-in (email, password, authenticator
app code):

- accounts are provisioned by IG in admin, so there is no public sign-up;
- an organisation whose staff all sign in through the NHS identity provider (Organisation.local_sign_in off) has
  its professionals' passwords refused, after the password is checked (a wrong one gets the usual message, so
  the page never tells whose email address it is), and the refusal audited (H-19). Single sign-on never comes
  here: allauth checks passwords only for the local sign-in;
- a lockout (allauth's login_failed rate limit) is audited as a failed sign-in, at the password and at the code;
- allauth's messages in plain English.

`sign_in_event` writes every sign-in row (identity.signals writes the rest) with the client's address and the
request id, so IG can join the trail to the server's logs.
"""

from dataclasses import dataclass

from allauth.account.adapter import DefaultAccountAdapter
from allauth.core import context
from django import forms
from django.conf import settings
from django.contrib.auth import get_user_model
from django.utils.module_loading import import_string

from audit.names import Action
from audit.writers import audit

from .models import Professional

LOCAL_SIGN_IN_OFF = "local-sign-in-off"
LOCKED_OUT = "too_many_login_attempts"  # allauth's code for its login_failed rate limit


@dataclass(frozen=True)
class NoAccount:
    """An AuditEvent's target for a sign-in attempt with an email address no account has."""

    pk: str = ""


class ProvisionedAccountAdapter(DefaultAccountAdapter):
    error_messages = {
        **DefaultAccountAdapter.error_messages,
        "account_inactive": "Your account has been switched off. Ask your organisation's information governance team.",
        "email_password_mismatch": "The email address or password is not right. Check them and try again.",
        "enter_current_password": "Enter your current password",
        "incorrect_password": "The password is not right. Check it and try again.",
        LOCKED_OUT: "You have tried to sign in too many times. Wait a few minutes, then try again.",
    }
    _reauthenticating = False

    def is_open_for_signup(self, request):
        return False

    def authenticate(self, request, **credentials):
        """allauth's password check, then: may this person sign in with a password at all?"""
        user = super().authenticate(request, **credentials)
        if user is not None and user.is_active and not self._reauthenticating:
            refuse_if_local_sign_in_off(request, user)
        return user

    def reauthenticate(self, user, password):
        """Confirming the password of someone already signed in is not a sign-in: no refusal."""
        self._reauthenticating = True
        try:
            return super().reauthenticate(user, password)
        finally:
            self._reauthenticating = False

    def pre_authenticate(self, request, **credentials):
        try:
            super().pre_authenticate(request, **credentials)
        except forms.ValidationError:
            email = tried_email(credentials)
            sign_in_failed(request, email=email, user=account_for(email), step="password", reason="locked-out")
            raise

    def validation_error(self, code, *args):
        """allauth.mfa's lockout at the code step raises through here (no signal of its own): audited."""
        if code == LOCKED_OUT:
            stage = getattr(context.request, "_login_stage", None)  # set by allauth on its sign-in stage pages
            user = getattr(getattr(stage, "login", None), "user", None)
            if user is not None:
                sign_in_failed(
                    context.request, email=user.email, user=user, step="code", reason="locked-out", via=via_of(stage)
                )
        return super().validation_error(code, *args)


def refuse_if_local_sign_in_off(request, user) -> None:
    """A professional whose (home) organisation signs in only through the identity provider: refused, audited.
    Someone with no professional profile (an administrator, or an account IG have not finished) is left to the
    usual rules: without a profile they see no record."""
    professional = Professional.objects.select_related("organisation").filter(user=user).first()
    if professional is None or professional.organisation.local_sign_in:
        return
    sign_in_event(
        request,
        action=Action.SIGN_IN_REFUSED,
        by=user,
        target=user,
        via="local",
        reason=LOCAL_SIGN_IN_OFF,
        organisation=professional.organisation.ods_code,
    )
    raise forms.ValidationError(local_sign_in_off_message(), code=LOCAL_SIGN_IN_OFF)


def local_sign_in_off_message() -> str:
    if settings.SSO_ISSUER:
        name = settings.SSO_NAME
        return f"Your organisation signs in through {name}: use the “Sign in with {name}” button."
    return (
        "Your organisation does not let its staff sign in here with a password. Ask your organisation's "
        "information governance team how to sign in."
    )


def tried_email(credentials: dict) -> str:
    return str(credentials.get("email") or credentials.get("username") or "").strip().lower()[:254]


def account_for(email: str):
    """The account an attempt was for (to be its audit target), or None."""
    if not email:
        return None
    return get_user_model().objects.filter(email__iexact=email).order_by("pk").first()


def via_of(stage) -> str:
    """How a sign-in still under way began: "sso" once the identity provider has vouched, else "local"."""
    signal_kwargs = getattr(getattr(stage, "login", None), "signal_kwargs", None) or {}
    return "sso" if signal_kwargs.get("sociallogin") is not None else "local"


def sign_in_failed(request, *, email, user, step, reason, via="local", **detail):
    """A failed attempt: the actor is nobody (whoever typed it is not known), unless someone already signed in
    was confirming who they are (reauthentication). The password is never passed here."""
    signed_in = getattr(getattr(request, "user", None), "is_authenticated", False)
    if signed_in:
        detail["reauthentication"] = "yes"
    return sign_in_event(
        request,
        action=Action.SIGN_IN_FAILED,
        by=request.user if signed_in else None,
        target=user if user is not None else NoAccount(),
        via=via,
        step=step,
        reason=reason,
        email=email.lower(),
        **detail,
    )


def sign_in_event(request, *, action, by, target, **detail):
    return audit(by=by, action=action, target=target, **detail, **request_detail(request))


def request_detail(request) -> dict:
    """The client's address (carerecord.client_address, reached through the setting that names it: the apps sit
    below carerecord and never import it) and the request id."""
    if request is None:
        return {"address": "", "request_id": ""}
    return {
        "address": import_string(settings.RATELIMIT_IP_META_KEY)(request),
        "request_id": getattr(request, "request_id", ""),
    }
