"""Privacy alerts (sharing.alerts): each rule fires, and does not fire, on the access log of one day; each alert
links to exactly the accesses behind it; the admin page is IG's, and its cost does not grow with the alerts."""

import datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from audit.models import AccessBasis, AccessEvent, AccessOutcome
from sharing import actions, alerts
from sharing.access import Reason
from tests import factories

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("admin_settings")]

PAGE = reverse("admin:sharing_privacyalert_changelist")


def noon(days_ago=0):
    day = timezone.localdate() - datetime.timedelta(days=days_ago)
    return timezone.make_aware(datetime.datetime.combine(day, datetime.time(12)))


def opened(user, patients, *, at=None, page="record:summary", outcome=AccessOutcome.ALLOWED, basis=None, reason=""):
    """Access-log rows as get_patient_for writes them: one per patient, `at` (default: a moment ago)."""
    professional = user.professional
    basis = basis or (AccessBasis.CARE_TEAM if outcome == AccessOutcome.ALLOWED else AccessBasis.NONE)
    return AccessEvent.objects.bulk_create(
        AccessEvent(
            at=at or timezone.now() - datetime.timedelta(seconds=1),
            user_id=user.pk,
            user_email=user.email,
            professional_name=professional.name,
            organisation_code=professional.organisation.ods_code,
            patient_id=patient.pk,
            patient_nhs_number=patient.nhs_number,
            outcome=outcome,
            basis=basis,
            reason=reason,
            page=page,
        )
        for patient in patients
    )


def refused(user, patients, reason=Reason.NO_RELATIONSHIP, **kwargs):
    return opened(user, patients, outcome=AccessOutcome.REFUSED, reason=reason, **kwargs)


@pytest.fixture
def nurse(organisation):
    return factories.ProfessionalFactory(organisation=organisation, user__last_name="Okafor").user


@pytest.fixture
def many():
    return [factories.PatientFactory(family_name=f"Patient{n}") for n in range(40)]


def of_rule(rule, day=None):
    return [alert for alert in alerts.alerts_for(day) if alert.rule == rule]


def behind(ig_client, alert, index=0):
    """The access-log rows an alert's link lists."""
    response = ig_client.get(alert.links[index][1])
    assert response.status_code == 200
    return set(response.context["cl"].queryset)


# --- (a) far more records than usual ----------------------------------------------------------------------------


@pytest.mark.hazard("H-03")
def test_unusual_volume_fires_above_the_floor_with_no_history(nurse, many, ig_client):
    events = opened(nurse, many[:21])
    opened(nurse, many[:5])  # the same patients again: distinct patients count
    [alert] = of_rule(alerts.Rule.UNUSUAL_VOLUME)
    assert (alert.user_id, alert.count, alert.detail["threshold"]) == (nurse.pk, 21, 20)
    assert "no record opened in the 28 days before" in alert.summary
    assert set(events) <= behind(ig_client, alert)


def test_unusual_volume_does_not_fire_at_the_floor_or_for_searches_and_lists(nurse, many):
    opened(nurse, many[:20])
    opened(nurse, many[20:40], page="search:nhs-number")
    opened(nurse, many[20:40], page="my-patients")
    assert of_rule(alerts.Rule.UNUSUAL_VOLUME) == []


def test_unusual_volume_is_measured_against_their_own_usual(nurse, many):
    for days_ago in range(1, 6):
        opened(nurse, many[:10], at=noon(days_ago))  # usually 10 a day: the alert is above 30
    opened(nurse, many[:12], at=noon(29))  # outside the 28 days: not part of the usual
    opened(nurse, many[:30])
    assert of_rule(alerts.Rule.UNUSUAL_VOLUME) == []
    opened(nurse, many[30:31])
    [alert] = of_rule(alerts.Rule.UNUSUAL_VOLUME)
    assert (alert.count, alert.detail["usual"], alert.detail["threshold"], alert.detail["days_of_history"]) == (
        31,
        10,
        30,
        5,
    )
    # Yesterday, seen from today's page: nothing unusual then.
    assert of_rule(alerts.Rule.UNUSUAL_VOLUME, timezone.localdate() - datetime.timedelta(days=1)) == []


def test_the_volume_floor_and_factor_are_settings(nurse, many, settings):
    settings.PRIVACY_ALERT_VOLUME_FLOOR = 5
    opened(nurse, many[:6])
    assert len(of_rule(alerts.Rule.UNUSUAL_VOLUME)) == 1


# --- (b) a patient with the professional's own family name --------------------------------------------------------


@pytest.mark.hazard("H-03")
def test_same_family_name_fires_per_patient_whatever_the_case(nurse, ig_client, many):
    relative = factories.PatientFactory(family_name="OKAFOR")
    events = opened(nurse, [relative, relative]) + refused(nurse, [relative], page="fhir:Patient")
    opened(nurse, many[:3])
    [alert] = of_rule(alerts.Rule.SAME_FAMILY_NAME)
    assert (alert.user_id, alert.patient_id, alert.patient_nhs_number, alert.count) == (
        nurse.pk,
        relative.pk,
        relative.nhs_number,
        3,
    )
    assert "1 refused" in alert.summary
    assert behind(ig_client, alert) == set(events)


def test_same_family_name_does_not_fire_for_other_names_other_days_or_searches(nurse, organisation):
    relative = factories.PatientFactory(family_name="Okafor")
    opened(nurse, [factories.PatientFactory(family_name="Okafor-Smith")])
    opened(nurse, [relative], at=noon(1))
    opened(nurse, [relative], page="search:name")
    nameless = factories.ProfessionalFactory(organisation=organisation, user__last_name="").user
    opened(nameless, [factories.PatientFactory(family_name="")])
    assert of_rule(alerts.Rule.SAME_FAMILY_NAME) == []


# --- (c) look-ups with no care relationship, outside break glass ----------------------------------------------------


@pytest.mark.hazard("H-03")
def test_no_care_relationship_fires_for_refusals_not_followed_by_break_glass(nurse, ig_client, many):
    probed = refused(nurse, many[:3]) + refused(nurse, many[:1], page="fhir:Condition")
    [alert] = of_rule(alerts.Rule.NO_RELATIONSHIP)
    assert (alert.user_id, alert.count) == (nurse.pk, 3)
    assert "3 patient records" in alert.summary and "4 look-ups" in alert.summary
    assert behind(ig_client, alert) == set(probed)


def test_no_care_relationship_does_not_fire_when_they_broke_the_glass_or_had_a_relationship(nurse, many):
    refused(nurse, many[:1])
    actions.break_glass(by=nurse, patient=many[0], reason_code="emergency-treatment")
    opened(nurse, many[:1], basis=AccessBasis.BREAK_GLASS)
    opened(nurse, many[1:5])  # care team
    refused(nurse, many[5:6], reason=Reason.INACTIVE)
    refused(nurse, many[6:7], at=noon(1))  # another day
    assert of_rule(alerts.Rule.NO_RELATIONSHIP) == []
    assert len(of_rule(alerts.Rule.NO_RELATIONSHIP, timezone.localdate() - datetime.timedelta(days=1))) == 1


def test_a_record_shown_on_no_basis_is_an_alert_too(nurse, ig_client, many):
    shown = opened(nurse, many[:1], basis=AccessBasis.NONE)
    [alert] = of_rule(alerts.Rule.NO_RELATIONSHIP)
    assert "1 shown on no basis" in alert.summary
    assert behind(ig_client, alert, index=1) == set(shown)


# --- the admin page ------------------------------------------------------------------------------------------------


def test_ig_see_the_alerts_page_from_the_admin_index(ig_client, nurse, many):
    refused(nurse, many[:2])
    index = ig_client.get(reverse("admin:index")).content.decode()
    assert PAGE in index and "Privacy alerts" in index
    response = ig_client.get(PAGE)
    assert response.status_code == 200
    body = response.content.decode()
    assert nurse.email in body and "Look-ups with no care relationship, outside break glass (1)" in body
    assert "Far more records than usual (0)" in body
    assert reverse("admin:sharing_involvement_changelist") + "?review=needed" in body


def test_the_page_shows_one_day_at_a_time(ig_client, nurse, many):
    refused(nurse, many[:2], at=noon(3))
    day = (timezone.localdate() - datetime.timedelta(days=3)).isoformat()
    assert nurse.email in ig_client.get(PAGE, {"day": day}).content.decode()
    assert nurse.email not in ig_client.get(PAGE).content.decode()
    bad = ig_client.get(PAGE, {"day": "yesterday"}, follow=True)
    assert bad.status_code == 200 and "not a date" in bad.content.decode()
    future = (timezone.localdate() + datetime.timedelta(days=3)).isoformat()
    assert ig_client.get(PAGE, {"day": future}).context["day"] == timezone.localdate()


def test_the_page_is_for_those_who_may_read_the_access_log(client, organisation, clinician):
    staff = factories.ProfessionalFactory(organisation=organisation, user__is_staff=True).user
    client.force_login(staff)
    assert client.get(PAGE).status_code == 403
    assert PAGE not in client.get(reverse("admin:index")).content.decode()
    client.force_login(clinician)
    assert client.get(PAGE).status_code == 302  # not staff: the admin's login


def test_the_page_costs_the_same_whatever_the_number_of_alerts(ig_client, organisation, many):
    def professionals(n):
        return [factories.ProfessionalFactory(organisation=organisation).user for _ in range(n)]

    ig_client.get(PAGE)  # the session is renewed on the first request, not on the next ones
    counts = []
    for group in (professionals(2), professionals(6)):  # 2 alerting professionals, then 8
        for user in group:
            refused(user, many[:2])
            opened(user, many[:25])
        with CaptureQueriesContext(connection) as queries:
            assert ig_client.get(PAGE).status_code == 200
        counts.append(len(queries))
    assert counts[0] == counts[1]
    assert len(alerts.alerts_for()) == 16  # 8 professionals, two rules each


def test_the_alerts_page_puts_igs_look_at_a_named_patient_on_their_trail(nurse, ig_client, ig_user, many):
    """Issue 11, finding 1: an admin page that shows a patient's NHS number writes an ig-admin AccessEvent."""
    relative = factories.PatientFactory(family_name="OKAFOR")
    opened(nurse, [relative])
    ig_client.get(PAGE)
    [row] = AccessEvent.objects.filter(user_id=ig_user.pk, patient_id=relative.pk)
    assert (row.basis, row.page, row.patient_nhs_number) == ("ig-admin", "admin:privacy-alerts", relative.nhs_number)
