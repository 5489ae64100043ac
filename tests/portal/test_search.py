import datetime

import pytest
from django.urls import reverse

from audit.models import AccessEvent
from tests import factories

pytestmark = pytest.mark.django_db


def post(client, **data):
    return client.post(reverse("patient-search"), data)


def test_search_by_nhs_number_with_spaces(client, outsider, patient):
    client.force_login(outsider)
    spaced = patient.nhs_number_display
    response = post(client, by="nhs", nhs_number=spaced)
    assert response.status_code == 200
    assert response.context["results"] == [patient]
    body = response.content.decode()
    assert patient.nhs_number_display in body
    assert reverse("record-summary", args=[patient.pk]) in body


def test_results_show_demographics_only(client, outsider, patient, full_record):
    client.force_login(outsider)
    body = post(client, by="nhs", nhs_number=patient.nhs_number).content.decode()
    assert patient.registered_gp.name in body
    assert "Type 2 diabetes" not in body and "Penicillin" not in body and "Metformin" not in body


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "Enter the patient"),
        ("943 476 5918", "check digit"),
        ("12345", "10 digits"),
        ("94347A5919", "no letters"),
    ],
)
def test_bad_nhs_number_gets_a_field_error_not_a_500(client, outsider, value, message):
    client.force_login(outsider)
    response = post(client, by="nhs", nhs_number=value)
    assert response.status_code == 400
    assert message in response.content.decode()
    assert response.context["results"] is None


def test_search_by_family_name_prefix_and_date_of_birth(client, outsider):
    born = datetime.date(1950, 4, 2)
    smith = factories.PatientFactory(family_name="Smithson", given_name="Jane", date_of_birth=born)
    factories.PatientFactory(family_name="Smithson", given_name="Alan", date_of_birth=datetime.date(1951, 4, 2))
    jones = factories.PatientFactory(family_name="Jones", date_of_birth=born)
    client.force_login(outsider)
    response = post(client, by="name", family_name="smith", dob_day=2, dob_month=4, dob_year=1950)
    assert response.context["results"] == [smith]
    assert jones not in response.context["results"]


def test_given_name_narrows_the_search(client, outsider):
    born = datetime.date(1980, 1, 31)
    jane = factories.PatientFactory(family_name="Okafor", given_name="Jane", date_of_birth=born)
    factories.PatientFactory(family_name="Okafor", given_name="Amara", date_of_birth=born)
    client.force_login(outsider)
    response = post(client, by="name", family_name="Okafor", given_name="ja", dob_day=31, dob_month=1, dob_year=1980)
    assert response.context["results"] == [jane]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"family_name": "", "dob_day": 1, "dob_month": 1, "dob_year": 1980}, "Enter the patient&#x27;s family name"),
        ({"family_name": "Smith"}, "Enter the patient&#x27;s date of birth"),
        ({"family_name": "Smith", "dob_day": 31, "dob_month": 2, "dob_year": 1980}, "real date"),
        ({"family_name": "Smith", "dob_day": "x", "dob_month": 2, "dob_year": 1980}, "real date"),
        ({"family_name": "Smith", "dob_day": 1, "dob_month": 1, "dob_year": 2199}, "in the past"),
    ],
)
def test_bad_name_search_gets_field_errors(client, outsider, data, message):
    client.force_login(outsider)
    response = post(client, by="name", **data)
    assert response.status_code == 400
    assert message in response.content.decode()


def test_searches_are_audited(client, outsider, patient):
    client.force_login(outsider)
    post(client, by="nhs", nhs_number=patient.nhs_number)
    event = AccessEvent.objects.get(page="search:nhs")
    assert event.patient_id == patient.pk and event.user_id == outsider.pk


def test_search_page_needs_an_active_professional(client, no_profile_user, deactivated):
    assert client.get(reverse("patient-search")).status_code == 302  # anonymous: to sign-in
    client.force_login(no_profile_user)
    assert client.get(reverse("patient-search")).status_code == 403
    assert post(client, by="nhs", nhs_number="9434765919").status_code == 403


def test_my_patients_lists_care_team_patients_only(client, clinician, outsider, patient):
    client.force_login(clinician)
    response = client.get(reverse("my-patients"))
    assert list(response.context["page"].object_list) == [patient]
    client.force_login(outsider)
    assert list(client.get(reverse("my-patients")).context["page"].object_list) == []


def test_finding_1_my_patients_writes_one_access_event_per_patient_shown(
    client, clinician, patient, care_team, settings
):
    """A list of demographics, audited like a search: each patient on the page shown finds it in "who has seen
    my record" (page "my-patients", basis care-team); an empty list writes nothing."""
    from audit.models import AccessBasis, AccessOutcome

    settings.RECORD_PAGE_SIZE = 2
    others = [factories.PatientFactory(family_name=f"Zed{n}") for n in range(2)]
    for other in others:
        factories.InvolvementFactory(patient=other, care_team=care_team)
    client.force_login(clinician)

    before = AccessEvent.objects.count()
    first = client.get(reverse("my-patients"))
    shown = list(first.context["page"].object_list)
    assert shown == [patient, others[0]]  # family name order: Testperson, Zed0 | Zed1
    events = AccessEvent.objects.filter(request_id=first["X-Request-ID"])
    assert AccessEvent.objects.count() == before + 2
    assert sorted(events.values_list("patient_id", flat=True)) == sorted(p.pk for p in shown)
    for event in events:
        assert (event.outcome, event.basis, event.reason, event.page, event.user_id) == (
            AccessOutcome.ALLOWED,
            AccessBasis.CARE_TEAM,
            "",
            "my-patients",
            clinician.pk,
        )
        assert event.patient_nhs_number == next(p.nhs_number for p in shown if p.pk == event.patient_id)

    second = client.get(reverse("my-patients"), {"page": 2})
    assert list(AccessEvent.objects.filter(request_id=second["X-Request-ID"]).values_list("patient_id", flat=True)) == [
        others[1].pk
    ]


def test_finding_1_an_empty_my_patients_list_writes_nothing(client, outsider, patient):
    client.force_login(outsider)
    before = AccessEvent.objects.count()
    response = client.get(reverse("my-patients"))
    assert response.status_code == 200 and list(response.context["page"].object_list) == []
    assert AccessEvent.objects.count() == before
