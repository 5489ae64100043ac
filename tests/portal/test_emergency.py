"""The emergency view (issue 17): one screen for ambulance, NHS 111 and emergency departments, through the one
access decision, showing what is shared and nothing else, and every current allergy and medication (H-07)."""

import datetime
import re
from datetime import timedelta

import pytest
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from audit.models import AccessBasis, AccessEvent, AccessOutcome
from patients.categories import Category
from sharing import actions
from sharing.access import Reason
from sharing.emergency import ATTENDANCES_SHOWN
from sharing.models import BreakGlass
from tests import factories

pytestmark = pytest.mark.django_db


def url(patient):
    return reverse("record-emergency", args=[patient.pk])


def emergency_page(client, user, patient):
    client.force_login(user)
    response = client.get(url(patient))
    assert response.status_code == 200
    return response


def section_html(body, name):
    """One section of the page, from its opening tag to the next section's."""
    start = body.index(f'id="emergency-{name}"')
    end = body.find("<section", start)
    return body[start : end if end != -1 else None]


def ago(**delta):
    return timezone.now() - timedelta(**delta)


@pytest.mark.hazard("H-03")
def test_the_page_goes_through_the_access_decision_and_writes_one_access_event(client, clinician, patient):
    response = emergency_page(client, clinician, patient)
    (event,) = AccessEvent.objects.filter(request_id=response["X-Request-ID"])
    assert (event.page, event.outcome, event.basis, event.user_id, event.patient_id) == (
        "record:emergency",
        AccessOutcome.ALLOWED,
        AccessBasis.CARE_TEAM,
        clinician.pk,
        patient.pk,
    )
    assert event.path == url(patient)


@pytest.mark.hazard("H-03")
def test_a_professional_without_a_relationship_is_refused_and_offered_break_glass(
    client, clinician_other_org, patient, full_record
):
    client.force_login(clinician_other_org)
    response = client.get(url(patient))
    assert response.status_code == 403
    body = response.content.decode()
    assert "Penicillin" not in body and patient.nhs_number_display not in body
    assert reverse("break-glass", args=[patient.pk]) in body
    (event,) = AccessEvent.objects.filter(request_id=response["X-Request-ID"])
    assert (event.page, event.outcome, event.reason) == (
        "record:emergency",
        AccessOutcome.REFUSED,
        Reason.NO_RELATIONSHIP,
    )


@pytest.mark.hazard("H-12")
def test_break_glass_from_the_emergency_view_returns_to_it_and_from_elsewhere_to_the_summary(
    client, clinician_other_org, patient, full_record
):
    client.force_login(clinician_other_org)
    refused = client.get(url(patient)).content.decode()
    assert 'name="then" value="emergency"' in refused
    assert 'name="then"' not in client.get(reverse("record-summary", args=[patient.pk])).content.decode()
    form = {"reason_code": "emergency-treatment", "reason_text": "", "confirm": "on"}
    granted = client.post(reverse("break-glass", args=[patient.pk]), {**form, "then": "emergency"})
    assert granted.status_code == 302 and granted["Location"] == url(patient)
    client.force_login(factories.ProfessionalFactory(organisation=clinician_other_org.professional.organisation).user)
    elsewhere = client.post(reverse("break-glass", args=[patient.pk]), {**form, "then": "https://example.test/"})
    assert elsewhere.status_code == 302
    assert elsewhere["Location"] == reverse("record-summary", args=[patient.pk])  # never a URL from the request
    assert BreakGlass.objects.filter(patient=patient).count() == 2


@pytest.mark.hazard("H-12")
def test_through_break_glass_the_page_says_so_at_the_top(client, clinician_other_org, patient, full_record):
    actions.break_glass(by=clinician_other_org, patient=patient, reason_code="emergency-treatment")
    body = emergency_page(client, clinician_other_org, patient).content.decode()
    assert body.index("Emergency access") < body.index('id="emergency-allergies"')
    assert "information governance will review it" in body
    event = AccessEvent.objects.filter(page="record:emergency").latest("pk")
    assert event.basis == AccessBasis.BREAK_GLASS


def test_the_sections_come_in_the_emergency_order_allergies_and_medications_first(
    client, clinician, patient, full_record
):
    body = emergency_page(client, clinician, patient).content.decode()
    ids = re.findall(r'<section class="[^"]*" id="emergency-([a-z-]+)"', body)
    assert ids == [
        "allergies",
        "medications",
        "alerts",
        "conditions",
        "plans",
        "contacts",
        "gp",
        "attendances",
        "address",
    ]
    # Only the patient's name, date of birth and NHS number come before the allergies: no banner block.
    before = body[body.index('id="maincontent"') : body.index('id="emergency-allergies"')]
    assert patient.full_name in before and patient.nhs_number_display in before
    assert patient.postcode not in before and "app-patient-banner" not in before


@pytest.mark.hazard("H-07")
def test_every_current_allergy_and_medication_is_shown_however_many(client, clinician, patient, other_organisation):
    source = {"patient": patient, "source_organisation": other_organisation}
    allergies = [factories.AllergyFactory(**source, substance=f"Substance {n}") for n in range(30)]
    medicines = [factories.MedicationFactory(**source, name=f"Medicine {n}") for n in range(40)]
    alerts = [factories.AlertFactory(**source, text=f"Alert {n}") for n in range(12)]
    problems = [factories.ConditionFactory(**source, name=f"Problem {n}") for n in range(15)]
    response = emergency_page(client, clinician, patient)
    view = response.context["view"]
    assert {a.pk for a in view.allergies.items} == {a.pk for a in allergies}
    assert {m.pk for m in view.medications.groups[0].items} == {m.pk for m in medicines}
    assert {a.pk for a in view.alerts.items} == {a.pk for a in alerts}
    assert {c.pk for c in view.conditions.items} == {c.pk for c in problems}
    body = response.content.decode()
    for n in range(30):
        assert f"<strong>Substance {n}</strong>" in section_html(body, "allergies")
    for n in range(40):
        assert f"<strong>Medicine {n}</strong>" in section_html(body, "medications")
    assert "(40 current)" in section_html(body, "medications")
    assert "All current allergies are shown" in section_html(body, "allergies")


@pytest.mark.hazard("H-07")
def test_ended_medications_and_resolved_allergies_are_not_shown_as_current(
    client, clinician, patient, other_organisation
):
    source = {"patient": patient, "source_organisation": other_organisation}
    today = timezone.localdate()
    factories.MedicationFactory(**source, name="Current medicine")
    factories.MedicationFactory(
        **source, name="Recently stopped", status="stopped", ended_on=today - timedelta(days=10)
    )
    factories.MedicationFactory(**source, name="Long stopped", status="stopped", ended_on=today - timedelta(days=400))
    factories.MedicationFactory(**source, name="Dispensed once", event="dispensed")
    factories.AllergyFactory(**source, substance="Outgrown allergy", clinical_status="resolved")
    factories.AllergyFactory(**source, substance="Unstated status allergy", clinical_status="")
    factories.AlertFactory(**source, text="Old alert", active=False)
    factories.ConditionFactory(**source, name="Resolved problem", clinical_status="resolved")
    response = emergency_page(client, clinician, patient)
    medications = response.context["view"].medications
    assert [m.name for m in medications.groups[0].items] == ["Current medicine"]
    assert [m.name for m in medications.groups[1].items] == ["Recently stopped"]
    html = section_html(response.content.decode(), "medications")
    # The recently stopped one is under its own heading, marked with its date, after every current one.
    stopped_heading = html.index("Stopped or completed in the last 3 months")
    assert html.index("Current medicine") < stopped_heading < html.index("Recently stopped")
    assert "Stopped <span" in html[stopped_heading:]
    assert "(1 current)" in html
    body = response.content.decode()
    for hidden in ("Long stopped", "Dispensed once", "Outgrown allergy", "Old alert", "Resolved problem"):
        assert hidden not in body, hidden
    assert "Unstated status allergy" in section_html(body, "allergies")  # no status given: current


@pytest.mark.hazard("H-02")
@pytest.mark.hazard("H-11")
def test_every_section_shows_what_is_shared_and_nothing_else(client, clinician, patient, organisation):
    """Another organisation's entries only in the categories it shares and not if sensitive; the viewer's own
    organisation's entries always (its sensitive ones too)."""
    sharing_some = factories.OrganisationFactory(
        name="Partial Sharing Trust", shares=[Category.ALLERGIES, Category.APPOINTMENTS]
    )
    sharing_all = factories.OrganisationFactory(name="Open Trust")
    shown, hidden = [], []
    for source, visible in ((sharing_some, False), (sharing_all, True)):
        names = {
            "medication": f"Medicine from {source.name}",
            "alert": f"Alert from {source.name}",
            "condition": f"Problem from {source.name}",
            "plan": f"ReSPECT plan from {source.name}",
            "contact": f"Contact from {source.name}",
        }
        factories.MedicationFactory(patient=patient, source_organisation=source, name=names["medication"])
        factories.AlertFactory(patient=patient, source_organisation=source, text=names["alert"])
        factories.ConditionFactory(patient=patient, source_organisation=source, name=names["condition"])
        factories.CarePlanFactory(patient=patient, source_organisation=source, title=names["plan"])
        factories.SupportPersonFactory(patient=patient, source_organisation=source, name=names["contact"])
        (shown if visible else hidden).extend(names.values())
    factories.AllergyFactory(patient=patient, source_organisation=sharing_some, substance="Shared allergy")
    factories.AllergyFactory(
        patient=patient, source_organisation=sharing_all, substance="Sensitive allergy elsewhere", sensitive=True
    )
    factories.AllergyFactory(
        patient=patient, source_organisation=organisation, substance="Own sensitive allergy", sensitive=True
    )
    factories.AppointmentFactory(
        patient=patient, source_organisation=sharing_some, service="Shared clinic", status="attended"
    )
    factories.AppointmentFactory(
        patient=patient, source_organisation=sharing_all, service="Sensitive clinic", status="attended", sensitive=True
    )
    body = emergency_page(client, clinician, patient).content.decode()
    for text in [*shown, "Shared allergy", "Own sensitive allergy", "Shared clinic"]:
        assert text in body, text
    for text in [*hidden, "Sensitive allergy elsewhere", "Sensitive clinic"]:
        assert text not in body, text
    assert "Partial Sharing Trust" in section_html(body, "allergies")


@pytest.mark.hazard("H-02")
def test_an_opted_out_patient_shows_the_viewers_own_organisation_entries_only(
    client, clinician, ig_officer, patient, organisation, full_record
):
    from tests.sharing.test_coverage import upheld_objection

    factories.AllergyFactory(patient=patient, source_organisation=organisation, substance="Own allergy")
    factories.MedicationFactory(patient=patient, source_organisation=organisation, name="Own medicine")
    upheld_objection(patient, ig_officer)
    body = emergency_page(client, clinician, patient).content.decode()
    assert "Own allergy" in body and "Own medicine" in body
    for marker in ("Penicillin", "Metformin", "Lives alone", "Type 2 diabetes", "Diabetes clinic"):
        assert marker not in body, marker
    assert "This patient has opted out of sharing" in body
    assert body.index("This patient has opted out of sharing") < body.index('id="emergency-allergies"')


def test_crisis_and_end_of_life_plans_are_those_whose_title_says_so_and_still_hold(
    client, clinician, patient, other_organisation
):
    source = {"patient": patient, "source_organisation": other_organisation}
    for title in (
        "ReSPECT form",
        "DNACPR decision",
        "Advance decision to refuse treatment",
        "Mental health care and crisis plan",
        "End of life care plan",
    ):
        factories.CarePlanFactory(**source, title=title, description=f"What to do: {title}.")
    factories.CarePlanFactory(**source, title="Diabetes care plan")
    factories.CarePlanFactory(**source, title="Old crisis plan", status="completed")
    factories.CarePlanFactory(**source, title="Draft ReSPECT plan", status="draft", effective_at=None)
    response = emergency_page(client, clinician, patient)
    titles = {plan.title for plan in response.context["view"].plans}
    assert titles == {
        "ReSPECT form",
        "DNACPR decision",
        "Advance decision to refuse treatment",
        "Mental health care and crisis plan",
        "End of life care plan",
        "Draft ReSPECT plan",
    }
    html = section_html(response.content.decode(), "plans")
    assert "What to do: ReSPECT form." in html  # in full, not a link away
    assert "Diabetes care plan" not in html and "Old crisis plan" not in html
    # The draft is marked as such, and its missing date is said, never made up (H-09).
    assert re.search(r"Draft ReSPECT plan</strong> <strong class=\"nhsuk-tag [^\"]+\">Draft</strong>", html)
    assert "date not recorded" in html


def test_next_of_kin_first_and_none_for_a_restricted_patient(client, clinician, patient, organisation):
    factories.SupportPersonFactory(
        patient=patient, source_organisation=organisation, name="Zara Friend", relationship="friend"
    )
    factories.SupportPersonFactory(
        patient=patient,
        source_organisation=organisation,
        name="Yusuf Kin",
        relationship="next-of-kin",
        phone="07700 900123",
    )
    html = section_html(emergency_page(client, clinician, patient).content.decode(), "contacts")
    assert html.index("Yusuf Kin") < html.index("Zara Friend")
    assert "07700 900123" in html and "Riverside Medical Centre" in html
    patient.restricted = True
    patient.save()
    body = emergency_page(client, clinician, patient).content.decode()
    assert "Yusuf Kin" not in body and "Zara Friend" not in body
    assert "Restricted" in section_html(body, "contacts")
    assert patient.postcode not in body


def test_the_registered_gp_with_its_address_and_the_practice_teams_phone(client, clinician, patient, care_team):
    gp = patient.registered_gp
    gp.address = "1 High Street\nLondon"
    gp.save()
    care_team.phone = "020 7946 0000"
    care_team.save()
    html = section_html(emergency_page(client, clinician, patient).content.decode(), "gp")
    assert gp.name in html and gp.ods_code in html and "1 High Street<br>London" in html
    assert "Riverside practice team" in html and "020 7946 0000" in html


def test_a_practice_whose_teams_are_not_shared_gives_no_phone(client, clinician_other_org, care_team):
    """The viewer's relationship is through another organisation; the practice shares no involved teams."""
    gp = factories.OrganisationFactory(name="Quiet Practice", shares=[Category.ALLERGIES])
    patient = factories.PatientFactory(registered_gp=gp)
    team = factories.CareTeamFactory(organisation=gp, name="Quiet practice team", phone="020 7946 1111")
    factories.InvolvementFactory(patient=patient, care_team=team)
    viewer_team = factories.CareTeamFactory(organisation=clinician_other_org.professional.organisation)
    factories.InvolvementFactory(patient=patient, care_team=viewer_team)
    from directory.actions import add_team_member

    add_team_member(by=None, team=viewer_team, professional=clinician_other_org.professional)
    html = section_html(emergency_page(client, clinician_other_org, patient).content.decode(), "gp")
    assert "Quiet Practice" in html
    assert "020 7946 1111" not in html and "No phone number shared" in html


def test_the_latest_attendances_newest_first_of_how_many(client, clinician, patient, other_organisation):
    source = {"patient": patient, "source_organisation": other_organisation}
    seen = [
        factories.AppointmentFactory(
            **source, kind="attendance", status="completed", service=f"Visit {n}", effective_at=ago(days=10 + n)
        )
        for n in range(ATTENDANCES_SHOWN + 2)
    ]
    factories.AppointmentFactory(**source, service="Future clinic", status="booked", effective_at=ago(days=-5))
    factories.AppointmentFactory(**source, service="Cancelled clinic", status="cancelled", effective_at=ago(days=1))
    factories.AppointmentFactory(**source, service="A referral", kind="referral", status="requested")
    factories.AppointmentFactory(**source, service="Undated visit", status="attended", effective_at=None)
    response = emergency_page(client, clinician, patient)
    view = response.context["view"]
    assert view.attendances == seen[:ATTENDANCES_SHOWN]
    assert view.attendances_total == ATTENDANCES_SHOWN + 2
    html = section_html(response.content.decode(), "attendances")
    assert f"{ATTENDANCES_SHOWN} of {ATTENDANCES_SHOWN + 2}" in html
    for hidden in ("Future clinic", "Cancelled clinic", "A referral", "Undated visit", f"Visit {ATTENDANCES_SHOWN}"):
        assert hidden not in html, hidden
    assert reverse("record-appointments", args=[patient.pk]) in html


@pytest.mark.hazard("H-09")
def test_each_item_has_its_source_and_date_and_an_undated_one_says_so(client, clinician, patient, other_organisation):
    factories.AllergyFactory(
        patient=patient,
        source_organisation=other_organisation,
        substance="Dated allergy",
        effective_at=datetime.datetime(2024, 3, 5, 12, tzinfo=datetime.UTC),
    )
    factories.MedicationFactory(
        patient=patient, source_organisation=other_organisation, name="Undated medicine", effective_at=None
    )
    body = emergency_page(client, clinician, patient).content.decode()
    allergies = section_html(body, "allergies")
    assert re.search(
        r"From <span class=\"app-source__org\">St Elsewhere NHS Foundation Trust</span>, <time[^>]*>5 Mar 2024",
        allergies,
    )
    medicine = section_html(body, "medications")
    assert "Undated medicine" in medicine and "date not recorded (received" in medicine


@pytest.mark.hazard("H-07")
def test_the_page_is_the_same_few_queries_however_big_the_record(
    client, clinician, patient, other_organisation, django_assert_max_num_queries
):
    client.force_login(clinician)
    client.get(url(patient))  # the session and the like, once

    def queries_for_one_view():
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        with CaptureQueriesContext(connection) as captured:
            assert client.get(url(patient)).status_code == 200
        return len(captured)

    small = queries_for_one_view()
    source = {"patient": patient, "source_organisation": other_organisation}
    for n in range(20):
        factories.AllergyFactory(**source, substance=f"Substance {n}")
        factories.MedicationFactory(**source, name=f"Medicine {n}")
        factories.AlertFactory(**source, text=f"Alert {n}")
        factories.ConditionFactory(**source, name=f"Problem {n}")
        factories.CarePlanFactory(**source, title=f"Crisis plan {n}")
        factories.SupportPersonFactory(patient=patient, source_organisation=other_organisation)
        factories.AppointmentFactory(**source, status="attended", effective_at=ago(days=n + 1))
    assert queries_for_one_view() == small, small
    with django_assert_max_num_queries(20):
        client.get(url(patient))


@pytest.mark.hazard("H-07")
@pytest.mark.skipif(connection.vendor != "postgresql", reason="the floor is PostgreSQL SQL")
def test_the_bench_floor_fetches_the_rows_the_page_shows(client, clinician, patient, organisation, other_organisation):
    """`make bench` holds the page to its SQL floor's ratio: the floor must fetch the same rows, in the same order."""
    from django.conf import settings
    from django.contrib.auth.models import Permission

    from bench.floor import Floor
    from bench.run import emergency_floor

    silent = factories.OrganisationFactory(name="Silent Trust", shares=[])
    today = timezone.localdate()
    for n, source in enumerate([organisation, other_organisation, silent] * 3):
        at = {"patient": patient, "source_organisation": source, "effective_at": ago(days=n + 1)}
        factories.AllergyFactory(**at, clinical_status=["active", "", "resolved"][n % 3])
        factories.MedicationFactory(**at, kind=["repeat", "acute", "hospital"][n % 3])
        factories.MedicationFactory(**at, status="stopped", ended_on=today - timedelta(days=10 * n))
        factories.AlertFactory(**at, active=n % 2 == 0)
        factories.ConditionFactory(**at, clinical_status=["active", "resolved"][n % 2])
        factories.CarePlanFactory(**at, title=["ReSPECT form", "Diabetes care plan", "Crisis plan"][n % 3])
        factories.AppointmentFactory(**at, kind="attendance", status=["attended", "cancelled", "completed"][n % 3])
        factories.SupportPersonFactory(patient=patient, source_organisation=source)
    factories.AllergyFactory(patient=patient, source_organisation=other_organisation, sensitive=True)
    factories.MedicationFactory(patient=patient, source_organisation=other_organisation, effective_at=None)
    response = emergency_page(client, clinician, patient)
    view = response.context["view"]
    connection.ensure_connection()
    permission = Permission.objects.get(content_type__app_label="patients", codename="read_shared_record")
    floor = Floor(
        connection.connection,
        user_id=clinician.pk,
        organisation_id=organisation.pk,
        permission_id=permission.pk,
        summary_items=settings.RECORD_SUMMARY_ITEMS,
        page=settings.RECORD_PAGE_SIZE,
        stopped_months=settings.RECORD_STOPPED_MEDICATION_MONTHS,
    )
    fetched = emergency_floor(floor, patient.pk)
    for name in ("allergies", "medications", "alerts", "conditions"):
        assert [row[0] for row in fetched[name]] == [e.pk for e in getattr(view, name).items], name
    assert [row[0] for row in fetched["plans"]] == [p.pk for p in view.plans]
    assert sorted(row[0] for row in fetched["support"]) == sorted(p.pk for p in view.support_network)
    assert [row[0] for row in fetched["gp_teams"]] == [i.pk for i in view.gp_teams]
    assert [row[0] for row in fetched["attendances"]] == [a.pk for a in view.attendances]
    assert fetched["attendances_total"] == [(view.attendances_total,)]
    assert view.plans and view.attendances and view.gp_teams  # the comparison is of something
