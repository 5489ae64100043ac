"""Problems reported with entries (issue 17): how a page names an entry, finding it only among what the viewer may
see, what it said, and the email to its source organisation's nominated contact.

An entry is named in URLs as "<category value>-<id>" ("medications-42"). The name is never trusted: it is looked up
among the viewer's visible entries of that patient (`visible()`), so an entry of another patient, withdrawn,
sensitive or not shared is simply not found — the same answer as no such entry.
"""

import re

from django.conf import settings
from django.utils import timezone

from patients.categories import REGISTRY, Category
from patients.models import Patient

from .access import Decision, visible

ENTRY_NAME = re.compile(r"^(?P<category>[a-z][a-z-]*)-(?P<pk>[1-9][0-9]{0,17})$")

# What an entry says, per model: its headline field, then any detail worth naming beside it.
_HEADLINE_FIELDS = ("name", "substance", "vaccine", "title", "text", "service")
_DETAIL_FIELDS = ("dosage", "reaction")


def entry_name(entry) -> str:
    """The entry's name in a report-a-problem URL."""
    return f"{entry.category.value}-{entry.pk}"


def visible_entry(patient: Patient, decision: Decision, name: str):
    """The entry `name` names, if it is this patient's and the decision lets the viewer see it; else None."""
    match = ENTRY_NAME.match(name or "")
    if match is None:
        return None
    try:
        category = Category(match["category"])
    except ValueError:
        return None
    if category not in REGISTRY:  # involved teams: no entry model
        return None
    model = REGISTRY[category].model
    entries = model.objects.filter(patient=patient, pk=int(match["pk"])).select_related("source_organisation")
    return visible(entries, decision).first()


def headline(entry) -> str:
    """What the entry is, in a few words: "Metformin 500mg tablets", "Penicillin"."""
    for name in _HEADLINE_FIELDS:
        value = getattr(entry, name, "")
        if value:
            return str(value)
    return entry.category.label


def describe(entry) -> str:
    """What the entry said, kept with the report (EntryProblem.entry_summary, at most 500 characters)."""
    details = [str(getattr(entry, name)) for name in _DETAIL_FIELDS if getattr(entry, name, "")]
    summary = f"{entry.category.label}: {'; '.join([headline(entry), *details])}"
    return summary if len(summary) <= 500 else summary[:499] + "…"


def email_for(*, problem, entry, professional) -> tuple[str, str]:
    """(subject, body) of the email to the source's contact. It names the entry by the source's own identifier and
    the patient by NHS number only — nothing else of the record — and who reported it, from where."""
    source = problem.source_organisation
    reporter = f"{problem.reporter_name}, {professional.organisation.name} ({problem.reporter_organisation_code})"
    reported_at = timezone.localtime(problem.reported_at)
    subject = f"{settings.SERVICE_NAME}: a problem reported with one of your entries"
    body = "\n".join(
        [
            f"A professional using {settings.SERVICE_NAME} has reported that an entry {source.name} shares "
            "looks wrong.",
            "",
            f"Entry: {entry.category.label}, your identifier {entry.source_id}",
            f"Patient: NHS number {problem.patient.nhs_number_display}",
            f"Reported by: {reporter}",
            f"Their email address: {professional.user.email}",
            f"Reported at: {reported_at:%d %b %Y, %H:%M} (UK time)",
            f"Reference: entry problem {problem.pk}",
            "",
            "What looks wrong, in their words:",
            problem.what_is_wrong,
            "",
            "Please check the entry in your own system and correct it there if it is wrong: the shared record shows",
            "what your organisation sends, and a correction you send replaces it. Reply to the professional if you",
            "need to know more. Information governance can see this report.",
        ]
    )
    return subject, body
