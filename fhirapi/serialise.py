"""The shared record as R4B resources, built as FHIR JSON data (fhirapi.resource.Resource: written out as it is,
held to what the R4B model would write by the tests, which validate every resource they are sent).

An entry that came in as FHIR is given back as the resource its source sent (`stored`: the latest version kept
in fhirapi.models.ReceivedResource, every element as sent) with carerecord's id, meta and references; the
sender's id is kept as an identifier (system naming the sender, references.sender_system) beside its own.
Other entries are built from their rows by the builder their mapping module registered (`registry.builds`:
patients and support people too); observations and involvements here. A patient is always built from the
master Patient row: demographics never come from one partner's Patient resource.

Ids are ours (the patient's UUID, an entry's primary key), never the source's. Every entry says which
organisation it came from in meta.tag (ODS code and name), and carries meta.security "R" when the source
flagged it sensitive (only that organisation's own staff ever receive it). A date the source did not give is
left out: never null, never made up.
"""

from patients import models as record
from sharing.models import Involvement

from .models import version_meta
from .parse import resource_class
from .references import rewrite, sender_system
from .registry import BUILDERS
from .resource import Resource
from .systems import CONFIDENTIALITY, OBSERVATION_INTERPRETATION, ODS_CODE, SENSITIVE_CONFIDENTIALITY

OBSERVATION_STATUSES = {"registered", "preliminary", "final", "amended", "corrected", "cancelled", "unknown"}
REPORT_STATUSES = OBSERVATION_STATUSES | {"partial", "appended"}
OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
OBSERVATION_CATEGORIES = {
    "social-history",
    "vital-signs",
    "imaging",
    "laboratory",
    "procedure",
    "survey",
    "exam",
    "therapy",
    "activity",
}
RESTRICTED = {"system": CONFIDENTIALITY, "code": "R", "display": "restricted"}


def patient_reference(patient_id) -> dict:
    return {"reference": f"Patient/{patient_id}"}


def organisation_reference(organisation) -> dict:
    return {"identifier": {"system": ODS_CODE, "value": organisation.ods_code}, "display": organisation.name}


def _meta(entry, organisation=None) -> dict:
    """A built entry's meta: no versionId (carerecord keeps no versions of what it did not receive as FHIR), its
    time as its row holds it, and the sending system named (meta.source) beside the ODS tag."""
    organisation = organisation or entry.source_organisation
    meta = {
        "lastUpdated": entry.source_updated_at,
        "source": sender_system(organisation.ods_code),
        "tag": [{"system": ODS_CODE, "code": organisation.ods_code, "display": organisation.name}],
    }
    if entry.sensitive:
        meta["security"] = [RESTRICTED]
    return meta


def concept(entry, text: str) -> dict:
    """A CodeableConcept: every coding the source sent, in its order (SNOMED CT and dm+d, LOINC and a local
    code...), else the one code held; and the text shown here."""
    codings = [
        {
            "system": coding.get("system") or None,
            "code": coding.get("code") or None,
            "display": coding.get("display") or None,
        }
        for coding in getattr(entry, "codings", None) or []
        if isinstance(coding, dict)
    ]
    if not codings and entry.code:
        codings = [{"system": entry.code_system or None, "code": entry.code, "display": text}]
    return {"text": text or None, "coding": codings or None}


def patient(patient: record.Patient) -> Resource:
    """The master view (built in mapping/patients.py): never one partner's copy; a restricted patient's contact
    details never."""
    return Resource(_without_none(BUILDERS[record.Patient](patient)))


def observation(value: record.Observation, rows: list | None = None) -> Resource:
    """An Observation built from its rows: the first row's own value, and a component per row that is part of
    a reading (a blood pressure's systolic and diastolic: rows sharing `source_id`). No `derivedFrom`: a value
    is not derived from its report, which lists it in `result`."""
    rows = rows or [value]
    report = value.result
    own = next((row for row in rows if not row.reading_name), None)
    parts = [row for row in rows if row.reading_name]
    head = own or value
    if own is not None:
        code = concept(own, own.name)
    else:
        reading = parts[0]
        coding = [{"code": reading.reading_code}] if reading.reading_code else None
        code = {"text": reading.reading_name, "coding": coding}
    category = head.observation_category or report.observation_category
    data = {
        "resourceType": "Observation",
        "id": str(value.pk),
        "meta": _meta(report),
        "status": report.status if report.status in OBSERVATION_STATUSES else "unknown",
        "category": [_category(category)] if category else None,
        "code": code,
        "subject": patient_reference(value.patient_id),
        "effectiveDateTime": head.effective_at,
        **(_measured(own) if own is not None else {}),
        "component": [{"code": concept(row, row.name), **_measured(row)} for row in parts] or None,
    }
    return Resource(_without_none(data))


def _category(code: str) -> dict:
    if code in OBSERVATION_CATEGORIES:
        return {"coding": [{"system": OBSERVATION_CATEGORY, "code": code}]}
    return {"text": code}


def _measured(row: record.Observation) -> dict:
    """A row's value (a quantity with its coded unit, or text), interpretation and reference range."""
    data = {}
    if row.value is not None:
        coded = bool(row.unit_system and row.unit_code)  # a unit code needs its system (qty-3)
        data["valueQuantity"] = {
            "value": row.value,
            "unit": row.unit or None,
            "system": row.unit_system if coded else None,
            "code": row.unit_code if coded else None,
        }
    elif row.value_text:
        data["valueString"] = row.value_text
    if row.flag or row.interpretation:
        coding = [{"system": OBSERVATION_INTERPRETATION, "code": row.flag}] if row.flag else None
        data["interpretation"] = [{"coding": coding, "text": row.interpretation or None}]
    if row.reference_low is not None or row.reference_high is not None or row.reference_text:
        data["referenceRange"] = [
            {
                "low": {"value": row.reference_low} if row.reference_low is not None else None,
                "high": {"value": row.reference_high} if row.reference_high is not None else None,
                "text": row.reference_text or None,
            }
        ]
    return data


def involvement(item: Involvement) -> Resource:
    team = item.care_team
    members = [
        {"member": {"display": membership.professional.name}, "role": [{"text": membership.role_in_team}]}
        if membership.role_in_team
        else {"member": {"display": membership.professional.name}}
        for membership in team.memberships.all()
    ]
    data = {
        "resourceType": "CareTeam",
        "id": str(item.pk),
        "status": "active" if item.is_current else "inactive",
        "name": team.name,
        "category": [{"text": team.get_kind_display()}],
        "subject": patient_reference(item.patient_id),
        "period": {"start": item.started_at, "end": item.ended_at},
        "managingOrganization": [organisation_reference(team.organisation)],
        "participant": members or None,
        "note": [{"text": item.get_reason_display()}],
    }
    return Resource(_without_none(data))


def entry(item) -> object:
    """Any record entry, or an observation, support person or involvement, as its R4B resource."""
    if isinstance(item, record.Observation):
        return observation(item)
    if isinstance(item, Involvement):
        return involvement(item)
    data = BUILDERS[type(item)](item)
    if data is None:  # a standalone observation's Result: given back as its Observation (read.py)
        raise ValueError(f"{type(item).__name__} {item.pk} is not given back as itself")
    data.update(id=str(item.pk), meta=_meta(item))
    return Resource(_without_none(data))


def stored(item, received, *, resource_id: str, organisation, replace) -> object:
    """The resource `item` came from, as its source sent it (`received`, the latest version kept), with
    carerecord's id and meta, its references rewritten by `replace` (read.Resolver), and the sender's id kept
    as an identifier naming the sender."""
    data = rewrite(received.json, replace)
    sender_id = data.get("id")
    data["id"] = resource_id
    data["meta"] = _stored_meta(received, organisation, sender_id, sensitive=_sensitive(item))
    _keep_sender_id(data, received.resource_type, organisation.ods_code, sender_id)
    return Resource(data)


def _sensitive(item) -> bool:
    return item.result.sensitive if isinstance(item, record.Observation) else bool(getattr(item, "sensitive", False))


def _stored_meta(received, organisation, sender_id, *, sensitive: bool) -> dict:
    """Carerecord's version and its time (history.version_meta), the sender named (the ODS tag every entry has,
    and meta.source: the sender, with the resource's id there as a fragment), and what the sender's meta said of
    the resource itself: its profiles, security labels and tags."""
    sent = received.json.get("meta") or {}
    ours = {"system": ODS_CODE, "code": organisation.ods_code, "display": organisation.name}
    tags = [tag for tag in sent.get("tag") or [] if (tag.get("system"), tag.get("code")) != (ODS_CODE, ours["code"])]
    security = list(sent.get("security") or [])
    labelled = any(
        label.get("system") == CONFIDENTIALITY and label.get("code") in SENSITIVE_CONFIDENTIALITY for label in security
    )
    if sensitive and not labelled:
        security.append(RESTRICTED)
    meta = {
        "extension": sent.get("extension"),
        **version_meta(received),
        "source": sender_system(organisation.ods_code)
        + (f"#{received.resource_type}/{sender_id}" if sender_id else ""),
        "profile": sent.get("profile"),
        "security": security or None,
        "tag": [ours, *tags],
    }
    return {name: value for name, value in meta.items() if value is not None}


def _keep_sender_id(data: dict, resource_type: str, ods_code: str, sender_id) -> None:
    """The sender's resource id, after its own identifiers: what the sender calls it."""
    field = resource_class(resource_type).model_fields.get("identifier")
    if not sender_id or field is None:
        return
    ours = {"system": sender_system(ods_code, resource_type), "value": sender_id}
    if "List" in str(field.annotation):
        held = data.get("identifier") or []
        if ours not in held:
            data["identifier"] = [*held, ours]
    elif "identifier" not in data:  # one identifier only (Composition): the sender's own, if it gave one
        data["identifier"] = ours


def _without_none(value):
    """Builders write optional elements as None; FHIR forbids empty elements, so drop them (and emptied parents)."""
    if isinstance(value, dict):
        cleaned = {k: _without_none(v) for k, v in value.items() if v is not None}
        return {k: v for k, v in cleaned.items() if v not in ({}, [])}
    if isinstance(value, list):
        return [_without_none(v) for v in value if v is not None]
    return value
