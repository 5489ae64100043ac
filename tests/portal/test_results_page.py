"""Results as a clinician expects them: standalone observations shown as observations beside the reports, a
reading of several components as one, units in their proper form, and the source's interpretation and
reference range."""

import datetime
from decimal import Decimal

import pytest
from django.urls import reverse

from patients.models import Result
from patients.units import UCUM
from tests import factories

pytestmark = [pytest.mark.django_db, pytest.mark.hazard("H-10")]

WHEN = datetime.datetime(2026, 11, 30, 8, 15, tzinfo=datetime.UTC)


def blood_pressure(patient, source, systolic="120", diastolic="80", **fields):
    """A vital-signs Observation with two components, as ingest stores it: one Result of kind observation,
    a value row per component sharing the source Observation's id and naming the reading."""
    reading = factories.ResultFactory(
        patient=patient,
        source_organisation=source,
        kind=Result.Kind.OBSERVATION,
        observation_category="vital-signs",
        name="Blood pressure",
        effective_at=WHEN,
    )
    for code, name, value in (
        ("8480-6", "Systolic blood pressure", systolic),
        ("8462-4", "Diastolic blood pressure", diastolic),
    ):
        factories.ObservationFactory(
            result=reading,
            code=code,
            name=name,
            value=Decimal(value),
            unit="mm[Hg]",
            unit_code="mm[Hg]",
            unit_system=UCUM,
            reference_low=None,
            reference_high=None,
            flag="",
            reading_name="Blood pressure",
            reading_code="85354-9",
            source_id="Observation/bp-1",
            **fields,
        )
    return reading


def results_page(client, user, patient):
    client.force_login(user)
    response = client.get(reverse("record-results", args=[patient.pk]))
    assert response.status_code == 200
    return response


def test_a_blood_pressure_is_one_reading_among_the_observations_not_a_report(
    client, clinician, patient, other_organisation
):
    reading = blood_pressure(patient, other_organisation)
    report = factories.ResultFactory(patient=patient, source_organisation=other_organisation, name="Full blood count")
    factories.ObservationFactory(result=report)
    response = results_page(client, clinician, patient)
    assert list(response.context["page"].object_list) == [report]  # the reports list holds reports only
    assert response.context["observations"] == [reading]
    body = response.content.decode()
    observations = body[body.index('id="section-observations"') : body.index(">Reports</h2>")]
    assert '<span class="app-cell-note">Vital signs</span>' in observations
    assert "120/80 mmHg" in observations
    assert observations.count("Blood pressure") == 1  # one row
    assert "Systolic" not in observations and "mm[Hg]" not in body


def test_a_standalone_observation_on_the_summary_is_an_observation_with_its_one_reading(
    client, clinician, patient, other_organisation
):
    blood_pressure(patient, other_organisation)
    client.force_login(clinician)
    body = client.get(reverse("record-summary", args=[patient.pk])).content.decode()
    results = body[body.index('id="section-results"') :]
    results = results[: results.index("</section>")]
    assert "Observation: vital signs" in results and "120/80 mmHg" in results
    assert "report is not final" not in results and "Systolic blood pressure" not in results


def test_an_abnormal_component_flags_the_reading_and_interpretation_is_shown(
    client, clinician, patient, other_organisation
):
    reading = blood_pressure(patient, other_organisation, systolic="182", interpretation="High")
    reading.observations.filter(code="8480-6").update(flag="H")
    body = results_page(client, clinician, patient).content.decode()
    observations = body[body.index('id="section-observations"') : body.index(">Reports</h2>")]
    assert "<strong>182/80 mmHg</strong>" in observations
    assert (
        '<strong class="nhsuk-tag nhsuk-tag--red">High</strong><span class="app-cell-note">High</span>' in observations
    )


def test_ucum_units_interpretation_and_reference_text_show_on_every_results_view(
    client, clinician, patient, other_organisation
):
    report = factories.ResultFactory(
        patient=patient, source_organisation=other_organisation, name="Renal profile", effective_at=WHEN
    )
    factories.ObservationFactory(
        result=report,
        code="14682-9",
        name="Creatinine",
        value=Decimal("85"),
        unit="",
        unit_code="umol/L",
        unit_system=UCUM,
        reference_low=None,
        reference_high=None,
        reference_text="Adult: 59 to 104",
        interpretation="Within normal limits",
        flag="",
        effective_at=WHEN,
    )
    client.force_login(clinician)
    pages = [
        reverse("record-results", args=[patient.pk]),
        reverse("record-summary", args=[patient.pk]),
        reverse("record-result-trend", args=[patient.pk, "14682-9"]),
    ]
    for url in pages:
        body = client.get(url).content.decode()
        assert "85 µmol/L" in body and "umol" not in body, url
        assert "Adult: 59 to 104" in body, url
        assert "Within normal limits" in body, url
    trend = client.get(pages[2]).content.decode()
    assert "Result (µmol/L)" in trend and "in µmol/L" in trend


def test_no_flag_and_no_range_is_not_called_normal(client, clinician, patient, other_organisation):
    report = factories.ResultFactory(patient=patient, source_organisation=other_organisation)
    factories.ObservationFactory(result=report, flag="", reference_low=None, reference_high=None)
    body = results_page(client, clinician, patient).content.decode()
    assert "Not flagged" in body and ">Normal<" not in body


def test_many_standalone_observations_say_how_many_and_where_the_rest_are(
    client, clinician, patient, other_organisation, settings
):
    settings.RECORD_PAGE_SIZE = 3
    for _ in range(5):
        blood_pressure(patient, other_organisation)
    response = results_page(client, clinician, patient)
    assert len(response.context["observations"]) == 3 and response.context["observations_total"] == 5
    assert "The newest 3 of 5." in response.content.decode()


def test_uk_core_vital_signs_read_as_a_clinician_expects(client, clinician, care_team, other_organisation):
    """The UK Core examples as a partner would send them: five blood pressures (batch), a 24-hour blood
    pressure, social history and a full blood count's members with UCUM units."""
    from patients.models import Patient
    from tests.fhirapi.conftest import RICHARD_SMITH, RICHARD_SMITH_NHS_NUMBER, example, import_bytes

    for name in (
        RICHARD_SMITH,
        "UKCore-Bundle-BatchPOST-Example.xml",
        "UKCore-Observation-24HourBloodPressure-Example.xml",
        "UKCore-Observation-PipeSmoker-Example.xml",
        "UKCore-Observation-Lab-WhiteCellCount-Example.xml",
    ):
        import_bytes(example(name), other_organisation)
    patient = Patient.objects.get(nhs_number=RICHARD_SMITH_NHS_NUMBER)
    factories.InvolvementFactory(patient=patient, care_team=care_team)
    body = results_page(client, clinician, patient).content.decode()
    observations = body[body.index('id="section-observations"') : body.index(">Reports</h2>")]
    assert observations.count("mmHg</span>") >= 6 and "118/94 mmHg" in observations and "102/84 mmHg" in observations
    assert "Systolic" not in observations and "millimeter of mercury" not in body and "mm[Hg]" not in body
    assert '<span class="app-cell-note">Vital signs</span>' in observations
    assert '<span class="app-cell-note">Social history</span>' in observations
    assert "10⁹/L" in body and "10*9/L" not in body
