"""What the read API returns: the record pages' own queries (sharing.record), narrowed by the same access
decision, paginated. What a page would not show (other organisations' sensitive entries, categories they do
not share, entries withdrawn as entered in error), the API does not return either.

Each entry is given back as what its source sent. An entry that came in as FHIR (its `source_id` names a
resource kept in fhirapi.models.ReceivedResource) is that resource, latest version, with carerecord's id, meta
and references (serialise.stored); any other entry (demo data, other feeds, FHIR received before resources
were kept) is built from its row by its category's builder. So an entry is read as the type it arrived as:
a prescription sent as a MedicationRequest is a MedicationRequest (not the builder's MedicationStatement), an
inpatient Encounter held with appointments is an Encounter, a Composition is a Composition. A search by type
returns the entries given back as that type; $everything returns every entry once.

Observations: one resource per Observation the source sent (the rows of one reading, sharing `source_id`, are
its components), under a report or standalone (a Result of kind "observation", never given back as a
DiagnosticReport); a standalone panel with no value of its own is its Result. Ids are our primary keys; where
one FHIR type is read from two tables, the second's ids are prefixed ("Encounter/appointment-12",
"Observation/result-7") so that no two resources share an id.
"""

import base64
import re
from collections import defaultdict
from dataclasses import dataclass
from functools import cache

from django.db.models import Exists, F, Min, OuterRef, Q, QuerySet
from django.db.models.functions import Substr
from fhir.resources.R4B.documentreference import DocumentReferenceContent

from patients.categories import Category, entry_model
from patients.models import (
    Appointment,
    Letter,
    LetterAttachment,
    Medication,
    Observation,
    Patient,
    Result,
    SourcePatientId,
    SourceResource,
    SupportPerson,
)
from patients.nhs_numbers import normalise
from sharing import attachments
from sharing import record as sections
from sharing.access import Decision
from sharing.models import Involvement

# Importing the mapping package registers every category's readable types (`registry.reads`).
from . import (
    mapping,  # noqa: F401
    serialise,
)
from .mapping.letters import BINARY, KEPT_CONTENT
from .models import ReceivedResource, split_key
from .parse import resource_class
from .references import (
    URI,
    conditional_identifier,
    conditional_nhs_number,
    is_conditional,
    key_of,
    reference_strings,
    sender_system,
)
from .registry import searchable
from .systems import NHS_NUMBER, ODS_CODE

DEFAULT_COUNT = 50
MAX_COUNT = 200
OBSERVATION = "Observation"
# What a category's entries arrive as besides its builder's type (mapping/: a MedicationRequest is held as a
# medication, an inpatient Encounter as an appointment, ...). They are given back as what they arrived as.
ALSO_RECEIVED_AS = {
    Category.APPOINTMENTS: ("Encounter", "ServiceRequest"),
    Category.MEDICATIONS: ("MedicationRequest", "MedicationDispense", "MedicationAdministration"),
    Category.LETTERS: ("Composition",),
    Category.EVENTS: ("EpisodeOfCare",),
}
# Rows that did not arrive as FHIR (demo data, other feeds) which their builder gives back as one of those types
# (mapping/appointments.py, mapping/medications.py): an attendance or admission is an Encounter, a referral a
# ServiceRequest, a dispensing or an administration its own resource; read under that type, never another.
BUILT_AS_ALSO = {
    (Category.APPOINTMENTS, "Encounter"): Q(kind__in=[Appointment.Kind.ATTENDANCE, Appointment.Kind.ADMISSION]),
    (Category.APPOINTMENTS, "ServiceRequest"): Q(kind=Appointment.Kind.REFERRAL),
    (Category.MEDICATIONS, "MedicationDispense"): Q(event=Medication.Event.DISPENSED),
    (Category.MEDICATIONS, "MedicationAdministration"): Q(event=Medication.Event.ADMINISTERED),
}


def _builders() -> dict[Category, str]:
    """Category -> the type its builder gives back (results: DiagnosticReport; its values are Observations)."""
    built = {}
    for resource_type, category in searchable().items():
        if resource_type != OBSERVATION:
            built.setdefault(category, resource_type)
    return built


BUILT_AS = _builders()


def _readable() -> dict[str, Category]:
    """Readable type -> the category it is read from first, in the order $everything lists them: the teams,
    then what the mapping modules registered, each category's other received types after its builder's."""
    readable = {"CareTeam": Category.TEAMS, "RelatedPerson": Category.TEAMS}
    for resource_type, category in searchable().items():
        readable.setdefault(resource_type, category)
        if BUILT_AS.get(category) == resource_type:
            for also in ALSO_RECEIVED_AS.get(category, ()):
                readable.setdefault(also, category)
    readable.update(searchable())  # a type another category's builder gives back is read from there first
    return readable


SEARCHABLE = _readable()


@dataclass(frozen=True)
class Part:
    """Where some of a type's resources come from: a category's rows, either those its builder's type gives
    back (`received_as` None: all but those that arrived as another type) or those that arrived as a type."""

    category: Category
    received_as: str | None = None

    @property
    def model(self):
        return entry_model(self.category)


@cache
def parts_of(resource_type: str) -> tuple[Part, ...]:
    """The categories (and which of their rows) a type's resources are read from."""
    if resource_type == OBSERVATION:
        return ()
    parts = []
    for category, built in BUILT_AS.items():
        if built == resource_type:
            parts.append(Part(category))
        if resource_type in ALSO_RECEIVED_AS.get(category, ()):
            parts.append(Part(category, resource_type))
    return tuple(parts)


@cache
def home_model(resource_type: str):
    """The table a type's plain (unprefixed) ids are primary keys of."""
    if resource_type == OBSERVATION:
        return Observation
    if resource_type in ("RelatedPerson", "CareTeam"):
        return {"RelatedPerson": SupportPerson, "CareTeam": Involvement}[resource_type]
    parts = parts_of(resource_type)
    return next((part for part in parts if part.received_as is None), parts[0]).model


def our_id(item, resource_type: str) -> str:
    """Carerecord's id for an item given back as `resource_type`: its primary key, prefixed with its table's
    name when that is not the type's home table."""
    if type(item) is home_model(resource_type):
        return str(item.pk)
    return f"{type(item)._meta.model_name}-{item.pk}"


def received_as(resource_type: str) -> Q:
    """Rows that arrived as a resource of this type, which is kept (the key "<type>/<id>" or "<type>?...")."""

    def kept(cut: int):
        return Exists(
            ReceivedResource.objects.filter(
                organisation_id=OuterRef("source_organisation_id"),
                resource_type=resource_type,
                resource_id=Substr(OuterRef("source_id"), cut),
            )
        )

    by_id = Q(source_id__startswith=f"{resource_type}/") & Q(kept(len(resource_type) + 2))
    by_identifier = Q(source_id__startswith=f"{resource_type}?") & Q(kept(len(resource_type) + 1))
    return by_id | by_identifier


def _given_back_as(category: Category, resource_type: str) -> Q:
    """A category's rows given back as another type than its builder's: those that arrived as it, and those its
    builder gives back as it."""
    built = BUILT_AS_ALSO.get((category, resource_type))
    return received_as(resource_type) | built if built is not None else received_as(resource_type)


def _newest_first(queryset: QuerySet) -> QuerySet:
    return queryset.order_by(F("effective_at").desc(nulls_last=True), "-id")


def _part_rows(part: Part, patient: Patient, decision: Decision) -> QuerySet:
    rows = sections.entries(patient, decision, part.category)
    if part.received_as:
        rows = rows.filter(_given_back_as(part.category, part.received_as))
    else:
        for other in ALSO_RECEIVED_AS.get(part.category, ()):
            rows = rows.exclude(_given_back_as(part.category, other))
    if part.category == Category.RESULTS:
        # Standalone observations are given back as Observations (below), never as made-up reports.
        rows = rows.filter(kind=Result.Kind.REPORT).exclude(source_id__startswith=f"{OBSERVATION}/")
    return _newest_first(rows)


def _observations(patient: Patient, decision: Decision) -> list[QuerySet]:
    """One row per Observation the source sent (the first of the rows sharing its source_id, in its Result),
    then the standalone panels that have no value of their own (their Result)."""
    earlier = Observation.objects.filter(result_id=OuterRef("result_id"), source_id=OuterRef("source_id"))
    rows = (
        sections.observations(patient, decision)
        .exclude(~Q(source_id="") & Q(Exists(earlier.filter(pk__lt=OuterRef("pk")))))
        .select_related("result__source_organisation")
    )
    own_values = Observation.objects.filter(result_id=OuterRef("pk"), source_id=OuterRef("source_id"))
    panels = (
        sections.entries(patient, decision, Category.RESULTS)
        .filter(received_as(OBSERVATION), kind=Result.Kind.OBSERVATION)
        .exclude(Exists(own_values))
    )
    return [_newest_first(rows), _newest_first(panels)]


def resources_of(resource_type: str, patient: Patient, decision: Decision) -> list[QuerySet]:
    """One type's visible items for a patient, newest first: one queryset per place they come from."""
    if resource_type == OBSERVATION:
        return _observations(patient, decision)
    if resource_type == "RelatedPerson":
        people = sections.support_network(patient, decision).order_by("name", "pk")
        # A restricted (S-flag) patient's contacts are hidden from every output.
        return [people.none() if getattr(patient, "restricted", False) else people]
    if resource_type == "CareTeam":
        return [sections.involvements(patient, decision)]
    return [_part_rows(part, patient, decision) for part in parts_of(resource_type)]


# Our ids: a bigint primary key (at most 18 ASCII digits: str.isdigit() alone accepts "²" and "٣"), prefixed
# with its table's name where the type is read from a second table.
OUR_ID = re.compile(r"(?:(?P<table>[a-z]{1,30})-)?(?P<pk>[0-9]{1,18})")


def find_entry(resource_type: str, resource_id: str):
    """The item behind "<type>/<id>" (any patient's: the caller decides access on its patient), or None."""
    match = OUR_ID.fullmatch(resource_id)
    if resource_type not in SEARCHABLE or match is None:
        return None
    models = {home_model(resource_type)}
    if resource_type == OBSERVATION:
        models.add(Result)
    models.update(part.model for part in parts_of(resource_type))
    named = {model._meta.model_name: model for model in models}
    home = home_model(resource_type)
    model = named.get(match["table"]) if match["table"] else home
    if model is None or (match["table"] and model is home):
        return None
    return model.objects.filter(pk=match["pk"]).only("pk", "patient_id").first()


def visible_item(resource_type: str, found, patient: Patient, decision: Decision):
    """`found` as the patient's record would show it under this type, or None."""
    for queryset in resources_of(resource_type, patient, decision):
        if queryset.model is type(found):
            item = queryset.filter(pk=found.pk).first()
            if item is not None:
                return item
    return None


@dataclass
class Page:
    items: list  # (resource type, item) pairs
    total: int
    offset: int
    count: int

    @property
    def has_next(self) -> bool:
        return self.offset + self.count < self.total

    @property
    def has_previous(self) -> bool:
        return self.offset > 0


@dataclass(frozen=True)
class Order:
    """A search's `_sort`: `key(model)` is the expression each row is ordered by (None last either way)."""

    key: object
    descending: bool


def page_of(lists: list[tuple[str, QuerySet]], *, offset: int, count: int, order: Order | None = None) -> Page:
    """One page across several lists, each of one resource type. Without an order, the lists in turn (each newest
    first, as the record pages): a count and at most one fetch each. With one, the true sorted slice of them all:
    each list's first offset+count keys, merged, then the page's rows (search._sort)."""
    if order is None and offset == 0:
        return _first_page(lists, count)
    totals = [queryset.count() for _, queryset in lists]
    if order is not None:
        return _sorted_page(lists, totals, offset=offset, count=count, order=order)
    items, skip, wanted = [], offset, count
    for (resource_type, queryset), total in zip(lists, totals, strict=True):
        if wanted <= 0:
            break
        if skip >= total:
            skip -= total
            continue
        taken = list(queryset[skip : skip + wanted])
        items.extend((resource_type, item) for item in taken)
        wanted -= len(taken)
        skip = 0
    return Page(items=items, total=sum(totals), offset=offset, count=count)


def _first_page(lists: list[tuple[str, QuerySet]], count: int) -> Page:
    """The first page of the lists in turn, counting only a list the page does not hold all of: a list that
    gave fewer rows than were asked of it has them all (one query, not a count and a fetch; most of a patient's
    lists in $everything, and a search's usual answer, fit in one page)."""
    items, totals, wanted = [], [], count
    for resource_type, queryset in lists:
        if wanted <= 0:
            totals.append(queryset.count())
            continue
        taken = list(queryset[:wanted])
        items.extend((resource_type, item) for item in taken)
        totals.append(len(taken) if len(taken) < wanted else queryset.count())
        wanted -= len(taken)
    return Page(items=items, total=sum(totals), offset=0, count=count)


def _ordered(queryset: QuerySet, order: Order) -> QuerySet:
    key = order.key(queryset.model)
    direction = key.desc(nulls_last=True) if order.descending else key.asc(nulls_last=True)
    return queryset.annotate(_sort_key=key).order_by(direction, "-pk" if order.descending else "pk")


def _sorted_page(lists, totals, *, offset: int, count: int, order: Order) -> Page:
    """Dated entries by their key (ties: list order, then pk as each list orders them), undated ones last."""
    ordered = [(resource_type, _ordered(queryset, order)) for resource_type, queryset in lists]
    wanted = offset + count
    candidates = []
    for index, ((_, queryset), total) in enumerate(zip(ordered, totals, strict=True)):
        if total and count:
            for pk, key in queryset.values_list("pk", "_sort_key")[:wanted]:
                candidates.append((key, index, pk))
    dated = sorted(
        (c for c in candidates if c[0] is not None), key=lambda c: (c[1], -c[2] if order.descending else c[2])
    )
    dated.sort(key=lambda c: c[0], reverse=order.descending)  # stable: ties keep list order, then pk
    undated = sorted((c for c in candidates if c[0] is None), key=lambda c: (c[1], -c[2] if order.descending else c[2]))
    chosen = (dated + undated)[offset:wanted]
    rows = {}
    for index, (_, queryset) in enumerate(ordered):
        pks = [pk for _, list_index, pk in chosen if list_index == index]
        if pks:
            rows.update(((index, row.pk), row) for row in queryset.filter(pk__in=pks))
    items = [(ordered[index][0], rows[index, pk]) for _, index, pk in chosen if (index, pk) in rows]
    return Page(items=items, total=sum(totals), offset=offset, count=count)


def paging(params) -> tuple[int, int]:
    """(_offset, _count) from the query string, clamped: every list that could grow is paginated."""

    def number(name, default):
        try:
            return int(params.get(name, default))
        except (TypeError, ValueError):
            return default

    return max(number("_offset", 0), 0), min(max(number("_count", DEFAULT_COUNT), 1), MAX_COUNT)


# --- a page as resources ------------------------------------------------------------------------------------


def _organisation_of(item):
    return item.result.source_organisation if isinstance(item, Observation) else item.source_organisation


def _stored_key(item) -> tuple | None:
    """(organisation id, type, id) of the resource kept for an item, if it may have one."""
    if isinstance(item, Patient | Involvement) or not item.source_id:
        return None
    organisation_id = (
        item.result.source_organisation_id if isinstance(item, Observation) else item.source_organisation_id
    )
    return (organisation_id, *split_key(item.source_id))


def resources(items: list[tuple[str, object]], patient: Patient) -> list:
    """A page's (type, item) pairs as R4B resources: the kept resource of each item that came as FHIR (with the
    page's references resolved in a few queries), the builder's for the others."""
    keys = {pair: _stored_key(pair[1]) for pair in items}
    kept = {
        (row.organisation_id, row.resource_type, row.resource_id): row
        for row in ReceivedResource.objects.newest(key for key in keys.values() if key)
    }
    resolver = Resolver(patient, list(kept.values()))
    readings = _readings([item for resource_type, item in items if keys[resource_type, item] not in kept])
    out = []
    for resource_type, item in items:
        received = kept.get(keys[resource_type, item])
        if isinstance(item, Patient):
            out.append(serialise.patient(item))
        elif received is not None and received.resource_type == resource_type:
            organisation = _organisation_of(item)
            out.append(
                serialise.stored(
                    item,
                    received,
                    resource_id=our_id(item, resource_type),
                    organisation=organisation,
                    replace=resolver.replacer(received, organisation.ods_code),
                )
            )
        elif isinstance(item, Observation):
            out.append(serialise.observation(item, readings.get((item.result_id, item.source_id), [item])))
        else:
            built = serialise.entry(item)
            built.id = our_id(item, resource_type)  # a built admission is Encounter/appointment-<pk>, like a kept one
            out.append(built)
    _link_attachments(items, out)
    return out


def _readings(items) -> dict[tuple, list[Observation]]:
    """The rows of each reading (an Observation's components) behind the built Observations of a page."""
    wanted = {(item.result_id, item.source_id) for item in items if isinstance(item, Observation) and item.source_id}
    if not wanted:
        return {}
    rows = Observation.objects.filter(
        result_id__in={result_id for result_id, _ in wanted}, source_id__in={source_id for _, source_id in wanted}
    ).order_by("pk")
    readings = defaultdict(list)
    for row in rows:
        readings[row.result_id, row.source_id].append(row)
    return readings


class Resolver:
    """What the references in a page's kept resources point at here, looked up for the whole page at once.

    A reference carerecord can follow ("Patient/abc", a Bundle's urn:uuid the import resolved, "Condition/x" of
    the same sender) becomes a reference to carerecord's resource. One it cannot (a Practitioner, a Location, an
    Organization, an entry it does not hold) loses the sender's address, which means nothing here, and keeps what
    it says: its display (else the name the sender's own resource gave), its type, and the sender's id as an
    identifier (system naming the sender). A reference with no type or id to keep becomes an identifier holding
    the URI it was. A reference by NHS number alone to this patient gains the patient's reference."""

    def __init__(self, patient: Patient, received: list[ReceivedResource]):
        self.patient = patient
        wanted = defaultdict(set)
        for row in received:
            for text in reference_strings(row.json):
                key = row.references.get(text) or key_of(text)
                if key:
                    wanted[row.organisation_id].add(key)
        self.ours: dict[tuple[int, str], str] = {}
        self.names: dict[tuple[int, str], str] = {}
        if wanted:
            self._find_patients(wanted)
            self._find_entries(wanted)
            self._find_names(wanted)

    def replacer(self, received: ReceivedResource, ods_code: str):
        organisation_id, resolved = received.organisation_id, received.references

        def replace(reference: dict) -> dict:
            text = reference.get("reference")
            if text is None:
                return self._by_nhs_number(reference)
            if text.startswith("#"):
                return reference
            key = resolved.get(text) or (text if is_conditional(text) else key_of(text))
            ours = self.ours.get((organisation_id, key)) if key else None
            if ours:
                return {**reference, "reference": ours}
            if key and conditional_nhs_number(key) == self.patient.nhs_number:  # named by NHS number (conditional)
                return {**reference, "reference": f"Patient/{self.patient.pk}"}
            return self._kept_as_said(reference, key, organisation_id, ods_code)

        return replace

    def _by_nhs_number(self, reference: dict) -> dict:
        identifier = reference["identifier"]
        value = identifier.get("value")
        if (
            identifier.get("system") == NHS_NUMBER
            and isinstance(value, str)
            and normalise(value) == self.patient.nhs_number
        ):
            return {"reference": f"Patient/{self.patient.pk}", **reference}
        return reference

    def _kept_as_said(self, reference: dict, key, organisation_id: int, ods_code: str) -> dict:
        kept = {name: value for name, value in reference.items() if name != "reference"}
        resource_type, resource_id = split_key(key) if key else ("", "")
        if key and resource_class(resource_type) is not None:
            kept.setdefault("type", resource_type)
            if "identifier" not in kept and resource_id and not resource_id.startswith("?"):
                kept["identifier"] = {"system": sender_system(ods_code, resource_type), "value": resource_id}
            elif "identifier" not in kept and conditional_identifier(key):  # Type?identifier=system|value
                kept["identifier"] = conditional_identifier(key)
            name = self.names.get((organisation_id, key))
            if "display" not in kept and name:
                kept["display"] = name
        elif "identifier" not in kept:
            kept["identifier"] = {"system": URI, "value": reference["reference"]}
        return kept

    @staticmethod
    def _by_sender(wanted: dict[int, set[str]], organisation: str, field: str, prefix: str = "") -> Q:
        keys = Q(pk__in=[])
        for organisation_id, sender_keys in wanted.items():
            chosen = [key for key in sender_keys if key.startswith(prefix)]
            if chosen:
                keys |= Q(**{organisation: organisation_id, f"{field}__in": chosen})
        return keys

    def _find_patients(self, wanted) -> None:
        links = SourcePatientId.objects.filter(self._by_sender(wanted, "organisation_id", "resource_id", "Patient/"))
        for organisation_id, key, patient_id in links.values_list("organisation_id", "resource_id", "patient_id"):
            self.ours[organisation_id, key] = f"Patient/{patient_id}"

    def _find_entries(self, wanted) -> None:
        """The patient's entries these keys name (whatever their visibility: a reference says what the sender
        pointed at; whether the reader may follow it is decided when they do)."""
        types = {split_key(key)[0] for keys in wanted.values() for key in keys}
        for resource_type in sorted(types & set(SEARCHABLE)):
            prefix = f"{resource_type}/"
            if resource_type == OBSERVATION:
                self._find_observations(wanted)
            elif resource_type in ("RelatedPerson", "CareTeam"):
                model = home_model(resource_type)
                organisation = "care_team__organisation_id" if model is Involvement else "source_organisation_id"
                found = model.objects.filter(
                    self._by_sender(wanted, organisation, "source_id", prefix), patient=self.patient
                )
                for organisation_id, key, pk in found.values_list(organisation, "source_id", "pk"):
                    self.ours[organisation_id, key] = f"{resource_type}/{pk}"
            for part in parts_of(resource_type):
                found = part.model.objects.filter(
                    self._by_sender(wanted, "source_organisation_id", "source_id", prefix), patient=self.patient
                )
                for item in found.only("pk", "source_organisation_id", "source_id"):
                    self.ours[item.source_organisation_id, item.source_id] = (
                        f"{resource_type}/{our_id(item, resource_type)}"
                    )

    def _find_observations(self, wanted) -> None:
        by_sender = self._by_sender(wanted, "result__source_organisation_id", "source_id", f"{OBSERVATION}/")
        first_rows = (
            Observation.objects.filter(by_sender, patient=self.patient)
            .values("result__source_organisation_id", "source_id")
            .annotate(first=Min("pk"))
            .values_list("result__source_organisation_id", "source_id", "first")
        )
        panels = Result.objects.filter(
            self._by_sender(wanted, "source_organisation_id", "source_id", f"{OBSERVATION}/"),
            patient=self.patient,
            kind=Result.Kind.OBSERVATION,
        ).values_list("source_organisation_id", "source_id", "pk")
        for organisation_id, key, pk in panels:
            self.ours[organisation_id, key] = f"{OBSERVATION}/result-{pk}"
        for organisation_id, key, pk in first_rows:  # a value of its own comes first
            self.ours[organisation_id, key] = f"{OBSERVATION}/{pk}"

    def _find_names(self, wanted) -> None:
        unresolved = {
            organisation_id: {key for key in keys if (organisation_id, key) not in self.ours}
            for organisation_id, keys in wanted.items()
        }
        names = SourceResource.objects.filter(self._by_sender(unresolved, "organisation_id", "resource_id"))
        for organisation_id, key, name in names.values_list("organisation_id", "resource_id", "name"):
            if name:
                self.names[organisation_id, key] = name


# --- a letter's attachments: FHIR Binary -------------------------------------------------------------------


def find_attachment(resource_id: str):
    """The attachment behind "Binary/<id>" (any patient's: the caller decides access on its patient), or None."""
    match = OUR_ID.fullmatch(resource_id)
    if match is None or match["table"]:
        return None
    return LetterAttachment.objects.filter(pk=match["pk"]).only("pk", "patient_id").first()


def visible_attachment(found, patient: Patient, decision: Decision):
    """`found` with its content, if the patient's record would show its letter; else None."""
    return attachments.visible_attachment(patient, decision, found.pk) if found is not None else None


def binary(attachment: LetterAttachment):
    """The attachment as a FHIR Binary: its content type and data, its letter as the security context (access to
    it is decided as for the letter), and the letter's source and sensitivity in meta."""
    letter = attachment.letter
    organisation = letter.source_organisation
    meta = {
        "lastUpdated": attachment.created_at,
        "tag": [{"system": ODS_CODE, "code": organisation.ods_code, "display": organisation.name}],
    }
    if letter.sensitive:
        meta["security"] = [serialise.RESTRICTED]
    return resource_class(BINARY).model_validate(
        {
            "resourceType": BINARY,
            "id": str(attachment.pk),
            "meta": meta,
            "contentType": attachment.content_type,
            "securityContext": {"reference": f"DocumentReference/{our_id(letter, 'DocumentReference')}"},
            "data": base64.b64encode(bytes(attachment.data)).decode(),
        }
    )


def _link_attachments(items: list[tuple[str, object]], out: list) -> None:
    """A page's DocumentReferences give each attachment their letter holds as carerecord's `Binary/<id>` (one
    query for the page, never the content): in place of the content a kept resource stood for (its
    KEPT_CONTENT extension), or as content of its own for a letter not received as FHIR. A sender's relative
    `Binary/...` url (kept before content was) would name carerecord's Binary of that id: it is dropped."""
    letters = {
        index: item
        for index, (kind, item) in enumerate(items)
        if kind == "DocumentReference" and isinstance(item, Letter)
    }
    if not letters:
        return
    held = defaultdict(list)
    rows = LetterAttachment.objects.filter(letter_id__in=[item.pk for item in letters.values()]).order_by("pk")
    for row in rows.values("pk", "letter_id", "sha256", "content_type", "title", "size"):
        held[row["letter_id"]].append(row)
    for index, item in letters.items():
        link_attachments(out[index], held.get(item.pk, []))


def link_attachments(resource, rows: list[dict]) -> None:
    by_sha = {row["sha256"]: row for row in rows}
    linked = set()
    for content in resource.content or []:
        attachment = content.attachment
        markers = [extension for extension in attachment.extension or [] if extension.url == KEPT_CONTENT]
        if markers:
            attachment.extension = [e for e in attachment.extension if e.url != KEPT_CONTENT] or None
            row = by_sha.get(markers[0].valueString)
            attachment.url = f"{BINARY}/{row['pk']}" if row else None
            linked.update([row["pk"]] if row else [])
        elif _senders_binary(attachment.url):
            attachment.url = None
    for row in rows:
        if row["pk"] not in linked:
            resource.content.append(_content_of(row))


def _senders_binary(url) -> bool:
    return bool(url) and "://" not in url and (key_of(url) or "").startswith(f"{BINARY}/")


def _content_of(row: dict):
    attachment = {"contentType": row["content_type"], "url": f"{BINARY}/{row['pk']}", "size": row["size"]}
    if row["title"]:
        attachment["title"] = row["title"]
    return DocumentReferenceContent.model_validate({"attachment": attachment})
