"""The identity provider's claims, read as carerecord needs them (docs/sign-in.md has the mapping table).

CIS2 publishes its claims: the ID token carries `sub` (the user's stable id), `acr` (how strongly they
authenticated: AAL3 for a smartcard) and `selected_roleid` (the role profile chosen at sign-in, with the
`selectedrole` scope); userinfo carries the profile (`given_name`, `family_name`, `email`) and, with the
`nationalrbacaccess` scope, `nhsid_nrbac_roles`: one object per role profile with `person_roleid`, `org_code`
(the organisation's ODS code), `role_code` ("S8000:G8000:R8000": the national RBAC job role is the R code),
`role_name` and `activity_codes`. Claim names and the national role → carerecord role table are settings
(SSO_CLAIM_ROLES, SSO_CLAIM_SELECTED_ROLE, SSO_ROLE_MAP), so another provider of the same shape needs no code.
Nothing here looks anything up: this module only reads.
"""

from dataclasses import dataclass

from django.conf import settings

PROFILE = ("given_name", "family_name", "email", "name")  # userinfo's come first; the rest, the ID token's


@dataclass(frozen=True)
class RoleClaim:
    """One role profile the provider says the user holds."""

    role_id: str  # CIS2 person_roleid
    org_code: str  # ODS code
    national_role: str  # the R code
    role_name: str = ""
    activity_codes: tuple[str, ...] = ()

    @property
    def role(self) -> str | None:
        """carerecord's role for it (SSO_ROLE_MAP), or None when carerecord does not take this role."""
        return settings.SSO_ROLE_MAP.get(self.national_role)


@dataclass(frozen=True)
class Claims:
    subject: str
    given_name: str = ""
    family_name: str = ""
    email: str = ""
    acr: str = ""
    roles: tuple[RoleClaim, ...] = ()
    selected_role_id: str = ""

    @property
    def selected(self) -> RoleClaim | None:
        """The role chosen at sign-in; the only one when the provider did not say (CIS2 selects a single role
        itself); None when several were held and none chosen, or the chosen one is not among them."""
        if self.selected_role_id:
            return next((role for role in self.roles if role.role_id == self.selected_role_id), None)
        return self.roles[0] if len(self.roles) == 1 else None

    @property
    def strong(self) -> bool:
        """Authenticated strongly enough (SSO_STRONG_ACR, e.g. a smartcard) that no authenticator app is asked."""
        return bool(self.acr) and self.acr in settings.SSO_STRONG_ACR


def read(data: dict) -> Claims:
    """Claims from allauth's extra data ({"id_token": {...}, "userinfo": {...}}): userinfo's profile, the ID
    token's assurance and selected role (the ID token is what the provider signed for this sign-in)."""
    id_token = data.get("id_token") or {}
    userinfo = data.get("userinfo") or {}
    merged = {**userinfo, **id_token} | {key: userinfo[key] for key in PROFILE if key in userinfo}
    subject = _text(id_token.get("sub") or userinfo.get("sub"))
    return Claims(
        subject=subject,
        given_name=_text(merged.get("given_name")),
        family_name=_text(merged.get("family_name")),
        email=_text(merged.get("email")).lower(),
        acr=_text(id_token.get("acr") or userinfo.get("acr")),
        roles=tuple(roles_of(merged.get(settings.SSO_CLAIM_ROLES))),
        selected_role_id=_text(merged.get(settings.SSO_CLAIM_SELECTED_ROLE)),
    )


def roles_of(value) -> list[RoleClaim]:
    """The role profiles in the roles claim; entries that are not objects or lack an id or organisation are
    skipped (a provider's malformed entry must not stop the others)."""
    roles = []
    for entry in value if isinstance(value, list) else []:
        if not isinstance(entry, dict):
            continue
        role_id, org_code = _text(entry.get("person_roleid")), _text(entry.get("org_code")).upper()
        if not role_id or not org_code:
            continue
        codes = entry.get("activity_codes")
        roles.append(
            RoleClaim(
                role_id=role_id,
                org_code=org_code,
                national_role=national_role(_text(entry.get("role_code"))),
                role_name=_text(entry.get("role_name")),
                activity_codes=tuple(_text(code) for code in codes) if isinstance(codes, list) else (),
            )
        )
    return roles


def national_role(role_code: str) -> str:
    """ "S8000:G8000:R8000" → "R8000": the job role is the last part (sub-group and group come first)."""
    parts = [part.strip() for part in role_code.split(":") if part.strip()]
    return parts[-1].upper() if parts else ""


def _text(value) -> str:
    return value.strip() if isinstance(value, str) else str(value) if isinstance(value, int) else ""
