"""Patients' objections to sharing, and the regional processes explained to them.

An upheld objection stops other organisations' entries being shown at once; nothing is deleted, and a
withdrawal restores the view. The state is read by `sharing.access` through `optout.state`.
"""

import secrets

from django.conf import settings
from django.db import models
from django.utils import timezone

from directory.models import Region


def new_reference():
    """Short, unguessable, easy to read over the phone (no 0/O or 1/I)."""
    alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
    return "OPT-" + "".join(secrets.choice(alphabet) for _ in range(8))


class RegionalProcess(models.Model):
    """How objections are handled in a region; the text is edited by IG in admin."""

    region = models.CharField(max_length=3, choices=Region.choices, unique=True)
    title = models.CharField(max_length=200)
    body = models.TextField(help_text="Plain text; blank lines separate paragraphs.")
    contact_email = models.EmailField(blank=True)
    contact_phone = models.CharField(max_length=30, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["region"]
        verbose_name_plural = "regional processes"

    def __str__(self):
        return self.get_region_display()


class IdentityCheck(models.TextChoices):
    """How IG confirmed the requester is the patient, or may act for them, before verifying. Stored values."""

    DOCUMENTS = "documents", "Identity documents seen (copies or in person)"
    CALL_BACK = "call-back", "Phoned back on a number in the record, details confirmed"
    PROFESSIONAL = "professional", "Confirmed by a professional caring for the patient"
    AUTHORITY = "authority", "Representative's authority seen (for example power of attorney)"
    OTHER = "other", "Another way (described in the notes)"


class Objection(models.Model):
    class Status(models.TextChoices):
        RECEIVED = "received", "Received"
        VERIFIED = "verified", "Verified"
        UPHELD = "upheld", "Upheld"
        REJECTED = "rejected", "Rejected"
        WITHDRAWN = "withdrawn", "Withdrawn"

    class Source(models.TextChoices):
        WEB_FORM = "web-form", "Public web form"
        PROFESSIONAL = "professional", "Recorded by a professional"
        PARTNER_FEED = "partner-feed", "Sent by a partner system (FHIR Consent)"

    reference = models.CharField(max_length=12, unique=True, default=new_reference, editable=False)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.RECEIVED)
    source = models.CharField(max_length=20, choices=Source.choices)
    received_at = models.DateTimeField(default=timezone.now)
    # What the requester told us. The patient is matched by IG (or known, when a professional records it).
    patient = models.ForeignKey(
        "patients.Patient", on_delete=models.PROTECT, null=True, blank=True, related_name="objections"
    )
    nhs_number = models.CharField("NHS number", max_length=10, blank=True)
    given_name = models.CharField(max_length=100)
    family_name = models.CharField(max_length=100)
    date_of_birth = models.DateField()
    postcode = models.CharField(max_length=10)
    contact_email = models.EmailField(blank=True)
    contact_phone = models.CharField(max_length=30, blank=True)
    region = models.CharField(max_length=3, choices=Region.choices)
    reason = models.TextField(blank=True)
    on_behalf_name = models.CharField("requester's name (if on behalf)", max_length=200, blank=True)
    on_behalf_relationship = models.CharField(max_length=100, blank=True)
    # Recorded by a professional from the record page.
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    how_told = models.CharField("how the patient told them", max_length=200, blank=True)
    # Repeat requests from the same person are linked to the first rather than opening a second case.
    repeat_count = models.PositiveIntegerField(default=0)
    last_repeat_at = models.DateTimeField(null=True, blank=True)
    # IG's check of who is asking (the verify step): who checked, when, and how.
    verified_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    verified_at = models.DateTimeField(null=True, blank=True)
    identity_check = models.CharField(
        "how identity was checked", max_length=20, choices=IdentityCheck.choices, blank=True
    )
    identity_check_note = models.CharField("identity check notes", max_length=500, blank=True)
    # IG's decision (uphold or reject): set at the decision only.
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_reason = models.TextField(blank=True)
    clinician_name = models.CharField(
        max_length=200, blank=True, help_text="Required when rejecting for clinical need."
    )
    withdrawn_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["received_at"]
        indexes = [
            models.Index(fields=["status", "received_at"], name="objection_queue"),
            models.Index(fields=["patient", "status"], name="objection_patient_status"),
            models.Index(fields=["date_of_birth", "postcode"], name="objection_repeat_lookup"),
        ]

    def __str__(self):
        return f"{self.reference} ({self.get_status_display()})"

    @property
    def requester_name(self):
        return self.on_behalf_name or f"{self.given_name} {self.family_name}"
