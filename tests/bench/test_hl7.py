"""The HL7 bench must measure real work: its ORU^R01 is applied (a report of 20 results for the dataset patient
it names, matched by NHS number and date of birth), and its floor answers AA without touching the record."""

import datetime

import pytest
from django.db import connection

from bench import hl7 as bench_hl7
from directory.models import Organisation
from feeds.receive import receive
from patients.models import Result
from tests import factories

pytestmark = pytest.mark.django_db


def test_the_bench_message_is_applied_as_a_report_of_twenty_results():
    factories.OrganisationFactory(kind=Organisation.Kind.ACUTE_TRUST)
    feed = bench_hl7.bench_feed()
    patient = factories.PatientFactory()
    person = (patient.nhs_number, patient.given_name, patient.family_name, patient.date_of_birth, patient.sex)
    (message,) = bench_hl7.messages([person], 1, "t")
    reply = receive(message, feed=feed, organisation=feed.organisation, peer="bench")
    assert (reply.code, reply.status) == ("AA", "applied"), reply.acks
    report = Result.objects.get(patient=patient)
    assert report.observations.count() == len(bench_hl7.RESULTS) == 20
    again = receive(message, feed=feed, organisation=feed.organisation, peer="bench")
    assert again.code == "AA" and Result.objects.get(patient=patient).observations.count() == 20


def test_the_floor_answers_aa_and_keeps_nothing():
    person = ("9434765919", "Ada", "Testperson", datetime.date(1980, 1, 1), "female")
    reply = bench_hl7._floor_receive(bench_hl7.oru(person, "F1"))
    assert reply.code == "AA" and "\rMSA|AA|F1" in reply.ack
    assert not Result.objects.exists()


@pytest.mark.skipif(connection.vendor != "postgresql", reason="reads the PostgreSQL backend's CPU")
def test_the_cpu_measure_applies_every_message_and_counts_its_cpu_and_statements(monkeypatch):
    from bench.run import Measured

    monkeypatch.setenv("BENCH_HL7_MESSAGES", "4")
    monkeypatch.setattr(bench_hl7, "analyze", lambda scale: None)  # the bench database's tables: not in a test
    factories.OrganisationFactory(kind=Organisation.Kind.ACUTE_TRUST)
    people = []
    for _ in range(3):
        patient = factories.PatientFactory()
        people.append((patient.nhs_number, patient.given_name, patient.family_name, patient.date_of_birth, "male"))
    measured = Measured(bench_hl7.CPU)
    bench_hl7.cpu(measured, "small", people)
    assert (measured.n, measured.errors) == (4, 0)
    assert Result.objects.count() == 4 + bench_hl7.WARMUP  # each message a new report: real work, measured
    assert measured.extra["python_cpu_ms"] > 0 and measured.extra["statements"] >= 10
    assert measured.extra["postgres_cpu_ms"] >= 0
