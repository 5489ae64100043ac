"""Parsing a query: a type search, $everything and the Patient search, validated against the registry (400
for anything not implemented, or left out under `Prefer: handling=lenient`)."""

import re
from dataclasses import dataclass, field

from .. import read
from ..outcome import UNPRINTABLE, Issue, error, printable, warning
from .matchers import LastUpdated
from .registry import EVERYTHING_PARAMS, RESULT_PARAMS, SORT_DATE, SPECS, includes_of, sorts_of
from .values import DATE_PATTERN, DateValue, Invalid, invalid, parse_date, unsupported

# --- parsing a query ---------------------------------------------------------------------------------------


@dataclass
class Criterion:
    name: str
    modifier: str
    values: list
    raw: str  # as given, for the self link
    matcher: object


@dataclass
class Search:
    """A parsed query: the patient it names, the criteria (AND), and what shapes the result."""

    resource_type: str
    patient_id: str = ""
    criteria: list[Criterion] = field(default_factory=list)
    offset: int = 0
    count: int = read.DEFAULT_COUNT
    summary_count: bool = False
    sort: str = ""
    include_patient: bool = False
    revinclude_provenance: bool = False
    applied: list[tuple[str, str]] = field(default_factory=list)  # (name, value) as given: the self link's
    warnings: list[Issue] = field(default_factory=list)

    def filter(self, lists: list) -> list:
        """`lists` [(resource type, queryset)] narrowed by every criterion."""
        out = []
        for resource_type, queryset in lists:
            for criterion in self.criteria:
                queryset = queryset.filter(
                    criterion.matcher.q(resource_type, queryset.model, criterion.values, criterion.modifier)
                )
            out.append((resource_type, queryset))
        return out

    def order(self):
        """The order for read.page_of: None (newest first, as the record pages) or (key function, descending)."""
        if not self.sort:
            return None
        descending = self.sort.startswith("-")
        name = self.sort.lstrip("-")
        if name == "_lastUpdated":
            matcher = LastUpdated()
        else:
            matcher = SPECS[self.resource_type][SORT_DATE.get(self.resource_type, "date")].matcher
        resource_type = self.resource_type
        return read.Order(lambda model: matcher.sort_key(resource_type, model), descending)


ALWAYS = {"_format", "_pretty"}


def lenient(request) -> bool:
    """Prefer: handling=lenient (FHIR's): unknown parameters are ignored (and said), not refused."""
    prefer = request.headers.get("Prefer", "")
    return any(
        part.strip().replace(" ", "") == "handling=lenient" for part in prefer.split(";") for part in part.split(",")
    )


def pairs(params) -> list[tuple[str, str]]:
    """(name, value) of every parameter, in order; one holding what no database or FHIR text can (a NUL, a lone
    surrogate) is refused here, before it reaches a query."""
    found = [(name, value) for name in params for value in params.getlist(name)]
    for name, value in found:
        if UNPRINTABLE.search(name) or UNPRINTABLE.search(value):
            raise invalid(f"{printable(name)[:100]}: holds a control character or an unpaired surrogate.", "")
    return found


def _number(name: str, text: str) -> int:
    if not re.fullmatch(r"[0-9]{1,9}", text):
        raise invalid(f"{name} must be a whole number (0 or more).", name)
    return int(text)


def _unknown(name: str, search: Search, is_lenient: bool, known: str) -> None:
    message = f"Unknown search parameter {name!r} for {known}."
    if not is_lenient:
        raise Invalid(error("not-supported", f"{message} See /metadata for the parameters implemented.", name))
    search.warnings.append(warning("not-supported", f"{message} Ignored (Prefer: handling=lenient).", name))


def parse(resource_type: str, params, *, is_lenient: bool = False, base_url: str = "") -> Search:
    """A type's search from its query (a QueryDict): raises Invalid (400) for anything it cannot honour."""
    search = Search(resource_type)
    specs = SPECS[resource_type]
    patients = []
    for name, value in pairs(params):
        base, _, modifier = name.partition(":")
        if base in ALWAYS:
            search.applied.append((name, value))
            continue
        if base in RESULT_PARAMS:
            _result_param(search, base, modifier, value)
            continue
        spec = specs.get(base)
        if spec is None:
            _unknown(name, search, is_lenient, f"{resource_type} here")
            continue
        if value == "":
            raise invalid(f"{base} needs a value.", base)
        if spec.param.type == "reference":
            if modifier:
                raise unsupported(f"{name}: modifiers on {base} are not supported.", base)
            patients.append((base, _patient_of(base, value, base_url)))
            search.applied.append((name, value))
            continue
        matcher = spec.matcher
        if modifier and modifier not in matcher.modifiers:  # :missing only where supported (DateMatcher)
            raise unsupported(f"{name}: the modifier :{modifier} is not supported on {base}.", base)
        if modifier == "missing":
            if value not in ("true", "false"):
                raise invalid(f"{name} is true or false.", base)
            if not matcher.supports_missing:
                raise unsupported(f"{name}: :missing is not supported on {base}.", base)
            values = [value]
        else:
            values = [matcher.parse(part, base) for part in _split(value)]
        search.criteria.append(Criterion(base, modifier, values, value, matcher))
        search.applied.append((name, value))
    ids = {patient_id for _, patient_id in patients}
    if not ids:
        raise Invalid(error("required", "Search in patient context: give ?patient=<id>.", "patient"))
    if len(ids) > 1:
        raise invalid("patient and subject name different patients: a search is one patient's record.", "patient")
    search.patient_id = ids.pop()
    return search


def _split(value: str) -> list[str]:
    """Comma = OR; a backslash-escaped comma is part of the value."""
    return [part for part in re.split(r"(?<!\\),", value)]


def _patient_of(name: str, value: str, base_url: str) -> str:
    if "," in value:
        raise unsupported(f"{name}: one patient per search (a search is one patient's record).", name)
    if "://" in value:
        if not base_url or not value.startswith(f"{base_url}Patient/"):
            raise invalid(f"{name}: {value!r} is not a patient on this server ({base_url}Patient/<id>).", name)
        value = value[len(base_url) :]
    if "/" in value:
        kind, _, value = value.partition("/")
        if kind != "Patient" or not value or "/" in value:
            raise invalid(f"{name}: give <id>, Patient/<id> or [base]Patient/<id>.", name)
    return value


def _result_param(search: Search, name: str, modifier: str, value: str) -> None:
    if modifier:
        raise unsupported(f"{name}:{modifier} is not supported.", name)
    if name == "_count":
        count = _number(name, value)
        search.count = min(count, read.MAX_COUNT) or search.count
        search.summary_count = search.summary_count or count == 0
    elif name == "_offset":
        search.offset = _number(name, value)
        return  # links set their own
    elif name == "_summary":
        if value != "count":
            raise unsupported("_summary: only count is supported (the total, no entries).", name)
        search.summary_count = True
    elif name == "_sort":
        allowed = sorts_of(search.resource_type)
        if value not in allowed:
            raise unsupported(f"_sort: one of {', '.join(allowed)} for {search.resource_type}.", name)
        if search.sort and search.sort != value:
            raise unsupported("_sort: one sort key only.", name)
        search.sort = value
    elif name == "_include":
        allowed = set(includes_of(search.resource_type))
        target = value.removesuffix(":Patient")
        if target not in allowed:
            raise unsupported(f"_include: only {' or '.join(sorted(allowed)) or 'none'} (the patient).", name)
        search.include_patient = True
    elif name == "_revinclude":
        if value not in ("Provenance:target", f"Provenance:target:{search.resource_type}"):
            raise unsupported("_revinclude: only Provenance:target.", name)
        search.revinclude_provenance = True
    if name != "_count":
        search.applied.append((name, value))


# --- $everything ------------------------------------------------------------------------------------------------


@dataclass
class Everything:
    since: DateValue | None = None
    types: list[str] | None = None
    offset: int = 0
    count: int = read.DEFAULT_COUNT
    applied: list[tuple[str, str]] = field(default_factory=list)
    warnings: list[Issue] = field(default_factory=list)

    def filter(self, lists: list) -> list:
        if self.since is None:
            return lists
        matcher = LastUpdated()
        return [
            (resource_type, queryset.filter(matcher.q(resource_type, queryset.model, [self.since], "")))
            for resource_type, queryset in lists
        ]


def parse_everything(params, *, is_lenient: bool = False) -> Everything:
    found = Everything()
    for name, value in pairs(params):
        base, _, modifier = name.partition(":")
        if base in ("start", "end"):
            raise unsupported(f"{base}: care-date ranges are not supported by $everything here; use _since.", base)
        if base not in EVERYTHING_PARAMS:
            if not is_lenient:
                raise Invalid(error("not-supported", f"Unknown $everything parameter {name!r}.", name))
            found.warnings.append(warning("not-supported", f"Unknown $everything parameter {name!r}: ignored.", name))
            continue
        if modifier:
            raise unsupported(f"{name}: modifiers are not supported.", base)
        if base == "_since":
            since = parse_date(value, base)
            if since.prefix != "eq" or DATE_PATTERN.fullmatch(value) is None or "T" not in value or not _zoned(value):
                raise invalid("_since is an instant: YYYY-MM-DDThh:mm:ss with its zone (Z or +hh:mm).", base)
            found.since = DateValue("ge", since.low, since.high)
        elif base == "_type":
            wanted = [part.strip() for part in value.split(",")]
            unknown = [kind for kind in wanted if kind != "Patient" and kind not in read.SEARCHABLE]
            if unknown or not all(wanted):
                raise invalid(f"_type: {', '.join(unknown) or 'an empty type'} cannot be read here.", base)
            found.types = [*(found.types or []), *wanted] if found.types is not None else wanted
        elif base == "_count":
            count = _number(base, value)
            found.count = min(count, read.MAX_COUNT) or found.count
            continue  # links set their own
        elif base == "_offset":
            found.offset = _number(base, value)
            continue
        found.applied.append((name, value))
    return found


def _zoned(value: str) -> bool:
    return value.endswith("Z") or bool(re.search(r"[+\- ]\d{2}:\d{2}$", value))


# --- Patient search (by NHS number) ---------------------------------------------------------------------------

PATIENT_SEARCH_RESULTS = {"_format", "_pretty", "_count"}


@dataclass
class PatientSearch:
    identifier: str = ""
    count: int = read.DEFAULT_COUNT
    applied: list[tuple[str, str]] = field(default_factory=list)
    warnings: list[Issue] = field(default_factory=list)


def parse_patient_search(params, *, is_lenient: bool = False) -> PatientSearch:
    """`identifier` (once), and `_format`, `_pretty`, `_count`: anything else is refused (ignored, and said,
    under Prefer: handling=lenient). The identifier's own checks stay with the view (as before)."""
    found = PatientSearch()
    identifiers = []
    for name, value in pairs(params):
        base, _, modifier = name.partition(":")
        if base == "identifier" and not modifier:
            identifiers.append(value)
        elif base in PATIENT_SEARCH_RESULTS and not modifier:
            if base == "_count":
                found.count = min(_number(base, value), read.MAX_COUNT) or found.count
        elif base in ("identifier", *PATIENT_SEARCH_RESULTS):
            raise unsupported(f"{name}: modifiers are not supported.", base)
        else:
            _unknown(name, found, is_lenient, "Patient (search by identifier only)")
            continue
        found.applied.append((name, value))
    if len(identifiers) > 1:
        raise unsupported("identifier: one NHS number per search.", "identifier")
    found.identifier = identifiers[0] if identifiers else ""
    return found
