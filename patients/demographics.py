"""Who the patient is: one master view chosen from what every source says.

Each source organisation's own demographics for a patient are kept (`SourceDemographics`, with when the source
last changed them and when carerecord received them). The Patient row holds the master view, which the banner,
the search lists, admin and every FHIR read show. It is recomputed from the sources on every Patient import
(`fhirapi.mapping.patients`, through `recompute`), so no single partner's copy overwrites what everyone sees.

**Precedence**, most trusted first:
1. a national demographics trace: a source IG have marked `national_demographics` (PDS); none in the demo;
2. the registered GP practice's own record: the source that is the patient's registered GP (chosen below);
3. every other source, the most recent first: by when the source last changed its copy (its meta.lastUpdated;
   when it gave none, when carerecord received it), then by when carerecord received it.

**Group by group**, not record by record nor field by field: each group is taken whole from the first source, in
that order, that gives it: name (given and family; a source without a family name gives no name), date of
birth, sex ("unknown" gives nothing), address (lines and postcode together, so one source's street never sits
over another's postcode), phone, email. A national trace without a phone number does not blank the phone the GP
holds, yet no one value is stitched together from two sources. A group that no source gives keeps what the row
held (patients recorded before sources were kept); a patient with no source at all is left as it is.

**Registered GP practice**, chosen first because it decides rank 2: the national trace's, where it names one;
else a practice's own claim (a source naming itself as the patient's GP: practices register patients), the
most recent; else the most recent source naming one; else what the row held.

**Safety rules above precedence:**
- Restricted (the S-flag, H-11): any source saying restricted makes the patient restricted, and a restricted
  master view holds no address, postcode, phone or email, so no output can show them.
- Deceased (H-15): any source saying the patient has died makes the master view deceased: a death one source
  knows is not hidden by another that has not heard of it. The date of death is the first, in precedence, that
  a source gives (a death without a date reads "date not recorded"). With sources, both follow the sources
  alone, so a source's correction (deceasedBoolean false) takes effect.

**Disagreements** (`disagreements`): where sources hold different names, dates of birth, addresses (or
postcodes), phone numbers, registered GPs or dates of death, or a national trace records no death that another
source records. Values are compared without case, spaces, commas, full stops or hyphens. `conflicting_patients`
finds the same in SQL for IG's data-quality list, with the same normalisation.
"""

import datetime
from collections.abc import Iterable
from dataclasses import dataclass
from functools import reduce
from operator import or_

from django.db.models import Count, F, Q, QuerySet, TextField, Value
from django.db.models.functions import Concat, Replace, Upper
from django.utils import timezone

from audit.models import AuditEvent
from audit.names import Action

from .models import Patient, Sex, SourceDemographics

# The groups precedence chooses, each taken whole from one source; the first field must be given for the
# source to give the group (a given name alone is not a name).
GROUPS = {
    "name": ("family_name", "given_name"),
    "date_of_birth": ("date_of_birth",),
    "sex": ("sex",),
    "address": ("address", "postcode"),
    "phone": ("phone",),
    "email": ("email",),
}
CONTACT_FIELDS = ("address", "postcode", "phone", "email")  # hidden for a restricted patient
MASTER_FIELDS = (
    *(name for fields in GROUPS.values() for name in fields),
    "registered_gp_id",
    "deceased",
    "date_of_death",
    "restricted",
)
# What a new patient's row starts from, before its first source's copy.
BLANK_PATIENT = {
    **{name: "" for name in MASTER_FIELDS},
    "sex": Sex.UNKNOWN,
    "date_of_birth": None,
    "registered_gp_id": None,
    "deceased": False,
    "date_of_death": None,
    "restricted": False,
}
_IGNORED = " ,.-\n"  # what comparisons leave out
TEXT = TextField()
_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)


# --- precedence ---


def _national(source) -> bool:
    return bool(source.organisation.national_demographics)


def said_at(source) -> datetime.datetime:
    """When the source said it: its own last change, else when carerecord received it."""
    return source.source_updated_at or source.received_at or _EPOCH


def newest_first(sources: Iterable) -> list:
    by_organisation = sorted(sources, key=lambda source: source.organisation_id)  # a fixed order for ties
    return sorted(by_organisation, key=lambda source: (said_at(source), source.received_at or _EPOCH), reverse=True)


def registered_gp_of(sources: Iterable, current=None):
    """The registered GP practice's id: the national trace's, a practice's own claim, then any source's."""
    sources = newest_first(sources)
    for chooses in (
        lambda s: _national(s) and s.registered_gp_id,
        lambda s: s.registered_gp_id and s.registered_gp_id == s.organisation_id,
        lambda s: s.registered_gp_id,
    ):
        chosen = next((source for source in sources if chooses(source)), None)
        if chosen is not None:
            return chosen.registered_gp_id
    return current


def _tier(source, registered_gp_id) -> int:
    if _national(source):
        return 0
    return 1 if registered_gp_id and source.organisation_id == registered_gp_id else 2


def ranked(sources: Iterable, registered_gp_id=None) -> list:
    """Sources in precedence order: national trace, the registered GP's own record, the rest newest first."""
    return sorted(newest_first(sources), key=lambda source: _tier(source, registered_gp_id))


def _gives(source, group: str) -> bool:
    first = getattr(source, GROUPS[group][0])
    if group == "sex":
        return first not in ("", None, Sex.UNKNOWN)
    if group == "address":
        return bool(source.address or source.postcode)
    return first not in ("", None)


def master_view(sources: list, current: dict) -> dict:
    """The master values (MASTER_FIELDS) from these sources; `current` is what the Patient row holds."""
    view = {name: current.get(name) for name in MASTER_FIELDS}
    if not sources:
        return view
    view["registered_gp_id"] = registered_gp_of(sources, current.get("registered_gp_id"))
    order = ranked(sources, view["registered_gp_id"])
    for group, fields in GROUPS.items():
        giver = next((source for source in order if _gives(source, group)), None)
        if giver is not None:
            view.update({name: getattr(giver, name) for name in fields})
    view["restricted"] = any(source.restricted for source in sources)
    view["deceased"] = any(source.deceased or source.date_of_death for source in sources)
    dated = next((source for source in order if source.date_of_death), None)
    view["date_of_death"] = dated.date_of_death if dated else None
    if view["restricted"]:
        view.update(dict.fromkeys(CONTACT_FIELDS, ""))
    return view


def _current(patient: Patient) -> dict:
    return {name: getattr(patient, name) for name in MASTER_FIELDS}


def recompute(patient_ids: Iterable) -> dict:
    """Bring these patients' master views up to date from their sources, in a fixed number of queries.

    Returns {patient id: [fields changed]} for the patients whose master view changed (the caller audits)."""
    patient_ids = set(patient_ids)
    if not patient_ids:
        return {}
    sources = {}
    for source in SourceDemographics.objects.filter(patient_id__in=patient_ids).select_related("organisation"):
        sources.setdefault(source.patient_id, []).append(source)
    patients = Patient.objects.filter(pk__in=[pk for pk in patient_ids if pk in sources]).order_by("nhs_number")
    changed, to_write = {}, []
    for patient in patients:
        current = _current(patient)
        view = master_view(sources[patient.pk], current)
        fields = [name for name in MASTER_FIELDS if view[name] != current[name]]
        if fields:
            for name in fields:
                setattr(patient, name, view[name])
            changed[patient.pk] = fields
            to_write.append(patient)
    if to_write:
        now = timezone.now()
        for patient in to_write:
            patient.updated_at = now
        names = sorted({name.removesuffix("_id") for fields in changed.values() for name in fields})
        Patient.objects.bulk_update(to_write, [*names, "updated_at"])
    return changed


# --- disagreements ---


def _normalised(value) -> str:
    text = str(value or "").upper()
    for character in _IGNORED:
        text = text.replace(character, "")
    return text


def _sql_normalised(expression):
    expression = Upper(expression, output_field=TEXT)
    for character in _IGNORED:
        expression = Replace(expression, Value(character), Value(""), output_field=TEXT)
    return expression


@dataclass(frozen=True)
class Check:
    """One thing sources may disagree on: how it reads, how a source's value is compared, and the same in SQL."""

    field: str
    label: str  # for IG: "address"
    holds: str  # for the banner: "<source> holds a different address"
    key: object  # source -> comparable value, or None where the source does not say
    sql_key: object
    sql_given: Q


CHECKS = (
    Check(
        "name",
        "name",
        "a different name",
        lambda s: f"{_normalised(s.given_name)}|{_normalised(s.family_name)}" if s.family_name else None,
        Concat(_sql_normalised(F("given_name")), Value("|"), _sql_normalised(F("family_name")), output_field=TEXT),
        ~Q(family_name=""),
    ),
    Check(
        "date_of_birth",
        "date of birth",
        "a different date of birth",
        lambda s: s.date_of_birth,
        F("date_of_birth"),
        Q(date_of_birth__isnull=False),
    ),
    Check(
        "address",
        "address",
        "a different address",
        lambda s: f"{_normalised(s.postcode)}|{_normalised(s.address)}" if s.address or s.postcode else None,
        Concat(_sql_normalised(F("postcode")), Value("|"), _sql_normalised(F("address")), output_field=TEXT),
        ~Q(address="") | ~Q(postcode=""),
    ),
    Check(
        "phone",
        "phone",
        "a different phone number",
        lambda s: _normalised(s.phone) or None,
        _sql_normalised(F("phone")),
        ~Q(phone=""),
    ),
    Check(
        "registered_gp",
        "registered GP practice",
        "a different GP practice",
        lambda s: s.registered_gp_id,
        F("registered_gp_id"),
        Q(registered_gp__isnull=False),
    ),
    Check(
        "date_of_death",
        "date of death",
        "a different date of death",
        lambda s: s.date_of_death,
        F("date_of_death"),
        Q(date_of_death__isnull=False),
    ),
)
# A national trace that records no death where another source records one.
NO_DEATH = ("deceased", "death", "no record of the death")
LABELS = {check.field: check.label for check in CHECKS} | {NO_DEATH[0]: NO_DEATH[1]}


@dataclass(frozen=True)
class Disagreement:
    field: str
    label: str
    holds: str
    sources: tuple  # the SourceDemographics that hold something other than the master view's


def disagreements(sources: list, registered_gp_id=None) -> list[Disagreement]:
    """Where these sources (one patient's) disagree, and which of them differ from the master view's choice
    (`registered_gp_id`: what the patient's row holds, as master_view is given it)."""
    if len(sources) < 2:
        return []
    order = ranked(sources, registered_gp_of(sources, registered_gp_id))
    found = []
    for check in CHECKS:
        keys = {source.pk: check.key(source) for source in order}
        given = [source for source in order if keys[source.pk] is not None]
        if len({keys[source.pk] for source in given}) < 2:
            continue
        chosen = keys[given[0].pk]
        found.append(
            Disagreement(
                check.field,
                check.label,
                check.holds,
                tuple(source for source in given if keys[source.pk] != chosen),
            )
        )
    if any(source.deceased or source.date_of_death for source in sources):
        silent = tuple(s for s in order if _national(s) and not s.deceased and not s.date_of_death)
        if silent:
            found.append(Disagreement(*NO_DEATH, silent))
    return found


def conflicting_patients() -> QuerySet:
    """Patients whose sources disagree (as `disagreements` finds), in one grouped query over the sources."""
    counts = {f"n_{check.field}": Count(check.sql_key, filter=check.sql_given, distinct=True) for check in CHECKS}
    counts["n_dead"] = Count("pk", filter=Q(deceased=True) | Q(date_of_death__isnull=False))
    counts["n_national_alive"] = Count(
        "pk", filter=Q(organisation__national_demographics=True, deceased=False, date_of_death__isnull=True)
    )
    differing = reduce(or_, [Q(**{f"n_{check.field}__gt": 1}) for check in CHECKS])
    differing |= Q(n_dead__gt=0, n_national_alive__gt=0)
    grouped = SourceDemographics.objects.order_by().values("patient_id").annotate(**counts).filter(differing)
    return Patient.objects.filter(pk__in=grouped.values("patient_id"))


def identity_refused_patients() -> QuerySet:
    """Patients an organisation tried to move its Patient id away from (fhir.identity-refused, H-06): the
    audit rows are the record of it, found by their (target type, target id) index."""
    refused = AuditEvent.objects.filter(target_type="Patient", action=Action.FHIR_IDENTITY_REFUSED)
    return Patient.objects.filter(pk__in=refused.values("patient_id"))
