"""The HL7 bench must measure real work: its ORU^R01 is applied (a report of 20 results for the dataset patient
it names, matched by NHS number and date of birth), and its floor answers AA without touching the record."""

import datetime

import pytest

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
