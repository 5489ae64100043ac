"""What partners sent, kept as they sent it: one row per version of each FHIR resource received.

The record's own rows (patients.Condition, Medication, ...) hold what carerecord shows and decides on; this is
the resource behind them, so that a read can give back everything the source said (every element, extension
and coding), not only what the record's columns hold. Later work reuses it: `_history` (the versions of a
resource, `version` 1..n) and a fast read path (the latest JSON of many resources in one indexed query).
"""

import hashlib
import json
import uuid
from collections import defaultdict

from django.db import connection, models
from django.db.models import OuterRef, Q, Subquery
from django.db.models.expressions import RawSQL

from .upsert import any_of


def digest_of(resource: dict, references: dict | None = None) -> str:
    """A stable fingerprint of a resource's JSON (key order and spacing do not count), so that re-sending the
    same resource is recognised with a look at one short column, never by comparing documents. The urn:uuid
    references its Bundle resolved count too: the same text pointing at another patient is not the same."""
    content = {"resource": resource, "references": references} if references else resource
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8", errors="surrogatepass")).hexdigest()


class ReceivedQuerySet(models.QuerySet):
    def newest(self, keys):
        """The latest version of each of these resources: `keys` are (organisation id, type, id). One query on
        the unique index, whatever the number of versions held."""
        keys = list(keys)
        if not keys:
            return self.none()
        if connection.vendor == "postgresql":
            return self.filter(pk__in=_newest_of(keys))
        by_sender = defaultdict(list)
        for organisation_id, resource_type, resource_id in keys:
            by_sender[organisation_id, resource_type].append(resource_id)
        if not by_sender:
            return self.none()
        wanted = Q()
        for (organisation_id, resource_type), resource_ids in by_sender.items():
            wanted |= Q(
                any_of("resource_id", resource_ids), organisation_id=organisation_id, resource_type=resource_type
            )
        newest = (
            ReceivedResource.objects.filter(
                organisation=OuterRef("organisation"),
                resource_type=OuterRef("resource_type"),
                resource_id=OuterRef("resource_id"),
            )
            .order_by("-version")
            .values("version")[:1]
        )
        return self.filter(wanted, version=Subquery(newest))


def _newest_of(keys) -> RawSQL:
    """The ids of the latest versions of `keys` on PostgreSQL: for each key, the unique index read backwards from
    its newest version (a nested loop over the keys, one index probe each). Written as an OR of IN lists per
    organisation and type, the planner scanned every version that organisation had sent of that type, once per
    submission: 98 ms for a 1,000-resource bundle against 36,000 kept versions, and growing with them."""
    organisations, types, ids = (list(column) for column in zip(*keys, strict=True))
    table = connection.ops.quote_name(ReceivedResource._meta.db_table)
    return RawSQL(  # noqa: S611 - the keys are parameters
        f"""SELECT newest.id FROM unnest(%s::integer[], %s::varchar[], %s::varchar[])
                AS wanted(organisation_id, resource_type, resource_id)
            CROSS JOIN LATERAL (
                SELECT kept.id FROM {table} kept
                WHERE kept.organisation_id = wanted.organisation_id AND kept.resource_type = wanted.resource_type
                    AND kept.resource_id = wanted.resource_id
                ORDER BY kept.version DESC LIMIT 1
            ) AS newest""",  # noqa: S608 - the table's name, not input
        [organisations, types, ids],
    )


class Submission(models.Model):
    """One submission a partner system made (a resource, a Bundle or a message), as carerecord received it.

    What a Provenance resource is built from (fhirapi.provenance): who sent it (the organisation, and the
    token or command through which it came), when, and as what; every version it stored names it
    (ReceivedResource.submission). Written in the submission's own transaction, so one rolled back leaves none."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organisation = models.ForeignKey("directory.Organisation", on_delete=models.PROTECT, related_name="+")
    received_at = models.DateTimeField()
    actor = models.CharField(max_length=200, blank=True, help_text="Who the audit trail names: token or operator.")
    token = models.ForeignKey("directory.ApiToken", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    endpoint = models.CharField(max_length=200, blank=True, help_text="POST /fhir/..., or the command's name.")
    request_id = models.CharField(max_length=100, blank=True)
    bundle_type = models.CharField(max_length=20, blank=True, help_text="Blank for a single resource.")
    bundle_id = models.CharField(max_length=200, blank=True, help_text="Bundle.identifier (system|value) or id.")
    message_id = models.CharField(max_length=200, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["received_at"], name="submission_received"),
            models.Index(fields=["organisation", "received_at"], name="submission_org_received"),
        ]

    def __str__(self):
        return f"Submission {self.pk} from {self.organisation_id} at {self.received_at:%Y-%m-%d %H:%M:%S}"


class ReceivedResource(models.Model):
    """One version of one resource one organisation sent, exactly as sent.

    Keyed like the record's rows: (organisation, resource type, resource id), where the id is the sender's
    (for an entry sent without one: its urn:uuid fullUrl, or `?identifier=system|value`), so a row's
    `source_id` "<type>/<id>" names its stored resource. A new version is stored only when the JSON differs
    from the latest: re-sending the same resource stores nothing. Written in the transaction that writes the
    rows, so a rolled-back submission leaves no version behind. Latest version of (organisation, type, id): the
    unique index, read backwards."""

    organisation = models.ForeignKey("directory.Organisation", on_delete=models.PROTECT, related_name="+")
    resource_type = models.CharField(max_length=64)
    resource_id = models.CharField(max_length=200, help_text="The sender's id (or its fullUrl's UUID).")
    version = models.PositiveIntegerField(help_text="1, 2, ... per (organisation, type, id): carerecord's versionId.")
    received_at = models.DateTimeField(help_text="When carerecord received this version.")
    source_updated_at = models.DateTimeField(null=True, blank=True, help_text="Its meta.lastUpdated, if sent.")
    json = models.JSONField(help_text="The resource exactly as the sender sent it (FHIR JSON).")
    digest = models.CharField(max_length=64, help_text="SHA-256 of the canonical JSON (what 'the same' means).")
    # Reference strings the submission itself resolved (a Bundle's urn:uuid fullUrls) -> the sender's
    # "<type>/<id>": outside its Bundle a urn:uuid means nothing, so a read needs this to rewrite it.
    references = models.JSONField(default=dict, blank=True)
    patient = models.ForeignKey("patients.Patient", on_delete=models.CASCADE, null=True, blank=True, related_name="+")
    submission = models.ForeignKey(
        Submission,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="versions",
        help_text="The submission that sent this version (none for versions kept before submissions were).",
    )

    objects = ReceivedQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organisation", "resource_type", "resource_id", "version"], name="receivedresource_version"
            )
        ]

    def __str__(self):
        return f"{self.resource_type}/{self.resource_id} v{self.version} from {self.organisation_id}"

    @property
    def source_id(self) -> str:
        """The key the record's rows hold for it."""
        return key_for(self.resource_type, self.resource_id)


def version_meta(received: ReceivedResource) -> dict:
    """`versionId` (carerecord's version number) and `lastUpdated`: the source's meta.lastUpdated of that
    version where it gave one (when the resource last changed there), else when carerecord received it."""
    return {
        "versionId": str(received.version),
        "lastUpdated": received.source_updated_at or received.received_at,
    }


def etag(received: ReceivedResource) -> str:
    return f'W/"{received.version}"'


def key_for(resource_type: str, resource_id: str) -> str:
    return f"{resource_type}{resource_id}" if resource_id.startswith("?") else f"{resource_type}/{resource_id}"


def split_key(key: str) -> tuple[str, str]:
    """'Condition/abc' -> ('Condition', 'abc'); 'Condition?identifier=s|v' -> ('Condition', '?identifier=s|v')."""
    slash, query = key.find("/"), key.find("?")
    cuts = [cut for cut in (slash, query) if cut > 0]
    if not cuts:
        return key, ""
    cut = min(cuts)
    return key[:cut], key[cut + 1 :] if key[cut] == "/" else key[cut:]


class ResultLink(models.Model):
    """A report's `result` or a panel's `hasMember` reference, as its sender last sent it (mapping/results.py).

    Remembered so that a report, its panel and the panel's members reach the same rows in whatever order, and
    over however many requests, they arrive: an observation sent after its report finds it here. Keys are the
    record's source ids ("DiagnosticReport/<id>", "Observation/<id>"), per sending organisation."""

    # No index of its own: both composite indexes lead with the organisation (one index fewer to write per link).
    organisation = models.ForeignKey(
        "directory.Organisation", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    parent = models.CharField(max_length=200, help_text="The report or panel that lists the observation.")
    child = models.CharField(max_length=200, help_text="The observation it lists.")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["organisation", "parent", "child"], name="resultlink_unique")]
        indexes = [models.Index(fields=["organisation", "child"], name="resultlink_child")]

    def __str__(self):
        return f"{self.parent} lists {self.child}"


class ProcessedMessage(models.Model):
    """A FHIR message (`$process-message`) carerecord has processed, and the response message it answered.

    Messages are idempotent by their id (`Bundle.identifier`, else the MessageHeader's id) per sending
    organisation: a sender that did not see the response re-sends the same message and gets the same response,
    and nothing is imported twice."""

    organisation = models.ForeignKey("directory.Organisation", on_delete=models.CASCADE, related_name="+")
    message_id = models.CharField(max_length=200)
    event = models.CharField(max_length=200, blank=True, help_text="MessageHeader.event[x]: system|code.")
    outcome = models.CharField(max_length=20, help_text="MessageHeader.response.code: ok, transient-error, ...")
    response = models.JSONField(help_text="The response message Bundle, given again to a re-sent message.")
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["organisation", "message_id"], name="processedmessage_unique")]

    def __str__(self):
        return f"{self.message_id} from {self.organisation_id}: {self.outcome}"
