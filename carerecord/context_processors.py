"""Values every template needs: the service name and the signed-in professional."""

from django.conf import settings

from directory.profiles import professional_for


def service(request):
    return {
        "service_name": settings.SERVICE_NAME,
        "professional": professional_for(getattr(request, "user", None)),
    }
