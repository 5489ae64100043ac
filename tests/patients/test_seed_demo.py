"""seed_demo: enough plausible data for every page, the demo accounts placed as documented, and idempotent."""

import io
from collections import defaultdict

import pytest
from allauth.mfa.models import Authenticator
from django.contrib.auth import authenticate, get_user_model
from django.core.management import CommandError, call_command
from django.db.models import Count

from patients.demo import DEMO_ACCOUNTS, DEMO_PASSWORD, IG_GROUP
from patients.models import ENTRY_MODELS, Condition, Letter, Medication, Observation, Patient, Result, SupportPerson
from sharing.access import decide, patients_in_care_of
from sharing.models import (
    AuditEvent,
    CareTeam,
    CareTeamMembership,
    Involvement,
    Organisation,
    PatientGroupObjectPermission,
    Professional,
    Region,
    SharingAgreement,
)

pytestmark = pytest.mark.django_db

COUNTED = (
    Organisation,
    SharingAgreement,
    CareTeam,
    CareTeamMembership,
    Professional,
    get_user_model(),
    Authenticator,
    Patient,
    SupportPerson,
    Involvement,
    PatientGroupObjectPermission,
    AuditEvent,
    *ENTRY_MODELS.values(),
    Observation,
)


@pytest.fixture(autouse=True)
def fast_hasher(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def seed(*args):
    out = io.StringIO()
    call_command("seed_demo", *args, stdout=out)
    return out.getvalue()


def counts():
    return {model.__name__: model.objects.count() for model in COUNTED}


def demo_user(email):
    return get_user_model().objects.get(email=email)


def demo_patient():
    return Patient.objects.order_by("nhs_number").first()  # the first generated is the shared one


def test_seeds_every_category_and_a_second_run_adds_nothing():
    seed("--patients", "30", "--force")
    first = counts()
    output = seed("--patients", "30", "--force")

    assert counts() == first
    assert "Created this run: nothing" in output
    assert first["Patient"] == 30
    assert first["Organisation"] >= 25
    assert first["Professional"] >= 50
    assert first["Involvement"] >= 30
    for model in (*ENTRY_MODELS.values(), Observation, SupportPerson):
        assert first[model.__name__] > 0, model.__name__
    assert Involvement.objects.filter(ended_at__isnull=False).exists()
    assert any(model.objects.filter(sensitive=True).exists() for model in ENTRY_MODELS.values())


def test_records_draw_on_several_organisations_with_proper_codes():
    seed("--patients", "30", "--force")
    patient = demo_patient()

    sources = {
        organisation_id
        for model in ENTRY_MODELS.values()
        for organisation_id in model.objects.filter(patient=patient).values_list("source_organisation_id", flat=True)
    }
    assert len(sources) >= 3
    assert set(Condition.objects.values_list("code_system", flat=True)) == {"http://snomed.info/sct"}
    assert set(Medication.objects.values_list("code_system", flat=True)) == {"https://dmd.nhs.uk"}
    assert set(Observation.objects.values_list("code_system", flat=True)) == {"http://loinc.org"}
    assert set(Letter.objects.values_list("kind", flat=True)) == set(Letter.Kind.values)
    assert all(letter.body.count("\n\n") >= 4 for letter in Letter.objects.all())
    for model in ENTRY_MODELS.values():
        entry = model.objects.first()
        assert entry.effective_at.tzinfo is not None and entry.source_updated_at.tzinfo is not None
        assert entry.source_id.startswith("demo-")


def test_results_repeat_over_the_years_so_trends_show():
    seed("--patients", "30", "--force")
    patient = demo_patient()

    years_by_code = defaultdict(set)
    for code, effective_at in Observation.objects.filter(patient=patient).values_list("code", "effective_at"):
        years_by_code[code].add(effective_at.year)
    assert len(years_by_code["59261-8"]) >= 3  # HbA1c, over at least three calendar years
    assert Result.objects.filter(patient=patient).count() >= 8

    per_patient = Result.objects.values("patient").annotate(reports=Count("id")).values_list("reports", flat=True)
    assert sorted(per_patient)[len(per_patient) // 2] >= 8  # most patients have at least eight reports
    for observation in Observation.objects.select_related("result")[:500]:
        assert observation.patient_id == observation.result.patient_id
        assert observation.effective_at == observation.result.effective_at
        expected = "H" if observation.value > observation.reference_high else ""
        expected = "L" if observation.value < observation.reference_low else expected
        assert observation.flag == expected
    assert not Result.objects.annotate(n=Count("observations")).filter(n__lt=2).exists()
    assert not Result.objects.annotate(n=Count("observations")).filter(n__gt=6).exists()


def test_demo_accounts_sign_in_and_see_what_they_should():
    output = seed("--patients", "30", "--force")
    patient = demo_patient()
    assert patient.nhs_number_display in output

    for account in DEMO_ACCOUNTS:
        user = authenticate(username=account.email, password=DEMO_PASSWORD)
        assert user is not None, account.email
        assert Authenticator.objects.filter(user=user, type=Authenticator.Type.TOTP).exists()
    for email in ("gp@demo.carerecord.test", "doctor@demo.carerecord.test", "mhnurse@demo.carerecord.test"):
        assert decide(demo_user(email), patient).allowed, email

    paramedic = demo_user("paramedic@demo.carerecord.test")
    assert not paramedic.groups.exists()
    assert not patients_in_care_of(paramedic).exists()
    assert not decide(paramedic, patient).allowed

    ig = demo_user("ig@demo.carerecord.test")
    assert ig.is_staff and not ig.is_superuser
    assert ig.groups.filter(name=IG_GROUP).exists()
    assert ig.has_perm("sharing.view_accessevent") and ig.has_perm("patients.view_result")
    assert ig.has_perm("sharing.add_involvement") and ig.has_perm("sharing.change_careteam")
    assert not ig.has_perm("sharing.change_accessevent") and not ig.has_perm("sharing.delete_accessevent")
    assert not decide(ig, patient).allowed  # admin rights are no licence to read records


def test_refuses_without_force_when_debug_is_off(settings):
    settings.DEBUG = False
    with pytest.raises(CommandError, match="DEBUG"):
        seed("--patients", "2")
    assert not Patient.objects.exists()


def test_runs_without_force_in_development(settings):
    settings.DEBUG = True
    seed("--patients", "2")
    assert Patient.objects.count() == 2


def test_the_default_seed_meets_the_minimums():
    seed("--force")

    assert Organisation.objects.count() >= 25
    assert set(Organisation.objects.values_list("region", flat=True)) == set(Region.values)
    assert set(Organisation.objects.values_list("kind", flat=True)) == set(Organisation.Kind.values)
    assert Professional.objects.count() >= 50
    assert Patient.objects.count() >= 200
    assert set(CareTeam.objects.values_list("kind", flat=True)) == set(CareTeam.Kind.values)
