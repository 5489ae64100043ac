"""sharing.actions not covered elsewhere: each write has its effect on access or sharing, and exactly the audit row
it should. The fixtures write audit rows of their own, so each test reads only the rows after its `mark()`."""

import datetime

import pytest
from django.utils import timezone

from audit.names import Action
from directory.actions import create_api_token
from patients.categories import Category
from sharing import actions
from sharing.access import decide
from sharing.models import Involvement, SharingAgreement
from sharing.record import entries
from tests import factories
from tests.audit_rows import assert_one_event, mark, written_since

pytestmark = pytest.mark.django_db


@pytest.mark.hazard("H-03")
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


@pytest.mark.hazard("H-02")
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


# --- involvements partner systems assert, and their review (issue 11) ----------------------------------------------


@pytest.fixture
def partner_token(other_organisation):
    token, _ = create_api_token(by=None, name="EPR feed", organisation=other_organisation)
    return token


@pytest.fixture
def partner_team(other_organisation):
    return factories.CareTeamFactory(organisation=other_organisation, name="Diabetes clinic")


def test_start_involvement_with_a_token_records_it_and_a_review_date(partner_token, partner_team, patient):
    start = mark()
    involvement = actions.start_involvement(
        by=None, patient=patient, care_team=partner_team, reason="referral", token=partner_token
    )
    assert involvement.asserted_by_token == partner_token
    assert involvement.review_on == timezone.localdate() + datetime.timedelta(days=365)
    assert_one_event(
        start,
        action=Action.INVOLVEMENT_STARTED,
        by=None,
        target=involvement,
        patient_id=patient.pk,
        detail={
            "team": "Diabetes clinic",
            "token": str(partner_token.pk),
            "token_prefix": partner_token.prefix,
            "organisation": partner_token.organisation.ods_code,
            "review_on": str(involvement.review_on),
        },
    )


@pytest.mark.hazard("H-03")
def test_start_involvement_refuses_a_token_for_another_organisations_team(partner_token, care_team, patient):
    with pytest.raises(ValueError, match="own teams"):
        actions.start_involvement(by=None, patient=patient, care_team=care_team, reason="referral", token=partner_token)


def test_an_involvement_recorded_here_has_no_review_date_unless_given(ig_officer, partner_team, patient):
    involvement = actions.start_involvement(by=ig_officer, patient=patient, care_team=partner_team, reason="referral")
    assert (involvement.asserted_by, involvement.asserted_by_token, involvement.review_on) == (
        ig_officer.email,
        None,
        None,
    )
    on = datetime.date(2030, 1, 1)
    dated = actions.start_involvement(
        by=ig_officer, patient=factories.PatientFactory(), care_team=partner_team, reason="referral", review_on=on
    )
    assert dated.review_on == on


def test_review_date_follows_the_setting_and_the_end(settings):
    today = datetime.date(2026, 3, 1)
    assert actions.review_date(today=today) == datetime.date(2027, 3, 1)
    ends_soon = timezone.make_aware(datetime.datetime(2026, 6, 1))
    assert actions.review_date(ended_at=ends_soon, today=today) is None  # it stops first: nothing to review
    ends_later = timezone.make_aware(datetime.datetime(2030, 1, 1))
    assert actions.review_date(ended_at=ends_later, today=today) == datetime.date(2027, 3, 1)
    settings.INVOLVEMENT_REVIEW_DAYS = 30
    assert actions.review_date(today=today) == datetime.date(2026, 3, 31)
    settings.INVOLVEMENT_REVIEW_DAYS = 0
    assert actions.review_date(today=today) is None


def test_review_involvement_records_the_review_and_the_next_date(ig_officer, partner_token, partner_team, patient):
    involvement = actions.start_involvement(
        by=None, patient=patient, care_team=partner_team, reason="referral", token=partner_token
    )
    start = mark()
    actions.review_involvement(by=ig_officer, involvement=involvement, note="  Referral letter on file ")
    involvement.refresh_from_db()
    assert (involvement.reviewed_by, involvement.review_note) == (ig_officer, "Referral letter on file")
    assert involvement.reviewed_at is not None
    assert involvement.review_on == timezone.localdate() + datetime.timedelta(days=365)
    assert_one_event(
        start,
        action=Action.INVOLVEMENT_REVIEWED,
        by=ig_officer,
        target=involvement,
        patient_id=patient.pk,
        detail={
            "note": "Referral letter on file",
            "review_on": str(involvement.review_on),
            "asserted_by": "",
        },
    )
    with pytest.raises(ValueError):
        actions.review_involvement(by=None, involvement=involvement)


def test_reviewing_an_ended_involvement_sets_no_next_date(ig_officer, patient):
    involvement = Involvement.objects.get(patient=patient)
    actions.end_involvement(by=None, involvement=involvement)
    actions.review_involvement(by=ig_officer, involvement=involvement)
    assert Involvement.objects.get(pk=involvement.pk).review_on is None


def test_a_token_reopening_an_involvement_puts_it_back_in_the_queue(ig_officer, partner_token, partner_team, patient):
    involvement = actions.start_involvement(
        by=None, patient=patient, care_team=partner_team, reason="referral", token=partner_token
    )
    actions.review_involvement(by=ig_officer, involvement=involvement)
    actions.end_involvement(by=None, involvement=involvement, token=partner_token)
    # Changed by IG (no token): the review stands.
    actions.update_involvement(by=ig_officer, involvement=involvement, reason="caseload")
    assert Involvement.objects.get(pk=involvement.pk).reviewed_by == ig_officer
    start = mark()
    actions.update_involvement(by=None, involvement=involvement, token=partner_token, ended_at=None)
    involvement.refresh_from_db()
    assert involvement.is_current and involvement.reviewed_at is None and involvement.reviewed_by is None
    [event] = written_since(start)
    assert event.detail == {
        "ended_at": "",
        "reviewed_at": "",
        "reviewed_by": "",
        "review_on": str(timezone.localdate() + datetime.timedelta(days=365)),
        "token": str(partner_token.pk),
        "token_prefix": partner_token.prefix,
        "organisation": partner_token.organisation.ods_code,
    }
