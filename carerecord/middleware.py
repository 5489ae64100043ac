"""Middleware: request ids, requests refused before any view, no caching of patient data, session limits,
and the multi-factor requirement.

Request ids: every response and every audit row of a request carry the same id, so IG can join the
audit trail to server logs. A well-formed X-Request-ID is kept only from the load balancer (BEHIND_PROXY):
otherwise anyone could choose the id their requests are audited under."""

import re
import time
import uuid
from urllib.parse import urlencode

from allauth.mfa.models import Authenticator
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.models import AnonymousUser
from django.contrib.auth.views import redirect_to_login
from django.http import HttpResponseBadRequest
from django.shortcuts import redirect
from django.urls import resolve, reverse
from django.utils.cache import add_never_cache_headers

from carerecord.logs import REQUEST_ID
from fhirapi.outcome import error
from fhirapi.responses import outcome_response
from identity.adapters import ASSURANCE_SESSION_KEY

_VALID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")


class RequestIdMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        incoming = request.headers.get("X-Request-ID", "") if settings.BEHIND_PROXY else ""
        request.request_id = incoming if _VALID.match(incoming) else uuid.uuid4().hex
        token = REQUEST_ID.set(request.request_id)  # every log line while answering names it (carerecord.logs)
        try:
            response = self.get_response(request)
        finally:
            REQUEST_ID.reset(token)
        response["X-Request-ID"] = request.request_id
        return response


class RejectNulMiddleware:
    """A NUL in the path or the query string is never meant (no URL of ours has one) and PostgreSQL refuses it
    in text: 400 here, rather than a 500 from whichever query or audit row would have carried it."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        query = request.META.get("QUERY_STRING", "")
        if "\x00" in request.path or "\x00" in query or "%00" in query:
            if request.path.startswith("/fhir/"):
                issue = error("invalid", "The URL holds a NUL character (%00).")
                return outcome_response(request, [issue], 400)
            return HttpResponseBadRequest("The address holds a NUL character (%00).", content_type="text/plain")
        return self.get_response(request)


class NoStoreMiddleware:
    """Nothing that can show patient data is kept by a browser or a proxy: every response to a signed-in user
    (record pages, search results, my patients, admin, htmx fragments) and every FHIR response carries
    Cache-Control: no-store (with max-age=0, no-cache, must-revalidate, private) and Pragma: no-cache. Static
    files (whitenoise, earlier in the chain) and public pages are cached as usual."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        signed_in = getattr(getattr(request, "user", None), "is_authenticated", False)
        if signed_in or request.path.startswith(("/fhir/", "/admin/")):
            add_never_cache_headers(response)
            response["Pragma"] = "no-cache"
        return response


# What a response to a token request carries in place of the page middleware's headers: it is JSON or XML (or
# a letter's attachment) for a system, never a page to frame or to run scripts in.
API_SECURITY_HEADERS = {
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'; sandbox",
}


class TokenRequestMiddleware:
    """A request to the FHIR API carrying an Authorization header goes straight to its view, past the page
    middleware below this one (sessions, CSRF, authentication, messages, allauth, the session limits and the
    TOTP requirement, htmx, CSP): its credential is the token, which the view checks (fhirapi.auth.caller_for),
    and none of those has anything to do for it. Above this one, every request still gets its request id, the
    NUL check, no-store and the security middleware's headers. A session's request (no Authorization header)
    takes the whole stack as before. The page stack cost more than a FHIR read's whole budget (issue 19)."""

    PREFIX = "/fhir/"

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if not request.path_info.startswith(self.PREFIX) or "authorization" not in request.headers:
            return self.get_response(request)
        request.user = AnonymousUser()  # the view sets the token's professional, if it is a personal token
        match = resolve(request.path_info)  # an unknown path raises Http404: answered as Django answers it
        request.resolver_match = match
        response = match.func(request, *match.args, **match.kwargs)
        for name, value in API_SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        return response


SIGNED_IN_AT = "carerecord_signed_in_at"


SESSION_RENEWED_AT = "carerecord_renewed_at"


class SessionLimitsMiddleware:
    """An absolute session age on top of the idle timeout: a shared ward computer left signed in is signed
    out after SESSION_MAX_HOURS whatever happens.

    The idle timeout (SESSION_COOKIE_AGE) is renewed by saving the session, at most once every
    SESSION_RENEW_SECONDS rather than on every request: a database write per page view would make the
    session table the busiest writer in the system, for a timeout that is then exact to within a minute."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.user.is_authenticated:
            now = time.time()
            started = request.session.setdefault(SIGNED_IN_AT, now)
            if now - started > settings.SESSION_MAX_HOURS * 3600:
                logout(request)
                messages.info(request, "You were signed out because your session reached its time limit.")
                return redirect_to_login(request.get_full_path())
            if now - request.session.get(SESSION_RENEWED_AT, 0) >= settings.SESSION_RENEW_SECONDS:
                request.session[SESSION_RENEWED_AT] = now  # marks the session modified: saved, expiry renewed
        return self.get_response(request)


class RequireTOTPMiddleware:
    """Every signed-in user sets up an authenticator app before opening anything else, unless they signed in
    through the identity provider strongly enough (a smartcard: SSO_STRONG_ACR) that it is their second factor."""

    EXEMPT_PREFIXES = ("/accounts/", "/static/", "/healthz")

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if (
            request.user.is_authenticated
            and request.session.get(ASSURANCE_SESSION_KEY) != "strong"
            and not request.path.startswith(self.EXEMPT_PREFIXES)
            and not Authenticator.objects.filter(user=request.user, type=Authenticator.Type.TOTP).exists()
        ):
            return redirect(f"{reverse('mfa_activate_totp')}?{urlencode({'next': request.get_full_path()})}")
        return self.get_response(request)
