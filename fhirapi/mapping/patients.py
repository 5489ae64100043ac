"""Patient -> Patient, matched on the NHS number; and the source's own Patient id -> that patient.

A patient new to the shared record is created (it needs an NHS number, a family name and a full birth date);
a known one has the demographics the resource carries brought up to date (what it leaves out is kept).
Any partner may update demographics: the newest copy each partner sends wins for that partner's link, and an
older copy than the one a partner already sent is skipped.
"""

import uuid

from django.core.exceptions import ValidationError

from patients.models import Patient, SourcePatientId
from patients.nhs_numbers import normalise, validate_nhs_number

from ..context import Unmappable
from ..outcome import error
from ..systems import NHS_NUMBER
from ..upsert import CREATED, UNCHANGED, UPDATED, clip
from .common import last_updated, to_date

DEMOGRAPHICS = [
    "given_name",
    "family_name",
    "date_of_birth",
    "date_of_death",
    "sex",
    "address",
    "postcode",
    "phone",
    "email",
    "registered_gp_id",
]
SEX = {"male": "male", "female": "female", "other": "other", "unknown": "unknown"}
PHONE_USES = ["mobile", "home", None, "work"]


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


def map_patient(resource, ctx) -> dict:
    """Demographics as given; None (or "") where the resource says nothing, so the stored value stays."""
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
    return {
        "nhs_number": nhs_number_of(resource),
        "given_name": " ".join(official.given or []) if official else "",
        "family_name": (official.family or "") if official else "",
        "date_of_birth": birth,
        "date_of_death": to_date(resource.deceasedDateTime),
        "sex": SEX.get(resource.gender or "", ""),
        "address": ", ".join(filter(None, lines)),
        "postcode": (address.postalCode or "") if address else "",
        "phone": phones[0].value if phones else "",
        "email": email,
        "registered_gp_id": gp,
    }


def save_patients(outcomes, ctx) -> None:
    mapped = {}
    for outcome in outcomes:
        try:
            fields = clip(Patient, map_patient(outcome.entry.resource, ctx))
        except Unmappable as exc:
            outcome.reject(exc.issue)
            continue
        mapped[outcome.key] = (outcome, fields, last_updated(outcome.entry.resource))
    if not mapped:
        return
    nhs_numbers = {fields["nhs_number"] for _, fields, _ in mapped.values()}
    existing = {
        row["nhs_number"]: row
        for row in Patient.objects.filter(nhs_number__in=nhs_numbers).values("id", "nhs_number", *DEMOGRAPHICS)
    }
    links = {
        row["resource_id"]: row
        for row in SourcePatientId.objects.filter(organisation=ctx.organisation, resource_id__in=list(mapped)).values()
    }
    to_write = {}
    for key in sorted(mapped):
        outcome, fields, version = mapped[key]
        link, old = links.get(key), existing.get(fields["nhs_number"])
        if link and old and version and link["source_updated_at"] and version < link["source_updated_at"]:
            outcome.finish(UNCHANGED, stale=True)
            continue
        if old is None and fields["nhs_number"] not in to_write:
            missing = [name for name in ("family_name", "date_of_birth") if not fields[name]]
            if missing:
                element = "Patient.birthDate" if "date_of_birth" in missing else "Patient.name.family"
                outcome.reject(
                    error(
                        "required",
                        "A patient new to the shared record needs a family name and full birth date.",
                        element,
                    )
                )
                continue
            to_write[fields["nhs_number"]] = Patient(id=uuid.uuid4(), **{**fields, "sex": fields["sex"] or "unknown"})
            outcome.finish(CREATED)
            continue
        base = old or {name: getattr(to_write[fields["nhs_number"]], name) for name in DEMOGRAPHICS}
        merged = {name: fields[name] if fields[name] not in (None, "") else base[name] for name in DEMOGRAPHICS}
        if merged == {name: base[name] for name in DEMOGRAPHICS}:
            outcome.finish(UNCHANGED)
            continue
        to_write[fields["nhs_number"]] = Patient(
            id=old["id"] if old else uuid.uuid4(), nhs_number=fields["nhs_number"], **merged
        )
        outcome.finish(UPDATED if old else CREATED)
    if to_write:
        Patient.objects.bulk_create(
            [to_write[nhs] for nhs in sorted(to_write)],
            update_conflicts=True,
            unique_fields=["nhs_number"],
            update_fields=[name.removesuffix("_id") for name in DEMOGRAPHICS] + ["updated_at"],
        )
    # Read the ids back: a concurrent import may have created the same patient first, and its id won.
    ids = {nhs: row["id"] for nhs, row in existing.items()}
    if to_write:
        ids.update(Patient.objects.filter(nhs_number__in=to_write).values_list("nhs_number", "id"))
    _link(mapped, links, ids, ctx)


def _link(mapped, links, ids, ctx) -> None:
    """Remember which patient each of the source's Patient ids stands for."""
    to_write = []
    for key in sorted(mapped):
        outcome, fields, version = mapped[key]
        if outcome.status not in (CREATED, UPDATED, UNCHANGED) or fields["nhs_number"] not in ids:
            continue
        patient_id = ids[fields["nhs_number"]]
        ctx.patients[key] = patient_id
        ctx.patients_by_nhs_number[fields["nhs_number"]] = patient_id
        link = links.get(key)
        if outcome.stale:
            continue
        if link is None or link["patient_id"] != patient_id or (version and link["source_updated_at"] != version):
            to_write.append(
                SourcePatientId(
                    organisation=ctx.organisation, resource_id=key, patient_id=patient_id, source_updated_at=version
                )
            )
    if to_write:
        SourcePatientId.objects.bulk_create(
            to_write,
            update_conflicts=True,
            unique_fields=["organisation", "resource_id"],
            update_fields=["patient", "source_updated_at"],
        )
