"""Organization, Practitioner, PractitionerRole and Medication: not record entries, but what entries refer to.

Each is kept as a name (and code) per sending organisation (patients.SourceResource), so that an appointment's
clinician, a letter's author or a prescription's drug shows a name even when it arrives in a later import.
No user accounts are made for practitioners. An Organization with an ODS code unknown here is added as an
organisation (kind guessed from its name and code, region from settings.FHIR_DEFAULT_REGION, sharing nothing
until IG records an agreement, and not listed on the public partners page until IG approve it: any sender
can name any organisation) through directory.actions, so it is audited like one IG adds; a known one is left
as IG keeps it.
"""

import re

from django.conf import settings
from django.db import IntegrityError

from directory import actions as directory_actions
from directory.models import Organisation, Region
from patients.models import SourceResource

from ..context import Named
from ..systems import ODS_CODE
from ..upsert import CREATED, UNCHANGED, UPDATED
from .common import code_of, codings_of, human_name, last_updated, text_of, texts_of

Kind = Organisation.Kind
KIND_WORDS = [
    ("ambulance", Kind.AMBULANCE),
    ("111", Kind.NHS_111),
    ("hospice", Kind.HOSPICE),
    ("mental health", Kind.MENTAL_HEALTH),
    ("out of hours", Kind.OUT_OF_HOURS),
    ("out-of-hours", Kind.OUT_OF_HOURS),
    ("council", Kind.SOCIAL_CARE),
    ("social care", Kind.SOCIAL_CARE),
    ("social services", Kind.SOCIAL_CARE),
    ("community", Kind.COMMUNITY),
    ("medical centre", Kind.GP_PRACTICE),
    ("medical center", Kind.GP_PRACTICE),
    ("surgery", Kind.GP_PRACTICE),
    ("health centre", Kind.GP_PRACTICE),
    ("practice", Kind.GP_PRACTICE),
    ("hospital", Kind.ACUTE_TRUST),
    ("trust", Kind.ACUTE_TRUST),
]
GP_PRACTICE_CODE = re.compile(r"^[A-HJ-Y]\d{5}$")  # ODS: a letter and five digits
TRUST_CODE = re.compile(r"^R[A-Z0-9]{2}$")
# Organisations first (practitioners' roles name them), practitioners before their roles.
ORDER = {"Organization": 0, "Practitioner": 1, "PractitionerRole": 2, "Medication": 3}
# What an import sets on an organisation it adds (named in the audit row, as admin names a form's fields).
ADDED_ORGANISATION_FIELDS = ["ods_code", "name", "kind", "region", "address"]


def organisation_kind(name: str, ods_code: str) -> str:
    words = name.lower()
    for needle, kind in KIND_WORDS:
        if needle in words:
            return kind
    if GP_PRACTICE_CODE.match(ods_code):
        return Kind.GP_PRACTICE
    if TRUST_CODE.match(ods_code):
        return Kind.ACUTE_TRUST
    return Kind.COMMUNITY


def default_region() -> str:
    region = getattr(settings, "FHIR_DEFAULT_REGION", Region.NCL)
    return region if region in Region.values else Region.NCL


def ods_code_of(resource) -> str:
    return next((i.value for i in resource.identifier or [] if i.system == ODS_CODE and i.value), "")


def map_directory(resource, ctx) -> Named:
    kind = resource.get_resource_type()
    if kind == "Organization":
        ods_code = ods_code_of(resource)
        return Named(resource.name or ods_code, ODS_CODE if ods_code else "", ods_code)
    if kind == "Practitioner":
        identifier = next((i for i in resource.identifier or [] if i.value), None)
        return Named(human_name(resource.name), *((identifier.system or "", identifier.value) if identifier else ()))
    if kind == "PractitionerRole":
        person = ctx.name_of(resource.practitioner) or ctx.name_of(resource.organization)
        roles = ", ".join(texts_of(resource.code))
        return Named(f"{person} ({roles})" if person and roles else person or roles, *code_of_first(resource.code))
    # A Medication: its name and every coding (dm+d and SNOMED CT), for the prescriptions that refer to it.
    return Named(text_of(resource.code), *code_of(resource.code), codings=tuple(codings_of(resource.code)))


def code_of_first(concepts) -> tuple[str, str]:
    return code_of(concepts[0]) if concepts else ("", "")


def save_directory(outcomes, ctx) -> None:
    """Store names for later references, and add organisations not known here."""
    outcomes = sorted(outcomes, key=lambda o: ORDER[o.entry.resource_type])
    mapped = {}
    for outcome in outcomes:
        named = map_directory(outcome.entry.resource, ctx)
        ctx.names[outcome.key] = named
        mapped[outcome.key] = (outcome, named, last_updated(outcome.entry.resource))
    if not mapped:
        return
    new_organisations = _add_organisations(outcomes)
    existing = {
        row["resource_id"]: row
        for row in SourceResource.objects.filter(organisation=ctx.organisation, resource_id__in=list(mapped)).values()
    }
    to_write = []
    for key in sorted(mapped):
        outcome, named, version = mapped[key]
        old = existing.get(key)
        if old is not None and version and old["source_updated_at"] and version < old["source_updated_at"]:
            outcome.finish(UNCHANGED, stale=True)
            continue
        same = old is not None and (old["name"], old["code_system"], old["code"]) == (
            named.name[:300],
            named.code_system[:200],
            named.code[:100],
        )
        status = CREATED if old is None else UNCHANGED if same else UPDATED
        if outcome.entry.resource_type == "Organization" and ods_code_of(outcome.entry.resource) in new_organisations:
            status = CREATED
        outcome.finish(status)
        if not same:
            to_write.append(
                SourceResource(
                    organisation=ctx.organisation,
                    resource_id=key,
                    name=named.name[:300],
                    code_system=named.code_system[:200],
                    code=named.code[:100],
                    source_updated_at=version or ctx.now,
                )
            )
    if to_write:
        SourceResource.objects.bulk_create(
            to_write,
            update_conflicts=True,
            unique_fields=["organisation", "resource_id"],
            update_fields=["name", "code_system", "code", "source_updated_at"],
        )


def _add_organisations(outcomes) -> set[str]:
    """ODS codes of the organisations this import added (those already known are left as IG keeps them).

    One audited save each: an ODS code is new once, so this is rare, and the known ones cost one query."""
    wanted = {}
    for outcome in outcomes:
        resource = outcome.entry.resource
        if outcome.entry.resource_type == "Organization" and ods_code_of(resource):
            wanted[ods_code_of(resource)] = resource
    if not wanted:
        return set()
    known = set(Organisation.objects.filter(ods_code__in=wanted).values_list("ods_code", flat=True))
    added = set()
    for ods_code in sorted(set(wanted) - known):  # in code order, so concurrent imports lock in the same order
        resource = wanted[ods_code]
        name = resource.name or ods_code
        address = next(iter(resource.address or []), None)
        organisation = Organisation(
            ods_code=ods_code[:12],
            name=name[:200],
            kind=organisation_kind(name, ods_code),
            region=default_region(),
            address=", ".join([*(address.line or []), address.city or "", address.postalCode or ""]).strip(", ")
            if address
            else "",
            listed=False,  # a sender's word is not a partnership: IG approve it for the partners page
        )
        try:
            # The action is atomic: a savepoint here, so a conflict leaves the import's transaction usable.
            directory_actions.save_organisation(by=None, organisation=organisation, changed=ADDED_ORGANISATION_FIELDS)
        except IntegrityError:
            continue  # a concurrent import added it first: kept as that one added it
        added.add(organisation.ods_code)
    return added
