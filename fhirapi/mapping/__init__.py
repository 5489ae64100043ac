"""Resource type <-> model, one module per area. Each module registers its mappers (incoming: plain functions of
(resource, context) that return (model, field values) or raise Unmappable; they write nothing), its builders
(outgoing) and the types the read API serves, with `fhirapi.registry`; importing this package imports them all.
"""

import importlib
import pkgutil

from ..registry import MAPPERS

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")

# Record entries written by the generic bulk upsert.
ENTRY_MAPPERS = MAPPERS
DIRECTORY_TYPES = {"Organization", "Practitioner", "PractitionerRole", "Medication"}
RESULT_TYPES = {"DiagnosticReport", "Observation"}
# Consent: an objection to sharing opens a case in IG's queue (mapping/consent.py), nothing on the record.
HANDLED_TYPES = {*ENTRY_MAPPERS, *DIRECTORY_TYPES, *RESULT_TYPES, "Patient", "CareTeam", "Consent"}
