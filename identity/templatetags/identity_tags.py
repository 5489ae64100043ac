"""What the sign-in pages need to know about single sign-on, so they stay dumb templates."""

from django import template
from django.conf import settings

from .. import sso

register = template.Library()


@register.simple_tag(takes_context=True)
def single_sign_on(context):
    """{"name": ..., "url": ...} for the "Sign in with …" button (a POST to allauth's provider sign-in, which
    then sends the browser to the provider), or None when single sign-on is off. Nothing is fetched from the
    provider to draw it."""
    if not sso.enabled():
        return None
    provider = sso.provider(context.get("request"))
    return {"name": provider.name, "url": provider.get_login_url(context.get("request"))}


@register.simple_tag
def single_sign_on_name() -> str:
    """The identity provider's name as people know it (SSO_NAME, e.g. "NHS Care Identity")."""
    return settings.SSO_NAME
