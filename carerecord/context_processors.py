"""Values every template needs: the service name, the signed-in professional, whether they hold other roles."""

from django.conf import settings

from directory.profiles import professional_for
from identity.adapters import OTHER_ROLES_SESSION_KEY


def service(request):
    return {
        "service_name": settings.SERVICE_NAME,
        "professional": professional_for(getattr(request, "user", None)),
        "has_other_roles": bool(getattr(request, "session", {}).get(OTHER_ROLES_SESSION_KEY)),
    }
