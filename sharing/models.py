"""Who takes part and who may see what: organisations, professionals, care teams, involvements, audit.

Access is granted per patient, never per clinical item: an Involvement (patient + care team + period)
gives the team's Django group django-guardian's `view_patient` on that patient, through the direct
foreign-key permission tables below (generic-key tables slow to seconds at a million objects).
"""

import uuid

import pgtrigger
from django.conf import settings
from django.contrib.auth.models import Group
from django.db import models
from django.utils import timezone
from guardian.models import GroupObjectPermissionBase, UserObjectPermissionBase

from patients.categories import Category


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
    kind = models.CharField(max_length=20, choices=Kind.choices)
    region = models.CharField(max_length=3, choices=Region.choices)
    address = models.TextField(blank=True)
    active = models.BooleanField(default=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return f"{self.name} ({self.ods_code})"


class SharingAgreement(models.Model):
    """Whether an organisation shares one record category, and since when. No row means not shared."""

    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="sharing_agreements")
    category = models.CharField(max_length=20, choices=Category.choices)
    shares = models.BooleanField(default=True)
    since = models.DateField(default=timezone.localdate)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["organisation__name", "category"]
        constraints = [
            models.UniqueConstraint(fields=["organisation", "category"], name="sharingagreement_org_category")
        ]
        indexes = [models.Index(fields=["category", "shares"], name="sharingagreement_category")]

    def __str__(self):
        verb = "shares" if self.shares else "does not share"
        return f"{self.organisation.name} {verb} {self.get_category_display().lower()}"


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

    class Meta:
        ordering = ["user__last_name", "user__first_name"]

    def __str__(self):
        return f"{self.name}, {self.job_title or self.get_role_display()} ({self.organisation.ods_code})"

    @property
    def name(self):
        return self.user.get_full_name() or self.user.email


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

    class Meta:
        ordering = ["professional__user__last_name"]
        constraints = [models.UniqueConstraint(fields=["team", "professional"], name="careteammembership_unique")]

    def __str__(self):
        return f"{self.professional.name} in {self.team.name}"


class InvolvementQuerySet(models.QuerySet):
    def current(self, at=None):
        at = at or timezone.now()
        return self.filter(started_at__lte=at).filter(models.Q(ended_at__isnull=True) | models.Q(ended_at__gt=at))


class Involvement(models.Model):
    """A care team's involvement with a patient for a period; while current it grants the team access."""

    class Reason(models.TextChoices):
        REGISTRATION = "registration", "Registered patient"
        ADMISSION = "admission", "Admission"
        REFERRAL = "referral", "Referral"
        CASELOAD = "caseload", "On caseload"

    patient = models.ForeignKey("patients.Patient", on_delete=models.CASCADE, related_name="involvements")
    care_team = models.ForeignKey(CareTeam, on_delete=models.PROTECT, related_name="involvements")
    reason = models.CharField(max_length=20, choices=Reason.choices)
    started_at = models.DateTimeField(default=timezone.now)
    ended_at = models.DateTimeField(null=True, blank=True)
    source_id = models.CharField(max_length=200, blank=True)

    objects = InvolvementQuerySet.as_manager()

    class Meta:
        ordering = ["-started_at"]
        indexes = [models.Index(fields=["patient", "-started_at"], name="involvement_patient_date")]
        constraints = [
            models.UniqueConstraint(
                fields=["care_team", "source_id"],
                condition=~models.Q(source_id=""),
                name="involvement_source_unique",
            )
        ]

    def __str__(self):
        return f"{self.care_team} — {self.get_reason_display()}"

    @property
    def is_current(self):
        now = timezone.now()
        return self.started_at <= now and (self.ended_at is None or self.ended_at > now)


class PatientUserObjectPermission(UserObjectPermissionBase):
    content_object = models.ForeignKey("patients.Patient", on_delete=models.CASCADE)


class PatientGroupObjectPermission(GroupObjectPermissionBase):
    content_object = models.ForeignKey("patients.Patient", on_delete=models.CASCADE)


class AccessBasis(models.TextChoices):
    # Stored in audit rows: plain strings, never renamed.
    CARE_TEAM = "care-team", "Care team"
    BREAK_GLASS = "break-glass", "Break glass"
    NONE = "none", "No basis"


class AccessOutcome(models.TextChoices):
    ALLOWED = "allowed", "Allowed"
    REFUSED = "refused", "Refused"


class AppendOnlyModel(models.Model):
    """Rows that, once written, are never changed or deleted: not by the app, the admin, or SQL."""

    class Meta:
        abstract = True

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise PermissionError(f"{type(self).__name__} rows are append-only.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise PermissionError(f"{type(self).__name__} rows are append-only.")


class AccessEvent(AppendOnlyModel):
    """One look at (or refusal of) a patient's record.

    Who and whom are kept as values, not foreign keys, so renaming or deleting an account never rewrites
    history and the row stands alone in an export.
    """

    at = models.DateTimeField(default=timezone.now, db_index=True)
    user_id = models.IntegerField(null=True)
    user_email = models.CharField(max_length=254, blank=True)
    professional_name = models.CharField(max_length=200, blank=True)
    organisation_code = models.CharField(max_length=12, blank=True)
    patient_id = models.UUIDField(null=True)
    patient_nhs_number = models.CharField(max_length=10, blank=True)
    outcome = models.CharField(max_length=10, choices=AccessOutcome.choices)
    basis = models.CharField(max_length=20, choices=AccessBasis.choices)
    reason = models.CharField(max_length=50, blank=True, help_text="Why access was refused or limited.")
    page = models.CharField(max_length=100)
    path = models.CharField(max_length=500, blank=True)
    request_id = models.CharField(max_length=64, blank=True)

    class Meta:
        ordering = ["-at"]
        indexes = [
            models.Index(fields=["patient_id", "-at"], name="accessevent_patient_at"),
            models.Index(fields=["user_id", "-at"], name="accessevent_user_at"),
        ]
        triggers = [pgtrigger.Protect(name="accessevent_append_only", operation=pgtrigger.Update | pgtrigger.Delete)]

    def __str__(self):
        return f"{self.at:%Y-%m-%d %H:%M} {self.user_email} {self.outcome} {self.page}"


class BreakGlass(models.Model):
    """Emergency access without a recorded care relationship: time-limited, for one patient, always reviewed."""

    class ReasonCode(models.TextChoices):
        EMERGENCY_TREATMENT = "emergency-treatment", "Emergency treatment"
        UNABLE_TO_CONSENT = "unable-to-consent", "Patient unable to consent"
        CARE_NOT_RECORDED = "care-not-recorded", "Direct care, relationship not yet recorded"
        SAFEGUARDING = "safeguarding", "Safeguarding"
        OTHER = "other", "Other"

    class Outcome(models.TextChoices):
        PENDING = "", "Not yet reviewed"
        APPROPRIATE = "appropriate", "Appropriate"
        INAPPROPRIATE = "inappropriate", "Inappropriate"
        FOLLOW_UP = "follow-up", "Follow-up needed"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="break_glasses")
    patient = models.ForeignKey("patients.Patient", on_delete=models.PROTECT, related_name="break_glasses")
    # Kept as values too, so the review queue reads true even if the profile changes later.
    professional_name = models.CharField(max_length=200)
    organisation_code = models.CharField(max_length=12)
    reason_code = models.CharField(max_length=30, choices=ReasonCode.choices)
    reason_text = models.TextField(blank=True)
    started_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    review_outcome = models.CharField(max_length=20, choices=Outcome.choices, blank=True, default=Outcome.PENDING)
    review_note = models.TextField(blank=True)
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    reviewed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "break glass"
        verbose_name_plural = "break glass reviews"
        ordering = ["started_at"]
        indexes = [
            models.Index(fields=["user", "patient", "-expires_at"], name="breakglass_user_patient"),
            models.Index(fields=["review_outcome", "started_at"], name="breakglass_review_queue"),
        ]

    def __str__(self):
        return f"{self.professional_name} ({self.organisation_code}) — {self.get_reason_code_display()}"

    @property
    def is_active(self):
        return self.started_at <= timezone.now() < self.expires_at


class AuditEvent(AppendOnlyModel):
    """An IG-relevant change (involvements, team membership, break-glass reviews, objections), append-only.

    Actor and target kept as values, like AccessEvent.
    """

    at = models.DateTimeField(default=timezone.now, db_index=True)
    actor_id = models.IntegerField(null=True)
    actor_email = models.CharField(max_length=254, blank=True)
    action = models.CharField(max_length=60)
    target_type = models.CharField(max_length=60)
    target_id = models.CharField(max_length=64)
    patient_id = models.UUIDField(null=True)
    detail = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-at"]
        indexes = [models.Index(fields=["target_type", "target_id"], name="auditevent_target")]
        triggers = [pgtrigger.Protect(name="auditevent_append_only", operation=pgtrigger.Update | pgtrigger.Delete)]

    def __str__(self):
        return f"{self.at:%Y-%m-%d %H:%M} {self.actor_email or 'system'} {self.action}"


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

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(organisation__isnull=True) ^ models.Q(user__isnull=True),
                name="apitoken_one_owner",
            )
        ]

    def __str__(self):
        owner = self.organisation or self.user
        return f"{self.name} ({self.prefix}…, {owner})"

    @property
    def active(self):
        return self.revoked_at is None
