"""Patient -> the sending organisation's own copy of the patient's demographics (`SourceDemographics`), matched on
the NHS number; the master view (the Patient row) recomputed from every source's copy by the documented
precedence in `patients.demographics`; and the source's own Patient id -> that patient. Out: the master view.

- A patient new to the shared record is created (it needs an NHS number, a family name and a full birth date).
- Each organisation's copy is its own: an update brings that copy up to date group by group (name, address...),
  keeping what the resource leaves out; a copy older (meta.lastUpdated) than the one held is skipped. The master
  view follows the precedence, so one partner's copy never overwrites what everyone sees unless it comes first.
  A change to an existing patient's master view is audited (`fhir.demographics-changed`: which fields, not
  their values).
- An organisation's Patient id never moves to another person (H-06): once Patient/<id> stands for an NHS
  number, a resource with that id and another NHS number is refused (`business-rule` on Patient.identifier),
  whatever else the submission holds refers to that id in vain, the earlier patient's record is left as it was,
  and IG are told: an AuditEvent `fhir.identity-refused` (in the FHIR submissions family IG already review,
  written after the submission so that a rolled-back transaction still leaves it), and the patient appears in
  admin's data-quality list.
- Restricted (the S-flag, H-11): meta.security v3-Confidentiality R or V, as PDS labels a restricted patient,
  marks the source's copy restricted (and stores no address, phone or email from it); U, N, L or M lifts it; no
  confidentiality label leaves it as that source last said.
- Deceased (H-15): deceasedDateTime (a full date; a partial one is a death without a date, never a made-up
  day), deceasedBoolean true (no date) or false (not deceased, clearing that source's date).
"""

import uuid

from django.core.exceptions import ValidationError

from audit.names import Action
from audit.writers import audit
from patients import demographics
from patients.models import Patient, SourceDemographics, SourcePatientId
from patients.nhs_numbers import normalise, validate_nhs_number

from ..context import Unmappable
from ..outcome import error
from ..registry import builds
from ..serialise import organisation_reference
from ..systems import CONFIDENTIALITY, NHS_NUMBER, SENSITIVE_CONFIDENTIALITY
from ..upsert import CREATED, UNCHANGED, UPDATED, clip
from .common import last_updated, to_date

SEX = {"male": "male", "female": "female", "other": "other", "unknown": "unknown"}
PHONE_USES = ["mobile", "home", None, "work"]
# What a source's copy holds; merged group by group (what a resource leaves out is kept).
COPY_GROUPS = [
    ("family_name", "given_name"),
    ("date_of_birth",),
    ("sex",),
    ("address", "postcode"),
    ("phone",),
    ("email",),
    ("registered_gp_id",),
]
BLANK_COPY = {
    "family_name": "",
    "given_name": "",
    "date_of_birth": None,
    "sex": "",
    "address": "",
    "postcode": "",
    "phone": "",
    "email": "",
    "registered_gp_id": None,
    "deceased": False,
    "date_of_death": None,
    "restricted": False,
    "resource_id": "",
    "source_updated_at": None,
}
COPY_FIELDS = list(BLANK_COPY)
REFUSED_MOVE = (
    "{key} already stands for another NHS number here: an organisation's Patient id never moves to another "
    "person. Send this patient under a new id; if the earlier one was wrong, ask information governance to "
    "correct it."
)


def nhs_number_of(resource) -> str:
    for index, identifier in enumerate(resource.identifier or []):
        if identifier.system == NHS_NUMBER and identifier.value:
            digits = normalise(identifier.value)
            try:
                validate_nhs_number(digits)
            except ValidationError as exc:
                raise Unmappable(error("invalid", exc.messages[0], f"Patient.identifier[{index}].value")) from exc
            return digits
    raise Unmappable(
        error(
            "required",
            f"The patient has no NHS number (identifier system {NHS_NUMBER}): patients are matched on it.",
            "Patient.identifier",
        )
    )


def restricted_of(resource) -> bool | None:
    """True for a restricted (S-flag) label, False for another confidentiality label, None for none."""
    labels = [label.code for label in (resource.meta.security or []) if label.system == CONFIDENTIALITY]
    if not labels:
        return None
    return any(code in SENSITIVE_CONFIDENTIALITY for code in labels)


def death_of(resource) -> tuple[bool | None, object]:
    """(deceased, date of death): (None, None) where the resource says nothing of it."""
    if resource.deceasedDateTime is not None:
        partial = isinstance(resource.deceasedDateTime, str)
        return True, None if partial else to_date(resource.deceasedDateTime)
    if resource.deceasedBoolean is not None:
        return bool(resource.deceasedBoolean), None
    return None, None


def map_patient(resource, ctx) -> dict:
    """The source's copy as given; None (or "") where the resource says nothing, so the stored value stays."""
    official = next((n for n in resource.name or [] if n.use in ("official", "usual")), None) or next(
        iter(resource.name or []), None
    )
    address = next((a for a in resource.address or [] if a.use in ("home", None) and not a.period), None)
    phones = sorted(
        (t for t in resource.telecom or [] if t.system == "phone" and t.value),
        key=lambda t: PHONE_USES.index(t.use) if t.use in PHONE_USES else len(PHONE_USES),
    )
    email = next((t.value for t in resource.telecom or [] if t.system == "email" and t.value), "")
    birth = resource.birthDate if not isinstance(resource.birthDate, str) else None  # partial dates are not enough
    gp = next(filter(None, (ctx.organisation_id(ref) for ref in resource.generalPractitioner or [])), None)
    lines = [*(address.line or []), address.city, address.district] if address else []
    deceased, died = death_of(resource)
    return {
        "nhs_number": nhs_number_of(resource),
        "given_name": " ".join(official.given or []) if official else "",
        "family_name": (official.family or "") if official else "",
        "date_of_birth": birth,
        "sex": SEX.get(resource.gender or "", ""),
        "address": ", ".join(filter(None, lines)),
        "postcode": (address.postalCode or "") if address else "",
        "phone": phones[0].value if phones else "",
        "email": email,
        "registered_gp_id": gp,
        "deceased": deceased,
        "date_of_death": died,
        "restricted": restricted_of(resource) if resource.meta else None,
    }


def merged_copy(old: dict | None, fields: dict, *, key: str, version) -> dict:
    """The source's copy after this resource: each group it gives replaces the held one whole."""
    copy = dict(old or BLANK_COPY)
    for group in COPY_GROUPS:
        if any(fields[name] not in (None, "") for name in group):
            copy.update({name: fields[name] for name in group})
    if fields["deceased"] is not None:
        copy["deceased"], copy["date_of_death"] = fields["deceased"], fields["date_of_death"]
    if fields["restricted"] is not None:
        copy["restricted"] = fields["restricted"]
    copy["resource_id"], copy["source_updated_at"] = key, version or copy["source_updated_at"]
    if copy["restricted"]:  # a restricted patient's contact details are not kept from the source that says so
        copy.update(dict.fromkeys(demographics.CONTACT_FIELDS, ""))
    return copy


def save_patients(outcomes, ctx, *, actor=None) -> None:
    """The Patient stage, in a fixed number of queries whatever the bundle's size. `actor`: how the audit trail
    names the sender (its token), for master-view changes."""
    mapped = {}
    for outcome in outcomes:
        try:
            fields = clip(SourceDemographics, map_patient(outcome.entry.resource, ctx))
        except Unmappable as exc:
            outcome.reject(exc.issue)
            continue
        mapped[outcome.key] = (outcome, fields, last_updated(outcome.entry.resource))
    if not mapped:
        return
    existing, links, held = _held_now(mapped, ctx)
    new, written = {}, {}  # NHS number -> fields, for patients new here; -> the source's copy to write
    for key in sorted(mapped):
        outcome, fields, version = mapped[key]
        nhs, link = fields["nhs_number"], links.get(key)
        if link and link["patient__nhs_number"] != nhs:
            _refuse_move(outcome, key, link, nhs, ctx)
            continue
        old = written.get(nhs) or held.get(nhs)
        if nhs in existing and _older(version, link, old):
            outcome.finish(UNCHANGED, stale=True)
            continue
        if nhs not in existing and nhs not in new:
            problem = _cannot_create(fields)
            if problem:
                outcome.reject(problem)
                continue
            new[nhs] = fields
        copy = merged_copy(old, fields, key=key, version=version)
        unchanged = copy == old and link is not None
        outcome.finish(CREATED if nhs in new else UNCHANGED if unchanged else UPDATED)
        if copy != old:
            written[nhs] = copy
    ids = _create_patients(new, written, existing, ctx)
    _write_copies(written, ids, ctx)
    # A master view changes only where a source's copy did: a copy sent again unchanged recomputes nothing.
    touched = {
        ids[fields["nhs_number"]]
        for outcome, fields, _ in mapped.values()
        if _joined(outcome, fields, ids) and fields["nhs_number"] in written
    }
    _audit_changes(demographics.recompute(touched), set(existing.values()), ctx, actor)
    _link(mapped, links, ids, ctx)


def _held_now(mapped, ctx) -> tuple[dict, dict, dict]:
    """Three queries: the patients by NHS number, this organisation's links for these ids (with the NHS number
    each stands for), and its copies of these patients' demographics."""
    nhs_numbers = {fields["nhs_number"] for _, fields, _ in mapped.values()}
    existing = dict(Patient.objects.filter(nhs_number__in=nhs_numbers).values_list("nhs_number", "id"))
    linked = SourcePatientId.objects.filter(organisation=ctx.organisation, resource_id__in=list(mapped))
    links = {
        row["resource_id"]: row
        for row in linked.values("resource_id", "patient_id", "source_updated_at", "patient__nhs_number")
    }
    copies = SourceDemographics.objects.filter(organisation=ctx.organisation, patient_id__in=list(existing.values()))
    by_patient = {row.pop("patient_id"): row for row in copies.values("patient_id", *COPY_FIELDS)}
    held = {nhs: by_patient[patient_id] for nhs, patient_id in existing.items() if patient_id in by_patient}
    return existing, links, held


def _older(version, link, old) -> bool:
    """Older (meta.lastUpdated) than the copy this organisation already sent."""
    held = [when for when in (link and link["source_updated_at"], old and old["source_updated_at"]) if when]
    return bool(version and held and version < max(held))


def _cannot_create(fields):
    missing = [name for name in ("family_name", "date_of_birth") if not fields[name]]
    if not missing:
        return None
    element = "Patient.birthDate" if "date_of_birth" in missing else "Patient.name.family"
    return error("required", "A patient new to the shared record needs a family name and full birth date.", element)


def _audit_changes(changed: dict, existing_ids: set, ctx, actor) -> None:
    """One AuditEvent per patient already known whose master view changed: which fields, never their values."""
    for patient_id in sorted(changed, key=str):
        if patient_id in existing_ids:
            audit(
                by=actor,
                action=Action.FHIR_DEMOGRAPHICS_CHANGED,
                target=Patient(pk=patient_id),
                patient_id=patient_id,
                organisation=ctx.organisation.ods_code,
                changed=",".join(name.removesuffix("_id") for name in changed[patient_id]),
            )


def _joined(outcome, fields, ids) -> bool:
    return outcome.status in (CREATED, UPDATED, UNCHANGED) and fields["nhs_number"] in ids


def _refuse_move(outcome, key, link, nhs, ctx) -> None:
    """Refused, and remembered: IG are told after the submission (`audit_identity_refusals`), and what else it
    sends about this id joins no one's record."""
    outcome.reject(error("business-rule", REFUSED_MOVE.format(key=key), "Patient.identifier"))
    outcome.patient_id = link["patient_id"]  # whose record it would have changed (named in the submission row)
    ctx.refuse_patient_key(key)
    ctx.identity_refusals.append(
        {
            "key": key,
            "patient_id": link["patient_id"],
            "nhs_number_held": link["patient__nhs_number"],
            "nhs_number_sent": nhs,
        }
    )


def _create_patients(new: dict, written: dict, existing: dict, ctx) -> dict:
    """Insert the patients new here with the master view their first copy gives; return every NHS number's id.
    A concurrent import may have created the same patient first: its row stays, and its id is read back."""
    ids = dict(existing)
    if not new:
        return ids
    rows = []
    for nhs in sorted(new):
        copy = written[nhs]
        source = SourceDemographics(organisation=ctx.organisation, **copy)
        view = demographics.master_view([source], demographics.BLANK_PATIENT)
        rows.append(Patient(id=uuid.uuid4(), nhs_number=nhs, **view))
    Patient.objects.bulk_create(rows, ignore_conflicts=True)
    ids.update(Patient.objects.filter(nhs_number__in=list(new)).values_list("nhs_number", "id"))
    return ids


def _write_copies(written: dict, ids: dict, ctx) -> None:
    if not written:
        return
    SourceDemographics.objects.bulk_create(
        [
            SourceDemographics(patient_id=ids[nhs], organisation=ctx.organisation, **written[nhs])
            for nhs in sorted(written)
        ],
        update_conflicts=True,
        unique_fields=["patient", "organisation"],
        update_fields=[_column(name) for name in COPY_FIELDS] + ["received_at"],
    )


def _column(name: str) -> str:
    return "registered_gp" if name == "registered_gp_id" else name


def audit_identity_refusals(ctx, *, actor=None) -> None:
    """Tell IG of every Patient id this submission tried to move to another NHS number (H-06). Called after the
    submission's transaction, so that a rolled-back transaction still leaves the alert."""
    for refusal in ctx.identity_refusals:
        audit(
            by=actor,
            action=Action.FHIR_IDENTITY_REFUSED,
            target=Patient(pk=refusal["patient_id"]),
            patient_id=refusal["patient_id"],
            organisation=ctx.organisation.ods_code,
            organisation_id=ctx.organisation.pk,
            resource=refusal["key"],
            nhs_number_held=refusal["nhs_number_held"],
            nhs_number_sent=refusal["nhs_number_sent"],
        )


def _link(mapped, links, ids, ctx) -> None:
    """Remember which patient each of the source's Patient ids stands for."""
    to_write = []
    for key in sorted(mapped):
        outcome, fields, version = mapped[key]
        if not _joined(outcome, fields, ids):
            continue
        patient_id = ids[fields["nhs_number"]]
        ctx.patients[key] = patient_id
        ctx.patients_by_nhs_number[fields["nhs_number"]] = patient_id
        link = links.get(key)
        if outcome.stale:
            continue
        if link is None or (version and link["source_updated_at"] != version):
            to_write.append(
                SourcePatientId(
                    organisation=ctx.organisation, resource_id=key, patient_id=patient_id, source_updated_at=version
                )
            )
    if to_write:
        # Never a new patient for a known id: a key whose NHS number differs was refused above.
        SourcePatientId.objects.bulk_create(
            to_write,
            update_conflicts=True,
            unique_fields=["organisation", "resource_id"],
            update_fields=["source_updated_at"],
        )


# --- out ---


@builds(Patient)
def patient(patient: Patient) -> dict:
    """The master view, never one partner's copy. A restricted patient's address, phone and email are left out
    (and the resource says restricted), whatever the row holds; a death is given as its date, or as a bare
    `deceasedBoolean` when no source gave one."""
    restricted = patient.restricted
    telecom = [] if restricted else _telecom(patient)
    data = {
        "resourceType": "Patient",
        "id": str(patient.pk),
        "identifier": [{"system": NHS_NUMBER, "value": patient.nhs_number}],
        "name": [{"use": "official", "family": patient.family_name, "given": patient.given_name.split() or None}],
        "gender": patient.sex,
        "birthDate": patient.date_of_birth,
        "telecom": telecom or None,
        "address": None if restricted or not (patient.address or patient.postcode) else [_address(patient)],
        "generalPractitioner": [organisation_reference(patient.registered_gp)] if patient.registered_gp else None,
    }
    if restricted:
        data["meta"] = {"security": [{"system": CONFIDENTIALITY, "code": "R", "display": "restricted"}]}
    if patient.date_of_death:
        data["deceasedDateTime"] = patient.date_of_death
    elif patient.deceased:
        data["deceasedBoolean"] = True
    return data


def _telecom(patient) -> list:
    telecom = [{"system": "phone", "value": patient.phone}] if patient.phone else []
    if patient.email:
        telecom.append({"system": "email", "value": patient.email})
    return telecom


def _address(patient) -> dict:
    return {"text": patient.address or None, "postalCode": patient.postcode or None}
