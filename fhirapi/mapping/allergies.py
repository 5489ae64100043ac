"""AllergyIntolerance -> Allergy. Onset (onset[x]) and recorded (recordedDate) kept apart."""

from patients.categories import Category
from patients.models import Allergy, VerificationStatus

from ..context import Unmappable
from ..outcome import error
from ..registry import builds, maps, reads
from ..serialise import concept, patient_reference
from .common import code_of, codes_in, codings_of, entry_fields, first, period_start, text_of, texts_of, to_datetime
from .conditions import verification_of, verification_status

SEVERITY_ORDER = ["mild", "moderate", "severe"]
WITHDRAWN = {"entered-in-error", "refuted"}
CLINICAL_STATUSES = {status.value for status in Allergy.ClinicalStatus if status.value}
VERIFICATION_SYSTEM = "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification"
# AllergyIntolerance's verification statuses (FHIR R4): unconfirmed, confirmed (refuted, entered-in-error: withdrawn).
VERIFICATION_STATUSES = {VerificationStatus.UNCONFIRMED, VerificationStatus.CONFIRMED, VerificationStatus.REFUTED}


@maps("AllergyIntolerance")
def map_allergy(resource, ctx):
    reactions = resource.reaction or []
    # Transfer-degraded records carry the real substance in the text, which text_of prefers.
    substance = text_of(resource.code) or next((text_of(r.substance) for r in reactions if r.substance), "")
    if not substance:
        raise Unmappable(error("required", "An allergy needs a substance (code).", "AllergyIntolerance.code"))
    system, code = code_of(resource.code)
    severities = [r.severity for r in reactions if r.severity in SEVERITY_ORDER]
    return Allergy, {
        **entry_fields(
            resource,
            ctx,
            patient=resource.patient,
            patient_expression="AllergyIntolerance.patient",
            effective_at=first(to_datetime(resource.onsetDateTime), period_start(resource.onsetPeriod)),
            recorded_at=to_datetime(resource.recordedDate),
            entered_in_error=bool(codes_in(resource.verificationStatus) & WITHDRAWN),
        ),
        "substance": substance,
        "code_system": system,
        "code": code,
        "codings": codings_of(resource.code),
        "reaction": ", ".join(text for r in reactions for text in texts_of(r.manifestation)),
        "severity": max(severities, key=SEVERITY_ORDER.index) if severities else Allergy.Severity.UNKNOWN,
        "clinical_status": status if (status := code_of(resource.clinicalStatus)[1]) in CLINICAL_STATUSES else "",
        "verification_status": verification_of(resource.verificationStatus, VERIFICATION_STATUSES),
    }


# --- out: the read API ------------------------------------------------------------------------------------

reads("AllergyIntolerance", Category.ALLERGIES, rank=40)


@builds(Allergy)
def allergy(entry: Allergy) -> dict:
    reaction = {"manifestation": [{"text": entry.reaction}], "severity": entry.severity or None}
    status = entry.clinical_status
    clinical_status = {"system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical", "code": status}
    return {
        "resourceType": "AllergyIntolerance",
        "clinicalStatus": {"coding": [clinical_status]} if status else None,
        "verificationStatus": verification_status(entry, VERIFICATION_SYSTEM),
        "code": concept(entry, entry.substance),
        "patient": patient_reference(entry.patient_id),
        "onsetDateTime": entry.effective_at,
        "recordedDate": entry.recorded_at,
        "reaction": [reaction] if entry.reaction else None,
    }
