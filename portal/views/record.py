"""The record pages. Each goes through `get_patient_for()`: one access decision, one audit event."""

from django.conf import settings
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import render

from patients.categories import Category
from patients.charts import pair_chart, trend_chart
from sharing import changes as changes_since
from sharing import filters as record_filters
from sharing import record as sections
from sharing import results
from sharing.access import get_patient_for

from ..filters import RecordFilterForm


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
    changes = changes_since.since_last_look(request.user, patient, decision)
    changes_since.mark(summary_sections, changes)  # "New" / "Updated" on what arrived since their last look
    context = _record_context(
        patient,
        decision,
        involvements=list(sections.involvements(patient, decision, brief=True)),
        support_network=support_network,
        sections=summary_sections,
        changes=changes,
        sources=sections.sources(*(section.items for section in summary_sections), support_network),
    )
    return render(request, "patients/record/summary.html", context)


def category_page(request, patient_id, category):
    patient, decision = get_patient_for(request, patient_id, page=f"record:{category.value}")
    if category == Category.RESULTS:  # reports; standalone observations are listed as observations
        listed = sections.reports(patient, decision)
    else:
        listed = sections.entries(patient, decision, category)
    # The list's filters (sharing.filters) only ever narrow it; a value the form cannot read is a field error.
    organisations = record_filters.organisations(patient, decision, [category])
    filter_form = RecordFilterForm(request.GET, category=category, organisations=organisations)
    filters = filter_form.filters() if filter_form.is_valid() else None
    listed = record_filters.narrow(listed, category, filters) if filters else listed.none()
    page = Paginator(listed, settings.RECORD_PAGE_SIZE).get_page(request.GET.get("page"))
    context = _record_context(
        patient,
        decision,
        section=sections.Section(category=category, items=page.object_list),
        page=page,
        empty_title="Reports" if category == Category.RESULTS else "",
        filter_form=filter_form,
        filters=filters,
    )
    if category == Category.RESULTS and page.number == 1:
        context["tests"] = sections.latest_by_test(patient, decision)
        context["panels"] = results.panels(context["tests"])  # grouped by report, abnormal first
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
    """One test's results over time; `?with=<code>` draws a second test (of its panel, say) on the same time axis."""
    patient, decision = get_patient_for(request, patient_id, page="record:results:trend")
    main = results.trend(patient, decision, code)
    if main is None:
        raise Http404("No results for this test")
    with_code = request.GET.get("with", "").strip()
    other = results.trend(patient, decision, with_code) if with_code and with_code != code else None
    context = _record_context(
        patient,
        decision,
        test=main.test,
        history=main.history,
        first_dated=main.first_dated,
        undated=main.undated,
        history_newest_first=main.history,
        # A chart needs a date for every point: undated ones are in the table.
        chart=trend_chart(main.dated, abnormal=results.is_abnormal),
        compare_choices=results.compare_choices(patient, decision, main.test),
        other=other,
        other_missing=bool(with_code) and with_code != code and other is None,
    )
    if other:
        context["pair"] = pair_chart(main.dated, other.dated, abnormal=results.is_abnormal)
        context["both"] = results.both_newest_first(main, other)
        context["compared"] = [main.test, other.test]
    return render(request, "patients/record/result_trend.html", context)
