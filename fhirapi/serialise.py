"""The shared record as R4B resources, each validated by fhir.resources as it is built. Entries are built by
the builder their mapping module registered (`registry.builds`); patients, observations, support people and
involvements here.

Ids are ours (the patient's UUID, an entry's primary key), never the source's. Every entry says which
organisation it came from in meta.tag (ODS code and name), and carries meta.security "R" when the source
flagged it sensitive (only that organisation's own staff ever receive it).
"""

from fhir.resources.R4B import get_fhir_model_class
from fhir.resources.R4B.careteam import CareTeam
from fhir.resources.R4B.observation import Observation
from fhir.resources.R4B.patient import Patient
from fhir.resources.R4B.relatedperson import RelatedPerson

from patients import models as record
from sharing.models import Involvement

from .registry import BUILDERS
from .systems import CONFIDENTIALITY, NHS_NUMBER, OBSERVATION_INTERPRETATION, ODS_CODE

OBSERVATION_STATUSES = {"registered", "preliminary", "final", "amended", "corrected", "cancelled", "unknown"}
REPORT_STATUSES = OBSERVATION_STATUSES | {"partial", "appended"}


def patient_reference(patient_id) -> dict:
    return {"reference": f"Patient/{patient_id}"}


def organisation_reference(organisation) -> dict:
    return {"identifier": {"system": ODS_CODE, "value": organisation.ods_code}, "display": organisation.name}


def _meta(entry, organisation=None) -> dict:
    organisation = organisation or entry.source_organisation
    meta = {
        "lastUpdated": entry.source_updated_at,
        "tag": [{"system": ODS_CODE, "code": organisation.ods_code, "display": organisation.name}],
    }
    if entry.sensitive:
        meta["security"] = [{"system": CONFIDENTIALITY, "code": "R", "display": "restricted"}]
    return meta


def concept(entry, text: str) -> dict:
    concept = {"text": text}
    if entry.code:
        concept["coding"] = [{"system": entry.code_system or None, "code": entry.code, "display": text}]
    return concept


def patient(patient: record.Patient) -> Patient:
    telecom = [{"system": "phone", "value": patient.phone}] if patient.phone else []
    if patient.email:
        telecom.append({"system": "email", "value": patient.email})
    data = {
        "id": str(patient.pk),
        "identifier": [{"system": NHS_NUMBER, "value": patient.nhs_number}],
        "name": [{"use": "official", "family": patient.family_name, "given": patient.given_name.split() or None}],
        "gender": patient.sex,
        "birthDate": patient.date_of_birth,
        "telecom": telecom or None,
        "address": [{"text": patient.address, "postalCode": patient.postcode or None}] if patient.address else None,
        "deceasedDateTime": patient.date_of_death,
        "generalPractitioner": [organisation_reference(patient.registered_gp)] if patient.registered_gp else None,
    }
    return Patient(**_without_none(data))


def observation(value: record.Observation) -> Observation:
    report = value.result
    data = {
        "resourceType": "Observation",
        "id": str(value.pk),
        "meta": _meta(report),
        "status": report.status if report.status in OBSERVATION_STATUSES else "unknown",
        "code": concept(value, value.name),
        "subject": patient_reference(value.patient_id),
        "effectiveDateTime": value.effective_at,
        "derivedFrom": [{"reference": f"DiagnosticReport/{report.pk}"}],
    }
    if value.value is not None:
        data["valueQuantity"] = {"value": value.value, "unit": value.unit or None}
    elif value.value_text:
        data["valueString"] = value.value_text
    if value.reference_low is not None or value.reference_high is not None:
        data["referenceRange"] = [
            {
                "low": {"value": value.reference_low} if value.reference_low is not None else None,
                "high": {"value": value.reference_high} if value.reference_high is not None else None,
            }
        ]
    if value.flag:
        data["interpretation"] = [{"coding": [{"system": OBSERVATION_INTERPRETATION, "code": value.flag}]}]
    return Observation(**_without_none(data))


def support_person(person: record.SupportPerson) -> RelatedPerson:
    return RelatedPerson(
        id=str(person.pk),
        meta={
            "lastUpdated": person.source_updated_at,
            "tag": [
                {
                    "system": ODS_CODE,
                    "code": person.source_organisation.ods_code,
                    "display": person.source_organisation.name,
                }
            ],
        },
        patient=patient_reference(person.patient_id),
        relationship=[{"text": person.get_relationship_display()}],
        name=[{"text": person.name}],
        telecom=[{"system": "phone", "value": person.phone}] if person.phone else None,
    )


def involvement(item: Involvement) -> CareTeam:
    team = item.care_team
    members = [
        {"member": {"display": membership.professional.name}, "role": [{"text": membership.role_in_team}]}
        if membership.role_in_team
        else {"member": {"display": membership.professional.name}}
        for membership in team.memberships.all()
    ]
    return CareTeam(
        id=str(item.pk),
        status="active" if item.is_current else "inactive",
        name=team.name,
        category=[{"text": team.get_kind_display()}],
        subject=patient_reference(item.patient_id),
        period={"start": item.started_at, "end": item.ended_at},
        managingOrganization=[organisation_reference(team.organisation)],
        participant=members or None,
        note=[{"text": item.get_reason_display()}],
    )


def entry(item) -> object:
    """Any record entry, or an observation, support person or involvement, as its R4B resource."""
    if isinstance(item, record.Observation):
        return observation(item)
    if isinstance(item, record.SupportPerson):
        return support_person(item)
    if isinstance(item, Involvement):
        return involvement(item)
    data = BUILDERS[type(item)](item)
    data.update(id=str(item.pk), meta=_meta(item))
    resource_type = data.pop("resourceType")
    return get_fhir_model_class(resource_type)(**_without_none(data))


def _without_none(value):
    """Builders write optional elements as None; FHIR forbids empty elements, so drop them (and emptied parents)."""
    if isinstance(value, dict):
        cleaned = {k: _without_none(v) for k, v in value.items() if v is not None}
        return {k: v for k, v in cleaned.items() if v not in ({}, [])}
    if isinstance(value, list):
        return [_without_none(v) for v in value if v is not None]
    return value
