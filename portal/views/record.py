"""The record pages. Each goes through `get_patient_for()`: one access decision, one audit event."""

from django.conf import settings
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import render

from patients.categories import Category
from patients.charts import trend_chart
from sharing import record as sections
from sharing.access import get_patient_for


def _record_context(patient, decision, **extra):
    """What every record page shows above its content: the banner, and who is involved."""
    return {
        "patient": patient,
        "decision": decision,
        "categories": [c for c in Category],
        **extra,
    }


def summary(request, patient_id):
    patient, decision = get_patient_for(request, patient_id, page="record:summary")
    context = _record_context(
        patient,
        decision,
        involvements=list(sections.involvements(patient, decision, brief=True)),
        support_network=list(sections.support_network(patient, decision)),
        sections=sections.summary(patient, decision, settings.RECORD_SUMMARY_ITEMS),
    )
    return render(request, "patients/record/summary.html", context)


def category_page(request, patient_id, category):
    patient, decision = get_patient_for(request, patient_id, page=f"record:{category.value}")
    page = Paginator(sections.entries(patient, decision, category), settings.RECORD_PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    context = _record_context(
        patient,
        decision,
        section=sections.Section(category=category, items=page.object_list),
        page=page,
    )
    if category == Category.RESULTS and page.number == 1:
        context["tests"] = sections.latest_by_test(patient, decision)
    context["withheld"] = sections.withheld_count(patient, decision, category)
    if category == Category.TEAMS:
        context["support_network"] = list(sections.support_network(patient, decision))
    # Only htmx's own swaps get the fragment: boosted links and history restores need the whole page.
    fragment = request.htmx and not request.htmx.boosted and not request.htmx.history_restore_request
    template = "patients/record/category.htmx.html" if fragment else "patients/record/category.html"
    return render(request, template, context)


def coverage(request, patient_id):
    patient, decision = get_patient_for(request, patient_id, page="record:coverage")
    context = _record_context(patient, decision, coverage=sections.coverage(patient, decision))
    return render(request, "patients/record/coverage.html", context)


def result_trend(request, patient_id, code):
    patient, decision = get_patient_for(request, patient_id, page="record:results:trend")
    history = sections.test_history(patient, decision, code)
    if not history:
        raise Http404("No results for this test")
    latest = history[-1]
    context = _record_context(
        patient,
        decision,
        test=latest,
        history=history,
        history_newest_first=list(reversed(history)),
        chart=trend_chart(history),
    )
    return render(request, "patients/record/result_trend.html", context)
