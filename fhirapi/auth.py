"""Who is calling the API: an organisation's token (to send records in) or a professional (to read out),
by bearer token or the signed-in session. The token's organisation is the source of everything it sends."""

from dataclasses import dataclass

from directory.actions import api_token_for
from directory.models import Organisation

BEARER = "Bearer "


@dataclass(frozen=True)
class Caller:
    organisation: Organisation | None = None
    user: object = None


def caller_for(request) -> Caller | None:
    """None when there is no valid credential. A professional's token stands in for the session, so the
    access decision and the audit row name that professional exactly as the pages would."""
    header = request.headers.get("Authorization", "")
    if header.startswith(BEARER):
        token = api_token_for(header.removeprefix(BEARER).strip())
        if token is None:
            return None
        if token.organisation_id:
            return Caller(organisation=token.organisation)
        request.user = token.user
        return Caller(user=token.user)
    if header:
        return None
    if getattr(request.user, "is_authenticated", False):
        return Caller(user=request.user)
    return None
