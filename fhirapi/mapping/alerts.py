"""Flag -> Alert. The kind is read from the flag's category and wording: a best effort, clinical by default."""

from patients.categories import Category
from patients.models import Alert

from ..context import Unmappable
from ..outcome import error
from ..registry import builds, maps, reads
from ..serialise import patient_reference
from .common import codes_in, entry_fields, period_start, text_of, texts_of

# (words or category codes, kind): the first that matches wins.
KIND_RULES = [
    (("safeguard", "child protection", "vulnerable adult"), Alert.Kind.SAFEGUARDING),
    (("dnacpr", "dnar", "resuscitat"), Alert.Kind.DNACPR),
    (("safety", "behavioral", "violen", "aggress", "risk to staff"), Alert.Kind.RISK),
    (("contact", "communication", "interpreter", "sign language", "deaf", "blind"), Alert.Kind.COMMUNICATION),
]


def alert_kind(resource) -> str:
    words = " ".join(
        [
            text_of(resource.code),
            *texts_of(resource.category),
            *(c for cat in resource.category or [] for c in codes_in(cat)),
        ]
    ).lower()
    return next((kind for needles, kind in KIND_RULES if any(n in words for n in needles)), Alert.Kind.CLINICAL)


@maps("Flag")
def map_flag(resource, ctx):
    text = text_of(resource.code)
    if not text:
        raise Unmappable(error("required", "A flag needs a code or text to be shown.", "Flag.code"))
    return Alert, {
        **entry_fields(
            resource,
            ctx,
            patient=resource.subject,
            patient_expression="Flag.subject",
            effective_at=period_start(resource.period),
            entered_in_error=resource.status == "entered-in-error",
        ),
        "kind": alert_kind(resource),
        "text": text,
        "active": resource.status == "active",
    }


# --- out: the read API ------------------------------------------------------------------------------------

reads("Flag", Category.ALERTS, rank=30)


@builds(Alert)
def alert(entry: Alert) -> dict:
    return {
        "resourceType": "Flag",
        "status": "active" if entry.active else "inactive",
        "category": [{"text": entry.get_kind_display()}],
        "code": {"text": entry.text},
        "subject": patient_reference(entry.patient_id),
        "period": {"start": entry.effective_at},
    }
