"""Who is calling the API: an organisation's token (to send records in) or a professional (to read out),
by bearer token or the signed-in session. The token's organisation is the source of everything it sends.

A partner system is an actor on the audit trail: what it sends is audited under its token's label
(`token_actor`), "api-token:<id>:<prefix>@<ODS code>", in the rows' actor column (with no user id), so IG find
everything one token did by typing that label into admin's "who made the change" filter.
"""

from dataclasses import dataclass

from directory.actions import api_token_for
from directory.models import ApiToken, Organisation

BEARER = "Bearer "


@dataclass(frozen=True)
class Caller:
    organisation: Organisation | None = None
    user: object = None
    token: ApiToken | None = None


@dataclass(frozen=True)
class Actor:
    """Who made a change when it was not a signed-in user: what `audit.writers.audit(by=...)` reads (a user id,
    none here, and a label in place of an email address)."""

    email: str
    pk: None = None


def token_actor(token: ApiToken) -> Actor:
    owner = token.organisation.ods_code if token.organisation_id else f"user-{token.user_id}"
    return Actor(email=f"api-token:{token.pk}:{token.prefix}@{owner}")


def command_actor(command: str, operator: str = "") -> Actor:
    """A management command run with no account named: the command, and the operating-system user if known."""
    return Actor(email=f"command:{command}" + (f"@{operator}" if operator else ""))


def caller_for(request) -> Caller | None:
    """None when there is no valid credential. A professional's token stands in for the session, so the
    access decision and the audit row name that professional exactly as the pages would."""
    header = request.headers.get("Authorization", "")
    if header.startswith(BEARER):
        token = api_token_for(header.removeprefix(BEARER).strip())
        if token is None:
            return None
        if token.organisation_id:
            return Caller(organisation=token.organisation, token=token)
        request.user = token.user
        return Caller(user=token.user, token=token)
    if header:
        return None
    if getattr(request.user, "is_authenticated", False):
        return Caller(user=request.user)
    return None
