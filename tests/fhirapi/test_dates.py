"""No invented dates (H-09): a date the source did not give is stored as missing and given back as missing (never
the time of import, never null); onset, recorded and effective dates are kept apart; an update stores what the
new version says.

Before this, a new row without a date got the import time (`upsert`: effective_at = now), an update without a
date kept the old one, and a condition's onset fell back to its recorded date: UKCore-Condition-HipReplacement-
Example came back with an onset of today."""

import datetime
import json

import pytest
from django.utils import timezone

from patients import models as record
from tests import factories

from .conftest import RICHARD_SMITH, condition_resource, example, import_bytes, import_json, patient_resource

pytestmark = [pytest.mark.django_db, pytest.mark.hazard("H-09")]


def body(response):
    return json.loads(response.content)


@pytest.fixture
def richard_smith(sender, care_team):
    """Richard Smith as the sender sends him, in the reader's care."""
    import_bytes(example(RICHARD_SMITH), sender)
    patient = record.Patient.objects.get()
    factories.InvolvementFactory(patient=patient, care_team=care_team)
    return patient


def read_only(api, token, kind, patient) -> dict:
    [entry] = body(api.get(f"/fhir/{kind}?patient={patient.pk}", token=token))["entry"]
    return entry["resource"]


def test_a_condition_without_an_onset_comes_back_without_one(api, reader_token, sender, richard_smith):
    """The issue's case: the hip replacement example gives no onset (nor recorded date)."""
    [outcome] = import_bytes(example("UKCore-Condition-HipReplacement-Example.xml"), sender).outcomes
    assert outcome.status == "created"
    condition = record.Condition.objects.get()
    assert (condition.effective_at, condition.recorded_at) == (None, None)
    assert condition.created_at is not None  # when carerecord received it: kept apart from the clinical dates
    resource = read_only(api, reader_token, "Condition", richard_smith)
    assert "onsetDateTime" not in resource and "recordedDate" not in resource
    assert timezone.localdate().isoformat() not in json.dumps({k: v for k, v in resource.items() if k != "meta"})


def test_an_allergy_with_only_a_recorded_date_has_no_onset(api, reader_token, sender, richard_smith):
    """Recorded 10 Dec 2019 says when it was written down, not when the allergy began."""
    import_bytes(example("UKCore-AllergyIntolerance-Amoxicillin-Example.xml"), sender)
    allergy = record.Allergy.objects.get()
    assert allergy.effective_at is None
    assert allergy.recorded_at == datetime.datetime(2019, 12, 10, 13, tzinfo=datetime.UTC)
    resource = read_only(api, reader_token, "AllergyIntolerance", richard_smith)
    assert resource["recordedDate"] == "2019-12-10T13:00:00Z" and "onsetDateTime" not in resource


def test_an_allergy_and_an_episode_with_no_date_have_none(api, reader_token, sender, richard_smith):
    import_bytes(example("UKCore-AllergyIntolerance-Sn-NonDrugAllergy-Example.xml"), sender)
    import_bytes(example("UKCore-EpisodeOfCare-SmokingCessationTherapy-Example.xml"), sender)
    allergy, episode = record.Allergy.objects.get(), record.CareEvent.objects.get()
    assert (allergy.effective_at, allergy.recorded_at, episode.effective_at) == (None, None, None)
    assert "From" not in episode.description  # nothing said of when it ran
    assert "period" not in read_only(api, reader_token, "EpisodeOfCare", richard_smith)
    assert "onsetDateTime" not in read_only(api, reader_token, "AllergyIntolerance", richard_smith)


def test_onset_and_recorded_dates_are_kept_apart(sender):
    import_json(patient_resource(), sender)
    import_json(condition_resource(onsetDateTime="2015-06-01", recordedDate="2020-02-03"), sender)
    condition = record.Condition.objects.get()
    assert (timezone.localdate(condition.effective_at), timezone.localdate(condition.recorded_at)) == (
        datetime.date(2015, 6, 1),
        datetime.date(2020, 2, 3),
    )
    statement = {
        "resourceType": "MedicationStatement",
        "id": "m1",
        "status": "active",
        "medicationCodeableConcept": {"text": "Ramipril 5mg capsules"},
        "subject": {"reference": "Patient/p1"},
        "dateAsserted": "2024-05-06",
    }
    import_json(statement, sender)
    medication = record.Medication.objects.get()
    assert medication.effective_at is None and timezone.localdate(medication.recorded_at) == datetime.date(2024, 5, 6)


def test_a_new_version_without_the_date_has_no_date(sender):
    """What the newest version says is stored: a date it no longer gives is not kept from the older one."""
    import_json(patient_resource(), sender)
    import_json(condition_resource(meta={"lastUpdated": "2024-01-01T00:00:00Z"}), sender)
    assert record.Condition.objects.get().effective_at is not None
    later = condition_resource(meta={"lastUpdated": "2024-02-01T00:00:00Z"})
    del later["onsetDateTime"]
    assert [o.status for o in import_json(later, sender).outcomes] == ["updated"]
    assert record.Condition.objects.get().effective_at is None


def test_appointments_plans_and_flags_take_only_the_dates_that_say_so(sender):
    """A requested period is not when an appointment is, and `created` is when it was booked (recorded)."""
    import_json(patient_resource(), sender)
    appointment = {
        "resourceType": "Appointment",
        "id": "a1",
        "status": "proposed",
        "created": "2024-03-01",
        "requestedPeriod": [{"start": "2024-04-01T09:00:00Z", "end": "2024-04-30T17:00:00Z"}],
        "participant": [{"actor": {"reference": "Patient/p1"}, "status": "needs-action"}],
    }
    plan = {
        "resourceType": "CarePlan",
        "id": "cp1",
        "status": "active",
        "intent": "plan",
        "title": "Falls plan",
        "created": "2024-02-02",
        "subject": {"reference": "Patient/p1"},
    }
    flag = {"resourceType": "Flag", "id": "f1", "status": "active", "code": {"text": "Uses a wheelchair"}}
    flag["subject"] = {"reference": "Patient/p1"}
    for resource in (appointment, plan, flag):
        assert import_json(resource, sender).outcomes[0].status == "created"
    booked, care_plan, alert = (
        record.Appointment.objects.get(),
        record.CarePlan.objects.get(),
        record.Alert.objects.get(),
    )
    assert (booked.effective_at, timezone.localdate(booked.recorded_at)) == (None, datetime.date(2024, 3, 1))
    assert (care_plan.effective_at, timezone.localdate(care_plan.recorded_at)) == (None, datetime.date(2024, 2, 2))
    assert alert.effective_at is None


@pytest.mark.hazard("H-04")
def test_built_entries_without_a_date_leave_it_out(api, reader_token, patient, other_organisation):
    """Rows not from FHIR (demo data, other feeds) are built: a missing date is left out, never null or now."""
    for model, entry_factory in factories.ENTRY_FACTORIES.items():
        entry = entry_factory(patient=patient, source_organisation=other_organisation, effective_at=None)
        if model is record.Result:
            factories.ObservationFactory(result=entry, effective_at=None)
    bundle = body(api.get(f"/fhir/Patient/{patient.pk}/$everything", token=reader_token))
    assert bundle["total"] == len(bundle["entry"])
    # (The patient, and the care team whose involvement the fixture started today, are not entries.)
    resources = [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] not in ("Patient", "CareTeam")]
    assert {r["resourceType"] for r in resources} >= {"Condition", "AllergyIntolerance", "Observation", "Flag"}
    today = timezone.localdate().isoformat()
    for resource in resources:
        # Every value, walked (free text such as Faker's "nulla" must not count as a null).
        values = list(_values({k: v for k, v in resource.items() if k != "meta"}))
        assert None not in values, resource
        assert not [v for v in values if isinstance(v, str) and v.startswith(today)], resource


def _values(node):
    if isinstance(node, dict):
        for value in node.values():
            yield from _values(value)
    elif isinstance(node, list):
        for value in node:
            yield from _values(value)
    else:
        yield node


@pytest.mark.hazard("H-04")
def test_undated_entries_are_listed_after_dated_ones(api, reader_token, patient, other_organisation):
    """The same on PostgreSQL (where NULL sorts first when descending) and SQLite."""

    def condition(effective_at):
        return factories.ConditionFactory(
            patient=patient, source_organisation=other_organisation, effective_at=effective_at
        )

    undated = condition(None)
    older = condition(datetime.datetime(2020, 1, 1, tzinfo=datetime.UTC))
    newer = condition(datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC))
    entries = body(api.get(f"/fhir/Condition?patient={patient.pk}", token=reader_token))["entry"]
    assert [entry["resource"]["id"] for entry in entries] == [str(newer.pk), str(older.pk), str(undated.pk)]
