"""Who takes part: organisations (by ODS code), professionals, care teams and their members, API tokens.

A care team owns a Django group: the sharing app grants that group access to the patients the team is
involved with, and a team's members are the group's users. A member works for the team's organisation
(CareTeamMembership.clean, directory.actions.add_team_member).

Organisations a feed adds (an ODS code a sender mentions that is not known here) are not `listed`: the public
partners page shows only organisations IG have created or approved. Personal API tokens expire.
"""

import uuid

from django.conf import settings
from django.contrib.auth.models import Group
from django.core.exceptions import ObjectDoesNotExist, ValidationError
from django.db import models
from django.utils import timezone


class Region(models.TextChoices):
    NCL = "NCL", "North Central London"
    NEL = "NEL", "North East London"
    NWL = "NWL", "North West London"
    SEL = "SEL", "South East London"
    SWL = "SWL", "South West London"


class Organisation(models.Model):
    class Kind(models.TextChoices):
        GP_PRACTICE = "gp", "GP practice"
        ACUTE_TRUST = "acute", "Acute hospital trust"
        MENTAL_HEALTH = "mental-health", "Mental health trust"
        COMMUNITY = "community", "Community services"
        AMBULANCE = "ambulance", "Ambulance service"
        NHS_111 = "111", "NHS 111"
        OUT_OF_HOURS = "ooh", "Out-of-hours service"
        SOCIAL_CARE = "social-care", "Social care"
        HOSPICE = "hospice", "Hospice"

    ods_code = models.CharField("ODS code", max_length=12, unique=True)
    name = models.CharField(max_length=200)
    short_name = models.CharField(
        max_length=60,
        blank=True,
        help_text="What record pages show in their tables (e.g. 'North Thames UH'), the full name on hover and "
        "focus. Blank: the full name.",
    )
    problem_contact_email = models.EmailField(
        "contact for problems with its entries",
        blank=True,
        help_text="Who is told when a professional reports that one of this organisation's entries looks wrong "
        "(a nominated clinical safety or records contact). Blank: reports go to IG only.",
    )
    kind = models.CharField(max_length=20, choices=Kind.choices)
    region = models.CharField(max_length=3, choices=Region.choices)
    address = models.TextField(blank=True)
    active = models.BooleanField(default=True)
    listed = models.BooleanField(
        "listed on the partners page",
        default=True,
        help_text="Shown on the public partners page. Organisations added by a feed are not, until IG approve them.",
    )
    national_demographics = models.BooleanField(
        "national demographics service",
        default=False,
        help_text="Marked by IG: its demographics (a national trace, e.g. PDS) come first in who the patient is.",
    )
    last_received_at = models.DateTimeField(
        null=True, blank=True, editable=False, help_text="When carerecord last received anything from it."
    )
    # Signing in (issue 16; docs/sign-in.md): the local way in, and what a first single sign-on may create.
    local_sign_in = models.BooleanField(
        "local sign-in",
        default=True,
        help_text="Its staff may sign in with an email address, a password and an authenticator app. Switch off "
        "once they all sign in through the NHS identity provider (single sign-on).",
    )
    sso_provisioning = models.CharField(
        "first single sign-on",
        max_length=20,
        choices=[("admin", "needs a professional made in admin first"), ("just-in-time", "creates the professional")],
        default="admin",
        help_text="What happens when someone of this organisation signs in through the identity provider for the "
        "first time and no professional here has their subject.",
    )
    sso_roles = models.CharField(
        "roles a first sign-on may create",
        max_length=300,
        blank=True,
        help_text="carerecord roles (comma-separated, e.g. doctor,nurse) a just-in-time sign-in may create a "
        "professional in. Blank: none.",
    )

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return f"{self.name} ({self.ods_code})"

    @property
    def display_name(self) -> str:
        """The short name where IG gave one, else the full name."""
        return self.short_name or self.name


class Professional(models.Model):
    """A user's professional profile: without one (or when inactive) a user sees no record."""

    class Role(models.TextChoices):
        DOCTOR = "doctor", "Doctor"
        GP = "gp", "General practitioner"
        NURSE = "nurse", "Nurse"
        PARAMEDIC = "paramedic", "Paramedic"
        SOCIAL_WORKER = "social-worker", "Social worker"
        PHARMACIST = "pharmacist", "Pharmacist"
        THERAPIST = "therapist", "Allied health professional"
        CALL_HANDLER = "clinician-111", "NHS 111 clinician"
        IG_OFFICER = "ig-officer", "Information governance officer"

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="professional")
    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="professionals")
    role = models.CharField(max_length=20, choices=Role.choices)
    job_title = models.CharField(max_length=200, blank=True)
    registration_number = models.CharField(
        max_length=30, blank=True, help_text="GMC, NMC or HCPC number, where the role has one."
    )
    active = models.BooleanField(default=True)
    sso_subject = models.CharField(
        "identity provider subject",
        max_length=200,
        null=True,
        blank=True,
        unique=True,
        help_text="The stable subject (`sub`) the NHS identity provider gives this person (CIS2: their user UUID), "
        "which links a single sign-on to this professional. Never an email address.",
    )

    # A professional acting in one of their role profiles (directory.profiles.professional_for): the role's
    # organisation and role stand in for the stored ones, for this request only, and such a copy is never saved.
    acting_role = None

    class Meta:
        ordering = ["user__last_name", "user__first_name"]

    def __str__(self):
        return f"{self.name}, {self.job_title or self.get_role_display()} ({self.organisation.ods_code})"

    def save(self, *args, **kwargs):
        if self.acting_role is not None:
            raise RuntimeError("A professional acting in a role profile is a view of the session; save the stored one.")
        super().save(*args, **kwargs)

    @property
    def name(self):
        return self.user.get_full_name() or self.user.email

    def works_for(self, organisation_id) -> bool:
        """Home organisation, or an active role profile's (what a team membership needs)."""
        if self.organisation_id == organisation_id:
            return True
        return self.role_profiles.filter(organisation_id=organisation_id, active=True).exists()


class RoleProfile(models.Model):
    """A further role a professional holds (CIS2's role profile: an organisation and a role in it). The
    professional's own organisation and role are their home role; a session acts in one role at a time, chosen at
    single sign-on (the provider's selected role) or on the "change role" page, and the access decision reads that
    role's organisation (H-19)."""

    professional = models.ForeignKey(Professional, on_delete=models.CASCADE, related_name="role_profiles")
    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="role_profiles")
    role = models.CharField(max_length=20, choices=Professional.Role.choices)
    job_title = models.CharField(max_length=200, blank=True)
    provider_role_id = models.CharField(
        "identity provider role id",
        max_length=100,
        null=True,
        blank=True,
        unique=True,
        help_text="The provider's id of this role profile (CIS2: person_roleid), matched at sign-in.",
    )
    national_role_code = models.CharField(
        max_length=100, blank=True, help_text="The national RBAC role the provider reported (e.g. R8000)."
    )
    activities = models.CharField(
        max_length=500, blank=True, help_text="The national RBAC activity codes the provider reported, comma-separated."
    )
    active = models.BooleanField(default=True)
    from_sign_in = models.BooleanField(
        default=False, editable=False, help_text="Created from the identity provider's claims at a sign-in."
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["organisation__name", "role"]
        constraints = [
            models.UniqueConstraint(fields=["professional", "organisation", "role"], name="roleprofile_unique")
        ]

    def __str__(self):
        return f"{self.get_role_display()}, {self.organisation}"


class CareTeam(models.Model):
    class Kind(models.TextChoices):
        GP_PRACTICE = "gp-practice", "GP practice team"
        WARD = "ward", "Ward"
        CLINIC = "clinic", "Outpatient clinic"
        COMMUNITY = "community", "Community team"
        MENTAL_HEALTH = "mental-health", "Community mental health team"
        CAMHS = "camhs", "CAMHS team"
        ADDICTION = "addiction", "Addiction service"
        SOCIAL_CARE = "social-care", "Social care team"

    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="care_teams")
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=20, choices=Kind.choices)
    phone = models.CharField(max_length=30, blank=True)
    # The team's permission holder. Created with the team; members are the group's users.
    group = models.OneToOneField(Group, on_delete=models.PROTECT, related_name="care_team", editable=False)

    class Meta:
        ordering = ["organisation__name", "name"]
        constraints = [models.UniqueConstraint(fields=["organisation", "name"], name="careteam_org_name_unique")]

    def __str__(self):
        return f"{self.name}, {self.organisation.name}"

    def save(self, *args, **kwargs):
        if self.group_id is None:
            self.group = Group.objects.create(name=f"care-team:{uuid.uuid4().hex}")
        super().save(*args, **kwargs)


class CareTeamMembership(models.Model):
    team = models.ForeignKey(CareTeam, on_delete=models.CASCADE, related_name="memberships")
    professional = models.ForeignKey(Professional, on_delete=models.CASCADE, related_name="memberships")
    role_in_team = models.CharField(max_length=200, blank=True)
    review_on = models.DateField(
        null=True, blank=True, help_text="When IG next check that this person still belongs in the team."
    )

    class Meta:
        ordering = ["professional__user__last_name"]
        constraints = [models.UniqueConstraint(fields=["team", "professional"], name="careteammembership_unique")]

    def __str__(self):
        return f"{self.professional.name} in {self.team.name}"

    def clean(self):
        super().clean()
        try:
            team, professional = self.team, self.professional
        except ObjectDoesNotExist:
            return  # the missing field has an error of its own
        check_same_organisation(team, professional)


def check_same_organisation(team, professional):
    """A team's members work for the team's organisation: membership is access to the team's patients, and
    "their own organisation's entries" must mean the team's."""
    if not professional.works_for(team.organisation_id):
        raise ValidationError(
            {
                "professional": f"{professional.name} works for {professional.organisation.name}, not "
                f"{team.organisation.name} (no role profile there): only the team's own organisation's staff can "
                "be members."
            }
        )


class ApiToken(models.Model):
    """A bearer token for the FHIR API: an organisation's (to send records in) or a professional's (to read).

    Only a SHA-256 hash is stored; the token itself is shown once, when created.
    """

    name = models.CharField(max_length=200, help_text="What it is for, e.g. 'EMIS feed'.")
    prefix = models.CharField(max_length=12, editable=False, help_text="The first characters, to recognise it.")
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    organisation = models.ForeignKey(
        Organisation, on_delete=models.PROTECT, null=True, blank=True, related_name="api_tokens"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, null=True, blank=True, related_name="api_tokens"
    )
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(
        null=True, blank=True, help_text="A professional's token always expires; an organisation's may not."
    )

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(organisation__isnull=True) ^ models.Q(user__isnull=True),
                name="apitoken_one_owner",
            ),
            models.CheckConstraint(
                condition=models.Q(user__isnull=True) | models.Q(expires_at__isnull=False),
                name="apitoken_personal_expires",
            ),
        ]

    def __str__(self):
        owner = self.organisation or self.user
        return f"{self.name} ({self.prefix}…, {owner})"

    @property
    def active(self):
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > timezone.now())
