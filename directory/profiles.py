"""The signed-in user's professional profile, looked up once per request."""

from .models import Professional


def professional_for(user) -> Professional | None:
    """The user's professional profile (active or not), or None. Cached on the user for the request."""
    if not getattr(user, "is_authenticated", False):
        return None
    if not hasattr(user, "_carerecord_professional"):
        professional = Professional.objects.select_related("organisation").filter(user=user).first()
        if professional is not None:
            professional.user = user  # the audit row names them: no second query for the same user
        user._carerecord_professional = professional
    return user._carerecord_professional
