"""HL7 v2 feeds: who may send (a Feed per connection IG configure), every message as it came (Message), and the
laboratories' local test codes mapped to national ones (CodeMapping).

A message is kept, raw, before anything is applied, so that a fix can be replayed over it (`hl7_replay`), and so
that the queue IG work shows what could not be applied and why. Applying one converts it to FHIR and imports it as
one transaction through fhirapi.ingest (feeds.convert): the same rules for who the patient is, the same versions,
audit and Provenance as a FHIR partner's submission (`submission`).
"""

from django.db import models

from fhirapi.auth import Actor


class Feed(models.Model):
    """One configured connection: which organisation's messages arrive over it, how the sender is recognised, and
    which message types it may send. Exactly one organisation per feed: everything it sends is that organisation's."""

    class Unaccepted(models.TextChoices):
        REFUSE = "refuse", "Refuse (AR): the sender sees the rejection"
        IGNORE = "ignore", "Keep and ignore (AA): stored, never applied"

    organisation = models.ForeignKey("directory.Organisation", on_delete=models.PROTECT, related_name="feeds")
    name = models.CharField(max_length=100, help_text="e.g. 'UCLH Epic ADT' or 'WinPath pathology'.")
    active = models.BooleanField(default=True, help_text="An inactive feed's connections are refused.")
    message_types = models.CharField(
        max_length=500,
        default="ADT^A01,ADT^A02,ADT^A03,ADT^A04,ADT^A05,ADT^A08,ADT^A11,ADT^A12,ADT^A13,ADT^A28,ADT^A31,ADT^A40,ORU^R01",
        help_text="Message types and events accepted, comma-separated (ADT^A01, ORU^R01, ...).",
    )
    unaccepted = models.CharField(
        max_length=10,
        choices=Unaccepted.choices,
        default=Unaccepted.REFUSE,
        help_text="What happens to a message of a type or event this feed does not accept.",
    )
    allowed_addresses = models.TextField(
        blank=True, help_text="Source IP addresses or networks (CIDR) allowed to connect, one per line."
    )
    shared_secret_hash = models.CharField(
        max_length=200,
        blank=True,
        help_text="Hash of the shared secret the sender puts in MSH-8 (Security); blank: none required.",
    )
    client_certificate_sha256 = models.CharField(
        max_length=64, blank=True, help_text="SHA-256 fingerprint of the sender's TLS client certificate, if TLS."
    )
    sending_application = models.CharField(max_length=100, blank=True, help_text="Expected MSH-3 (blank: any).")
    sending_facility = models.CharField(max_length=100, blank=True, help_text="Expected MSH-4 (blank: any).")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self):
        return f"{self.name} ({self.organisation_id})"


def feed_actor(feed: Feed) -> Actor:
    """A feed acts like a partner's API token: the audit trail names it `hl7-feed:<id>:<name>@<ODS code>` (an import
    with no feed configured: `hl7-feed:none:...`)."""
    return Actor(email=f"hl7-feed:{feed.pk or 'none'}:{feed.name}@{feed.organisation.ods_code}"[:254])


class Message(models.Model):
    """One HL7 v2 message as received, and what became of it. Kept (the raw text until the retention setting
    clears it) whatever became of it; never deleted by the application."""

    class Status(models.TextChoices):
        RECEIVED = "received", "Received (not yet applied)"
        APPLIED = "applied", "Applied"
        HELD = "held", "Held: waiting for a match"
        IGNORED = "ignored", "Kept and ignored (type not accepted)"
        REFUSED = "refused", "Refused (AR)"
        INVALID = "invalid", "Invalid content (AE)"
        FAILED = "failed", "Could not be applied (error)"

    feed = models.ForeignKey(Feed, on_delete=models.PROTECT, null=True, blank=True, related_name="messages")
    organisation = models.ForeignKey("directory.Organisation", on_delete=models.PROTECT, related_name="+")
    received_at = models.DateTimeField()
    peer = models.CharField(max_length=300, blank=True, help_text="The sender's address, or the file it came from.")
    raw = models.TextField(blank=True, help_text="The message as received (segments separated by carriage returns).")
    raw_cleared_at = models.DateTimeField(null=True, blank=True, help_text="When retention cleared the raw text.")
    control_id = models.CharField(max_length=200, blank=True, help_text="MSH-10.")
    message_type = models.CharField(max_length=30, blank=True, help_text="MSH-9: type^event, e.g. ADT^A01.")
    version = models.CharField(max_length=20, blank=True, help_text="MSH-12.")
    sent_at = models.DateTimeField(null=True, blank=True, help_text="MSH-7, when the sender made it.")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.RECEIVED)
    reason = models.TextField(blank=True, help_text="Why it was held, refused or not applied.")
    error_location = models.CharField(max_length=50, blank=True, help_text="Segment and field, e.g. PID-7.")
    ack_code = models.CharField(max_length=2, blank=True, help_text="AA, AE or AR as answered.")
    local_id = models.CharField(
        max_length=200, blank=True, help_text="The sender's identifier of the patient (hospital number), for the queue."
    )
    patient = models.ForeignKey("patients.Patient", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    submission = models.ForeignKey(
        "fhir.Submission",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text="The FHIR submission it was applied as (its Provenance).",
    )
    attempts = models.PositiveIntegerField(default=0)
    applied_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["status", "received_at"], name="feedmessage_queue"),
            models.Index(fields=["organisation", "control_id"], name="feedmessage_control_id"),
            models.Index(fields=["organisation", "local_id"], name="feedmessage_local_id"),
            # The newest message of each feed (the metrics' "last message", which the quiet-feed alert reads).
            models.Index(fields=["feed", "-received_at"], name="feedmessage_feed_newest"),
        ]

    def __str__(self):
        return f"{self.message_type} {self.control_id} ({self.get_status_display()})"


class CodeMapping(models.Model):
    """A laboratory's local test code and the national code (SNOMED CT or LOINC) it means, so that trends join
    across laboratories. The local code is always kept; the mapped one is added beside it, never in its place."""

    organisation = models.ForeignKey("directory.Organisation", on_delete=models.PROTECT, related_name="+")
    local_system = models.CharField(max_length=100, blank=True, help_text="OBX-3.3 as sent (blank: any).")
    local_code = models.CharField(max_length=100, help_text="OBX-3.1 as sent.")
    system = models.CharField(max_length=200, help_text="e.g. http://snomed.info/sct or http://loinc.org")
    code = models.CharField(max_length=100)
    display = models.CharField(max_length=300, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organisation", "local_system", "local_code"], name="codemapping_unique_local_code"
            )
        ]

    def __str__(self):
        return f"{self.local_code} → {self.system}|{self.code}"
