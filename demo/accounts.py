"""The demo accounts: one per kind of user the service has, each placed so the demo shows its point."""

import base64
import hashlib
from dataclasses import dataclass

from django.contrib.auth.models import Group, Permission
from django.db.models import Q

from directory.models import Professional

Role = Professional.Role

DEMO_PASSWORD = "carerecord-demo-2026"  # noqa: S105 - documented demo password; seed_demo refuses without DEBUG
IG_GROUP = "Information governance"
# What IG may do in admin besides viewing everything in audit, directory, sharing and optout, and finding a
# patient's demographics (`patients.view_patient`, each look audited): administer who takes part and who is
# involved (grants go through sharing.actions), review break glass, process objections. Audit trails stay
# view-only. Clinical entries are not in admin at all, and IG hold no permission on any of them: reading a record
# takes a care relationship (or break glass), as for everyone. Nor do IG hold `patients.read_shared_record`,
# which is only ever granted per patient, to a care team's group.
IG_VIEWS = ("audit", "directory", "sharing", "optout")
IG_PERMISSIONS = (
    "patients.view_patient",
    "directory.add_organisation",
    "directory.change_organisation",
    "sharing.add_sharingagreement",
    "sharing.change_sharingagreement",
    "directory.add_professional",
    "directory.change_professional",
    "directory.add_careteam",
    "directory.change_careteam",
    "directory.add_careteammembership",
    "directory.change_careteammembership",
    "directory.delete_careteammembership",  # leavers: removing a member revokes the team's access
    "sharing.add_involvement",
    "sharing.change_involvement",
    "sharing.change_breakglass",  # recording the review outcome
    "optout.change_objection",
    "optout.change_regionalprocess",
    "fhir.view_submission",  # what partners sent: who, when, as what (no patient data; fhirapi/admin.py)
    # HL7 v2 feeds (feeds/admin.py): configure the hospitals' feeds and the laboratories' code mappings, and work
    # the queue of messages not applied ("change" is the Retry action; each message opened is an AccessEvent).
    "feeds.view_feed",
    "feeds.add_feed",
    "feeds.change_feed",
    "feeds.view_codemapping",
    "feeds.add_codemapping",
    "feeds.change_codemapping",
    "feeds.view_message",
    "feeds.change_message",
    # Bulk loads (bulk/admin.py): every job and the dead-letter list; "change" is sending again and cancelling.
    "bulk.view_job",
    "bulk.view_jobinput",
    "bulk.change_job",
    "bulk.view_deadletter",
    "bulk.change_deadletter",
    # Signing in (identity/): professionals' further role profiles, and the partners that launch in context.
    "directory.add_roleprofile",
    "directory.change_roleprofile",
    "identity.view_launchpartner",
    "identity.add_launchpartner",
    "identity.change_launchpartner",
    # Problems reported with entries (sharing/admin.py): IG follow them up (status, note; viewing is IG_VIEWS').
    "sharing.change_entryproblem",
)


def information_governance_group():
    """The IG officers' Django group, with exactly the permissions above (created or brought up to date)."""
    group, _ = Group.objects.get_or_create(name=IG_GROUP)
    granted = Q(content_type__app_label__in=IG_VIEWS, codename__startswith="view_")
    for permission in IG_PERMISSIONS:
        app_label, codename = permission.split(".")
        granted |= Q(content_type__app_label=app_label, codename=codename)
    group.permissions.set(Permission.objects.filter(granted))
    return group


@dataclass(frozen=True)
class DemoAccount:
    email: str
    first_name: str
    last_name: str
    role: str
    job_title: str
    organisation: str  # ODS code
    team: str | None  # care team at that organisation; None: no team (break glass, or admin only)
    description: str
    other_roles: tuple = ()  # (ODS code, role, job title): role profiles at other organisations

    @property
    def totp_secret(self):
        """Fixed per account, so `manage.py demo_totp` (DEBUG only) can print today's code."""
        digest = hashlib.sha256(f"carerecord-demo:{self.email}".encode()).digest()[:20]
        return base64.b32encode(digest).decode()


DEMO_ACCOUNTS = (
    DemoAccount(
        email="gp@demo.carerecord.test",
        first_name="Hannah",
        last_name="Whitfield",
        role=Role.GP,
        job_title="GP partner",
        organisation="ZZG101",
        team="Practice team",
        description="GP at Highgate Rise Surgery, in its practice team: sees the practice's registered patients. "
        'Also an out-of-hours GP at Capital Out-of-Hours (a second role: "Change role" in the header).',
        other_roles=(("ZZO", Role.GP, "Out-of-hours GP"),),
    ),
    DemoAccount(
        email="doctor@demo.carerecord.test",
        first_name="Daniel",
        last_name="Mensah",
        role=Role.DOCTOR,
        job_title="Consultant in Diabetes and Endocrinology",
        organisation="ZZA",
        team="Diabetes and Endocrinology Clinic",
        description="Hospital consultant: sees patients referred to the diabetes clinic at North Thames.",
    ),
    DemoAccount(
        email="mhnurse@demo.carerecord.test",
        first_name="Grace",
        last_name="Adeyemi",
        role=Role.NURSE,
        job_title="Community mental health nurse",
        organisation="ZZM",
        team="North Community Mental Health Team",
        description="Mental health nurse: sees the North community mental health team's caseload.",
    ),
    DemoAccount(
        email="paramedic@demo.carerecord.test",
        first_name="Tom",
        last_name="Reilly",
        role=Role.PARAMEDIC,
        job_title="Paramedic",
        organisation="ZZL",
        team=None,
        description="London Ambulance Service paramedic, no care team: every record needs break glass.",
    ),
    DemoAccount(
        email="ig@demo.carerecord.test",
        first_name="Sarah",
        last_name="Lindqvist",
        role=Role.IG_OFFICER,
        job_title="Information governance manager",
        organisation="ZZA",
        team=None,
        description="IG officer: Django admin (staff, not superuser) with no care team, so no record access.",
    ),
)
