"""The signed-in user's professional profile, looked up once per request, acting in the session's role.

A professional may hold several role profiles (CIS2: an organisation and a role in it). The session acts in one
at a time: the home role (the professional's own organisation and role) unless a role profile was selected at
single sign-on or on the "change role" page. `professional_for` then returns a copy of the professional with that
role's organisation, role and job title, so that the access decision, the audit rows and "own organisation's
entries" all read the acting organisation without knowing about roles (H-19). Such a copy is never saved.
"""

import copy

from .models import Professional, RoleProfile

# The session's selected role profile (a RoleProfile pk); absent: the home role.
ROLE_SESSION_KEY = "carerecord_role_profile"
_UNSET = object()


class SelectedRoleMiddleware:
    """After authentication: tells professional_for which role this request acts in (from the session)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        if getattr(user, "is_authenticated", False):
            user._carerecord_role_profile_id = request.session.get(ROLE_SESSION_KEY)
        return self.get_response(request)


def select_role(request, role_profile: RoleProfile | None) -> None:
    """Act in `role_profile` (None: the home role) from the next lookup on; the cached profile is dropped."""
    if role_profile is None:
        request.session.pop(ROLE_SESSION_KEY, None)
    else:
        request.session[ROLE_SESSION_KEY] = role_profile.pk
    user = request.user
    user._carerecord_role_profile_id = None if role_profile is None else role_profile.pk
    if hasattr(user, "_carerecord_professional"):
        del user._carerecord_professional


def professional_for(user) -> Professional | None:
    """The user's professional profile (active or not) in the session's role, or None. Cached for the request."""
    if not getattr(user, "is_authenticated", False):
        return None
    if not hasattr(user, "_carerecord_professional"):
        # A token lookup brings the profile with its user (select_related): no second query for it.
        professional = user._state.fields_cache.get("professional", _UNSET)
        if professional is _UNSET:
            professional = Professional.objects.select_related("organisation").filter(user=user).first()
        if professional is not None:
            professional.user = user  # the audit row names them: no second query for the same user
            role_id = getattr(user, "_carerecord_role_profile_id", None)
            if role_id is not None:
                professional = acting_as(professional, role_id)
        user._carerecord_professional = professional
    return user._carerecord_professional


def acting_as(professional: Professional, role_profile_id) -> Professional:
    """A copy of `professional` in one of their role profiles. A role profile that is gone, inactive or not
    theirs gives an inactive copy (refused everything, as an inactive professional is), never the home role:
    a session must not slip back into another organisation's access by itself."""
    role = (
        RoleProfile.objects.select_related("organisation")
        .filter(pk=role_profile_id, professional_id=professional.pk)
        .first()
    )
    seat = copy.copy(professional)
    seat.acting_role = role or _UNSET
    if role is None:
        seat.active = False
        return seat
    seat.organisation = role.organisation  # sets organisation_id too
    # The role profile's own title: the home job title belongs to the home role (a consultant acting as a GP).
    seat.role, seat.job_title = role.role, role.job_title
    seat.active = professional.active and role.active
    return seat


def roles_of(professional: Professional) -> list:
    """What a professional may act as: None for the home role, then their active role profiles."""
    return [None, *professional.role_profiles.filter(active=True).select_related("organisation")]
