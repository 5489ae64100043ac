"""seed_demo's options and re-runs: each test seeds a database of its own (small seeds, except the default)."""

import io

import pytest
from django.core.management import CommandError, call_command

from audit.models import AuditEvent
from directory.models import CareTeam, Organisation, Professional, Region
from optout.models import Objection, RegionalProcess
from patients.categories import Category
from patients.models import Patient
from sharing.models import SharingAgreement

pytestmark = pytest.mark.django_db


def seed(*args):
    out = io.StringIO()
    call_command("seed_demo", *args, stdout=out)
    return out.getvalue()


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


def shares(ods_code):
    return set(
        SharingAgreement.objects.filter(organisation__ods_code=ods_code, shares=True).values_list("category", flat=True)
    )


def test_sharing_varies_by_partner():
    seed("--patients", "2", "--force")
    mental_health = shares("ZZM")
    assert {Category.CARE_PLANS, Category.TEAMS, Category.CONDITIONS} <= mental_health
    assert Category.LETTERS not in mental_health and Category.EVENTS not in mental_health
    assert shares("ZZK1") == {Category.TEAMS, Category.APPOINTMENTS, Category.ALERTS, Category.CARE_PLANS}
    assert shares("ZZK2") == {Category.TEAMS, Category.APPOINTMENTS, Category.ALERTS}
    assert shares("ZZA") == set(Category.values)
    assert SharingAgreement.objects.filter(shares=True).values("organisation").distinct().count() == 29


def test_a_rerun_withholds_what_the_demo_withholds_and_keeps_igs_other_changes():
    seed("--patients", "2", "--force")
    SharingAgreement.objects.filter(organisation__ods_code="ZZM", category=Category.LETTERS).update(shares=True)
    SharingAgreement.objects.filter(organisation__ods_code="ZZA", category=Category.LETTERS).update(shares=False)
    changes = AuditEvent.objects.filter(action="sharing-agreement.changed")
    before = changes.count()  # the seed's own starting agreements are audited too
    output = seed("--patients", "2", "--force")

    assert "1 sharing agreements updated" in output
    assert Category.LETTERS not in shares("ZZM")
    assert Category.LETTERS not in shares("ZZA")  # IG's own change stands
    assert changes.count() == before + 1
    event = changes.latest("at", "pk")
    assert event.actor_id is None and event.detail["organisation"] == "ZZM" and event.detail["shares"] == "False"
    assert "Created this run: nothing" in seed("--patients", "2", "--force")


def test_every_region_has_its_own_opt_out_process():
    seed("--patients", "2", "--force")
    processes = {process.region: process for process in RegionalProcess.objects.all()}
    assert set(processes) == set(Region.values)
    assert "ICB information governance team" in processes[Region.SEL].title
    assert "phone" in processes[Region.SEL].body and processes[Region.SEL].contact_phone.startswith("03069 990")
    assert "GP practice" in processes[Region.SWL].title and "online form" in processes[Region.SWL].body
    assert len({process.body for process in processes.values()}) == 5
    for process in processes.values():
        assert process.contact_email.endswith("@example.nhs.uk")

    RegionalProcess.objects.filter(region=Region.SEL).update(title="Edited by IG")
    seed("--patients", "2", "--force")
    assert RegionalProcess.objects.get(region=Region.SEL).title == "Edited by IG"


def test_a_tiny_seed_still_runs_without_its_objections():
    output = seed("--patients", "1", "--force")
    assert "Opted-out demo patient" not in output
    assert not Objection.objects.exists()
