"""Recent patients on "My patients" (issue 17): the records the professional opened last, only those they could
open now, each shown audited like the rest of the list."""

import datetime
import re

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from audit.models import AccessBasis, AccessEvent
from directory.actions import add_team_member
from optout import actions as optout
from sharing import actions
from sharing.access import decide
from sharing.changes import recent_patients
from sharing.models import BreakGlass
from tests import factories

pytestmark = pytest.mark.django_db

START = datetime.datetime(2026, 7, 6, 8, 0, tzinfo=datetime.UTC)


@pytest.fixture(autouse=True)
def clock():
    with time_machine.travel(START, tick=False) as traveller:
        yield traveller


def later(clock, **delta):
    clock.shift(datetime.timedelta(**delta))


def open_record(client, user, patient):
    client.force_login(user)
    assert client.get(reverse("record-summary", args=[patient.pk])).status_code == 200


def recent_section(body):
    """The names in the "Recent patients" table, in the order shown."""
    if 'id="recent-patients"' not in body:
        return []
    section = body[body.index('id="recent-patients"') : body.index("Your care teams' patients")]
    return re.findall(r'<a href="/patients/[0-9a-f-]+/">([^<]+)</a>', section)


@pytest.fixture
def looked_at(client, clinician, patient, care_team, clock, ig_officer):
    """The clinician opened, in this order: one whose break glass has since expired, their own patient, one
    whose involvement has since ended, one by break glass still running, and an opted-out one of theirs."""
    expired = factories.PatientFactory(family_name="Expired")
    actions.break_glass(by=clinician, patient=expired, reason_code=BreakGlass.ReasonCode.EMERGENCY_TREATMENT)
    open_record(client, clinician, expired)
    later(clock, hours=5)  # break glass lasts 4
    open_record(client, clinician, patient)
    later(clock, minutes=1)
    ended = factories.PatientFactory(family_name="Ended")
    involvement = factories.InvolvementFactory(patient=ended, care_team=care_team)
    open_record(client, clinician, ended)
    actions.end_involvement(by=None, involvement=involvement)
    later(clock, minutes=1)
    glass = factories.PatientFactory(family_name="Glass")
    actions.break_glass(by=clinician, patient=glass, reason_code=BreakGlass.ReasonCode.EMERGENCY_TREATMENT)
    open_record(client, clinician, glass)
    later(clock, minutes=1)
    opted_out = factories.PatientFactory(family_name="Optedout")
    factories.InvolvementFactory(patient=opted_out, care_team=care_team)
    objection = optout.record_professional_objection(
        by=None, patient=opted_out, reason="", how_told="In clinic", region="NCL"
    )
    optout.verify(by=None, objection=objection, identity_check="documents")
    optout.uphold(by=None, objection=objection)
    open_record(client, clinician, opted_out)
    later(clock, minutes=1)
    return {"expired": expired, "own": patient, "ended": ended, "glass": glass, "opted_out": opted_out}


@pytest.mark.hazard("H-03")
def test_recent_patients_are_only_those_they_could_open_now_newest_first(clinician, looked_at):
    recent = recent_patients(clinician)
    assert recent == [looked_at["opted_out"], looked_at["glass"], looked_at["own"]]
    # The access decision's own answer, patient by patient.
    for patient in looked_at.values():
        assert (patient in recent) == decide(clinician, patient).allowed, patient
    assert [patient.basis for patient in recent] == [
        AccessBasis.CARE_TEAM,
        AccessBasis.BREAK_GLASS,
        AccessBasis.CARE_TEAM,
    ]


@pytest.mark.hazard("H-03")
def test_my_patients_shows_them_by_name_each_audited_once(client, clinician, looked_at):
    client.force_login(clinician)
    response = client.get(reverse("my-patients"))
    body = response.content.decode()
    assert recent_section(body) == [looked_at[name].full_name for name in ("opted_out", "glass", "own")]
    for gone in ("expired", "ended"):
        assert looked_at[gone].full_name not in body
    shown = set(
        AccessEvent.objects.filter(request_id=response["X-Request-ID"]).values_list("page", "patient_id", "basis")
    )
    assert shown == {
        ("my-patients", looked_at["own"].pk, AccessBasis.CARE_TEAM),
        ("my-patients", looked_at["opted_out"].pk, AccessBasis.CARE_TEAM),
        ("my-patients:recent", looked_at["glass"].pk, AccessBasis.BREAK_GLASS),
    }
    assert AccessEvent.objects.filter(request_id=response["X-Request-ID"]).count() == 3  # once per patient shown


def test_only_their_own_record_looks_make_a_patient_recent(client, clinician, patient, care_team):
    colleague = factories.ProfessionalFactory(organisation=care_team.organisation)
    add_team_member(by=None, team=care_team, professional=colleague)
    open_record(client, colleague.user, patient)
    assert recent_patients(clinician) == []  # another professional's look
    client.force_login(clinician)
    client.get(reverse("my-patients"))  # listed, not opened
    client.post(reverse("patient-search"), {"by": "nhs", "nhs_number": patient.nhs_number})  # found, not opened
    assert recent_patients(clinician) == []
    assert 'id="recent-patients"' not in client.get(reverse("my-patients")).content.decode()


def test_at_most_ten_the_most_recent_and_none_on_later_pages(client, clinician, care_team, clock, settings):
    settings.RECORD_PAGE_SIZE = 5
    patients = []
    for n in range(12):
        patient = factories.PatientFactory(family_name=f"Recent{n:02d}")
        factories.InvolvementFactory(patient=patient, care_team=care_team)
        open_record(client, clinician, patient)
        patients.append(patient)
        later(clock, minutes=1)
    open_record(client, clinician, patients[0])  # opened again: the most recent now
    assert recent_patients(clinician) == [patients[0], *reversed(patients[3:])]
    client.force_login(clinician)
    assert len(recent_section(client.get(reverse("my-patients")).content.decode())) == 10
    second = client.get(reverse("my-patients"), {"page": 2})
    assert second.context["recent"] == []
    assert set(AccessEvent.objects.filter(request_id=second["X-Request-ID"]).values_list("page", flat=True)) == {
        "my-patients"
    }


def test_recent_patients_take_the_same_queries_however_many(client, clinician, care_team, clock):
    def my_patients_queries():
        client.force_login(clinician)
        client.get(reverse("my-patients"))  # warm
        with CaptureQueriesContext(connection) as queries:
            client.get(reverse("my-patients"))
        return len(queries)

    def open_more(n):
        for _ in range(n):
            patient = factories.PatientFactory()
            factories.InvolvementFactory(patient=patient, care_team=care_team)
            open_record(client, clinician, patient)
            later(clock, minutes=1)

    open_more(2)
    few = my_patients_queries()
    open_more(9)
    assert my_patients_queries() == few
