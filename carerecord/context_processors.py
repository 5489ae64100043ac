"""Values every template needs: the service name, the signed-in professional, whether they hold other roles, and
how long the session has left (for the timeout warning)."""

import time

from django.conf import settings

from directory.profiles import professional_for
from identity.adapters import OTHER_ROLES_SESSION_KEY

from .middleware import SESSION_RENEWED_AT


def service(request):
    return {
        "service_name": settings.SERVICE_NAME,
        "professional": professional_for(getattr(request, "user", None)),
        "has_other_roles": bool(getattr(request, "session", {}).get(OTHER_ROLES_SESSION_KEY)),
        "session_timeout": session_timeout(request),
    }


def session_timeout(request) -> dict | None:
    """For a signed-in user, for the timeout warning: the seconds until the idle sign-out as of this response, a
    whole idle period (what "Stay signed in" gives), and the fewest any later request leaves (SessionLimitsMiddleware
    renews the expiry at most every SESSION_RENEW_SECONDS, so it runs from the last renewal, not from now). None
    when no one is signed in."""
    if not getattr(getattr(request, "user", None), "is_authenticated", False):
        return None
    idle = settings.SESSION_COOKIE_AGE
    renewed_at = request.session.get(SESSION_RENEWED_AT) or time.time()
    return {
        "seconds_left": max(0, int(idle - (time.time() - renewed_at))),
        "window": idle,
        "after_request": max(0, idle - settings.SESSION_RENEW_SECONDS),
    }
