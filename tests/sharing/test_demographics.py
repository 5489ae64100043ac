"""Issue 12: what the viewer is told about sources that disagree on who the patient is (sharing.demographics).

A disagreement is always said; the source is named only where the viewer may see that organisation's entries
in this record (sharing agreements, the sensitive flag, an upheld objection), else it is "another source".
"""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from directory.models import Region
from optout import actions as optout_actions
from sharing.access import decide
from sharing.demographics import notes_for, sentence
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def own_copy(patient, organisation):
    """The registered practice's copy (the viewer's own organisation): the master view."""
    return factories.SourceDemographicsFactory(patient=patient, organisation=organisation)


def differing_copy(patient, organisation, **fields):
    return factories.SourceDemographicsFactory(
        patient=patient, organisation=organisation, **({"postcode": "E9 9ZZ"} | fields)
    )


def texts(patient, user):
    return [note.text for note in notes_for(patient, decide(user, patient))]


@pytest.mark.hazard("H-06")
def test_a_source_whose_entries_the_viewer_sees_is_named(patient, clinician, own_copy, other_organisation):
    factories.ConditionFactory(patient=patient, source_organisation=other_organisation)
    differing_copy(patient, other_organisation)
    assert texts(patient, clinician) == ["St Elsewhere NHS Foundation Trust holds a different address"]


@pytest.mark.hazard("H-06", "H-11")
def test_a_source_whose_entries_here_are_all_sensitive_is_another_source(patient, clinician, own_copy):
    clinic = factories.OrganisationFactory(name="Sexual Health Clinic")
    factories.ConditionFactory(patient=patient, source_organisation=clinic, sensitive=True)
    differing_copy(patient, clinic)
    assert texts(patient, clinician) == ["Another source holds a different address"]


@pytest.mark.hazard("H-06", "H-02")
def test_a_source_that_shares_nothing_with_the_viewer_is_another_source(patient, clinician, own_copy):
    silent = factories.OrganisationFactory(name="Silent Trust", shares=[])
    factories.ConditionFactory(patient=patient, source_organisation=silent)
    differing_copy(patient, silent, phone="07700 900999")
    assert texts(patient, clinician) == [
        "Another source holds a different address",
        "Another source holds a different phone number",
    ]


@pytest.mark.hazard("H-06", "H-02")
def test_after_an_upheld_objection_only_the_viewers_own_organisation_is_named(
    patient, clinician, own_copy, organisation, other_organisation, ig_user
):
    factories.ConditionFactory(patient=patient, source_organisation=other_organisation)
    differing_copy(patient, other_organisation, family_name="Otherwise")
    national = factories.OrganisationFactory(name="National Trace", national_demographics=True, shares=[])
    factories.SourceDemographicsFactory(patient=patient, organisation=national, date_of_birth=None)
    objection = optout_actions.record_professional_objection(
        by=ig_user, patient=patient, reason="No sharing", how_told="in-person", region=Region.SEL
    )
    optout_actions.verify(by=ig_user, objection=objection, identity_check="documents")
    optout_actions.uphold(by=ig_user, objection=objection, reason="Patient's wish")
    decision = decide(clinician, patient)
    assert decision.opted_out
    # The trace now comes first, so the viewer's own practice is among those that differ: it is named; the
    # trust, whose entries the objection hides, is not.
    own_copy.postcode = "N16 6XX"
    own_copy.save()
    assert [note.text for note in notes_for(patient, decision)] == [
        "Another source holds a different name",
        "Riverside Medical Centre and another source hold a different address",
    ]


@pytest.mark.hazard("H-11")
def test_a_restricted_patients_address_and_phone_disagreements_are_not_mentioned(
    patient, clinician, own_copy, other_organisation
):
    factories.ConditionFactory(patient=patient, source_organisation=other_organisation)
    differing_copy(patient, other_organisation, phone="07700 900999", family_name="Otherwise")
    patient.restricted = True
    patient.save()
    assert texts(patient, clinician) == ["St Elsewhere NHS Foundation Trust holds a different name"]


def test_no_disagreement_costs_one_query_and_a_refused_viewer_hears_no_names(
    patient, clinician, outsider, own_copy, other_organisation
):
    decision = decide(clinician, patient)
    with CaptureQueriesContext(connection) as queries:
        assert notes_for(patient, decision) == []
    assert len(queries) == 1
    factories.ConditionFactory(patient=patient, source_organisation=other_organisation)
    differing_copy(patient, other_organisation)
    assert texts(patient, outsider) == ["Another source holds a different address"]


def test_sentences_name_first_and_count_the_rest():
    class Org:
        def __init__(self, pk, name):
            self.pk, self.name = pk, name

    a, b, c, d = Org(1, "Alpha"), Org(2, "Beta"), Org(3, "Gamma"), Org(4, "Delta")
    assert sentence([a], {1}, "a different name") == "Alpha holds a different name"
    assert sentence([a, b], {1, 2}, "x") == "Alpha and Beta hold x"
    assert sentence([a, b, c], {1}, "x") == "Alpha and 2 other sources hold x"
    assert sentence([a, b, c, d], {1, 2, 3}, "x") == "Alpha, Beta, Gamma and another source hold x"
    assert sentence([c, d], set(), "x") == "2 other sources hold x"
