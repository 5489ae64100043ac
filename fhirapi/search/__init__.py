"""Honest search: the parameters each type's search implements, and the engine that applies them.

In five modules, lowest first: `values` (tokens, dates, prefixes; the 400 `Invalid`), `json_arrays` (matching
inside kept JSON on PostgreSQL and SQLite), `matchers` (one criterion on one queryset), `registry` (each type's
parameters: what is accepted and declared) and `query` (a request's parameters parsed against the registry).

The registry (`params_of`, `RESULT_PARAMS`, `includes_of`, `revincludes_of`, `EVERYTHING_PARAMS`, `SORTS`) is
what the parser accepts and what the CapabilityStatement declares, from one table: nothing is declared that
is not applied, nothing applied that is not declared. FHIR R4's own names and meanings, on what carerecord
truly holds; what it does not hold is refused (400), never silently ignored — except, when the client asks for
it (`Prefer: handling=lenient`), an unknown parameter, which is then left out, said in a warning and kept out
of the links.

A search is always in one patient's context and narrows the record's own querysets (`read.resources_of`: the
access decision, sharing filter, sensitive entries, entered-in-error withdrawal and objections have already
applied). Each criterion matches what the resource given back says: an entry received as FHIR is matched on
its kept resource (the latest version's JSON: statuses, identifiers, an Observation's code, `meta.lastUpdated`)
or on the columns the mapper filled from it; an entry built from its row on the columns its builder writes out.
Where carerecord holds less than the resource said, the difference is written beside the parameter.
"""

from .query import (
    PATIENT_SEARCH_RESULTS,
    Everything,
    PatientSearch,
    Search,
    lenient,
    pairs,
    parse,
    parse_everything,
    parse_patient_search,
)
from .registry import (
    EVERYTHING_PARAMS,
    RESULT_PARAMS,
    SORTS,
    Param,
    includes_of,
    params_of,
    revincludes_of,
    sorts_of,
)
from .values import CONDITION_CATEGORY, CONDITION_CLINICAL, CONDITION_VERIFICATION, Invalid

__all__ = [
    "CONDITION_CATEGORY",
    "CONDITION_CLINICAL",
    "CONDITION_VERIFICATION",
    "EVERYTHING_PARAMS",
    "PATIENT_SEARCH_RESULTS",
    "RESULT_PARAMS",
    "SORTS",
    "Everything",
    "Invalid",
    "Param",
    "PatientSearch",
    "Search",
    "includes_of",
    "lenient",
    "pairs",
    "params_of",
    "parse",
    "parse_everything",
    "parse_patient_search",
    "revincludes_of",
    "sorts_of",
]
