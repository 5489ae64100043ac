"""CSV exports of the audit trails, for IG to answer a subject access request or an investigation offline.

An export can cover millions of rows, so it is streamed: rows are read from the database in chunks (a
server-side cursor on PostgreSQL) and written out as they arrive, and memory stays flat whatever the size.
Taking a copy of who-saw-whom out of the service is itself IG-relevant, so every export is audited before the
first row leaves (see `export_response`).
"""

import csv
import datetime
import json
import uuid
from dataclasses import dataclass

from django.http import StreamingHttpResponse
from django.utils import timezone

from . import pages, reasons
from .names import Action
from .writers import audit

CHUNK_SIZE = 2000
# Spreadsheets run a cell beginning with one of these as a formula ("CSV injection"); names and paths come
# from people and requests, so such cells are prefixed with an apostrophe, as OWASP advises.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")

ACCESS_EVENT_COLUMNS = (
    "at",
    "outcome",
    "basis",
    "reason",
    "outcome_and_basis",
    "page",
    "page_name",
    "user_id",
    "user_email",
    "professional_name",
    "organisation_code",
    "patient_id",
    "patient_nhs_number",
    "professional_role",
    "path",
    "request_id",
)
# Columns in words beside the codes they read (the codes stay, for machines): name -> (the columns it reads,
# how it reads them).
DERIVED = {
    "page_name": (("page",), pages.page_name),
    "outcome_and_basis": (
        ("basis", "outcome", "page", "reason"),
        lambda basis, outcome, page, reason: reasons.how(basis=basis, outcome=outcome, page=page, reason=reason),
    ),
}
AUDIT_EVENT_COLUMNS = ("at", "action", "actor_id", "actor_email", "target_type", "target_id", "patient_id", "detail")


@dataclass(frozen=True)
class AuditTrail:
    """What an export is of, for `audit`: it records `type(target).__name__` and `target.pk`, so the
    AuditEvent reads "AuditTrail sharing.accessevent" — a stable target that no row's deletion can orphan."""

    pk: str


class _Echo:
    """csv.writer wants a file; this one hands each formatted line straight back, to be streamed."""

    def write(self, line):
        return line


def cell(value):
    """One value as IG reads it in a spreadsheet: local times with their offset, JSON for details."""
    if value is None:
        return ""
    if isinstance(value, datetime.datetime):
        return timezone.localtime(value).isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True)
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return f"'{value}"
    return value


def csv_lines(queryset, columns):
    """The header, then one line per row, reading `CHUNK_SIZE` rows at a time. A derived column (`DERIVED`) is
    worked out from the columns it reads, which are read whether or not they are exported."""
    writer = csv.writer(_Echo())
    stored = list(dict.fromkeys(name for column in columns for name in DERIVED.get(column, ((column,), None))[0]))
    # A byte-order mark, so Excel (what most IG teams open these with) reads names with accents correctly.
    yield "\ufeff" + writer.writerow(columns)
    for row in queryset.values(*stored).iterator(chunk_size=CHUNK_SIZE):
        values = [
            DERIVED[column][1](*(row[name] for name in DERIVED[column][0])) if column in DERIVED else row[column]
            for column in columns
        ]
        yield writer.writerow([cell(value) for value in values])


def export_response(*, by, queryset, columns, filters, patient_id=None):
    """Audit the export, then stream `queryset` (already filtered and ordered) as a CSV download.

    The AuditEvent is written first and on its own: the rows leave the service once the response starts,
    so the record of who took them must not depend on the download finishing.
    """
    model = queryset.model
    audit(
        by=by,
        action=Action.AUDIT_EXPORTED,
        target=AuditTrail(model._meta.label_lower),
        patient_id=patient_id,
        format="csv",
        filters=filters,
    )
    response = StreamingHttpResponse(csv_lines(queryset, columns), content_type="text/csv; charset=utf-8")
    stamp = timezone.localtime().strftime("%Y%m%d-%H%M%S")
    response["Content-Disposition"] = f'attachment; filename="{model._meta.model_name}-{stamp}.csv"'
    return response
