"""Both ways in on the audit trail (connected at start-up: IdentityConfig.ready), each row with the client's
address and the request id (directory.adapters.sign_in_event):

- signed in: allauth's user_logged_in, sent once every step is done (password and code; or the identity
  provider's sign-in and any code it still needs): who, how ("local" or "sso": allauth passes the `sociallogin`
  of a single sign-on) and the organisation of the role the session acts in;
- a wrong password: Django's user_login_failed, sent by allauth's password check, with the email address tried
  (lowercased), never the password; a wrong authenticator code: allauth.mfa's authentication_failed;
- signed out: Django's user_logged_out, whoever ends the session (the sign-out button, the session's time limit).

A lockout and a refused local sign-in are written by directory.adapters, where allauth shows them; the identity
provider's refusals and errors by identity.adapters.
"""

from allauth.account.signals import user_logged_in
from allauth.mfa.signals import authentication_failed
from django.contrib.auth.signals import user_logged_out, user_login_failed

from audit.names import Action
from directory.adapters import account_for, sign_in_event, sign_in_failed, tried_email, via_of
from directory.models import Professional, RoleProfile
from directory.profiles import ROLE_SESSION_KEY, professional_for

from .adapters import SIGN_IN_SESSION_KEY, STATE_KEY


def on_signed_in(sender, request, user, sociallogin=None, **kwargs):
    sign_in_event(
        request,
        action=Action.SIGNED_IN,
        by=user,
        target=user,
        via="local" if sociallogin is None else "sso",
        organisation=acting_organisation_code(request, user, sociallogin),
    )


def acting_organisation_code(request, user, sociallogin=None) -> str:
    """The ODS code of the role the new session acts in: a single sign-on's selected role (read from the sign-in
    itself, whichever receiver of user_logged_in runs first), else the session's, else the home role; "" for
    someone with no professional profile or a role profile that is not theirs."""
    if sociallogin is not None:
        role_id = (sociallogin.state.get(STATE_KEY) or {}).get("role_profile")
    else:
        role_id = request.session.get(ROLE_SESSION_KEY)
    professional = Professional.objects.select_related("organisation").filter(user=user).first()
    if professional is None:
        return ""
    if role_id is None:
        return professional.organisation.ods_code
    role = RoleProfile.objects.select_related("organisation").filter(pk=role_id, professional=professional).first()
    return role.organisation.ods_code if role else ""


def on_password_failed(sender, credentials, request=None, **kwargs):
    email = tried_email(credentials)
    sign_in_failed(request, email=email, user=account_for(email), step="password", reason="incorrect-password")


def on_code_failed(sender, request, user, authenticator=None, reauthentication=False, **kwargs):
    via = via_of(getattr(request, "_login_stage", None))  # allauth's pending sign-in, on its code page
    if reauthentication:
        via = request.session.get(SIGN_IN_SESSION_KEY) or "local"
    sign_in_failed(request, email=user.email, user=user, step="code", reason="incorrect-code", via=via)


def on_signed_out(sender, request, user=None, **kwargs):
    if user is None:  # the session was not signed in
        return
    professional = professional_for(user)
    sign_in_event(
        request,
        action=Action.SIGNED_OUT,
        by=user,
        target=user,
        via=request.session.get(SIGN_IN_SESSION_KEY) or "local",
        organisation=professional.organisation.ods_code if professional else "",
    )


def connect():
    user_logged_in.connect(on_signed_in, dispatch_uid="identity.audit_signed_in")
    user_login_failed.connect(on_password_failed, dispatch_uid="identity.audit_password_failed")
    authentication_failed.connect(on_code_failed, dispatch_uid="identity.audit_code_failed")
    user_logged_out.connect(on_signed_out, dispatch_uid="identity.audit_signed_out")
