"""Retention of raw HL7 v2 messages: the text (patient data) is cleared after HL7_RAW_RETENTION_DAYS; the row, its
metadata and what became of it are kept for good (the application never deletes a message).

A message that still needs action keeps its raw text whatever its age — held (waiting for a match), invalid,
failed, or received and never processed — since a retry or a replay needs it (H-18: clearing it would lose the
message). Applied, ignored and refused ones are cleared once older than the setting.
"""

import datetime

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from .models import Message

Status = Message.Status
NEEDS_ACTION = (Status.HELD, Status.INVALID, Status.FAILED, Status.RECEIVED)
CHUNK = 2000  # rows cleared per UPDATE: short transactions beside a busy listener


def due(*, now=None, days: int | None = None):
    """Messages whose raw text retention clears now."""
    days = settings.HL7_RAW_RETENTION_DAYS if days is None else days
    cutoff = (now or timezone.now()) - datetime.timedelta(days=days)
    return (
        Message.objects.filter(received_at__lt=cutoff, raw_cleared_at=None)
        .exclude(status__in=NEEDS_ACTION)
        .exclude(raw="")
    )


def clear(*, now=None, days: int | None = None) -> int:
    """Clear the raw text of every message due; how many were cleared."""
    now = now or timezone.now()
    cleared = 0
    while True:
        with transaction.atomic():
            ids = list(due(now=now, days=days).order_by("pk").values_list("pk", flat=True)[:CHUNK])
            if not ids:
                return cleared
            # the status is checked again in the UPDATE: a message retried since it was listed keeps its text
            cleared += (
                Message.objects.filter(pk__in=ids, raw_cleared_at=None)
                .exclude(status__in=NEEDS_ACTION)
                .update(raw="", raw_cleared_at=now)
            )
