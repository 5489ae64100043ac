"""The client's address, the one way every rate limit reads it.

Without a proxy (BEHIND_PROXY off) it is the connection's own address, REMOTE_ADDR: X-Forwarded-For is
anyone's to write, so it is never read. Behind the documented TLS-terminating load balancer (BEHIND_PROXY on),
REMOTE_ADDR is the proxy's, and each of the TRUSTED_PROXY_COUNT proxies in front of the app appends the address
it received the connection from to X-Forwarded-For: the client is the entry that many places from the right.
What a client put further left is its own invention and ignored. A header with fewer entries than there are
trusted proxies did not come through them all, so the connection's address is used instead.

allauth reads the same settings (ALLAUTH_TRUSTED_PROXY_COUNT is set from TRUSTED_PROXY_COUNT in settings.py), so
its sign-in limits and the opt-out form's limit (django-ratelimit, RATELIMIT_IP_META_KEY) count the same
address.
"""

import ipaddress

from django.conf import settings

# Returned when there is no usable address at all (a Unix socket with no proxy header): everyone without an
# address then shares one limit, rather than escaping it.
UNKNOWN = "0.0.0.0"  # noqa: S104 - a placeholder, never bound


def trusted_proxy_count() -> int:
    """How many proxies in front of the app are trusted to append to X-Forwarded-For (0 without a proxy)."""
    return settings.TRUSTED_PROXY_COUNT if settings.BEHIND_PROXY else 0


def client_address(request) -> str:
    """The client's IP address, normalised (e.g. "2001:db8::1"); UNKNOWN if there is none."""
    count = trusted_proxy_count()
    if count:
        forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
        forwarded = [part for part in forwarded if part]
        if len(forwarded) >= count:
            address = _clean(forwarded[-count])
            if address:
                return address
    return _clean(request.META.get("REMOTE_ADDR", "")) or UNKNOWN


def _clean(value: str) -> str:
    """An address as sent ("203.0.113.7", "[2001:db8::1]:443", "203.0.113.7:5000"), or "" if it is not one."""
    value = value.strip()
    if value.startswith("[") and "]" in value:
        value = value[1 : value.index("]")]
    elif value.count(":") == 1:
        value = value.split(":", 1)[0]
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        return ""
