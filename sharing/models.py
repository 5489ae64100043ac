"""What is shared with whom: sharing agreements, involvements (which grant care-team access), break glass.

Access is granted per patient, never per clinical item: an Involvement (patient + care team + period)
gives the team's Django group django-guardian's `read_shared_record` on that patient, through the direct
foreign-key permission tables below (generic-key tables slow to seconds at a million objects).
"""

from django.conf import settings
from django.db import models
from django.utils import timezone
from guardian.models import GroupObjectPermissionBase, UserObjectPermissionBase

from audit.models import AccessEvent
from directory.models import ApiToken, CareTeam, Organisation
from patients.categories import category_choices

# The object permission an involvement grants its team's group. Only `access` and `actions` use guardian.
# Not Django's `view_patient`: that one is admin's (IG finding a patient's demographics) and never opens a record.
VIEW_PERMISSION = "read_shared_record"


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


class AgreementsVersion(models.Model):
    """One row whose number a database trigger moves on every change to the sharing agreements (PostgreSQL),
    so each process knows when its copy of them is out of date (sharing/agreements.py)."""

    ROW = 1
    version = models.BigIntegerField(default=0)

    def __str__(self):
        return f"sharing agreements, version {self.version}"


class InvolvementQuerySet(models.QuerySet):
    def current(self, at=None):
        at = at or timezone.now()
        return self.filter(started_at__lte=at).filter(models.Q(ended_at__isnull=True) | models.Q(ended_at__gt=at))


class Involvement(models.Model):
    """A care team's involvement with a patient for a period; while current it grants the team access.

    Who said so: `asserted_by` keeps, as a value, the actor that started it (an IG officer's email, or a partner
    system's token label, "api-token:<id>:<prefix>@<ODS code>"); `asserted_by_token` links the organisation
    token a partner system sent it with (kept, never deleted: tokens are revoked, not removed).

    Review: IG review what partner systems assert, as they review break glass. An involvement a token asserted
    waits in the queue until an IG officer reviews it (`reviewed_at`, `reviewed_by`, `review_note`, through
    `actions.review_involvement`, audited). Relationships end: `review_on` is the date by which someone should
    look again. A partner-asserted involvement gets one `INVOLVEMENT_REVIEW_DAYS` (365) after the day it was
    asserted, unless its period (CareTeam.period.end) ends it before then; a review sets the next one the same
    way; IG may set or change it on any involvement. Nothing ends by itself when its review is overdue
    (cutting access could harm care): overdue ones are listed to IG ("review overdue" in admin).
    """

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
    asserted_by = models.CharField(
        max_length=254, blank=True, help_text="Who recorded it: an email address, or a partner system's token."
    )
    asserted_by_token = models.ForeignKey(
        ApiToken,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="asserted_involvements",
        help_text="The partner system's API token that asserted it.",
    )
    review_on = models.DateField(
        null=True, blank=True, help_text="When the relationship should be looked at again (review overdue after)."
    )
    reviewed_at = models.DateTimeField(null=True, blank=True)
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    review_note = models.TextField(blank=True)

    objects = InvolvementQuerySet.as_manager()

    class Meta:
        ordering = ["-started_at"]
        indexes = [
            models.Index(fields=["patient", "-started_at"], name="involvement_patient_date"),
            # IG's queue: what partner systems asserted and nobody has reviewed yet.
            models.Index(
                fields=["started_at"],
                condition=models.Q(asserted_by_token__isnull=False, reviewed_at__isnull=True),
                name="involvement_review_queue",
            ),
            models.Index(
                fields=["review_on"], condition=models.Q(review_on__isnull=False), name="involvement_review_on"
            ),
        ]
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

    @property
    def review_overdue(self):
        return self.review_on is not None and self.review_on < timezone.localdate() and self.is_current


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


# --- Privacy alerts (11B) -----------------------------------------------------------------------------------------


class PrivacyAlert(AccessEvent):
    """No table of its own: the admin's entry for the privacy alerts IG work from (`sharing.alerts` computes them
    from the access log on demand), so that the page is listed on the admin index under Sharing."""

    class Meta:
        proxy = True
        verbose_name = "privacy alert"
        verbose_name_plural = "privacy alerts"
        default_permissions = ()


# --- Problems reported with entries (issue 17) --------------------------------------------------------------------


class EntryProblem(models.Model):
    """A professional's report that an entry another organisation shared looks wrong: sent to that organisation's
    nominated contact (Organisation.problem_contact_email), kept for IG (admin), audited. The entry is named by its
    model and id (and kept as a short description, so the report reads true if the entry changes later)."""

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        PASSED_ON = "passed-on", "Passed on to the source organisation"
        CLOSED = "closed", "Closed"

    patient = models.ForeignKey("patients.Patient", on_delete=models.PROTECT, related_name="entry_problems")
    source_organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="entry_problems")
    entry_model = models.CharField(max_length=100, help_text="The entry's model (app_label.model).")
    entry_id = models.CharField(max_length=64)
    entry_summary = models.CharField(max_length=500, help_text="What the entry said when it was reported.")
    reported_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    reporter_name = models.CharField(max_length=200)
    reporter_organisation_code = models.CharField(max_length=12)
    what_is_wrong = models.TextField()
    reported_at = models.DateTimeField(default=timezone.now)
    sent_to = models.EmailField(blank=True, help_text="The source organisation's contact it was sent to, if any.")
    sent_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.OPEN)
    ig_note = models.TextField("IG note", blank=True)

    class Meta:
        ordering = ["-reported_at"]
        indexes = [models.Index(fields=["status", "-reported_at"], name="entryproblem_queue")]

    def __str__(self):
        return f"{self.entry_summary[:60]} ({self.source_organisation.ods_code}), {self.reported_at:%Y-%m-%d}"
