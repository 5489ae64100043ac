"""CarePlan -> CarePlan. The plan's period end is kept as its review date: the date it is next looked at."""

from patients.models import CarePlan

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
            effective_at=first(period_start(resource.period), to_datetime(resource.created)),
            entered_in_error=resource.status == "entered-in-error",
        ),
        "title": title,
        "status": STATUS.get(resource.status, CarePlan.Status.ACTIVE),
        "description": description,
        "review_on": to_date(period_end(resource.period)),
    }
