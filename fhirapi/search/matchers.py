"""Matchers: one criterion (the OR of its comma values) applied to one of a type's querysets, on what the
resource given back says: the kept resource's JSON for an entry received as FHIR, else the columns its builder
writes out."""

import abc

from django.db.models import (
    Case,
    DateTimeField,
    Exists,
    Expression,
    F,
    OuterRef,
    Q,
    Subquery,
    Value,
    When,
)
from django.db.models.functions import Coalesce, Substr

from patients.models import CareEvent, Observation
from sharing.models import Involvement

from .. import read
from ..mapping.appointments import ENCOUNTER_STATUS_OUT
from ..models import ReceivedResource
from ..references import sender_system
from ..serialise import OBSERVATION_CATEGORIES, OBSERVATION_CATEGORY, OBSERVATION_STATUSES, REPORT_STATUSES
from .json_arrays import token_in_array
from .values import Token, date_q, parse_date, parse_token, unescape

# --- kept resources: what an entry received as FHIR says -----------------------------------------------------


def _organisation_field(model) -> str:
    return "result__source_organisation_id" if model is Observation else "source_organisation_id"


def _kept_forms(resource_type: str, model, latest: bool):
    """(guard on the row, the kept versions of its resource) for both forms of key: "<type>/<id>" and
    "<type>?identifier=..." (an entry sent without an id)."""
    forms = []
    for separator, cut in (("/", len(resource_type) + 2), ("?", len(resource_type) + 1)):
        versions = ReceivedResource.objects.filter(
            organisation_id=OuterRef(_organisation_field(model)),
            resource_type=resource_type,
            resource_id=Substr(OuterRef("source_id"), cut),
        )
        if latest:
            newest = ReceivedResource.objects.filter(
                organisation_id=OuterRef("organisation_id"),
                resource_type=OuterRef("resource_type"),
                resource_id=OuterRef("resource_id"),
            ).order_by("-version")
            versions = versions.filter(version=Subquery(newest.values("version")[:1]))
        forms.append((Q(source_id__startswith=f"{resource_type}{separator}"), versions))
    return forms


def kept(resource_type: str, model) -> Q:
    """Rows given back as their kept resource of this type (read.resources serves those)."""
    if not hasattr(model, "source_id") or model is Involvement:
        return Q(pk__in=[])
    q = Q(pk__in=[])
    for guard, versions in _kept_forms(resource_type, model, latest=False):
        q |= guard & Q(Exists(versions))
    return q


def kept_where(resource_type: str, model, condition: Q) -> Q:
    """Rows whose kept resource's latest version meets `condition` (on ReceivedResource)."""
    if not hasattr(model, "source_id") or model is Involvement:
        return Q(pk__in=[])
    q = Q(pk__in=[])
    for guard, versions in _kept_forms(resource_type, model, latest=True):
        q |= guard & Q(Exists(versions.filter(condition)))
    return q


def kept_value(resource_type: str, model, expression, built) -> Expression:
    """An expression per row: `expression` (on ReceivedResource) of its kept latest version, else `built`."""
    if not hasattr(model, "source_id") or model is Involvement:
        return built
    whens = [
        When(guard, then=Subquery(versions.annotate(_v=expression).values("_v")[:1]))
        for guard, versions in _kept_forms(resource_type, model, latest=True)
    ]
    return Coalesce(Case(*whens, default=Value(None)), built)


def kept_or_built(resource_type: str, model, kept_condition: Q | None, built: Q | None) -> Q:
    """What the resource given back says: its kept resource's, else (built from its row) the columns'."""
    q = Q(pk__in=[])
    if kept_condition is not None:
        q |= kept_where(resource_type, model, kept_condition)
    if built is not None:
        q |= ~kept(resource_type, model) & built
    return q


# --- matchers: one criterion (OR of its comma values) on one of a type's querysets ---------------------------


class Matcher(abc.ABC):
    """One kind of criterion: how its values parse, and the Q one value means on one of a type's querysets."""

    kind = "token"
    modifiers: tuple[str, ...] = ()
    supports_missing = False

    def parse(self, text: str, name: str):
        return parse_token(text, name)

    def q(self, resource_type: str, model, values: list, modifier: str) -> Q:
        any_of = Q(pk__in=[])
        for value in values:
            any_of |= self.one(resource_type, model, value)
        return ~any_of if modifier == "not" else any_of

    @abc.abstractmethod
    def one(self, resource_type, model, value) -> Q:
        """The rows one value matches (the values of a criterion are ORed by `q`)."""


class TokenMatcher(Matcher):
    modifiers = ("not",)


class Coded(TokenMatcher):
    """The entry's code: the first coded one (code_system, code) and every coding the source sent (codings)."""

    def one(self, resource_type, model, token):
        return coded_q(model, token)


def coded_q(model, token: Token, prefix: str = "") -> Q:
    system_field, code_field, codings = f"{prefix}code_system", f"{prefix}code", f"{prefix}codings"
    if token.system is None:
        primary = Q(**{code_field: token.code})
    elif token.code is None:
        primary = Q(**{system_field: token.system}) & ~Q(**{code_field: ""})
    else:
        primary = Q(**{system_field: token.system, code_field: token.code})
    return primary | token_in_array(codings, (), token)


class ObservationCode(TokenMatcher):
    """An Observation's `code`: its kept resource's code.coding; built, the code its first row gives back (its own
    value's codings, or for a reading of components only, the reading's code, which has no system)."""

    def one(self, resource_type, model, token):
        kept_condition = token_in_array("json", ("code", "coding"), token)
        if model is Observation:
            own = Q(reading_name="") & coded_q(model, token)
            reading = ~Q(reading_name="") & (
                Q(reading_code=token.code) if token.code is not None and token.system in (None, "") else Q(pk__in=[])
            )
            built = own | reading
        else:
            built = coded_q(model, token)
        return kept_or_built(resource_type, model, kept_condition, built)


class CodingStatus(TokenMatcher):
    """A CodeableConcept status (clinicalStatus, verificationStatus): the kept resource's codings; built, the
    column its builder writes out, with FHIR's system."""

    def __init__(self, path: tuple[str, ...], column: str, system: str, built_values=None):
        self.path, self.column, self.system = path, column, system
        self.built_values = built_values  # FHIR code -> column values, where the column holds carerecord's own

    def one(self, resource_type, model, token):
        kept_condition = token_in_array("json", (*self.path, "coding"), token)
        built = Q(pk__in=[])
        if token.system in (None, self.system):
            codes = self.built_values.get(token.code, []) if self.built_values else [token.code]
            built = ~Q(**{self.column: ""}) if token.code is None else Q(**{f"{self.column}__in": codes})
        return kept_or_built(resource_type, model, kept_condition, built)


class Status(TokenMatcher):
    """`status` (a code): the kept resource's status as sent; built, the status its builder writes out from the
    row (`built(model, code) -> Q`)."""

    def __init__(self, built):
        self.built = built

    def one(self, resource_type, model, token):
        if token.system not in (None, ""):
            return Q(pk__in=[])  # a code, not a coding: it has no system
        if token.code is None:
            return Q(pk__in=[])
        return kept_or_built(resource_type, model, Q(json__status=token.code), self.built(model, token.code))


def same(field_name: str):
    def built(model, code):
        return Q(**{field_name: code})

    return built


def out_of(field_name: str, out: dict, default: str):
    """Built status where the builder maps the column through `out` (values not in it: `default`)."""

    def built(model, code):
        held = [column for column, fhir in out.items() if fhir == code]
        q = Q(**{f"{field_name}__in": held})
        if code == default:
            q |= ~Q(**{f"{field_name}__in": list(out)})
        return q

    return built


def encounter_status(model, code):
    if model is CareEvent:
        return Q() if code == "finished" else Q(pk__in=[])
    return out_of("status", ENCOUNTER_STATUS_OUT, "unknown")(model, code)


def report_status(model, code):
    statuses = REPORT_STATUSES
    if code == "unknown":
        return Q(status="unknown") | ~Q(status__in=list(statuses))
    return Q(status=code) if code in statuses else Q(pk__in=[])


def observation_status(model, code):
    column = "result__status" if model is Observation else "status"
    if code == "unknown":
        return Q(**{column: "unknown"}) | ~Q(**{f"{column}__in": list(OBSERVATION_STATUSES)})
    return Q(**{column: code}) if code in OBSERVATION_STATUSES else Q(pk__in=[])


def event_status(model, code):
    """A dispensing or administration built from its row: completed, else unknown (mapping/medications.py)."""
    if code == "completed":
        return Q(status="completed")
    return ~Q(status="completed") if code == "unknown" else Q(pk__in=[])


def constant(value: str):
    def built(model, code):
        return Q() if code == value else Q(pk__in=[])

    return built


class Category(TokenMatcher):
    """A category: the kept resource's (any of them, every coding); built, the column, which its builder gives
    back as a coding of `system` when it holds one of `codes` (else as text, which a token does not match)."""

    def __init__(self, column: str, system: str, path: tuple[str, ...], codes: set[str]):
        self.column, self.system, self.path, self.codes = column, system, path, codes

    def one(self, resource_type, model, token):
        kept_condition = token_in_array("json", (*self.path, "*", "coding"), token)
        built = Q(pk__in=[])
        if token.system in (None, self.system) and token.code in self.codes:
            built = Q(**{self.column: token.code})
        return kept_or_built(resource_type, model, kept_condition, built)


class ObservationCategory(TokenMatcher):
    """Observation.category: the kept resource's; built, the row's category (else its report's), coded with
    FHIR's observation-category system when it is one of FHIR's codes (serialise._category)."""

    def one(self, resource_type, model, token):
        kept_condition = token_in_array("json", ("category", "*", "coding"), token)
        built = Q(pk__in=[])
        code = token.code
        coded = code in OBSERVATION_CATEGORIES and token.system in (None, OBSERVATION_CATEGORY)
        if coded:
            if model is Observation:
                built = Q(observation_category=code) | Q(observation_category="", result__observation_category=code)
            else:
                built = Q(observation_category=code)
        return kept_or_built(resource_type, model, kept_condition, built)


class Identifier(TokenMatcher):
    """`identifier`: the sender's id as carerecord gives it back (<base>/<ODS>/<Type> | the id it sent) and
    every identifier in the resource as received (its latest kept version). Built entries carry none."""

    def one(self, resource_type, model, token):
        single = resource_type == "Composition"  # Composition.identifier is one Identifier, not a list
        if token.code is None:
            sent = (
                Q(json__identifier__system=token.system)
                if single
                else token_in_array("json", ("identifier",), token, code_field="value")
            )
        elif single:
            sent = Q(json__identifier__value=token.code)
            if token.system is not None:
                sent &= (
                    Q(json__identifier__system=token.system) if token.system else ~Q(json__identifier__has_key="system")
                )
        else:
            sent = token_in_array("json", ("identifier",), token, code_field="value")
        q = kept_where(resource_type, model, sent)
        ods = _sender_ods(token.system, resource_type)
        if token.code is not None and (token.system is None or ods):
            own = kept_where(resource_type, model, Q(json__id=token.code))
            if ods:
                own &= Q(**{_organisation_field(model).replace("_id", "__ods_code"): ods})
            q |= own
        return q


def _sender_ods(system: str | None, resource_type: str) -> str:
    """The ODS code a sender-id system names, for this type ("" if it is not one)."""
    if not system:
        return ""
    prefix = sender_system("")  # <base>/ (with an empty ODS code)
    if not system.startswith(prefix) or not system.endswith(f"/{resource_type}"):
        return ""
    ods = system[len(prefix) : -len(resource_type) - 1]
    return ods if ods and "/" not in ods else ""


class Ids(TokenMatcher):
    """`_id`: carerecord's ids, as read.our_id gives them (a second table's prefixed)."""

    modifiers = ()

    def parse(self, text, name):
        return text

    def one(self, resource_type, model, value):
        match = read.OUR_ID.fullmatch(value)
        if match is None:
            return Q(pk__in=[])
        home = read.home_model(resource_type) is model
        if (match["table"] is None) != home or (match["table"] and match["table"] != model._meta.model_name):
            return Q(pk__in=[])
        return Q(pk=int(match["pk"]))


class Plain(TokenMatcher):
    """A column holding a string the resource gives back as sent (Immunization.lotNumber)."""

    def __init__(self, column: str):
        self.column = column

    def parse(self, text, name):
        return unescape(text)

    def one(self, resource_type, model, value):
        return Q(**{self.column: value})


class DateMatcher(Matcher):
    kind = "date"

    def __init__(self, start: str, end: str | None = None, built: str | None = None, needs: tuple[str, ...] = ()):
        """`start` (and `end`, for a period with its end held): the columns; `built`: the column a built entry
        gives back as this element, where it is another; `needs`: for a kept resource, one of these elements
        must be present (the column may hold a fallback the element does not say, e.g. `issued`)."""
        self.start, self.end, self.built, self.needs = start, end, built, needs

    @property
    def modifiers(self):
        return ("missing",) if self.supports_missing else ()

    def parse(self, text, name):
        return parse_date(text, name)

    def _fields(self, model, *, built: bool):
        start = self.built if built and self.built else self.start
        end = self.end if self.end and hasattr(model, self.end) else None
        return start, end

    def q(self, resource_type, model, values, modifier):
        if modifier == "missing":
            return self.missing(resource_type, model, values)
        return super().q(resource_type, model, values, modifier)

    @property
    def supports_missing(self) -> bool:
        """Only where the column alone says whether the element is there (no built or fallback difference)."""
        return not self.built and not self.needs and type(self) is DateMatcher

    def missing(self, resource_type, model, values) -> Q:
        start, _ = self._fields(model, built=False)
        return Q(**{f"{start}__isnull": values == ["true"]})

    def one(self, resource_type, model, value):
        start, end = self._fields(model, built=False)
        if not self.built and not self.needs:
            return date_q(value, start, end)
        kept_rows = kept(resource_type, model)
        as_kept = kept_rows & date_q(value, start, end)
        if self.needs:
            present = Q(pk__in=[])
            for element in self.needs:
                present |= Q(json__has_key=element)
            as_kept &= kept_where(resource_type, model, present)
        built_start, built_end = self._fields(model, built=True)
        return as_kept | (~kept_rows & date_q(value, built_start, built_end))

    def sort_key(self, resource_type, model):
        start, _ = self._fields(model, built=False)
        if self.built:
            return Case(When(kept(resource_type, model), then=F(start)), default=F(self.built))
        return F(start)


class LastUpdated(DateMatcher):
    """meta.lastUpdated as given back (history.version_meta; serialise._meta for a built entry)."""

    def __init__(self):
        super().__init__("source_updated_at")

    @staticmethod
    def _built_field(model) -> str | None:
        if model is Involvement:
            return None  # a CareTeam is built with no meta.lastUpdated
        return "result__source_updated_at" if model is Observation else "source_updated_at"

    def one(self, resource_type, model, value):
        built = self._built_field(model)
        if built is None:
            return Q(pk__in=[])
        as_kept = Q(pk__in=[])
        for guard, versions in _kept_forms(resource_type, model, latest=True):
            stamped = versions.annotate(_lu=Coalesce("source_updated_at", "received_at"))
            as_kept |= guard & Q(Exists(stamped.filter(date_q(value, "_lu"))))
        return as_kept | (~kept(resource_type, model) & date_q(value, built))

    def sort_key(self, resource_type, model):
        built = self._built_field(model)
        if built is None:
            return Value(None, output_field=DateTimeField())
        return kept_value(resource_type, model, Coalesce("source_updated_at", "received_at"), F(built))
