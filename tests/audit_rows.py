"""Reading back the AuditEvents a step wrote: mark the trail, act, then take exactly what came after."""

from django.db.models import Max

from audit.models import AuditEvent


def mark() -> int:
    return AuditEvent.objects.aggregate(last=Max("pk"))["last"] or 0


def written_since(start: int) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(pk__gt=start).order_by("pk"))


def assert_one_event(start, *, action, by, target, detail, patient_id=None):
    [event] = written_since(start)
    assert event.action == action
    assert (event.actor_id, event.actor_email) == ((by.pk, by.email) if by else (None, ""))
    assert (event.target_type, event.target_id) == (type(target).__name__, str(target.pk))
    assert event.patient_id == patient_id
    assert event.detail == detail
    return event
