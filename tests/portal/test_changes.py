"""What changed since you last looked (issue 17): marked on the summary, listed on its own page (H-08)."""

import datetime
import re

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from audit.models import AccessBasis, AccessEvent, AccessOutcome
from directory.actions import add_team_member
from fhirapi.models import ReceivedResource
from optout import actions as optout
from patients.categories import Category, entry_models
from patients.models import Condition
from sharing import changes as changes_since
from tests import factories
from tests.fhirapi.conftest import condition_resource, import_json, patient_resource

pytestmark = pytest.mark.django_db

# 09:30 in London (BST): the page gives the time of the last look in Europe/London.
MONDAY = datetime.datetime(2026, 7, 6, 8, 30, tzinfo=datetime.UTC)
TAG = re.compile(r'<strong class="nhsuk-tag nhsuk-tag--pink app-changed-tag">(New|Updated)<')


@pytest.fixture(autouse=True)
def clock():
    """Set before every other fixture (autouse), so the organisations' sharing agreements date from Monday too."""
    with time_machine.travel(MONDAY, tick=False) as traveller:
        yield traveller


def later(clock, **delta):
    clock.shift(datetime.timedelta(**delta))


def look(client, user, patient, name="record-summary"):
    """Open a record page as `user` (signed in afresh: a shift of the clock may have ended the session)."""
    client.force_login(user)
    response = client.get(reverse(name, args=[patient.pk]))
    assert response.status_code == 200
    return response


def marks(response):
    """(category, entry id) -> "New" / "Updated" on the summary, as the view set them."""
    return {
        (section.category, entry.pk): entry.change.label
        for section in response.context["sections"]
        for entry in section.items
        if getattr(entry, "change", None)
    }


def tags(response):
    return TAG.findall(response.content.decode())


@pytest.mark.hazard("H-08")
def test_the_first_look_marks_nothing_and_says_it_is_the_first(client, clinician, patient, full_record, clock):
    response = look(client, clinician, patient)
    assert response.context["changes"].first_look
    assert marks(response) == {} and tags(response) == []
    assert "This is your first look at this record, so nothing is marked as new" in response.content.decode()
    # Still the first visit minutes later, on the changes page too: nothing to compare with yet.
    later(clock, minutes=5)
    factories.ConditionFactory(patient=patient, source_organisation=full_record[Condition].source_organisation)
    page = look(client, clinician, patient, "record-changes")
    assert page.context["changes"].first_look and page.context["changed"] == []
    assert "This is your first look at this record" in page.content.decode()


@pytest.mark.hazard("H-08")
def test_a_second_look_marks_what_arrived_since_and_nothing_else(client, clinician, patient, other_organisation, clock):
    seen = factories.ConditionFactory(patient=patient, source_organisation=other_organisation, name="Asthma")
    look(client, clinician, patient)
    later(clock, days=2)
    new_condition = factories.ConditionFactory(
        patient=patient, source_organisation=other_organisation, name="Hypertension"
    )
    new_letter = factories.LetterFactory(patient=patient, source_organisation=other_organisation, title="Clinic letter")
    later(clock, hours=1)
    response = look(client, clinician, patient)
    assert marks(response) == {
        (Category.CONDITIONS, new_condition.pk): "New",
        (Category.LETTERS, new_letter.pk): "New",
    }
    assert (Category.CONDITIONS, seen.pk) not in marks(response)
    assert sorted(tags(response)) == ["New", "New"]
    body = response.content.decode()
    changes_url = reverse("record-changes", args=[patient.pk])
    assert f'<a href="{changes_url}">2 entries new or changed</a> since you last looked on' in body
    assert "6 July 2026 at 09:30" in body  # Europe/London (BST), the time of the last page of that visit


@pytest.mark.hazard("H-08")
def test_a_newer_version_from_the_source_marks_the_entry_updated(client, clinician, patient, other_organisation, clock):
    """Through the FHIR API, as a partner sends it: the kept version 2 arrived after the last look."""
    import_json(patient_resource(nhs_number=patient.nhs_number, family=patient.family_name), other_organisation)
    import_json(condition_resource("c1", name="Asthma"), other_organisation)
    import_json(condition_resource("c2", name="Eczema"), other_organisation)
    look(client, clinician, patient)
    later(clock, days=1)
    import_json(condition_resource("c1", name="Asthma", note=[{"text": "Now severe"}]), other_organisation)
    import_json(condition_resource("c2", name="Eczema"), other_organisation)  # the same again: no new version
    later(clock, hours=2)
    response = look(client, clinician, patient)
    asthma = Condition.objects.get(patient=patient, source_id="Condition/c1")
    assert ReceivedResource.objects.filter(resource_id="c1").count() == 2
    assert ReceivedResource.objects.filter(resource_id="c2").count() == 1
    assert marks(response) == {(Category.CONDITIONS, asthma.pk): "Updated"}
    assert tags(response) == ["Updated"]
    assert response.context["changes"].marks[Category.CONDITIONS, asthma.pk].at == MONDAY + datetime.timedelta(days=1)


@pytest.mark.hazard("H-08")
def test_only_a_newer_version_of_that_entry_received_since_marks_it(
    client, clinician, patient, organisation, other_organisation, clock
):
    """Never marked updated without a kept newer version of that very entry received after the last look: one
    received before it, one of another organisation's resource with the same id, the first version of a
    resource, or the source's own later timestamp, mark nothing."""
    before = factories.ConditionFactory(
        patient=patient, source_organisation=other_organisation, source_id="Condition/a"
    )
    same_id = factories.ConditionFactory(
        patient=patient, source_organisation=other_organisation, source_id="Condition/b"
    )
    first_only = factories.ConditionFactory(
        patient=patient, source_organisation=other_organisation, source_id="Condition/c"
    )
    revised = factories.ConditionFactory(
        patient=patient, source_organisation=other_organisation, source_id="Condition/d"
    )

    def version(owner, resource_id, number):
        ReceivedResource.objects.create(
            organisation=owner,
            resource_type="Condition",
            resource_id=resource_id,
            version=number,
            received_at=datetime.datetime.now(tz=datetime.UTC),
            json={"resourceType": "Condition", "id": resource_id},
            digest=f"{owner.pk}-{resource_id}-{number}",
            patient=patient,
        )

    later(clock, minutes=30)
    version(other_organisation, "a", 2)  # before the look
    later(clock, minutes=30)
    look(client, clinician, patient)
    later(clock, days=1)
    version(organisation, "b", 2)  # another organisation's Condition/b, not this entry
    version(other_organisation, "c", 1)
    version(other_organisation, "d", 3)
    Condition.objects.filter(pk=first_only.pk).update(source_updated_at=datetime.datetime.now(tz=datetime.UTC))
    later(clock, hours=1)
    response = look(client, clinician, patient)
    assert marks(response) == {(Category.CONDITIONS, revised.pk): "Updated"}
    assert {before.pk, same_id.pk, first_only.pk}.isdisjoint(pk for _, pk in marks(response))


@pytest.mark.hazard("H-08")
def test_a_report_whose_observation_has_a_newer_version_is_marked_updated(
    client, clinician, patient, other_organisation, clock
):
    report = factories.ResultFactory(
        patient=patient, source_organisation=other_organisation, source_id="DiagnosticReport/fbc"
    )
    factories.ObservationFactory(result=report, source_id="Observation/hb")
    look(client, clinician, patient)
    later(clock, days=1)
    ReceivedResource.objects.create(
        organisation=other_organisation,
        resource_type="Observation",
        resource_id="hb",
        version=2,
        received_at=datetime.datetime.now(tz=datetime.UTC),
        json={"resourceType": "Observation", "id": "hb"},
        digest="hb-2",
        patient=patient,
    )
    later(clock, hours=1)
    assert marks(look(client, clinician, patient)) == {(Category.RESULTS, report.pk): "Updated"}


@pytest.mark.hazard("H-08")
@pytest.mark.hazard("H-11")
def test_entries_the_viewer_may_not_see_are_never_counted_or_listed(
    client, clinician, patient, organisation, other_organisation, clock
):
    silent = factories.OrganisationFactory(name="Not Sharing Trust", shares=[])
    look(client, clinician, patient)
    later(clock, days=1)
    shown = factories.ConditionFactory(patient=patient, source_organisation=other_organisation, name="Shown asthma")
    hidden = [
        factories.ConditionFactory(
            patient=patient, source_organisation=other_organisation, name="Sensitive hidden", sensitive=True
        ),
        factories.ConditionFactory(patient=patient, source_organisation=silent, name="Unshared hidden"),
        factories.ConditionFactory(
            patient=patient, source_organisation=other_organisation, name="Withdrawn hidden", entered_in_error=True
        ),
    ]
    later(clock, hours=1)
    summary = look(client, clinician, patient)
    assert marks(summary) == {(Category.CONDITIONS, shown.pk): "New"}
    assert summary.context["changes"].count == 1
    page = look(client, clinician, patient, "record-changes")
    assert [item.entry for item in page.context["changed"]] == [shown]
    body = page.content.decode()
    assert "Shown asthma" in body and not any(entry.name in body for entry in hidden)

    # Opted out: only the viewer's own organisation's entries, new or not.
    later(clock, minutes=1)
    own = factories.ConditionFactory(patient=patient, source_organisation=organisation, name="Own asthma")
    objection = optout.record_professional_objection(
        by=None, patient=patient, reason="", how_told="In clinic", region="NCL"
    )
    optout.verify(by=None, objection=objection, identity_check="documents")
    optout.uphold(by=None, objection=objection)
    later(clock, hours=1)
    page = look(client, clinician, patient, "record-changes")
    assert [item.entry for item in page.context["changed"]] == [own]
    assert "Shown asthma" not in page.content.decode()


@pytest.mark.hazard("H-08")
def test_another_professionals_looks_do_not_count(client, clinician, patient, care_team, other_organisation, clock):
    colleague = factories.ProfessionalFactory(organisation=care_team.organisation)
    add_team_member(by=None, team=care_team, professional=colleague)
    look(client, clinician, patient)
    later(clock, days=1)
    letter = factories.LetterFactory(patient=patient, source_organisation=other_organisation)
    later(clock, hours=1)
    colleague_view = look(client, colleague.user, patient)
    assert colleague_view.context["changes"].first_look  # the clinician's looks are not theirs
    later(clock, hours=1)
    response = look(client, clinician, patient)  # the colleague has looked since: still new to the clinician
    assert marks(response) == {(Category.LETTERS, letter.pk): "New"}
    assert response.context["changes"].since == MONDAY


@pytest.mark.hazard("H-08")
def test_searches_and_lists_are_not_looks_and_pages_of_one_visit_are_one_look(
    client, clinician, patient, other_organisation, clock
):
    """A look is a visit: the summary, then the medications, then the summary again keep what was marked; the
    "What changed" page opened from it lists the same. Being listed in "my patients" is not a look."""
    look(client, clinician, patient)
    later(clock, days=1)
    letter = factories.LetterFactory(patient=patient, source_organisation=other_organisation)
    later(clock, hours=1)
    client.force_login(clinician)
    assert client.get(reverse("my-patients")).status_code == 200  # demographics only
    later(clock, minutes=1)
    first = look(client, clinician, patient)
    later(clock, minutes=10)
    look(client, clinician, patient, "record-medications")
    later(clock, minutes=10)
    again = look(client, clinician, patient)
    assert marks(first) == marks(again) == {(Category.LETTERS, letter.pk): "New"}
    later(clock, minutes=2)
    page = look(client, clinician, patient, "record-changes")
    assert [(item.category, item.entry) for item in page.context["changed"]] == [(Category.LETTERS, letter)]
    # A new visit (more than the idle time since the last page) counts from the end of this one.
    later(clock, minutes=20)
    assert look(client, clinician, patient).context["changes"].count == 0


@pytest.mark.hazard("H-08")
def test_the_changes_page_lists_them_newest_first_with_category_source_date_and_kind(
    client, clinician, patient, other_organisation, clock
):
    old = factories.MedicationFactory(
        patient=patient,
        source_organisation=other_organisation,
        source_id="MedicationStatement/m1",
        name="Ramipril 5 mg",
    )
    look(client, clinician, patient)
    later(clock, days=1)
    undated = factories.AllergyFactory(
        patient=patient, source_organisation=other_organisation, substance="Penicillin", effective_at=None
    )
    later(clock, hours=1)
    ReceivedResource.objects.create(
        organisation=other_organisation,
        resource_type="MedicationStatement",
        resource_id="m1",
        version=2,
        received_at=datetime.datetime.now(tz=datetime.UTC),
        json={},
        digest="m1-2",
        patient=patient,
    )
    later(clock, hours=1)
    response = look(client, clinician, patient, "record-changes")
    changed = response.context["changed"]
    assert [(item.category, item.entry, item.mark.label, item.title) for item in changed] == [
        (Category.MEDICATIONS, old, "Updated", "Ramipril 5 mg"),
        (Category.ALLERGIES, undated, "New", "Penicillin"),
    ]
    body = response.content.decode()
    assert body.index("Ramipril 5 mg") < body.index("Penicillin")
    assert reverse("record-medications", args=[patient.pk]) in body and other_organisation.name in body
    assert "Newer version received <time" in body and "7 Jul 2026, 10:30" in body
    assert "Date not recorded" in body  # the undated allergy's date is not filled in with when it arrived
    assert "2 entries are new or changed" in body
    (event,) = AccessEvent.objects.filter(request_id=response["X-Request-ID"])
    assert (event.page, event.outcome, event.basis, event.user_id, event.patient_id) == (
        "record:changes",
        AccessOutcome.ALLOWED,
        AccessBasis.CARE_TEAM,
        clinician.pk,
        patient.pk,
    )


def test_the_record_navigation_links_to_what_changed(client, clinician, patient):
    body = look(client, clinician, patient).content.decode()
    assert f'href="{reverse("record-changes", args=[patient.pk])}"' in body and ">What changed</a>" in body


def test_every_category_has_a_title_for_the_changes_list():
    assert set(changes_since.TITLE_FIELDS) == set(entry_models())
    for category, model in entry_models().items():
        model._meta.get_field(changes_since.TITLE_FIELDS[category])


def _changed_record(patient, organisation, n):
    for _ in range(n):
        for entry_factory in factories.ENTRY_FACTORIES.values():
            entry_factory(patient=patient, source_organisation=organisation)


CHANGES_PAGE_QUERIES = 30  # the page's fixed queries and one per category: whatever the size of the record


def test_the_summary_and_the_changes_page_run_the_same_queries_however_much_changed(
    client, clinician, patient, other_organisation, clock
):
    look(client, clinician, patient)
    later(clock, days=1)
    _changed_record(patient, other_organisation, 1)
    later(clock, hours=1)
    look(client, clinician, patient, "record-changes")  # warm the process-wide caches (content types)
    counts = []
    for n in (0, 4):
        _changed_record(patient, other_organisation, n)
        client.force_login(clinician)
        for name in ("record-summary", "record-changes"):
            with CaptureQueriesContext(connection) as queries:
                assert client.get(reverse(name, args=[patient.pk])).status_code == 200
            counts.append(len(queries))
    # 11 vs 55 changed entries: the summary runs the same queries; the changes page one per category on its page
    # (which categories fill page 1 depends on the databases' order of ties), so never more than its bound.
    assert counts[0] == counts[2], counts
    assert max(counts[1], counts[3]) <= CHANGES_PAGE_QUERIES, counts


def test_the_changes_page_is_bounded(
    client, clinician, patient, other_organisation, clock, django_assert_max_num_queries
):
    look(client, clinician, patient)
    later(clock, days=1)
    _changed_record(patient, other_organisation, 3)
    later(clock, hours=1)
    client.force_login(clinician)
    with django_assert_max_num_queries(CHANGES_PAGE_QUERIES):
        assert client.get(reverse("record-changes", args=[patient.pk])).status_code == 200


def test_a_visit_longer_than_the_looks_read_counts_from_the_oldest_read(
    client, clinician, patient, other_organisation, clock, monkeypatch
):
    """Bounded: only the newest LOOKS_READ looks are read. A visit with more pages than that and no pause counts
    from the oldest of them (more marked as new, never less), rather than calling this a first look."""
    monkeypatch.setattr(changes_since, "LOOKS_READ", 3)
    look(client, clinician, patient)
    later(clock, days=1)
    oldest_read = datetime.datetime.now(tz=datetime.UTC)
    for _ in range(3):
        look(client, clinician, patient)
        later(clock, minutes=5)
    changes = look(client, clinician, patient).context["changes"]
    assert changes.since == oldest_read + datetime.timedelta(minutes=5)
    assert not changes.first_look
