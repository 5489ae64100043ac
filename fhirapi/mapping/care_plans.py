"""CarePlan -> CarePlan. The plan's period end is kept as its review date: the date it is next looked at. Its
date is the period's start (when it applies); when it was written (`created`) is its recorded date."""

from patients.categories import Category
from patients.models import CarePlan

from ..registry import builds, maps, reads
from ..serialise import patient_reference
from .common import entry_fields, first, period_end, period_start, text_of, texts_of, to_date, to_datetime

STATUS = {
    "draft": CarePlan.Status.DRAFT,
    "completed": CarePlan.Status.COMPLETED,
    "revoked": CarePlan.Status.COMPLETED,
}


def activity_lines(activities) -> list[str]:
    lines = []
    for activity in activities or []:
        detail = activity.detail
        if detail is None:
            continue
        what = text_of(detail.code) or detail.description or "Activity"
        line = f"- {what}" + (f" ({detail.status})" if detail.status else "")
        reason = text_of(detail.statusReason)
        lines.append(f"{line}: {reason}" if reason else line)
    return lines


@maps("CarePlan")
def map_care_plan(resource, ctx):
    categories = texts_of(resource.category)
    title = first(resource.title, *categories, resource.description) or "Care plan"
    description = "\n".join(filter(None, [resource.description, *activity_lines(resource.activity)]))
    return CarePlan, {
        **entry_fields(
            resource,
            ctx,
            patient=resource.subject,
            patient_expression="CarePlan.subject",
            effective_at=period_start(resource.period),
            recorded_at=to_datetime(resource.created),
            entered_in_error=resource.status == "entered-in-error",
        ),
        "title": title,
        "status": STATUS.get(resource.status, CarePlan.Status.ACTIVE),
        "description": description,
        "review_on": to_date(period_end(resource.period)),
    }


# --- out: the read API ------------------------------------------------------------------------------------

reads("CarePlan", Category.CARE_PLANS, rank=120)


@builds(CarePlan)
def care_plan(entry: CarePlan) -> dict:
    return {
        "resourceType": "CarePlan",
        "status": entry.status,
        "intent": "plan",
        "title": entry.title,
        "description": entry.description or None,
        "subject": patient_reference(entry.patient_id),
        "period": {"start": entry.effective_at, "end": entry.review_on},
        "created": entry.recorded_at,
    }
