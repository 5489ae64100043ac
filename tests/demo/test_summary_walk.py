"""The whole demo, walked: for every demo patient, a member of a care team involved with them opens the summary
and finds on it every current medication, active condition, current allergy and active alert they may see.

"May see" is worked out here from the data, independently of sharing.access and sharing.record: the viewer's
own organisation's entries, and another organisation's when it shares the category today and did not flag the
entry sensitive; nothing entered in error; only their own organisation's after an upheld objection."""

import io
from collections import defaultdict

import pytest
from allauth.mfa.models import Authenticator
from allauth.mfa.totp.internal.auth import TOTP
from django.core.management import call_command
from django.db import transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape

from directory.models import CareTeamMembership
from optout.models import Objection
from patients.categories import Category
from patients.models import Alert, Allergy, Condition, Medication, Patient
from sharing.models import Involvement, SharingAgreement
from tests import factories

pytestmark = [pytest.mark.django_db, pytest.mark.hazard("H-07")]

# What is current, in plain Python over the stored fields (the summary's rule is a query: this checks it).
CURRENT = {
    Category.ALERTS: (Alert, lambda e: e.active, "text"),
    Category.ALLERGIES: (Allergy, lambda e: e.clinical_status not in ("inactive", "resolved"), "substance"),
    Category.MEDICATIONS: (Medication, lambda e: e.status == "active", "name"),
    Category.CONDITIONS: (Condition, lambda e: e.clinical_status == "active", "name"),
}


@pytest.fixture(scope="module")
def demo(django_db_setup, django_db_blocker):
    """The whole demo as `manage.py seed_demo` makes it (its default size), seeded once for the module in a
    transaction rolled back afterwards."""
    with django_db_blocker.unblock():
        outer = transaction.atomic()
        outer.__enter__()
        try:
            call_command("seed_demo", "--force", stdout=io.StringIO())
            yield
        finally:
            transaction.set_rollback(True)
            outer.__exit__(None, None, None)


def care_team_viewer(patient):
    """A member of a care team currently involved with the patient (their professional), or None."""
    teams = Involvement.objects.filter(patient=patient).current().values("care_team")
    membership = (
        CareTeamMembership.objects.filter(team__in=teams, professional__active=True, professional__user__is_active=True)
        .select_related("professional__user", "professional__organisation")
        .order_by("pk")
        .first()
    )
    return membership.professional if membership else None


def expected_on_summary(patient, professional, shares, opted_out):
    own = professional.organisation_id
    expected = {}
    for category, (model, is_current, _) in CURRENT.items():
        expected[category] = [
            entry
            for entry in model.objects.filter(patient=patient, entered_in_error=False)
            if is_current(entry)
            and (
                entry.source_organisation_id == own
                or (not opted_out and not entry.sensitive and (entry.source_organisation_id, category) in shares)
            )
        ]
    return expected


def test_every_current_entry_of_every_demo_patient_is_on_their_summary(demo, client):
    today = timezone.localdate()
    shares = {
        (organisation_id, Category(category))
        for organisation_id, category in SharingAgreement.objects.filter(shares=True, since__lte=today).values_list(
            "organisation_id", "category"
        )
    }
    opted_out = set(Objection.objects.filter(status="upheld").values_list("patient_id", flat=True))
    patients = list(Patient.objects.order_by("nhs_number"))
    assert len(patients) >= 200
    walked, checked = 0, defaultdict(int)
    for patient in patients:
        professional = care_team_viewer(patient)
        if professional is None:
            continue
        if not Authenticator.objects.filter(user=professional.user).exists():
            TOTP.activate(professional.user, factories.TOTP_SECRET)  # the service asks every user for one
        client.force_login(professional.user)
        response = client.get(reverse("record-summary", args=[patient.pk]))
        assert response.status_code == 200, patient
        body = response.content.decode()
        shown = {section.category: {entry.pk for entry in section.items} for section in response.context["sections"]}
        for category, entries in expected_on_summary(patient, professional, shares, patient.pk in opted_out).items():
            field = CURRENT[category][2]
            for entry in entries:
                assert entry.pk in shown[category], (patient, category, entry)
                assert escape(getattr(entry, field)) in body, (patient, category, entry)
            checked[category] += len(entries)
        walked += 1
    assert walked >= len(patients) * 0.9  # nearly every demo patient has a care team involved now
    assert all(checked[category] > walked / 4 for category in (Category.MEDICATIONS, Category.CONDITIONS)), checked
    assert checked[Category.ALLERGIES] and checked[Category.ALERTS], checked
