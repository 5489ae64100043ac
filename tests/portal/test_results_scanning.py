"""Results a clinician can scan (issue 17): the latest results grouped by the report they came in, abnormal first
(flagged, critical, or outside a numeric reference range), never hiding a normal one; units as clinicians write
them; two tests on one chart with a table of both."""

import datetime
import re
from decimal import Decimal
from types import SimpleNamespace

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from audit.models import AccessEvent
from patients.charts import HEIGHT, PAIR_LEFT, PAIR_TOP, WIDTH, pair_chart
from patients.models import Result
from patients.units import UCUM
from sharing import results
from tests import factories

pytestmark = pytest.mark.django_db

UTC = datetime.UTC
CREATININE, EGFR, UREA, HB, WCC, PLATELETS, PULSE = (
    "14682-9",
    "62238-1",
    "22664-7",
    "718-7",
    "6690-2",
    "777-3",
    "8867-4",
)


def at(year, month=3, day=1):
    return datetime.datetime(year, month, day, 9, 30, tzinfo=UTC)


def report(patient, source, name, when, *values, **fields):
    """A report with its values: (code, name, value, unit_code, low, high, flag), in the order the lab sent them."""
    result = factories.ResultFactory(
        patient=patient, source_organisation=source, name=name, effective_at=when, **fields
    )
    for code, test, value, unit, low, high, flag in values:
        factories.ObservationFactory(
            result=result,
            code=code,
            name=test,
            value=None if value is None else Decimal(value),
            value_text="" if value is not None else "Not detected",
            unit=unit,
            unit_code=unit,
            unit_system=UCUM,
            reference_low=None if low is None else Decimal(low),
            reference_high=None if high is None else Decimal(high),
            flag=flag,
        )
    return result


def fbc(patient, source, when, wcc="7.1", wcc_flag="", hb="140"):
    return report(
        patient,
        source,
        "Full blood count",
        when,
        (HB, "Haemoglobin", hb, "g/L", "130", "170", ""),
        (WCC, "White cell count", wcc, "10*9/L", "4", "11", wcc_flag),
        (PLATELETS, "Platelets", "250", "10*9/L", "150", "400", ""),
    )


def renal(patient, source, when, creatinine="85", egfr="88", creatinine_flag=""):
    return report(
        patient,
        source,
        "Urea and electrolytes",
        when,
        (UREA, "Urea", "5.1", "mmol/L", "2.5", "7.8", ""),
        (CREATININE, "Creatinine", creatinine, "umol/L", "59", "104", creatinine_flag),
        (EGFR, "eGFR", egfr, "mL/min/{1.73_m2}", "60", None, ""),
    )


def pulse(patient, source, when, value="72"):
    reading = factories.ResultFactory(
        patient=patient,
        source_organisation=source,
        kind=Result.Kind.OBSERVATION,
        observation_category="vital-signs",
        name="Pulse rate",
        effective_at=when,
    )
    factories.ObservationFactory(
        result=reading,
        code=PULSE,
        name="Pulse rate",
        value=Decimal(value),
        unit="/min",
        unit_code="/min",
        unit_system=UCUM,
        reference_low=Decimal("60"),
        reference_high=Decimal("100"),
        flag="",
    )
    return reading


def results_page(client, user, patient):
    client.force_login(user)
    response = client.get(reverse("record-results", args=[patient.pk]))
    assert response.status_code == 200
    return response


def latest_section(response):
    body = response.content.decode()
    start = body.index('id="section-tests"')
    return body[start : body.index("</section>", start)]


def shown(panels):
    """[(panel title, [test names in order])] as the page lays them out."""
    return [(panel.title, [row.observation.name for row in panel.rows]) for panel in panels]


@pytest.mark.hazard("H-07")
def test_latest_results_are_grouped_by_report_abnormal_reports_first_and_abnormal_values_first_within(
    client, clinician, patient, other_organisation
):
    renal(patient, other_organisation, at(2026, 2))  # the newest report, all normal
    fbc(patient, other_organisation, at(2026, 1), wcc="14.2", wcc_flag="H")  # older, with a high white cell count
    pulse(patient, other_organisation, at(2026, 3))  # sent on its own, newest of all
    response = results_page(client, clinician, patient)
    assert shown(response.context["panels"]) == [
        ("Full blood count", ["White cell count", "Haemoglobin", "Platelets"]),  # abnormal first, then lab order
        ("Urea and electrolytes", ["Urea", "Creatinine", "eGFR"]),
        ("Other tests", ["Pulse rate"]),
    ]
    section = latest_section(response)
    headings = [
        re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", h)).strip()
        for h in re.findall(r'<h3 class="nhsuk-heading-s app-results-panel__title">(.*?)</h3>', section, re.S)
    ]
    assert headings == ["Full blood count 1 abnormal", "Urea and electrolytes", "Other tests"]
    # Each report's name comes with its date and source; the tests sent alone carry their own.
    fbc_part = section[section.index("Full blood count") : section.index("Urea and electrolytes")]
    assert f'From <span class="app-source__org">{other_organisation.name}</span>' in fbc_part
    assert '<time datetime="2026-01-01T09:30:00+00:00">1 Jan 2026</time>' in fbc_part
    other_part = section[section.index(">Other tests") :]
    assert ">Date</th>" in other_part and ">From</th>" in other_part and "1 Mar 2026" in other_part


@pytest.mark.hazard("H-07")
def test_a_value_outside_its_numeric_range_is_abnormal_though_the_source_did_not_flag_it(
    client, clinician, patient, other_organisation
):
    fbc(patient, other_organisation, at(2026, 2))  # newer, normal
    renal(patient, other_organisation, at(2025, 6), creatinine="131", egfr="48")  # unflagged, but out of range
    response = results_page(client, clinician, patient)
    assert shown(response.context["panels"])[0] == ("Urea and electrolytes", ["Creatinine", "eGFR", "Urea"])
    section = latest_section(response)
    renal_part = section[section.index("Urea and electrolytes") : section.index("Full blood count")]
    assert "2 abnormal" in renal_part
    assert '<strong class="nhsuk-tag nhsuk-tag--red">Above range</strong>' in renal_part
    assert '<strong class="nhsuk-tag nhsuk-tag--blue">Below range</strong>' in renal_part  # eGFR: "at least 60"
    assert renal_part.count("Not flagged by the source") == 2
    assert "<strong>131 µmol/L</strong>" in renal_part and "<strong>48 mL/min/1.73m²</strong>" in renal_part
    assert renal_part.count("app-results-row--abnormal") == 2  # the bar, beside the words


def observation(**fields):
    base = dict(flag="", interpretation="", value=None, reference_low=None, reference_high=None)
    return SimpleNamespace(**{**base, **fields})


@pytest.mark.hazard("H-07")
@pytest.mark.parametrize(
    "fields, expected",
    [
        ({"flag": "H", "value": Decimal("5")}, results.FLAGGED),
        ({"flag": "L"}, results.FLAGGED),
        (
            {"flag": "A", "value": Decimal("5"), "reference_low": Decimal("1"), "reference_high": Decimal("9")},
            results.FLAGGED,
        ),
        ({"interpretation": "Critical high"}, results.CRITICAL),
        ({"interpretation": "critical value: phoned to ward"}, results.CRITICAL),
        ({"interpretation": "Not critical"}, ""),
        ({"interpretation": "Non-critical"}, ""),
        ({"value": Decimal("11.1"), "reference_low": Decimal("4"), "reference_high": Decimal("11")}, results.ABOVE),
        ({"value": Decimal("3.9"), "reference_low": Decimal("4"), "reference_high": Decimal("11")}, results.BELOW),
        ({"value": Decimal("4"), "reference_low": Decimal("4"), "reference_high": Decimal("11")}, ""),  # bounds are in
        ({"value": Decimal("11"), "reference_low": Decimal("4"), "reference_high": Decimal("11")}, ""),
        ({"value": Decimal("59"), "reference_low": Decimal("60")}, results.BELOW),  # "at least 60"
        ({"value": Decimal("6"), "reference_high": Decimal("5")}, results.ABOVE),  # "up to 5"
        ({"value": Decimal("900")}, ""),  # no range: nothing to be outside of
        ({"value": None, "reference_low": Decimal("1"), "reference_high": Decimal("2")}, ""),  # a text result
    ],
)
def test_what_counts_as_abnormal(fields, expected):
    assert results.abnormality(observation(**fields)) == expected


@pytest.mark.hazard("H-07")
def test_a_critical_interpretation_is_marked_in_words(client, clinician, patient, other_organisation):
    result = report(
        patient, other_organisation, "Potassium", at(2026, 1), ("2823-3", "Potassium", "6.9", "mmol/L", None, None, "")
    )
    result.observations.update(interpretation="Critical high")
    fbc(patient, other_organisation, at(2026, 3))
    response = results_page(client, clinician, patient)
    assert [panel.title for panel in response.context["panels"]] == ["Potassium", "Full blood count"]
    assert (
        '<strong class="nhsuk-tag nhsuk-tag--red">Critical</strong><span class="app-cell-note">Critical high</span>'
        in (latest_section(response))
    )


@pytest.mark.hazard("H-07")
def test_nothing_is_dropped_every_visible_test_is_shown_once_normal_ones_too(
    client, clinician, patient, other_organisation, organisation
):
    fbc(patient, other_organisation, at(2024))  # older values of the same tests: only the latest shown
    fbc(patient, other_organisation, at(2026), wcc="2.1", wcc_flag="L")
    renal(patient, organisation, at(2025))
    pulse(patient, other_organisation, at(2026, 4))
    # Two tests sent with no code are two tests, not one.
    report(
        patient,
        other_organisation,
        "Urine dipstick",
        at(2026, 5),
        ("", "Urine protein", None, "", None, None, ""),
        ("", "Urine glucose", None, "", None, None, ""),
    )
    response = results_page(client, clinician, patient)
    names = [name for _, tests in shown(response.context["panels"]) for name in tests]
    expected = ["Haemoglobin", "White cell count", "Platelets", "Urea", "Creatinine", "eGFR", "Pulse rate"]
    assert sorted(names) == sorted([*expected, "Urine protein", "Urine glucose"])
    assert len(names) == len(response.context["tests"])
    assert latest_section(response).count("data-test-row") == len(names) == 9
    assert response.context["tests"][0].count  # each still says how many results it has
    counts = {o.name: o.count for o in response.context["tests"]}
    assert counts["Haemoglobin"] == 2 and counts["Urea"] == 1


@pytest.mark.hazard("H-11")
def test_grouping_shows_only_what_the_viewer_may_see(client, clinician, patient, other_organisation):
    fbc(patient, other_organisation, at(2026))
    hidden = renal(patient, other_organisation, at(2026, 2), creatinine="300", creatinine_flag="H")
    hidden.sensitive = True
    hidden.save()
    response = results_page(client, clinician, patient)
    assert [panel.title for panel in response.context["panels"]] == ["Full blood count"]
    assert "Creatinine" not in latest_section(response)
    assert AccessEvent.objects.filter(patient_id=patient.pk).count() == 1


def test_the_results_page_is_the_same_few_queries_however_many_reports(client, clinician, patient, other_organisation):
    fbc(patient, other_organisation, at(2020))
    pulse(patient, other_organisation, at(2020, 7))
    client.force_login(clinician)
    url = reverse("record-results", args=[patient.pk])
    client.get(url)
    with CaptureQueriesContext(connection) as few:
        client.get(url)
    for year in range(2021, 2026):
        fbc(patient, other_organisation, at(year), wcc="12", wcc_flag="H")
        renal(patient, other_organisation, at(year, 6))
        pulse(patient, other_organisation, at(year, 7))
    with CaptureQueriesContext(connection) as many:
        response = client.get(url)
    assert len(response.context["panels"]) == 3
    assert len(many) == len(few)


@pytest.mark.hazard("H-10")
def test_units_on_the_results_page_are_as_clinicians_write_them_and_unknown_ones_as_sent(
    client, clinician, patient, other_organisation
):
    fbc(patient, other_organisation, at(2026))
    renal(patient, other_organisation, at(2026, 2))
    local = report(
        patient, other_organisation, "Iron studies", at(2026, 3), ("FE", "Ferritin", "40", "", "30", "400", "")
    )
    local.observations.update(unit="x10^9/L", unit_code="", unit_system="")  # an HL7 v2 unit, not UCUM
    section = latest_section(results_page(client, clinician, patient))
    assert "140 g/L" in section and "7.1 ×10⁹/L" in section and "4 to 11 ×10⁹/L" in section
    assert "85 µmol/L" in section and "88 mL/min/1.73m²" in section and "at least 60 mL/min/1.73m²" in section
    assert "40 x10^9/L" in section  # as sent: never given a second multiplication sign
    assert "10*9" not in section and "umol" not in section and "{1.73_m2}" not in section


def trend(client, user, patient, code, **query):
    client.force_login(user)
    response = client.get(reverse("record-result-trend", args=[patient.pk, code]), query)
    assert response.status_code == 200
    return response


@pytest.fixture
def kidney_history(patient, other_organisation):
    """Five years of renal profiles: creatinine rising (flagged high in the last two), eGFR falling."""
    for year, creatinine, egfr in [(2021, 80, 92), (2022, 88, 84), (2023, 97, 72), (2024, 112, 58), (2025, 128, 49)]:
        renal(patient, other_organisation, at(year), str(creatinine), str(egfr), "H" if creatinine > 104 else "")
    return patient


@pytest.mark.hazard("H-10")
def test_two_tests_on_one_chart_each_with_its_own_labelled_scale_and_a_table_of_both(client, clinician, kidney_history):
    response = trend(client, clinician, kidney_history, CREATININE, **{"with": EGFR})
    pair = response.context["pair"]
    assert [p.label.split(": ")[1] for p in pair.first.points] == [
        "80 µmol/L",
        "88 µmol/L",
        "97 µmol/L",
        "112 µmol/L",
        "128 µmol/L",
    ]
    assert len(pair.first.points) == len(pair.second.points) == 5
    # One time axis: the two tests' results of one day sit one above the other.
    assert [p.x for p in pair.first.points] == [p.x for p in pair.second.points]
    # Each its own scale: creatinine rises on the left's, eGFR falls on the right's.
    first_y, second_y = [p.y for p in pair.first.points], [p.y for p in pair.second.points]
    assert first_y == sorted(first_y, reverse=True) and second_y == sorted(second_y)
    assert float(pair.first.ticks[0].label) <= 80 and float(pair.first.ticks[-1].label) >= 128
    assert float(pair.second.ticks[0].label) <= 49 and float(pair.second.ticks[-1].label) >= 92
    # Without colour: circles and a solid line for one, squares and a dashed line for the other, each named.
    assert (pair.first.side, pair.first.marker, pair.second.side, pair.second.marker) == (
        "left",
        "circle",
        "right",
        "square",
    )
    body = response.content.decode()
    assert '<h1 class="nhsuk-heading-l">Creatinine and eGFR' in body
    assert "Creatinine (µmol/L): circles, solid line, left axis" in body
    assert "eGFR (mL/min/1.73m²): squares, dashed line, right axis" in body
    assert ">Creatinine (µmol/L)</text>" in body and ">eGFR (mL/min/1.73m²)</text>" in body
    assert body.count('data-series="first"') == 5 and body.count('data-series="second"') == 5
    assert body.count("app-chart__mark--abnormal") == 4  # creatinine flagged twice, eGFR below 60 twice
    # The table has every result of both.
    table = body[body.index("All Creatinine and eGFR results, newest first") :]
    rows = re.findall(r'<tr class="nhsuk-table__row" role="row">', table)
    assert len(rows) == 1 + 10
    assert [o.name for o in response.context["both"]][:2] in (["Creatinine", "eGFR"], ["eGFR", "Creatinine"])
    assert response.context["both"][0].effective_at == at(2025)


def test_the_trend_offers_to_compare_with_the_other_tests_of_its_report(client, clinician, kidney_history):
    response = trend(client, clinician, kidney_history, CREATININE)
    assert [(c.code, c.name) for c in response.context["compare_choices"]] == [(UREA, "Urea"), (EGFR, "eGFR")]
    body = response.content.decode()
    url = reverse("record-result-trend", args=[kidney_history.pk, CREATININE])
    assert f'<a href="{url}?with={EGFR}">eGFR<span class="nhsuk-u-visually-hidden"> with Creatinine</span></a>' in body
    compared = trend(client, clinician, kidney_history, CREATININE, **{"with": EGFR}).content.decode()
    assert '<span aria-current="page"><strong>eGFR</strong> (shown)</span>' in compared
    assert f'<a href="{url}">Creatinine on its own</a>' in compared


@pytest.mark.hazard("H-11")
def test_compare_with_a_test_the_viewer_may_not_see_shows_the_one_test_alone(
    client, clinician, patient, other_organisation
):
    renal(patient, other_organisation, at(2025))
    secret = report(
        patient,
        other_organisation,
        "Viral load",
        at(2025, 6),
        ("25836-8", "HIV viral load", "40", "{copies}/mL", None, None, ""),
    )
    secret.sensitive = True
    secret.save()
    for asked in ("25836-8", "no-such-test", CREATININE):
        response = trend(client, clinician, patient, CREATININE, **{"with": asked})
        assert response.context["other"] is None and "pair" not in response.context
        body = response.content.decode()
        assert "HIV" not in body and "Viral load" not in body and "copies" not in body
        assert ("There are no results you can see for the test to compare with" in body) == (asked != CREATININE)
    assert AccessEvent.objects.filter(patient_id=patient.pk, page="record:results:trend").count() == 3


def test_a_two_test_trend_is_a_few_queries_more_than_one_test(
    client, clinician, kidney_history, django_assert_max_num_queries
):
    client.force_login(clinician)
    url = reverse("record-result-trend", args=[kidney_history.pk, CREATININE])
    client.get(url)
    with CaptureQueriesContext(connection) as one:
        client.get(url)
    with django_assert_max_num_queries(len(one) + 1):  # the second test's history
        client.get(url, {"with": EGFR})


@pytest.mark.hazard("H-10")
def test_the_one_test_chart_marks_an_out_of_range_value_as_the_results_page_does(client, clinician, kidney_history):
    chart = trend(client, clinician, kidney_history, EGFR).context["chart"]
    assert [p.abnormal for p in chart.points] == [False, False, False, True, True]  # below 60, never flagged


@pytest.mark.hazard("H-08")
def test_the_trend_chart_says_to_scroll_left_for_earlier_results(client, clinician, kidney_history):
    for query in ({}, {"with": EGFR}):
        body = trend(client, clinician, kidney_history, CREATININE, **query).content.decode()
        hint = body.index('<p class="app-chart__hint">Scroll left for earlier results</p>')
        assert hint < body.index('<div class="app-chart__scroll"')


def point(year, value, flag=""):
    return SimpleNamespace(
        value=Decimal(value),
        effective_at=datetime.datetime(year, 1, 15, tzinfo=UTC),
        display_value=value,
        abnormal=bool(flag),
    )


def test_pair_chart_geometry():
    chart = pair_chart([point(2020, "80"), point(2022, "120", "H")], [point(2021, "90"), point(2023, "50")])
    assert chart.first.points[0].x == PAIR_LEFT and chart.second.points[-1].x == chart.plot_right == WIDTH - 56
    assert chart.first.points[0].x < chart.second.points[0].x < chart.first.points[1].x < chart.second.points[1].x
    for series in (chart.first, chart.second):
        assert all(PAIR_TOP <= p.y <= HEIGHT - 40 for p in series.points)
    assert [p.abnormal for p in chart.first.points] == [False, True]
    assert [t.label for t in chart.x_ticks] == ["2020", "2021", "2022", "2023"]
    assert (chart.start.year, chart.end.year) == (2020, 2023)
    # Its own rule for abnormal, when given one.
    ruled = pair_chart([point(2020, "80")], [point(2021, "90")], abnormal=lambda o: o.value > 85)
    assert [p.abnormal for p in ruled.first.points + ruled.second.points] == [False, True]


def test_pair_chart_needs_a_number_in_each():
    assert pair_chart([point(2020, "80")], []) is None
    one_moment = pair_chart([point(2020, "80")], [point(2020, "5")])
    assert one_moment.first.points[0].x == one_moment.second.points[0].x == (PAIR_LEFT + WIDTH - 56) / 2
