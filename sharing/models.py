"""What is shared with whom: sharing agreements, involvements (which grant care-team access), break glass.

Access is granted per patient, never per clinical item: an Involvement (patient + care team + period)
gives the team's Django group django-guardian's `view_patient` on that patient, through the direct
foreign-key permission tables below (generic-key tables slow to seconds at a million objects).
"""

from django.conf import settings
from django.db import models
from django.utils import timezone
from guardian.models import GroupObjectPermissionBase, UserObjectPermissionBase

from directory.models import CareTeam, Organisation
from patients.categories import category_choices

# The object permission an involvement grants its team's group. Only `access` and `actions` use guardian.
VIEW_PERMISSION = "view_patient"


class SharingAgreement(models.Model):
    """Whether an organisation shares one record category, and since when. No row means not shared."""

    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="sharing_agreements")
    category = models.CharField(max_length=20, choices=category_choices)
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
