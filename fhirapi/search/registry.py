"""The registry: every type's search parameters as implemented, what the parser accepts and the
CapabilityStatement declares, from one table."""

from dataclasses import dataclass

from .. import read
from ..mapping.appointments import APPOINTMENT_STATUS_OUT, REFERRAL_STATUS_OUT
from ..mapping.conditions import CATEGORIES as CONDITION_CATEGORIES
from .matchers import (
    Category,
    Coded,
    CodingStatus,
    DateMatcher,
    Identifier,
    Ids,
    LastUpdated,
    ObservationCategory,
    ObservationCode,
    Plain,
    Status,
    constant,
    encounter_status,
    event_status,
    observation_status,
    out_of,
    report_status,
    same,
)
from .values import (
    ALLERGY_CLINICAL,
    ALLERGY_VERIFICATION,
    CONDITION_CATEGORY,
    CONDITION_CLINICAL,
    CONDITION_VERIFICATION,
    SP,
)


@dataclass(frozen=True)
class Param:
    """A search parameter as the CapabilityStatement declares it."""

    name: str
    type: str  # FHIR SearchParamType: token | reference | date | string | number | uri
    documentation: str
    definition: str = ""  # FHIR's canonical SearchParameter, where FHIR defines this one


# --- the registry ------------------------------------------------------------------------------------------

# Patient context: every search by type is one patient's (`patient`, or `subject` where FHIR defines it).
_PATIENT_PARAMS = {
    "patient": "The patient whose record is searched (required): <id>, Patient/<id> or [base]Patient/<id>.",
    "subject": "The same as patient (the patient whose record is searched); given with patient, it must name the "
    "same one.",
}
# Types whose FHIR resource names the patient in `subject` (else in `patient` only) and the canonical of each.
_SUBJECT_TYPES = {
    "CarePlan",
    "CareTeam",
    "Composition",
    "Condition",
    "DiagnosticReport",
    "DocumentReference",
    "Encounter",
    "Flag",
    "MedicationAdministration",
    "MedicationDispense",
    "MedicationRequest",
    "MedicationStatement",
    "Observation",
    "Procedure",
    "ServiceRequest",
}
_OWN_PATIENT_PARAM = {"Appointment", "RelatedPerson"}  # Appointment-patient, RelatedPerson-patient

LAST_UPDATED_DOC = (
    "meta.lastUpdated as given back: for a resource received as FHIR, its latest kept version's (the sender's "
    "meta.lastUpdated, else when carerecord received that version); for one built from the record, when its "
    "source last changed it. Date prefixes eq, ne, lt, gt, le, ge, sa, eb."
)
DATE_DOC = (
    " Prefixes eq, ne, lt, gt, le, ge, sa, eb (ap is refused) at the precision given: a date is a London-local "
    "day. An entry with no such date never matches."
)
ID_PARAM = Param(
    "_id", "token", "carerecord's id of the resource (as in its URL); comma = any of them.", f"{SP}Resource-id"
)
LAST_UPDATED_PARAM = Param("_lastUpdated", "date", LAST_UPDATED_DOC, f"{SP}Resource-lastUpdated")


@dataclass(frozen=True)
class _Spec:
    param: Param
    matcher: object  # one of the matcher classes below


def _date(name, documentation, definition, matcher) -> _Spec:
    return _Spec(Param(name, "date", documentation + DATE_DOC, definition), matcher)


def _token(name, documentation, definition, matcher) -> _Spec:
    return _Spec(Param(name, "token", documentation, definition), matcher)


# --- per type -------------------------------------------------------------------------------------------------

_CODE_DOC = "The entry's code: code, system|code, |code (no system) or system| (any code in it); comma = any."
_STATUS_DOC = "The status the resource gives back (as its source sent it; built entries: as carerecord writes it)."


def _identifier() -> _Spec:
    return _token(
        "identifier",
        "An identifier of the resource: one it was sent with (system|value, |value or value), or the sender's "
        "id as carerecord gives it back (<base>/<ODS code>/<type>|<id>). Entries not received as FHIR have none.",
        f"{SP}clinical-identifier",
        Identifier(),
    )


def _code(definition=f"{SP}clinical-code", name="code", matcher=None) -> _Spec:
    return _token(name, _CODE_DOC, definition, matcher or Coded())


def _status(definition: str, built) -> _Spec:
    return _token("status", _STATUS_DOC, definition, Status(built))


_DR_EFFECTIVE = ("effectiveDateTime", "effectivePeriod")
_OBS_EFFECTIVE = ("effectiveDateTime", "effectivePeriod", "effectiveInstant")

_TYPE_SPECS: dict[str, list[_Spec]] = {
    "AllergyIntolerance": [
        _identifier(),
        _code(),
        _token(
            "clinical-status",
            "active | inactive | resolved (AllergyIntolerance.clinicalStatus). An allergy sent with none has none.",
            f"{SP}AllergyIntolerance-clinical-status",
            CodingStatus(("clinicalStatus",), "clinical_status", ALLERGY_CLINICAL),
        ),
        _token(
            "verification-status",
            "unconfirmed | confirmed (AllergyIntolerance.verificationStatus; refuted and entered-in-error are "
            "withdrawn from the record, so never found).",
            f"{SP}AllergyIntolerance-verification-status",
            CodingStatus(("verificationStatus",), "verification_status", ALLERGY_VERIFICATION),
        ),
        _date("date", "recordedDate: when it was recorded.", f"{SP}clinical-date", DateMatcher("recorded_at")),
    ],
    "Condition": [
        _identifier(),
        _code(),
        _token(
            "clinical-status",
            "active | recurrence | relapse | inactive | remission | resolved (Condition.clinicalStatus).",
            f"{SP}Condition-clinical-status",
            CodingStatus(
                ("clinicalStatus",),
                "clinical_status",
                CONDITION_CLINICAL,
                built_values={"active": ["active"], "resolved": ["resolved"], "remission": ["remission"]},
            ),
        ),
        _token(
            "verification-status",
            "unconfirmed | provisional | differential | confirmed (Condition.verificationStatus; refuted and "
            "entered-in-error are withdrawn from the record, so never found).",
            f"{SP}Condition-verification-status",
            CodingStatus(("verificationStatus",), "verification_status", CONDITION_VERIFICATION),
        ),
        _token(
            "category",
            "problem-list-item | encounter-diagnosis (Condition.category, any of them as sent).",
            f"{SP}Condition-category",
            Category("condition_category", CONDITION_CATEGORY, ("category",), CONDITION_CATEGORIES),
        ),
        _date(
            "onset-date",
            "onset[x]: when it began (a period: its start; a partial date: its first day).",
            f"{SP}Condition-onset-date",
            DateMatcher("effective_at"),
        ),
        _date(
            "recorded-date",
            "recordedDate: when it was recorded.",
            f"{SP}Condition-recorded-date",
            DateMatcher("recorded_at"),
        ),
    ],
    "Flag": [
        _identifier(),
        _date("date", "period.start: when the flag began.", f"{SP}clinical-date", DateMatcher("effective_at")),
    ],
    "MedicationStatement": [
        _identifier(),
        _code(),
        _status(f"{SP}medications-status", same("status")),
        _date(
            "effective",
            "effective[x]: when it was (or is) taken (a period: its start).",
            f"{SP}MedicationStatement-effective",
            DateMatcher("effective_at"),
        ),
    ],
    "MedicationRequest": [
        _identifier(),
        _code(),
        _status(f"{SP}medications-status", same("status")),
        _date(
            "authoredon",
            "authoredOn: when it was prescribed.",
            f"{SP}MedicationRequest-authoredon",
            DateMatcher("recorded_at"),
        ),
    ],
    "MedicationDispense": [
        _identifier(),
        _code(),
        _status(f"{SP}medications-status", event_status),
        _date(
            "whenhandedover",
            "whenHandedOver: when the patient got it.",
            f"{SP}MedicationDispense-whenhandedover",
            DateMatcher("effective_at"),
        ),
    ],
    "MedicationAdministration": [
        _identifier(),
        _code(),
        _status(f"{SP}medications-status", event_status),
        _date(
            "effective-time",
            "effective[x]: when it was given (a period: its start).",
            f"{SP}MedicationAdministration-effective-time",
            DateMatcher("effective_at"),
        ),
    ],
    "Appointment": [
        _token("identifier", _identifier().param.documentation, f"{SP}Appointment-identifier", Identifier()),
        _status(f"{SP}Appointment-status", out_of("status", APPOINTMENT_STATUS_OUT, "booked")),
        _date("date", "start: when it is (or was).", f"{SP}Appointment-date", DateMatcher("effective_at")),
    ],
    "Encounter": [
        _identifier(),
        _status(f"{SP}Encounter-status", encounter_status),
        _date(
            "date",
            "period: the stay or attendance, from its start to its end (none yet: still open). A community "
            "encounter held as a care event is matched by its start.",
            f"{SP}clinical-date",
            DateMatcher("effective_at", end="ends_at"),
        ),
    ],
    "ServiceRequest": [
        _identifier(),
        _status(f"{SP}ServiceRequest-status", out_of("status", REFERRAL_STATUS_OUT, "unknown")),
        _date(
            "authored", "authoredOn: when it was requested.", f"{SP}ServiceRequest-authored", DateMatcher("recorded_at")
        ),
        _date(
            "occurrence",
            "occurrence[x]: when it should happen (a period: its start).",
            f"{SP}ServiceRequest-occurrence",
            DateMatcher("effective_at"),
        ),
    ],
    "EpisodeOfCare": [
        _identifier(),
        _status(f"{SP}EpisodeOfCare-status", constant("")),
        _date("date", "period.start: when the episode began.", f"{SP}clinical-date", DateMatcher("effective_at")),
    ],
    "DiagnosticReport": [
        _identifier(),
        _code(),
        _status(f"{SP}DiagnosticReport-status", report_status),
        _date(
            "date",
            "effective[x]: the clinically relevant time (a period: its start). A report sent with only `issued` "
            "has no such date.",
            f"{SP}clinical-date",
            DateMatcher("effective_at", needs=_DR_EFFECTIVE),
        ),
        _date(
            "issued", "issued: when this version was made.", f"{SP}DiagnosticReport-issued", DateMatcher("recorded_at")
        ),
    ],
    "Observation": [
        _identifier(),
        _code(matcher=ObservationCode()),
        _token(
            "category",
            "vital-signs | laboratory | social-history | ... (Observation.category).",
            f"{SP}Observation-category",
            ObservationCategory(),
        ),
        _status(f"{SP}Observation-status", observation_status),
        _date(
            "date",
            "effective[x]: the clinically relevant time (a period: its start). One sent with only `issued` has "
            "no such date.",
            f"{SP}clinical-date",
            DateMatcher("effective_at", needs=_OBS_EFFECTIVE),
        ),
    ],
    "Procedure": [
        _identifier(),
        _code(),
        _status(f"{SP}Procedure-status", same("status")),
        _date(
            "date",
            "performed[x]: when it was done (a period: its start).",
            f"{SP}clinical-date",
            DateMatcher("effective_at"),
        ),
    ],
    "Immunization": [
        _identifier(),
        _code(f"{SP}Immunization-vaccine-code", "vaccine-code"),
        _status(f"{SP}Immunization-status", same("status")),
        _date("date", "occurrence[x]: when it was given.", f"{SP}clinical-date", DateMatcher("effective_at")),
        _token("lot-number", "lotNumber, exactly as sent.", f"{SP}Immunization-lot-number", Plain("lot_number")),
    ],
    "DocumentReference": [
        _identifier(),
        _status(f"{SP}DocumentReference-status", constant("current")),
        _date(
            "date",
            "date: when the document reference was made (built letters: the letter's date).",
            f"{SP}DocumentReference-date",
            DateMatcher("recorded_at", built="effective_at"),
        ),
    ],
    "Composition": [
        _identifier(),
        _status(f"{SP}Composition-status", constant("")),
        _date("date", "date: when the document was last edited.", f"{SP}clinical-date", DateMatcher("recorded_at")),
    ],
    "CarePlan": [
        _identifier(),
        _status(f"{SP}CarePlan-status", same("status")),
        _date("date", "period.start: when the plan began.", f"{SP}clinical-date", DateMatcher("effective_at")),
    ],
    "RelatedPerson": [
        _token("identifier", _identifier().param.documentation, f"{SP}RelatedPerson-identifier", Identifier()),
    ],
    "CareTeam": [],
}

# The date `_sort=date` orders by, per type: its `date` parameter, else the type's own clinical date.
SORT_DATE = {
    "Condition": "onset-date",
    "MedicationStatement": "effective",
    "MedicationRequest": "authoredon",
    "MedicationDispense": "whenhandedover",
    "MedicationAdministration": "effective-time",
    "ServiceRequest": "occurrence",
}


def _patient_specs(resource_type: str) -> list[_Spec]:
    own = f"{SP}{resource_type}-patient" if resource_type in _OWN_PATIENT_PARAM else f"{SP}clinical-patient"
    specs = [_Spec(Param("patient", "reference", _PATIENT_PARAMS["patient"], own), None)]
    if resource_type in _SUBJECT_TYPES:
        specs.append(
            _Spec(Param("subject", "reference", _PATIENT_PARAMS["subject"], f"{SP}{resource_type}-subject"), None)
        )
    return specs


def _specs(resource_type: str) -> dict[str, _Spec]:
    if resource_type == "Patient":
        identifier = Param(
            "identifier",
            "token",
            "The patient's NHS number: https://fhir.nhs.uk/Id/nhs-number|<NHS number> (or the number alone).",
            f"{SP}Patient-identifier",
        )
        return {"identifier": _Spec(identifier, None)}
    if resource_type not in read.SEARCHABLE:
        return {}
    specs = [
        *_patient_specs(resource_type),
        _Spec(ID_PARAM, Ids()),
        _Spec(LAST_UPDATED_PARAM, LastUpdated()),
        *_TYPE_SPECS.get(resource_type, []),
    ]
    return {spec.param.name: spec for spec in specs}


SPECS = {resource_type: _specs(resource_type) for resource_type in ["Patient", *read.SEARCHABLE]}


def params_of(resource_type: str) -> dict[str, Param]:
    """Every search parameter implemented for the type (with `_id`, `_lastUpdated`, `patient`): exactly what
    the parser accepts (besides RESULT_PARAMS)."""
    return {name: spec.param for name, spec in SPECS.get(resource_type, {}).items()}


SORTS = ("date", "-date", "_lastUpdated", "-_lastUpdated")

RESULT_PARAMS: dict[str, Param] = {
    "_count": Param(
        "_count",
        "number",
        f"Page size (default {read.DEFAULT_COUNT}; at most {read.MAX_COUNT}: a larger one gives {read.MAX_COUNT}); "
        "0 gives the total only, as _summary=count.",
    ),
    "_offset": Param("_offset", "number", "Where the page starts (0-based): carerecord's paging, used by next links."),
    "_sort": Param(
        "_sort",
        "token",
        "date or -date (the type's date parameter, else its own clinical date: Condition onset-date, "
        "MedicationStatement effective, MedicationRequest authoredon, MedicationDispense whenhandedover, "
        "MedicationAdministration effective-time, ServiceRequest occurrence), _lastUpdated or -_lastUpdated. "
        "Undated entries last either way. Without it: newest first, by clinical date.",
    ),
    "_summary": Param("_summary", "token", "count only: the total, with no entries."),
    "_include": Param(
        "_include",
        "token",
        "<Type>:patient (or <Type>:subject where the type has it; :Patient target allowed): the patient, once "
        "per page (search mode include, not counted in total).",
    ),
    "_revinclude": Param(
        "_revinclude",
        "token",
        "Provenance:target: the Provenance of the submissions that sent this page's resources (search mode "
        "include, not counted in total). Entries not received as FHIR have none.",
    ),
    "_format": Param("_format", "token", "json or xml (application/fhir+json, application/fhir+xml)."),
    "_pretty": Param("_pretty", "token", "Accepted; changes nothing."),
}

EVERYTHING_PARAMS: dict[str, Param] = {
    "_since": Param(
        "_since",
        "date",
        "An instant: only entries whose meta.lastUpdated is at or after it (as _lastUpdated=ge); the Patient "
        "always comes.",
    ),
    "_type": Param("_type", "token", "A comma list of resource types to include (the Patient always comes)."),
    "_count": RESULT_PARAMS["_count"],
    "_offset": RESULT_PARAMS["_offset"],
    "_format": RESULT_PARAMS["_format"],
    "_pretty": RESULT_PARAMS["_pretty"],
}


def sorts_of(resource_type: str) -> tuple[str, ...]:
    """The `_sort` values a type's search accepts: SORTS, less `date` for a type with no date (RelatedPerson,
    CareTeam)."""
    if SORT_DATE.get(resource_type, "date") not in SPECS.get(resource_type, {}):
        return tuple(value for value in SORTS if value.lstrip("-") != "date")
    return SORTS


def includes_of(resource_type: str) -> list[str]:
    """The `_include` values a type's search accepts (the patient, by the names the type has for it)."""
    return [f"{resource_type}:{name}" for name in ("patient", "subject") if name in SPECS.get(resource_type, {})]


def revincludes_of(resource_type: str) -> list[str]:
    return ["Provenance:target"] if resource_type in read.SEARCHABLE else []
