"""The home page's NHS number box (issue 17): sign in, type the number, and the emergency view opens — by the
search by NHS number's own rules (who may search, the audit row, the answer when nobody has the number)."""

import pytest
from django.urls import reverse

from audit.models import AccessEvent, AccessOutcome
from sharing.access import Reason

pytestmark = pytest.mark.django_db

NOT_FOUND = "No patient has this NHS number."


def post_home(client, user, nhs_number):
    client.force_login(user)
    return client.post(reverse("home"), {"nhs_number": nhs_number})


def test_the_home_page_has_the_box_for_a_professional(client, clinician):
    client.force_login(clinician)
    body = client.get(reverse("home")).content.decode()
    assert 'method="post" action="/"' in body
    assert '<label class="nhsuk-label" for="id_nhs_number">NHS number</label>' in body
    assert 'inputmode="numeric"' in body and "Open emergency view" in body


def test_a_user_without_a_professional_profile_gets_no_box_and_cannot_post(client, no_profile_user, patient):
    client.force_login(no_profile_user)
    assert "Open emergency view" not in client.get(reverse("home")).content.decode()
    response = client.post(reverse("home"), {"nhs_number": patient.nhs_number})
    assert response.status_code == 403
    assert not AccessEvent.objects.filter(page="search:nhs").exists()


@pytest.mark.hazard("H-06")
def test_a_valid_number_goes_straight_to_that_patients_emergency_view(client, clinician, patient):
    response = post_home(client, clinician, patient.nhs_number_display)  # with spaces, as on a card
    assert response.status_code == 302
    assert response["Location"] == reverse("record-emergency", args=[patient.pk])
    assert patient.nhs_number not in response["Location"]
    # Audited as the search it is, one row naming the patient found.
    (search,) = AccessEvent.objects.filter(page="search:nhs")
    assert (search.patient_id, search.user_id, search.path) == (patient.pk, clinician.pk, "/")
    opened = client.get(response["Location"])
    assert opened.status_code == 200
    assert AccessEvent.objects.filter(page="record:emergency", patient_id=patient.pk, outcome="allowed").count() == 1


@pytest.mark.hazard("H-03")
def test_without_a_relationship_the_view_is_refused_as_from_the_search(client, clinician_other_org, patient):
    """The search shows any active professional that the patient exists (demographics only); the record itself is
    the access decision's: refused, with break glass offered, exactly as when opened from the search's results."""
    response = post_home(client, clinician_other_org, patient.nhs_number)
    assert response["Location"] == reverse("record-emergency", args=[patient.pk])
    refused = client.get(response["Location"])
    assert refused.status_code == 403
    assert reverse("break-glass", args=[patient.pk]) in refused.content.decode()
    event = AccessEvent.objects.get(page="record:emergency")
    assert (event.outcome, event.reason) == (AccessOutcome.REFUSED, Reason.NO_RELATIONSHIP)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "Enter the patient&#x27;s NHS number."),
        ("943 476 5918", "its check digit does not match"),
        ("12345", "An NHS number is 10 digits long."),
        ("94347A5919", "no letters"),
    ],
)
def test_an_invalid_number_gets_a_field_error_and_no_search(client, clinician, value, message):
    response = post_home(client, clinician, value)
    assert response.status_code == 400
    body = response.content.decode()
    assert "<title>Error: Home" in body
    assert 'class="nhsuk-error-summary"' in body and 'href="#id_nhs_number"' in body
    error = body[body.index('id="id_nhs_number-error"') :]
    assert message in error[: error.index("</span>\n")]
    assert 'aria-describedby="id_nhs_number-hint id_nhs_number-error"' in body
    assert not AccessEvent.objects.exists()


def test_a_number_nobody_has_gets_the_searchs_own_answer(client, clinician, patient):
    unused = "9434765919"  # valid check digit, held by no patient here
    response = post_home(client, clinician, unused)
    assert response.status_code == 200
    body = response.content.decode()
    assert "No patients found" in body and NOT_FOUND in body
    assert reverse("patient-search") in body
    # As the search writes it: one row naming no patient.
    (row,) = AccessEvent.objects.filter(page="search:nhs")
    assert (row.patient_id, row.reason) == (None, "no-match")
    # The search's answer for the same number says the same.
    search = client.post(reverse("patient-search"), {"by": "nhs", "nhs_number": unused})
    assert "No patients found" in search.content.decode() and NOT_FOUND in search.content.decode()


@pytest.mark.hazard("H-03")
def test_signed_out_the_box_is_not_there_and_its_post_is_sent_to_sign_in(client, patient):
    """`/` is the public landing page signed out (login_not_required): its GET shows no box, and a POST of a number
    searches nothing; it is sent to sign in, as any professional page is."""
    assert 'name="nhs_number"' not in client.get(reverse("home")).content.decode()
    response = client.post(reverse("home"), {"nhs_number": patient.nhs_number})
    assert response.status_code == 302
    assert response["Location"] == f"{reverse('account_login')}?next=/"
    assert not AccessEvent.objects.exists()
