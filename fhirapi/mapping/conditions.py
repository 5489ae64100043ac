"""Condition -> Condition (diagnosed conditions). Onset (onset[x]) and recorded (recordedDate) kept apart:
a condition with no onset has none, whatever its recorded date."""

from patients.categories import Category
from patients.models import Condition, VerificationStatus

from ..context import Unmappable
from ..outcome import error
from ..registry import builds, maps, reads
from ..serialise import concept, patient_reference
from .common import (
    code_of,
    codes_in,
    codings_of,
    entry_fields,
    first,
    period_end,
    period_start,
    text_of,
    to_date,
    to_datetime,
)

CLINICAL_STATUS = {
    "active": Condition.Status.ACTIVE,
    "recurrence": Condition.Status.ACTIVE,
    "relapse": Condition.Status.ACTIVE,
    "inactive": Condition.Status.RESOLVED,
    "resolved": Condition.Status.RESOLVED,
    "remission": Condition.Status.REMISSION,
}
# A refuted diagnosis is as wrong to show as one entered in error: both are withdrawn (kept, shown to no one).
WITHDRAWN = {"entered-in-error", "refuted"}
VERIFICATION_SYSTEM = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
VERIFICATION_STATUSES = {status.value for status in VerificationStatus if status.value}
CATEGORY_SYSTEM = "http://terminology.hl7.org/CodeSystem/condition-category"
CATEGORIES = {"problem-list-item", "encounter-diagnosis"}


def verification_of(concept, known: set[str]) -> str:
    """verificationStatus's code, where it is one the record knows ("" where none was sent: not recorded)."""
    code = code_of(concept)[1]
    return code if code in known else ""


def category_of(categories) -> str:
    """The first category's first coded code (problem-list-item, encounter-diagnosis...), else its text."""
    for category in categories or []:
        for coding in category.coding or []:
            if coding.code:
                return coding.code
        return category.text or ""
    return ""


@maps("Condition")
def map_condition(resource, ctx):
    name = text_of(resource.code)
    if not name:
        raise Unmappable(error("required", "A condition needs a code or text to be shown.", "Condition.code"))
    system, code = code_of(resource.code)
    return Condition, {
        **entry_fields(
            resource,
            ctx,
            patient=resource.subject,
            patient_expression="Condition.subject",
            effective_at=first(to_datetime(resource.onsetDateTime), period_start(resource.onsetPeriod)),
            recorded_at=to_datetime(resource.recordedDate),
            entered_in_error=bool(codes_in(resource.verificationStatus) & WITHDRAWN),
        ),
        "name": name,
        "code_system": system,
        "code": code,
        "codings": codings_of(resource.code),
        "clinical_status": CLINICAL_STATUS.get(code_of(resource.clinicalStatus)[1], Condition.Status.ACTIVE),
        "verification_status": verification_of(resource.verificationStatus, VERIFICATION_STATUSES),
        "condition_category": category_of(resource.category)[:100],
        "resolved_on": to_date(first(resource.abatementDateTime, period_end(resource.abatementPeriod))),
        "notes": "\n".join(note.text for note in resource.note or [] if note.text),
    }


# --- out: the read API ------------------------------------------------------------------------------------

reads("Condition", Category.CONDITIONS, rank=50)


def verification_status(entry, system: str) -> dict | None:
    status = entry.verification_status
    return {"coding": [{"system": system, "code": status}]} if status else None


def category(entry: Condition) -> list | None:
    value = entry.condition_category
    if not value:
        return None
    return [{"coding": [{"system": CATEGORY_SYSTEM, "code": value}]} if value in CATEGORIES else {"text": value}]


@builds(Condition)
def condition(entry: Condition) -> dict:
    return {
        "resourceType": "Condition",
        "clinicalStatus": {
            "coding": [
                {"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": entry.clinical_status}
            ]
        },
        "verificationStatus": verification_status(entry, VERIFICATION_SYSTEM),
        "category": category(entry),
        "code": concept(entry, entry.name),
        "subject": patient_reference(entry.patient_id),
        "onsetDateTime": entry.effective_at,
        "recordedDate": entry.recorded_at,
        "abatementDateTime": entry.resolved_on,
        "note": [{"text": entry.notes}] if entry.notes else None,
    }
