"""What a single sign-on means here: the identity provider's claims → a professional acting in one role (H-19).

allauth runs the OpenID Connect flow and calls `pre_social_login` once the provider has vouched for someone. Here:
1. the claims are read (identity.claims): the subject, the role selected at sign-in, the assurance (`acr`);
2. the selected role must name an organisation carerecord knows and which is active, and a national role that
   SSO_ROLE_MAP takes — otherwise refused, with a page saying why, and audited;
3. the subject (never the email) finds the professional (Professional.sso_subject, set by IG in admin or by a
   just-in-time first sign-in where the organisation allows it and for a role it allows); none → refused;
4. the selected role is the professional's home role or one of their role profiles (matched by the provider's
   role id, else by organisation and role; a new one created only where that organisation provisions
   just-in-time); an inactive professional, account or role profile is refused;
5. the sign-in's result rides in `sociallogin.state` (it survives allauth's stages), and once the user is signed
   in (`user_logged_in`) the session acts in that role and knows how strongly they authenticated
   (`ASSURANCE_SESSION_KEY`: a strong `acr` needs no authenticator app code, identity.stages).
"""

from dataclasses import dataclass

from allauth.account.signals import user_logged_in
from allauth.core.exceptions import ImmediateHttpResponse
from allauth.socialaccount.adapter import DefaultSocialAccountAdapter
from allauth.socialaccount.models import SocialAccount
from django.contrib.auth import get_user_model
from django.db import transaction
from django.shortcuts import render

from audit.names import Action
from directory import actions as directory
from directory.adapters import sign_in_event
from directory.models import Organisation, Professional, RoleProfile
from directory.profiles import select_role

from . import claims as claim_reader
from .sso import SILENT_SESSION_KEY, redirect_to_sign_in

STATE_KEY = "carerecord"
ASSURANCE_SESSION_KEY = "carerecord_assurance"  # "strong" (no TOTP asked) or "standard"
SIGN_IN_SESSION_KEY = "carerecord_signed_in_with"  # "sso" for a single sign-on
OTHER_ROLES_SESSION_KEY = "carerecord_other_roles"  # the professional holds role profiles: "Change role" shown
JUST_IN_TIME = "just-in-time"

# Why a sign-in the provider vouched for is refused: the page's words (for the person) and the audit's reason.
REFUSALS = {
    "no-subject": "The identity provider did not say who you are.",
    "no-role-selected": "No role was selected when you signed in. Sign in again and choose the role you are working "
    "in today.",
    "unknown-organisation": "The organisation of the role you selected does not take part in this shared care record.",
    "organisation-inactive": "The organisation of the role you selected no longer takes part in this shared care "
    "record.",
    "unknown-role": "The role you selected does not give access to this shared care record.",
    "not-provisioned": "You do not have an account for this shared care record yet. Ask your organisation's "
    "information governance team to set one up.",
    "role-not-provisioned": "You do not have access to this shared care record in the role you selected. Ask that "
    "organisation's information governance team, or sign in again in another role.",
    "inactive": "Your access to this shared care record has been switched off. Ask your organisation's "
    "information governance team.",
    "email-in-use": "An account with your email address exists but is not linked to your NHS identity. Ask your "
    "organisation's information governance team to link it.",
    "subject-conflict": "Your NHS identity is linked to another account here. Ask your organisation's information "
    "governance team.",
}


@dataclass(frozen=True)
class Subject:
    """An AuditEvent's target for a sign-in that made no session: the provider's subject (there may be no
    account to name)."""

    pk: str


class Refused(Exception):
    def __init__(self, reason: str, **detail):
        super().__init__(reason)
        self.reason, self.detail = reason, detail


class SingleSignOnAdapter(DefaultSocialAccountAdapter):
    def is_open_for_signup(self, request, sociallogin):
        return False  # pre_social_login links or refuses: allauth's sign-up form is never shown

    def pre_social_login(self, request, sociallogin):
        claims = claim_reader.read(sociallogin.account.extra_data or {})
        try:
            with transaction.atomic():
                professional, role_profile = resolve(claims)
                _link(request, sociallogin, professional)
        except Refused as refused:
            raise ImmediateHttpResponse(refusal_page(request, refused, claims)) from refused
        sociallogin.state[STATE_KEY] = {
            "role_profile": role_profile.pk if role_profile else None,
            "strong": claims.strong,
            "acr": claims.acr,
        }

    def on_authentication_error(self, request, provider, error=None, exception=None, extra_context=None):
        """A silent sign-in (prompt=none) the provider could not do without a page: the interactive sign-in,
        to the same place. Anything else: allauth's error page (ours: templates/socialaccount), audited."""
        silent_next = request.session.pop(SILENT_SESSION_KEY, None)
        if silent_next and request.GET.get("error") in ("login_required", "interaction_required", "consent_required"):
            raise ImmediateHttpResponse(redirect_to_sign_in(request, next_url=silent_next, silent=False))
        sign_in_event(
            request,
            by=None,
            action=Action.SIGN_IN_FAILED,
            target=Subject("unknown"),
            via="sso",
            error=str(error or "")[:100],
            provider_error=request.GET.get("error", "")[:100],
        )


def resolve(claims: claim_reader.Claims) -> tuple[Professional, RoleProfile | None]:
    """The professional and the role (None: their home role) this sign-in acts in, or Refused."""
    if not claims.subject:
        raise Refused("no-subject")
    selected = claims.selected
    if selected is None:
        raise Refused("no-role-selected", roles=len(claims.roles))
    detail = {"org_code": selected.org_code, "national_role": selected.national_role, "role_id": selected.role_id}
    organisation = Organisation.objects.filter(ods_code=selected.org_code).first()
    if organisation is None:
        raise Refused("unknown-organisation", **detail)
    if not organisation.active:
        raise Refused("organisation-inactive", **detail)
    role = selected.role
    if role is None:
        raise Refused("unknown-role", **detail)
    professional = (
        Professional.objects.select_related("user", "organisation").filter(sso_subject=claims.subject).first()
    )
    if professional is None:
        professional = _provision(claims, organisation, role, detail)
    if not (professional.active and professional.user.is_active and professional.organisation.active):
        raise Refused("inactive", **detail)
    if professional.organisation_id == organisation.pk and professional.role == role:
        return professional, None
    return professional, _role_profile(professional, organisation, role, selected, detail)


def _allows(organisation: Organisation, role: str) -> bool:
    allowed = {part.strip() for part in organisation.sso_roles.split(",") if part.strip()}
    return organisation.sso_provisioning == JUST_IN_TIME and role in allowed


def _provision(claims, organisation, role, detail) -> Professional:
    if not _allows(organisation, role):
        raise Refused("not-provisioned", **detail)
    username = f"sso:{claims.subject}"[:150]
    users = get_user_model().objects
    if users.filter(username=username).exists() or (claims.email and users.filter(email__iexact=claims.email).exists()):
        raise Refused("email-in-use", **detail)
    return directory.provision_professional(
        by=None,
        email=claims.email,
        username=username,
        first_name=claims.given_name[:150],
        last_name=claims.family_name[:150],
        organisation=organisation,
        role=role,
        via="single sign-on",
        sso_subject=claims.subject,
    )


def _role_profile(professional, organisation, role, selected, detail) -> RoleProfile:
    held = professional.role_profiles.select_related("organisation")
    role_profile = (
        held.filter(provider_role_id=selected.role_id).first()
        or held.filter(organisation=organisation, role=role).first()
    )
    national = {
        "provider_role_id": selected.role_id,
        "national_role_code": selected.national_role[:100],
        "activities": ",".join(selected.activity_codes)[:500],
    }
    if role_profile is None:
        if not _allows(organisation, role):
            raise Refused("role-not-provisioned", **detail)
        if RoleProfile.objects.filter(provider_role_id=selected.role_id).exists():
            raise Refused("subject-conflict", **detail)
        return directory.add_role_profile(
            by=None, professional=professional, organisation=organisation, role=role, via="single sign-on", **national
        )
    if role_profile.organisation_id != organisation.pk or role_profile.role != role:
        raise Refused("role-not-provisioned", **detail)  # the provider's role id now names another role here
    if not role_profile.active:
        raise Refused("inactive", **detail)
    changed = [name for name, value in national.items() if getattr(role_profile, name) != value]
    if changed:
        for name in changed:
            setattr(role_profile, name, national[name])
        directory.save_role_profile(by=None, role_profile=role_profile, changed=changed, via="single sign-on")
    return role_profile


def _link(request, sociallogin, professional: Professional) -> None:
    """The provider's subject links the account (never the email): a first sign-in connects it."""
    if sociallogin.is_existing:
        if sociallogin.user.pk != professional.user_id:
            raise Refused("subject-conflict")
        return
    taken = SocialAccount.objects.filter(provider=sociallogin.account.provider, uid=sociallogin.account.uid)
    if taken.exclude(user_id=professional.user_id).exists():
        raise Refused("subject-conflict")
    sociallogin.connect(request, professional.user)


def refusal_page(request, refused: Refused, claims):
    sign_in_event(
        request,
        by=None,
        action=Action.SIGN_IN_REFUSED,
        target=Subject(claims.subject[:200] or "unknown"),
        via="sso",
        reason=refused.reason,
        **{key: str(value)[:200] for key, value in refused.detail.items()},
    )
    context = {"reason": refused.reason, "explanation": REFUSALS.get(refused.reason, REFUSALS["not-provisioned"])}
    return render(request, "identity/sign_in_refused.html", context, status=403)


def on_signed_in(sender, request, user, sociallogin=None, **kwargs):
    """Whichever way in, the session remembers whether there are other roles to change to (the header's link,
    without a query on every page). Through the provider: the session acts in the sign-in's role, at the
    sign-in's assurance."""
    request.session[OTHER_ROLES_SESSION_KEY] = RoleProfile.objects.filter(professional__user=user, active=True).exists()
    if sociallogin is None:  # a local sign-in acts in the home role
        select_role(request, None)
        request.session[ASSURANCE_SESSION_KEY] = "standard"
        request.session[SIGN_IN_SESSION_KEY] = "local"
        return
    state = sociallogin.state.get(STATE_KEY) or {}
    role_id = state.get("role_profile")
    select_role(request, RoleProfile.objects.filter(pk=role_id).first() if role_id else None)
    request.session[ASSURANCE_SESSION_KEY] = "strong" if state.get("strong") else "standard"
    request.session[SIGN_IN_SESSION_KEY] = "sso"


def connect():
    user_logged_in.connect(on_signed_in, dispatch_uid="identity.on_signed_in")
