"""The record on paper: the summary or one category laid out for printing (or saving as a PDF).

Printing is a page of its own, through the one access decision and audited as "record:print:<part>", so IG can
tell a look from a copy taken away. Paper outlives the screen it came from: every printed page names the patient,
and the copy says who printed it, when, and that it shows the record as it was then (hazard H-08).
"""

from django.conf import settings
from django.http import Http404
from django.shortcuts import render
from django.utils import timezone

from patients.categories import Category
from sharing import record as sections
from sharing.access import get_patient_for

SUMMARY = "summary"
CATEGORIES = {category.value: category for category in Category}
# A category's print holds its newest entries up to this many, and says so when there are more: a copy of a
# long history is a few pages, not a ream, and never claims to be all of it when it is not.
PRINT_MAX_ENTRIES = 200


def record_print(request, patient_id):
    part = request.GET.get("page") or SUMMARY
    category = CATEGORIES.get(part)
    if part != SUMMARY and category is None:
        raise Http404("No such part of the record to print")
    patient, decision = get_patient_for(request, patient_id, page=f"record:print:{part}")
    context = {
        "patient": patient,
        "decision": decision,
        "part": part,
        "title": category.label if category else "Summary",
        "printed_at": timezone.localtime(),
        "printed_by": decision.professional,
        "printing": True,
    }
    context.update(_summary(patient, decision) if category is None else _category(patient, decision, category))
    return render(request, "patients/record/print.html", context)


def _summary(patient, decision) -> dict:
    """What the summary page shows, the same queries."""
    support_network = list(sections.support_network(patient, decision))
    summary_sections = sections.summary(patient, decision, settings.RECORD_SUMMARY_ITEMS)
    return {
        "sections": summary_sections,
        "involvements": list(sections.involvements(patient, decision, brief=True)),
        "support_network": support_network,
        "sources": sections.sources(*(section.items for section in summary_sections), support_network),
    }


def _category(patient, decision, category) -> dict:
    """One category's newest entries (results: reports, then standalone observations), with how many in all."""
    if category == Category.RESULTS:
        listed = sections.reports(patient, decision)
    else:
        listed = sections.entries(patient, decision, category)
    items = list(listed[:PRINT_MAX_ENTRIES])
    context = {
        "section": sections.Section(category=category, items=items),
        "total": listed.count() if len(items) == PRINT_MAX_ENTRIES else len(items),
        "withheld": sections.withheld_count(patient, decision, category),
    }
    sourced = [items]
    if category == Category.RESULTS:
        standalone = sections.standalone_observations(patient, decision)
        context["observations"] = list(standalone[:PRINT_MAX_ENTRIES])
        context["observations_total"] = standalone.count()
        sourced.append(context["observations"])
    if category == Category.TEAMS:
        context["support_network"] = list(sections.support_network(patient, decision))
        sourced = [context["support_network"]]
    context["sources"] = sections.sources(*sourced)
    return context
