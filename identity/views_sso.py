"""Single sign-on's own pages: the provider's callback (allauth's, with carerecord's adapter), changing role, and
the signed-out page that offers the provider's own sign-out."""

from allauth.account.internal.decorators import login_not_required
from allauth.socialaccount.models import SocialApp
from allauth.socialaccount.providers.oauth2.views import OAuth2CallbackView
from django import forms
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from audit.names import Action
from audit.writers import audit
from directory.models import Professional
from directory.profiles import professional_for, roles_of, select_role

from . import sso
from .adapters import SIGN_IN_SESSION_KEY
from .provider import CareIdentityAdapter

END_SESSION_SESSION_KEY = "carerecord_sso_end_session"  # set on the new session by sign-out (identity.accounts)
HOME_ROLE = "home"


@login_not_required
def callback(request, provider_id):
    """allauth's OpenID Connect callback with identity.provider's adapter (private-key JWT, the ID token kept)."""
    try:
        view = OAuth2CallbackView.adapter_view(CareIdentityAdapter(request, provider_id))
        return view(request)
    except SocialApp.DoesNotExist:
        raise Http404 from None


class RoleForm(forms.Form):
    role = forms.ChoiceField(
        label="Which role are you working in?", widget=forms.RadioSelect, error_messages={"required": "Select a role"}
    )

    def __init__(self, *args, home, **kwargs):
        super().__init__(*args, **kwargs)
        self.roles = {HOME_ROLE if role is None else str(role.pk): role for role in roles_of(home)}
        self.fields["role"].choices = [(key, label_of(role, home)) for key, role in self.roles.items()]


def label_of(role, home) -> str:
    held = home if role is None else role
    return f"{held.get_role_display()}, {held.organisation.name}"


@require_http_methods(["GET", "POST"])
def change_role(request):
    """Act in another of one's roles. After a single sign-on the provider chooses (CIS2: a role is selected at
    sign-in, and changed by signing in again with the selectedrole scope); a local session picks here."""
    professional = professional_for(request.user)
    if professional is None:
        return render(request, "identity/change_role_none.html")
    if request.session.get(SIGN_IN_SESSION_KEY) == "sso" and sso.enabled():
        if request.method == "POST":
            response = sso.redirect_to_sign_in(request, next_url=reverse("home"))
            return _with_prompt(response, "login")
        return render(request, "identity/change_role_sso.html", {"sso_name": sso.provider(request).name})
    home = professional if professional.acting_role is None else _stored(professional)
    form = RoleForm(request.POST or None, home=home)
    if request.method == "POST" and form.is_valid():
        chosen = form.roles[form.cleaned_data["role"]]
        select_role(request, chosen)
        acting = professional_for(request.user)
        audit(
            by=request.user,
            action=Action.ROLE_SELECTED,
            target=home,
            organisation=acting.organisation.ods_code,
            role=acting.role,
            role_profile=chosen.pk if chosen else HOME_ROLE,
        )
        return redirect("home")
    current = HOME_ROLE if professional.acting_role is None else str(professional.acting_role.pk)
    if not form.is_bound:
        form.initial["role"] = current
    return render(request, "identity/change_role.html", {"form": form})


def _stored(professional):
    """The professional as stored (their home role), for a session acting in a role profile."""
    return Professional.objects.select_related("organisation", "user").get(pk=professional.pk)


def _with_prompt(response, prompt: str):
    """The provider's authorize URL with prompt set (signing in again to choose another role)."""
    location = response["Location"]
    response["Location"] = f"{location}{'&' if '?' in location else '?'}prompt={prompt}"
    return response


@login_not_required
def signed_out(request):
    """After sign-out: offers the provider's end-session once (its session may still be open on this computer);
    coming back from it, or with none to offer, just says they are signed out."""
    end_session = request.session.pop(END_SESSION_SESSION_KEY, "")
    return render(request, "identity/signed_out.html", {"end_session": end_session, "sso_enabled": sso.enabled()})


def not_offered(request):
    """allauth's self-service pages carerecord does not offer (identity.sso_urls)."""
    raise Http404("Not offered here.")
