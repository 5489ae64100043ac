"""Write the config of the bundled test OpenID provider (tests/js/oidc/) for the demo: the demo accounts as the
provider's users, with CIS2-shaped roles, and carerecord as its one client. `make sso-provider` runs this, then
the provider; tests/js/oidc/README.md says what to put in .env."""

import json
import uuid
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from demo.management.commands.demo_totp import DEMO_EMAIL_DOMAIN
from directory.models import Professional, RoleProfile

CLIENT_ID = "carerecord-demo"
DEFAULT_SECRET = "demo-sso-secret-not-for-production"  # noqa: S105 - documented demo secret; DEBUG only
PASSWORD = "demo-password"  # noqa: S105 - documented demo password at the test provider; DEBUG only
SMARTCARD_ROLES = {Professional.Role.DOCTOR, Professional.Role.GP, Professional.Role.NURSE}
DEMO_HOSTS = ("127.0.0.1", "localhost")


def national_role_code(role: str) -> str:
    """CIS2's role_code for a carerecord role: the first SSO_ROLE_MAP R code that maps to it, or "" for none."""
    code = next((code for code, mapped in settings.SSO_ROLE_MAP.items() if mapped == role), "")
    return f"S8000:G8000:{code}" if code else ""


def role_id(kind: int, pk: int) -> str:
    """A stable 12-digit provider id: the kind's digit (1 home role, 2 role profile, 3 and 4 their organisation
    links), then the primary key."""
    return f"{kind}{pk:011d}"


def _role(*, person_roleid, person_orgid, organisation, role, activities="") -> dict:
    codes = [code.strip() for code in activities.split(",") if code.strip()]
    return {
        "person_roleid": person_roleid,
        "person_orgid": person_orgid,
        "org_code": organisation.ods_code,
        "org_name": organisation.name,  # shown on the provider's role page only
        "role_code": national_role_code(role),
        "role_name": f'"Clinical":"Clinical Provision":"{Professional.Role(role).label}"',
        "activity_codes": codes,
        "activities": [],
    }


def roles_of(professional: Professional) -> list[dict]:
    """The home role, then each active role profile (given a stable provider_role_id when it has none)."""
    roles = [
        _role(
            person_roleid=role_id(1, professional.pk),
            person_orgid=role_id(3, professional.pk),
            organisation=professional.organisation,
            role=professional.role,
        )
    ]
    for profile in professional.role_profiles.filter(active=True).select_related("organisation"):
        if not profile.provider_role_id:
            profile.provider_role_id = role_id(2, profile.pk)
            RoleProfile.objects.filter(pk=profile.pk).update(provider_role_id=profile.provider_role_id)
        roles.append(
            _role(
                person_roleid=profile.provider_role_id,
                person_orgid=role_id(4, profile.pk),
                organisation=profile.organisation,
                role=profile.role,
                activities=profile.activities,
            )
        )
    return [role for role in roles if role["role_code"]]


def account_of(professional: Professional) -> dict:
    if not professional.sso_subject:
        professional.sso_subject = str(uuid.uuid4())
        Professional.objects.filter(pk=professional.pk).update(sso_subject=professional.sso_subject)
    smartcard = professional.role in SMARTCARD_ROLES
    user = professional.user
    return {
        "sub": professional.sso_subject,
        "uid": professional.sso_subject,
        "username": user.email,
        "password": PASSWORD,
        "given_name": user.first_name,
        "family_name": user.last_name,
        "email": user.email,
        "acr": "AAL3_ANY" if smartcard else "AAL2_OR_ABOVE",
        "amr": ["SCRD"] if smartcard else ["PWD", "OTP"],
        "roles": roles_of(professional),
    }


def provider_config(*, port: int, client_secret: str, professionals) -> dict:
    return {
        "issuer": f"http://127.0.0.1:{port}",
        "port": port,
        "clients": [
            {
                "client_id": CLIENT_ID,
                "client_name": "carerecord (demo)",
                "client_secret": client_secret,
                "token_endpoint_auth_method": "client_secret_basic",
                "redirect_uris": [f"http://{host}:8000/accounts/oidc/cis2/login/callback/" for host in DEMO_HOSTS],
                "post_logout_redirect_uris": [f"http://{host}:8000/accounts/signed-out/" for host in DEMO_HOSTS],
            }
        ],
        "accounts": [account_of(professional) for professional in professionals],
    }


class Command(BaseCommand):
    help = "Write the bundled test OpenID provider's config for the demo accounts (development only)."

    def add_arguments(self, parser):
        parser.add_argument("--output", required=True, help="Where to write the provider's JSON config.")
        parser.add_argument("--port", type=int, default=9000, help="The provider's port on 127.0.0.1 (default 9000).")
        parser.add_argument("--client-secret", default=DEFAULT_SECRET, help="carerecord's client secret there.")
        parser.add_argument("--force", action="store_true", help="Run even with DEBUG off (the password is published).")

    def handle(self, *args, output, port, client_secret, force, **options):
        if not settings.DEBUG and not force:
            raise CommandError("sso_demo_accounts publishes a password, so it refuses to run with DEBUG off.")
        if not 1 <= port <= 65535:
            raise CommandError("--port must be between 1 and 65535.")
        professionals = (
            Professional.objects.filter(active=True, user__email__iendswith=DEMO_EMAIL_DOMAIN)
            .select_related("user", "organisation")
            .order_by("user__email")
        )
        if not professionals:
            raise CommandError("No demo accounts: run `manage.py seed_demo` (or `make seed`) first.")
        config = provider_config(port=port, client_secret=client_secret, professionals=professionals)
        Path(output).write_text(json.dumps(config, indent=2) + "\n")

        self.stdout.write(f"Wrote {output}: the test provider at {config['issuer']}, client {CLIENT_ID}.")
        self.stdout.write(f"\nIts accounts (password {PASSWORD}):")
        for account in config["accounts"]:
            roles = ", ".join(role["org_code"] for role in account["roles"]) or "no role carerecord takes"
            self.stdout.write(f"  {account['username']:34} {account['acr']:14} {roles}")
        self.stdout.write(
            f"\nIn .env: SSO_ISSUER={config['issuer']} SSO_CLIENT_ID={CLIENT_ID} SSO_CLIENT_SECRET={client_secret}"
        )
