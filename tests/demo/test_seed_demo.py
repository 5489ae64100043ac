"""seed_demo: enough plausible data for every page, the demo accounts placed as documented, and idempotent."""

import io
from collections import defaultdict

import pytest
from allauth.mfa.models import Authenticator
from django.contrib.auth import authenticate, get_user_model
from django.core.management import call_command
from django.db import transaction
from django.db.models import Count
from django.urls import reverse

from audit.models import AuditEvent
from demo.accounts import DEMO_ACCOUNTS, DEMO_PASSWORD, IG_GROUP
from directory.models import CareTeam, CareTeamMembership, Organisation, Professional
from optout import actions as optout_actions
from optout.models import Objection, RegionalProcess
from patients.models import ENTRY_MODELS, Condition, Letter, Medication, Observation, Patient, Result, SupportPerson
from sharing.access import decide, patients_in_care_of
from sharing.models import Involvement, PatientGroupObjectPermission, SharingAgreement

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
    RegionalProcess,
    Objection,
)


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


@pytest.fixture(scope="module")
def seeded(django_db_setup, django_db_blocker):
    """The demo with 30 patients, seeded once for the module inside a transaction that is rolled back after it.

    Seeding takes seconds; each test runs in its own savepoint inside this transaction, so what one test
    changes is gone before the next, and nothing is left for other modules."""
    with django_db_blocker.unblock():
        outer = transaction.atomic()
        outer.__enter__()
        try:
            yield seed("--patients", "30", "--force")
        finally:
            transaction.set_rollback(True)
            outer.__exit__(None, None, None)


def test_seeds_every_category_and_a_second_run_adds_nothing(seeded):
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


def test_records_draw_on_several_organisations_with_proper_codes(seeded):
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


def test_results_repeat_over_the_years_so_trends_show(seeded):
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


def test_demo_accounts_sign_in_and_see_what_they_should(seeded):
    output = seeded
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
    assert ig.has_perm("audit.view_accessevent") and ig.has_perm("patients.view_patient")
    # Finding 1 (issue 11): IG hold no permission on any clinical entry, nor the record's own permission.
    assert not ig.has_perm("patients.view_result") and not ig.has_perm("patients.view_condition")
    assert not ig.has_perm("patients.read_shared_record")
    assert {perm for perm in ig.get_all_permissions() if perm.startswith("patients.")} == {"patients.view_patient"}
    assert ig.has_perm("sharing.add_involvement") and ig.has_perm("directory.change_careteam")
    assert not ig.has_perm("audit.change_accessevent") and not ig.has_perm("audit.delete_accessevent")
    assert not decide(ig, patient).allowed  # admin rights are no licence to read records


def test_objections_in_each_state_and_an_opted_out_patient_the_gp_can_open(seeded, client):
    output = seeded
    shared = demo_patient()
    objections = Objection.objects.select_related("patient")

    received = objections.get(status=Objection.Status.RECEIVED)
    assert received.source == Objection.Source.WEB_FORM and received.patient is None
    assert Patient.objects.filter(family_name=received.family_name, date_of_birth=received.date_of_birth).exists()
    verified = objections.get(status=Objection.Status.VERIFIED)
    assert verified.source == Objection.Source.PROFESSIONAL and verified.recorded_by is not None
    upheld = objections.get(status=Objection.Status.UPHELD)
    opted_out = upheld.patient
    assert opted_out is not None and opted_out != shared
    assert len({received.family_name, verified.family_name, upheld.family_name, shared.family_name}) == 4
    assert f"Opted-out demo patient: {opted_out.given_name} {opted_out.family_name}" in output
    assert opted_out.nhs_number_display in output
    assert AuditEvent.objects.filter(target_type="Objection", action="objection.upheld").count() == 1

    gp = demo_user("gp@demo.carerecord.test")
    decision = decide(gp, opted_out)
    assert decision.allowed and decision.opted_out
    assert not decide(gp, shared).opted_out
    client.force_login(gp)
    body = client.get(reverse("record-summary", args=[opted_out.pk])).content.decode()
    assert "This patient has opted out of sharing" in body

    # What IG does with them afterwards stands: a re-run neither reopens nor repeats them.
    optout_actions.withdraw(by=demo_user("ig@demo.carerecord.test"), objection=upheld)
    before = counts()
    output = seed("--patients", "30", "--force")
    assert counts() == before
    assert "Opted-out demo patient" not in output
    assert not objections.filter(status=Objection.Status.UPHELD).exists()
    assert objections.filter(repeat_count__gt=0).count() == 0
