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
    support_network = list(sections.support_network(patient, decision))
    summary_sections = sections.summary(patient, decision, settings.RECORD_SUMMARY_ITEMS)
    context = _record_context(
        patient,
        decision,
        involvements=list(sections.involvements(patient, decision, brief=True)),
        support_network=support_network,
        sections=summary_sections,
        sources=sections.sources(*(section.items for section in summary_sections), support_network),
    )
    return render(request, "patients/record/summary.html", context)


def category_page(request, patient_id, category):
    patient, decision = get_patient_for(request, patient_id, page=f"record:{category.value}")
    if category == Category.RESULTS:  # reports; standalone observations are listed as observations
        listed = sections.reports(patient, decision)
    else:
        listed = sections.entries(patient, decision, category)
    page = Paginator(listed, settings.RECORD_PAGE_SIZE).get_page(request.GET.get("page"))
    context = _record_context(
        patient,
        decision,
        section=sections.Section(category=category, items=page.object_list),
        page=page,
        empty_title="Reports" if category == Category.RESULTS else "",
    )
    if category == Category.RESULTS and page.number == 1:
        context["tests"] = sections.latest_by_test(patient, decision)
        standalone = sections.standalone_observations(patient, decision)
        context["observations"] = list(standalone[: settings.RECORD_PAGE_SIZE])
        context["observations_total"] = standalone.count()
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
    newest_first = sections.test_history(patient, decision, code)
    if not newest_first:
        raise Http404("No results for this test")
    dated = [observation for observation in reversed(newest_first) if observation.effective_at is not None]
    context = _record_context(
        patient,
        decision,
        test=newest_first[0],  # the newest dated one, or (none dated) the last recorded
        history=newest_first,
        first_dated=dated[0] if dated else None,
        undated=len(newest_first) - len(dated),
        history_newest_first=newest_first,
        chart=trend_chart(dated),  # a chart needs a date for every point: undated ones are in the table
    )
    return render(request, "patients/record/result_trend.html", context)
