"""What each `AccessEvent.page` code means, in words IG and patients read ("record:letters" is "Letters and
discharge information").

The codes are stored and filtered on, so they stay as they are; this is the one place that names them, for the
access log, "who has seen this record", the CSV export and the subject access letter. Audit imports no other app
of ours, so the record categories' names are kept here as data (tests/audit/test_pages.py holds them against
`patients.categories.Category`, and every code the apps write against this list). A code not named here still
reads as words ("admin:new-queue" is "IG administration: new queue"), never as an error.
"""

# Record categories (patients.categories.Category: value -> label).
CATEGORIES = {
    "alerts": "Alerts",
    "allergies": "Allergies",
    "medications": "Medications",
    "conditions": "Diagnosed conditions",
    "results": "Blood tests and results",
    "procedures": "Procedures",
    "immunisations": "Immunisations",
    "letters": "Letters and discharge information",
    "appointments": "Appointments, attendances and referrals",
    "care-plans": "Care plans",
    "events": "Community, CAMHS and addiction events",
    "teams": "Involved teams",
}

# FHIR resource types a clinical system reads (fhirapi.read.SEARCHABLE and Patient, Binary), as what they hold.
FHIR_TYPES = {
    "Patient": "patient details",
    "Binary": "an attachment",
    "CareTeam": "involved teams",
    "RelatedPerson": "support network",
    "Flag": "alerts",
    "AllergyIntolerance": "allergies",
    "Condition": "diagnosed conditions",
    "MedicationStatement": "medications",
    "MedicationRequest": "medications (prescriptions)",
    "MedicationDispense": "medications (dispensed)",
    "MedicationAdministration": "medications (given)",
    "Appointment": "appointments",
    "Encounter": "attendances and events",
    "ServiceRequest": "referrals",
    "EpisodeOfCare": "episodes of care",
    "DiagnosticReport": "test reports",
    "Observation": "test results",
    "Procedure": "procedures",
    "Immunization": "immunisations",
    "DocumentReference": "letters",
    "Composition": "letters (documents)",
    "CarePlan": "care plans",
}
FHIR_ACTIONS = {"read": "one entry", "history": "an entry's past versions", "vread": "a past version of an entry"}

PAGES = {
    # The record pages (portal/views/).
    "record:summary": "Record summary",
    "record:timeline": "Timeline",
    "record:changes": "What changed since their last look",
    "record:coverage": "What is shared",
    "record:emergency": "Emergency view",
    "record:results:trend": "A test's results over time",
    "record:letters:attachment": "A letter's attachment",
    "record:objection": "Recording an objection to sharing",
    "record:report-problem": "Reporting a problem with an entry",
    "record:print:summary": "Printed: record summary",
    "launch": "Opening the record from a clinical system",
    # Lists showing demographics, no record opened (portal/views/search.py, fhirapi).
    "search:nhs": "Search by NHS number",
    "search:name": "Search by name and date of birth",
    "search:fhir-identifier": "Search by NHS number (clinical system)",
    "my-patients": "List of their patients",
    "my-patients:recent": "Their recently viewed patients",
    # The clinical systems' read API (fhirapi/views.py).
    "fhir:everything": "Clinical system: the whole record",
    "fhir:Patient": "Clinical system: patient details",
    "fhir:Binary:read": "Clinical system: an attachment",
    # IG's pages in admin (record_admin_view callers).
    "admin:patient": "IG administration: patient details",
    "admin:patient-search": "IG administration: patient search",
    "admin:patient-picker": "IG administration: choosing a patient",
    "admin:demographics-conflicts": "IG administration: data-quality conflicts",
    "admin:break-glass-review": "IG administration: emergency access review",
    "admin:privacy-alerts": "IG administration: privacy alerts",
    "admin:entry-problem": "IG administration: a problem reported with an entry",
    "admin:objection-match": "IG administration: matching an objection",
    "admin:hl7-message": "IG administration: a hospital system's message",
    "admin:hl7-queue": "IG administration: hospital messages queue",
    "admin:subject-access": "IG administration: subject access letter",
}
FAMILIES = {"record": "Record", "search": "Search", "fhir": "Clinical system", "admin": "IG administration"}


def page_name(code: str) -> str:
    """The page's name in words; a code not known reads as its own words (never an error, never blank)."""
    return known_name(code or "") or _readable(code or "")


def known_name(code: str) -> str | None:
    """The name given to this code here, or None for a code nobody named."""
    if code in PAGES:
        return PAGES[code]
    family, _, rest = code.partition(":")
    if family == "record" and rest in CATEGORIES:
        return CATEGORIES[rest]
    if family == "record" and rest.startswith("print:") and rest.removeprefix("print:") in CATEGORIES:
        return f"Printed: {CATEGORIES[rest.removeprefix('print:')].lower()}"
    if family == "fhir":
        resource_type, _, action = rest.partition(":")
        if resource_type in FHIR_TYPES and (not action or action in FHIR_ACTIONS):
            held = FHIR_TYPES[resource_type]
            return f"Clinical system: {held}" + (f", {FHIR_ACTIONS[action]}" if action else "")
    return None


def _readable(code: str) -> str:
    """ "admin:new-queue" -> "IG administration: new queue"; "" -> "Not recorded"."""
    family, _, rest = code.partition(":")
    words = rest.replace(":", ", ").replace("-", " ").replace("_", " ").strip()
    head = FAMILIES.get(family, family.replace("-", " ").replace("_", " ").strip().capitalize())
    if not head and not words:
        return "Not recorded"
    return f"{head}: {words}" if words else head
