"""sharing.actions not covered elsewhere: each write has its effect on access or sharing, and exactly the audit row
it should. The fixtures write audit rows of their own, so each test reads only the rows after its `mark()`."""

import datetime

import pytest
from django.db.models import Max
from django.utils import timezone

from audit.models import AuditEvent
from audit.names import Action
from patients.categories import Category
from sharing import actions
from sharing.access import decide
from sharing.models import Involvement, SharingAgreement
from sharing.record import entries
from tests import factories

pytestmark = pytest.mark.django_db


def mark() -> int:
    return AuditEvent.objects.aggregate(last=Max("pk"))["last"] or 0


def written_since(start: int) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(pk__gt=start).order_by("pk"))


def assert_one_event(start, *, action, by, target, detail, patient_id=None):
    [event] = written_since(start)
    assert event.action == action
    assert (event.actor_id, event.actor_email) == ((by.pk, by.email) if by else (None, ""))
    assert (event.target_type, event.target_id) == (type(target).__name__, str(target.pk))
    assert event.patient_id == patient_id
    assert event.detail == detail
    return event


def test_update_involvement_ending_it_in_the_past_revokes_access(ig_officer, clinician, patient):
    involvement = Involvement.objects.get(patient=patient)
    assert decide(clinician, patient).allowed
    ended = timezone.now() - datetime.timedelta(days=1)
    start = mark()
    actions.update_involvement(by=ig_officer, involvement=involvement, ended_at=ended)
    assert Involvement.objects.get(pk=involvement.pk).ended_at == ended
    assert not decide(clinician, patient).allowed
    assert_one_event(
        start,
        action=Action.INVOLVEMENT_UPDATED,
        by=ig_officer,
        target=involvement,
        patient_id=patient.pk,
        detail={"ended_at": str(ended)},
    )


def test_update_involvement_taking_the_end_away_audits_it_as_empty(ig_officer, clinician, patient):
    involvement = Involvement.objects.get(patient=patient)
    actions.end_involvement(by=None, involvement=involvement)
    start = mark()
    actions.update_involvement(by=ig_officer, involvement=involvement, ended_at=None, reason="caseload")
    assert decide(clinician, patient).allowed
    assert_one_event(
        start,
        action=Action.INVOLVEMENT_UPDATED,
        by=ig_officer,
        target=involvement,
        patient_id=patient.pk,
        detail={"ended_at": "", "reason": "caseload"},
    )


def test_reopen_involvement_restores_the_teams_access(ig_officer, clinician, patient):
    involvement = Involvement.objects.get(patient=patient)
    actions.end_involvement(by=None, involvement=involvement)
    assert not decide(clinician, patient).allowed
    start = mark()
    actions.reopen_involvement(by=ig_officer, involvement=involvement)
    assert Involvement.objects.get(pk=involvement.pk).ended_at is None
    assert decide(clinician, patient).allowed
    assert_one_event(
        start,
        action=Action.INVOLVEMENT_REOPENED,
        by=ig_officer,
        target=involvement,
        patient_id=patient.pk,
        detail={},
    )


def test_save_sharing_agreement_decides_what_others_see_from_the_next_request(
    ig_officer, clinician, patient, other_organisation
):
    factories.ConditionFactory(patient=patient, source_organisation=other_organisation)
    assert entries(patient, decide(clinician, patient), Category.CONDITIONS).count() == 1
    agreement = SharingAgreement.objects.get(organisation=other_organisation, category=Category.CONDITIONS)
    agreement.shares = False
    start = mark()
    actions.save_sharing_agreement(by=ig_officer, agreement=agreement)
    assert entries(patient, decide(clinician, patient), Category.CONDITIONS).count() == 0
    assert_one_event(
        start,
        action=Action.SHARING_AGREEMENT_CHANGED,
        by=ig_officer,
        target=agreement,
        detail={
            "organisation": other_organisation.ods_code,
            "category": "conditions",
            "shares": "False",
            "since": str(agreement.since),
        },
    )


def test_set_sharing_creates_then_changes_an_agreement(ig_officer):
    organisation = factories.OrganisationFactory(shares=[])
    since = datetime.date(2024, 4, 1)
    start = mark()
    created = actions.set_sharing(
        by=ig_officer, organisation=organisation, category=Category.LETTERS, shares=False, since=since
    )
    assert (created.shares, created.since) == (False, since)
    assert_one_event(
        start,
        action=Action.SHARING_AGREEMENT_CHANGED,
        by=ig_officer,
        target=created,
        detail={"organisation": organisation.ods_code, "category": "letters", "shares": "False", "since": "2024-04-01"},
    )

    start = mark()
    changed = actions.set_sharing(by=ig_officer, organisation=organisation, category=Category.LETTERS)
    assert changed.pk == created.pk
    [agreement] = SharingAgreement.objects.filter(organisation=organisation)
    assert (agreement.category, agreement.shares, agreement.since) == (Category.LETTERS, True, since)  # since kept
    assert_one_event(
        start,
        action=Action.SHARING_AGREEMENT_CHANGED,
        by=ig_officer,
        target=agreement,
        detail={"organisation": organisation.ods_code, "category": "letters", "shares": "True", "since": "2024-04-01"},
    )


def test_sync_team_access_makes_the_grant_match_the_involvements_and_audits_nothing(clinician, patient, care_team):
    Involvement.objects.filter(patient=patient).update(ended_at=timezone.now() - datetime.timedelta(hours=1))
    assert decide(clinician, patient).allowed  # the grant outlives the involvement until it is synced
    start = mark()
    assert actions.sync_team_access(patient=patient, care_team=care_team) is False
    assert not decide(clinician, patient).allowed
    Involvement.objects.filter(patient=patient).update(ended_at=None)
    assert actions.sync_team_access(patient=patient, care_team=care_team) is True
    assert decide(clinician, patient).allowed
    assert written_since(start) == []  # the helper of the audited actions, not an action of its own
