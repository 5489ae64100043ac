"""A bulk load and what it was given: the job row is the truth (the queue's message only names it), so a lost
message, a worker killed mid-run or a broker restarted loses no work: `bulk_jobs --dispatch` sends again what
waits, and a job resumes from the parts it finished."""

import uuid
import zlib

from django.conf import settings
from django.db import models


class Job(models.Model):
    class Kind(models.TextChoices):
        FHIR_IMPORT = "fhir.import", "FHIR import"
        HL7_REPLAY = "hl7.replay", "HL7 v2 replay"

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        RETRYING = "retrying", "Waiting to retry"
        DONE = "done", "Done"
        DEAD = "dead", "Dead letter (needs action)"
        CANCELLED = "cancelled", "Cancelled"

    WAITING = (Status.QUEUED, Status.RETRYING)
    OPEN = (Status.QUEUED, Status.RUNNING, Status.RETRYING)

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    kind = models.CharField(max_length=20, choices=Kind.choices)
    organisation = models.ForeignKey(
        "directory.Organisation",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text="The sending organisation whose records a FHIR import writes (blank for a replay).",
    )
    scope = models.CharField(max_length=20, blank=True, help_text="Whose submission ids these are (ODS code).")
    submission_id = models.CharField(
        max_length=200,
        blank=True,
        help_text="The sender's id for this submission (Idempotency-Key): sent again, the same job answers.",
    )
    digest = models.CharField(max_length=64, help_text="SHA-256 of what was submitted.")
    requested_by = models.CharField(max_length=200, help_text="Who the audit trail names: token, account or command.")
    requested_by_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    token = models.ForeignKey("directory.ApiToken", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    channel = models.JSONField(default=dict, blank=True, help_text="How it came: endpoint, request id, command.")
    params = models.JSONField(default=dict, blank=True, help_text="What to do (a replay's message ids).")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.QUEUED)
    attempts = models.PositiveIntegerField(default=0)
    max_attempts = models.PositiveIntegerField(default=5)
    total = models.PositiveIntegerField(default=0, help_text="Parts (FHIR) or messages (HL7) in all.")
    done = models.PositiveIntegerField(default=0, help_text="Parts or messages finished: a retry resumes after them.")
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    dispatched_at = models.DateTimeField(null=True, blank=True, help_text="When its message was last sent.")
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True, help_text="The last failure's kind and words (no patient identifiers).")
    result = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["kind", "scope", "submission_id"],
                condition=~models.Q(submission_id=""),
                name="bulk_job_one_per_submission_id",
            )
        ]
        indexes = [models.Index(fields=["status", "created_at"], name="bulk_job_status")]

    def __str__(self):
        return f"{self.get_kind_display()} {self.pk} ({self.get_status_display().lower()})"

    @property
    def progress(self) -> str:
        """What X-Progress and admin show."""
        unit = "parts" if self.kind == self.Kind.FHIR_IMPORT else "messages"
        text = f"{self.get_status_display().lower()}: {self.done} of {self.total} {unit}"
        if self.status == self.Status.RETRYING:
            text += f" (attempt {self.attempts} of {self.max_attempts} failed: {self.last_error[:80]})"
        return text


class DeadLetter(Job):
    """Admin's dead-letter list: jobs that failed for good (retries spent, or an error no retry mends)."""

    class Meta:
        proxy = True
        verbose_name = "dead letter"


class JobInput(models.Model):
    """One file or body a job was given, compressed; emptied once the job is done (what was imported is kept
    as sent, per resource, by the import itself: fhirapi.models.ReceivedResource)."""

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="inputs")
    seq = models.PositiveIntegerField()
    name = models.CharField(max_length=500, help_text="The file's path, or the request it came in.")
    content_type = models.CharField(max_length=200, blank=True)
    size = models.PositiveBigIntegerField()
    body = models.BinaryField(help_text="zlib-compressed; empty once the job is done.")

    class Meta:
        ordering = ["job", "seq"]
        constraints = [models.UniqueConstraint(fields=["job", "seq"], name="bulk_input_seq")]

    def __str__(self):
        return f"{self.name} ({self.size:,} bytes)"

    def data(self) -> bytes:
        return zlib.decompress(bytes(self.body)) if self.body else b""

    @staticmethod
    def pack(data: bytes) -> bytes:
        return zlib.compress(data, 6)
