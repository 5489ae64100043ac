"""What the viewer may be told about sources that disagree on who the patient is (H-06).

The banner says where sources disagree ("Another source holds a different address") so that a clinician checks
before acting on a detail. Which source holds it is told only where the viewer may see that organisation's
entries in this record under the record's own rules (sharing.access.visible: sharing agreements, the sensitive
flag, an upheld objection):
- the viewer's own organisation is always named (they hold its record anyway);
- after an upheld objection, no other organisation is named (nothing of theirs is shown either);
- otherwise an organisation is named only if the viewer can see at least one of its entries in this patient's
  record. An organisation that shares nothing with the viewer, or whose entries here are all sensitive, is "another
  source": naming it would tell the viewer what the record does not (that a sexual health clinic knows them).
A restricted patient's (S-flag) address and phone disagreements are not mentioned at all: nothing of those
details is shown.

Costs one query (the patient's source copies) on every record page, and one more only when sources disagree.
"""

from dataclasses import dataclass
from functools import reduce
from operator import or_

from django.db.models import Exists, OuterRef

from directory.models import Organisation
from patients.demographics import disagreements
from patients.models import ENTRY_MODELS, Patient, SourceDemographics, SupportPerson

from .access import Decision, visible

HIDDEN_WHEN_RESTRICTED = {"address", "phone"}


@dataclass(frozen=True)
class Note:
    """One disagreement as the banner says it."""

    field: str
    text: str  # "St Elsewhere Hospital and another source hold a different address"


def notes_for(patient: Patient, decision: Decision | None) -> list[Note]:
    sources = list(SourceDemographics.objects.filter(patient=patient).select_related("organisation"))
    found = [
        disagreement
        for disagreement in disagreements(sources, patient.registered_gp_id)
        if not (patient.restricted and disagreement.field in HIDDEN_WHEN_RESTRICTED)
    ]
    if not found:
        return []
    differing = {source.organisation for disagreement in found for source in disagreement.sources}
    nameable = nameable_organisations(patient, decision, differing)
    return [Note(d.field, sentence([s.organisation for s in d.sources], nameable, d.holds)) for d in found]


def nameable_organisations(patient: Patient, decision: Decision | None, organisations) -> set[int]:
    """The ids of these organisations the viewer may be told of, in one query (see the module's rules)."""
    if decision is None or not decision.allowed:
        return set()
    ids = {organisation.pk for organisation in organisations}
    named = {decision.organisation_id} & ids
    if decision.opted_out or not ids - named:
        return named
    models = [*ENTRY_MODELS.values(), *([] if patient.restricted else [SupportPerson])]  # contacts hidden
    seen = [
        Exists(visible(model.objects.filter(patient=patient, source_organisation=OuterRef("pk")), decision))
        for model in models
    ]
    shown = Organisation.objects.filter(pk__in=ids - named).filter(reduce(or_, seen)).values_list("pk", flat=True)
    return named | set(shown)


def sentence(organisations: list, nameable: set[int], holds: str) -> str:
    """ "St Elsewhere Hospital and 2 other sources hold a different address": those named first, the rest counted."""
    names = sorted({o.name for o in organisations if o.pk in nameable})
    unnamed = len({o.pk for o in organisations if o.pk not in nameable})
    verb = "holds" if len(names) + unnamed == 1 else "hold"
    if unnamed:
        names.append("another source" if unnamed == 1 else f"{unnamed} other sources")
    who = names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"
    return f"{who[0].upper()}{who[1:]} {verb} {holds}"
