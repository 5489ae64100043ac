"""The navigation patients and other signed-out visitors see in the header: the public pages and the sign-in.

One list, so the header and its tests agree on what is there and which item a page belongs to.
"""

from django import template
from django.urls import reverse

register = template.Library()

# (URL name, text, the URL names of the pages under it: the item is marked current on each).
PUBLIC_NAVIGATION = (
    ("home", "Home", {"home"}),
    ("optout-information", "About the record", {"optout-information"}),
    ("optout-partners", "Partners", {"optout-partners"}),
    ("optout-how", "Opt out", {"optout-how", "optout-request", "optout-request-check", "optout-request-done"}),
    (
        "account_login",
        "Professional sign in",
        {
            "account_login",
            "mfa_authenticate",
            "account_reset_password",
            "account_reset_password_done",
            "account_reset_password_from_key",
            "account_reset_password_from_key_done",
        },
    ),
)


@register.simple_tag(takes_context=True)
def public_navigation(context):
    """[{"href", "text", "current"}] for the header. "current" is aria-current's value: "page" on the item that is
    this page, "true" on the one a page under it belongs to (the request form under "Opt out"), else ""."""
    request = context.get("request")
    match = getattr(request, "resolver_match", None)
    here = match.url_name if match else None
    return [
        {"href": reverse(name), "text": text, "current": "page" if here == name else "true" if here in pages else ""}
        for name, text, pages in PUBLIC_NAVIGATION
    ]
