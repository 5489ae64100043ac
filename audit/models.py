"""The audit trail: every look at a patient's record (AccessEvent) and every IG-relevant change (AuditEvent).

Both are append-only: the model refuses to save an existing row or delete one, admin offers no forms, and the
database refuses too: on PostgreSQL row triggers refuse UPDATE and DELETE and a statement trigger TRUNCATE; on
SQLite triggers refuse UPDATE and DELETE (audit/migrations/0002). Triggers stop mistakes and the app's own code;
what stops someone holding the app's database credentials is that the app's role does not own these tables and
may only SELECT and INSERT them (docs/database-roles.md). Who and whom are kept as values (ids, emails, codes), not
foreign keys, so this app depends on no other of ours and a row stands alone in an export.
"""

import pgtrigger
from django.db import models
from django.utils import timezone


class AccessBasis(models.TextChoices):
    # Stored in audit rows: plain strings, never renamed.
    CARE_TEAM = "care-team", "Care team"
    BREAK_GLASS = "break-glass", "Break glass"
    # Information governance in Django admin: no care relationship, and no clinical entries shown; logged so
    # that "who has seen my record" includes IG looking up a patient's details.
    IG_ADMIN = "ig-admin", "IG administration"
    NONE = "none", "No basis"


class AccessOutcome(models.TextChoices):
    ALLOWED = "allowed", "Allowed"
    REFUSED = "refused", "Refused"


class RefuseTruncate(pgtrigger.Trigger):
    """BEFORE TRUNCATE, once per statement: pgtrigger's Protect works row by row, and TRUNCATE fires no row
    triggers (a statement-level Protect needs transition tables, which TRUNCATE has none of)."""

    when = pgtrigger.Before
    operation = pgtrigger.Truncate
    level = pgtrigger.Statement
    func = "RAISE EXCEPTION 'pgtrigger: Cannot truncate % table: it is append-only', TG_TABLE_NAME;"


def append_only_triggers(table: str) -> list[pgtrigger.Trigger]:
    return [
        pgtrigger.Protect(name=f"{table}_append_only", operation=pgtrigger.Update | pgtrigger.Delete),
        RefuseTruncate(name=f"{table}_no_truncate"),
    ]


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
    # The role they acted in at the time (job title, else the role's name), so "who has seen my record" says who
    # they were then, whatever the directory says now. A database default too: bulk loaders write raw SQL.
    professional_role = models.CharField(max_length=200, blank=True, default="", db_default="")
    organisation_code = models.CharField(max_length=12, blank=True)
    patient_id = models.UUIDField(null=True)
    patient_nhs_number = models.CharField(max_length=10, blank=True)
    outcome = models.CharField(max_length=10, choices=AccessOutcome.choices)
    basis = models.CharField(max_length=20, choices=AccessBasis.choices)
    reason = models.CharField(max_length=50, blank=True, help_text="Why access was refused or limited.")
    page = models.CharField(max_length=100)
    path = models.CharField(max_length=500, blank=True)
    request_id = models.CharField(max_length=64, blank=True)
    launch = models.CharField(
        max_length=300,
        blank=True,
        help_text="Opened in context from a partner's clinical system: the partner and the launch token's id.",
    )

    class Meta:
        ordering = ["-at"]
        indexes = [
            models.Index(fields=["patient_id", "-at"], name="accessevent_patient_at"),
            models.Index(fields=["user_id", "-at"], name="accessevent_user_at"),
        ]
        triggers = append_only_triggers("accessevent")

    def __str__(self):
        return f"{self.at:%Y-%m-%d %H:%M} {self.user_email} {self.outcome} {self.page}"


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
        triggers = append_only_triggers("auditevent")

    def __str__(self):
        return f"{self.at:%Y-%m-%d %H:%M} {self.actor_email or 'system'} {self.action}"


class AuditSeal(AppendOnlyModel):
    """A batch of audit rows sealed: a hash over the rows (exactly the ids `ranges` lists) and over the previous
    seal, so that a row removed or altered afterwards, by anyone with the rights to get past the triggers, no
    longer matches its seal, and a seal removed or altered breaks the chain (audit/seals.py).

    Inserts never wait for this: the audit rows are written as before and a sealer (`manage.py seal_audit`)
    seals what has been committed every few seconds, one seal per table per run. Append-only like the rows."""

    sealed_at = models.DateTimeField(default=timezone.now)
    table = models.CharField(max_length=20, help_text="accessevent or auditevent")
    scheme = models.PositiveSmallIntegerField(help_text="Which fields the row digest covers (audit/seals.py).")
    first_id = models.BigIntegerField()
    last_id = models.BigIntegerField()
    ranges = models.JSONField(help_text="The ids sealed, as [first, last] runs (ids never committed are gaps).")
    row_count = models.PositiveIntegerField()
    rows_digest = models.CharField(max_length=64)
    # Unique: two sealers building on the same head cannot both succeed, so the chain never forks.
    previous = models.CharField(max_length=64, unique=True, help_text="The previous seal's hash (zeros for the first).")
    hash = models.CharField(max_length=64, unique=True)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["table", "-last_id"], name="auditseal_table_last")]
        triggers = append_only_triggers("auditseal")

    def __str__(self):
        return (
            f"{self.table} {self.first_id}–{self.last_id} ({self.row_count} rows), {self.sealed_at:%Y-%m-%d %H:%M:%S}"
        )


class AuditArchive(AppendOnlyModel):
    """A month of an audit table taken off the live trail (`manage.py audit_partitions --archive`): its partition
    detached after its seals were checked, to be dumped, kept offline and dropped (docs/ops/audit-partitions.md).

    What was archived is kept here for good: the exact ids (so `verify_audit` knows those rows were archived, not
    removed) and a digest over them (so a restored dump can be checked against what left). Append-only; not
    partitioned, so archiving never archives the record of an archive."""

    archived_at = models.DateTimeField(default=timezone.now)
    table = models.CharField(max_length=20, help_text="accessevent or auditevent")
    partition = models.CharField(max_length=63, unique=True)
    month = models.DateField(help_text="The first day of the month (UTC) the partition held.")
    scheme = models.PositiveSmallIntegerField(help_text="Which fields the row digest covers (audit/seals.py).")
    ranges = models.JSONField(help_text="The ids archived, as [first, last] runs.")
    row_count = models.PositiveIntegerField()
    rows_digest = models.CharField(max_length=64)
    archived_by = models.CharField(max_length=254)

    class Meta:
        ordering = ["-month", "table"]
        triggers = append_only_triggers("auditarchive")

    def __str__(self):
        return f"{self.table} {self.month:%Y-%m} ({self.row_count} rows), archived {self.archived_at:%Y-%m-%d}"
