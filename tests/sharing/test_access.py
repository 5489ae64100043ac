import datetime
import uuid

import pytest
from django.utils import timezone

from audit.models import AccessBasis
from directory import actions as directory_actions
from patients.models import Patient
from sharing import access, actions
from sharing.models import Involvement
from tests import factories

pytestmark = pytest.mark.django_db


def test_care_team_member_is_allowed_on_care_team_basis(clinician, patient):
    decision = access.decide(clinician, patient)
    assert decision.allowed
    assert decision.basis == AccessBasis.CARE_TEAM
    assert decision.reason == access.Reason.CARE_TEAM


@pytest.mark.hazard("H-03")
@pytest.mark.parametrize(
    ("actor", "reason"),
    [
        ("outsider", access.Reason.NO_RELATIONSHIP),
        ("clinician_other_org", access.Reason.NO_RELATIONSHIP),
        ("ig_officer", access.Reason.NO_RELATIONSHIP),
        ("deactivated", access.Reason.INACTIVE),
        ("inactive_professional", access.Reason.INACTIVE),
        ("professional_at_inactive_organisation", access.Reason.INACTIVE),
        ("no_profile_user", access.Reason.NO_PROFESSIONAL),
    ],
)
def test_everyone_else_is_refused(request, patient, actor, reason):
    decision = access.decide(request.getfixturevalue(actor), patient)
    assert not decision.allowed
    assert decision.reason == reason


@pytest.mark.hazard("H-03")
def test_anonymous_is_refused(patient):
    from django.contrib.auth.models import AnonymousUser

    assert access.decide(AnonymousUser(), patient).reason == access.Reason.NOT_SIGNED_IN


@pytest.mark.hazard("H-03")
def test_inactive_professional_profile_is_refused(clinician, patient):
    clinician.professional.active = False
    clinician.professional.save()
    clinician.refresh_from_db()
    assert access.decide(clinician, patient).reason == access.Reason.INACTIVE


def fresh(user):
    """The same user as a new request sees it (the professional profile is cached on the user object)."""
    return type(user).objects.get(pk=user.pk)


@pytest.mark.hazard("H-03")
def test_inactive_profile_refuses_a_care_team_member(inactive_professional, patient):
    user = inactive_professional
    assert user.is_active and not user.professional.active and user.professional.organisation.active
    decision = access.decide(user, patient)
    assert not decision.allowed
    assert decision.reason == access.Reason.INACTIVE
    assert decision.basis == AccessBasis.NONE
    assert decision.professional == user.professional
    assert not decision.can_break_glass
    assert not access.can_search(user)
    # The profile's flag is all that stands in the way: switched back on, the care team's access applies.
    user.professional.active = True
    user.professional.save()
    assert access.decide(fresh(user), patient).reason == access.Reason.CARE_TEAM


@pytest.mark.hazard("H-03")
def test_inactive_organisation_refuses_a_care_team_member(professional_at_inactive_organisation, patient):
    user = professional_at_inactive_organisation
    organisation = user.professional.organisation
    assert user.is_active and user.professional.active and not organisation.active
    decision = access.decide(user, patient)
    assert not decision.allowed
    assert decision.reason == access.Reason.INACTIVE
    assert decision.basis == AccessBasis.NONE
    assert decision.professional == user.professional
    assert not decision.can_break_glass
    assert not access.can_search(user)
    assert list(access.patients_in_care_of(user)) == []
    # The organisation's flag is all that stands in the way: active again, the care team's access applies.
    organisation.active = True
    organisation.save()
    assert access.decide(fresh(user), patient).reason == access.Reason.CARE_TEAM


@pytest.mark.hazard("H-12")
@pytest.mark.parametrize("actor", ["inactive_professional", "professional_at_inactive_organisation"])
def test_inactive_outranks_broken_glass(request, patient, actor):
    """An unexpired break-glass grant from before the deactivation does not outlive it."""
    user = request.getfixturevalue(actor)
    actions.break_glass(by=user, patient=patient, reason_code="emergency-treatment")
    assert access.active_break_glass(user, patient) is not None
    assert access.decide(fresh(user), patient).reason == access.Reason.INACTIVE


@pytest.mark.hazard("H-03")
def test_care_team_of_another_patient_gives_nothing(clinician, care_team):
    stranger = factories.PatientFactory()
    assert not access.decide(clinician, stranger).allowed


@pytest.mark.hazard("H-03")
def test_ending_the_involvement_revokes_at_once(clinician, patient):
    involvement = Involvement.objects.get(patient=patient)
    actions.end_involvement(by=None, involvement=involvement)
    assert not access.decide(clinician, patient).allowed


def test_access_survives_while_another_involvement_of_the_same_team_is_current(clinician, patient, care_team):
    second = actions.start_involvement(by=None, patient=patient, care_team=care_team, reason="referral")
    first = Involvement.objects.exclude(pk=second.pk).get(patient=patient)
    actions.end_involvement(by=None, involvement=first)
    assert access.decide(clinician, patient).allowed


def test_starting_an_involvement_grants_at_once(outsider, patient, organisation):
    team = factories.CareTeamFactory(organisation=organisation, members=[outsider.professional])
    assert not access.decide(outsider, patient).allowed
    actions.start_involvement(by=None, patient=patient, care_team=team, reason="caseload")
    assert access.decide(outsider, patient).allowed


@pytest.mark.hazard("H-03")
def test_sync_revokes_involvements_that_ended_by_the_clock(clinician, patient):
    involvement = Involvement.objects.get(patient=patient)
    Involvement.objects.filter(pk=involvement.pk).update(ended_at=timezone.now() + datetime.timedelta(hours=1))
    assert access.decide(clinician, patient).allowed
    granted, revoked = actions.sync_all_access(now=timezone.now() + datetime.timedelta(hours=2))
    assert (granted, revoked) == (0, 1)
    assert not access.decide(clinician, patient).allowed


def test_sync_grants_involvements_that_start_later(outsider, patient, organisation):
    team = factories.CareTeamFactory(organisation=organisation, members=[outsider.professional])
    later = timezone.now() + datetime.timedelta(days=1)
    actions.start_involvement(by=None, patient=patient, care_team=team, reason="referral", started_at=later)
    assert not access.decide(outsider, patient).allowed
    granted, _ = actions.sync_all_access(now=later + datetime.timedelta(minutes=1))
    assert granted == 1
    assert access.decide(outsider, patient).allowed


@pytest.mark.hazard("H-03")
def test_leaving_the_team_removes_access(clinician, patient, care_team):
    membership = care_team.memberships.get(professional=clinician.professional)
    directory_actions.remove_team_member(by=None, membership=membership)
    assert not access.decide(type(clinician).objects.get(pk=clinician.pk), patient).allowed


def test_my_patients_lists_only_current_care(clinician, patient, care_team):
    other = factories.PatientFactory()
    assert list(access.patients_in_care_of(clinician)) == [patient]
    assert other not in access.patients_in_care_of(clinician)


@pytest.mark.hazard("H-11")
def test_sensitive_entries_only_for_their_source_organisation(clinician, patient, organisation, other_organisation):
    from patients.models import Condition

    mine = factories.ConditionFactory(patient=patient, source_organisation=organisation, sensitive=True)
    theirs = factories.ConditionFactory(patient=patient, source_organisation=other_organisation, sensitive=True)
    plain = factories.ConditionFactory(patient=patient, source_organisation=other_organisation)
    decision = access.decide(clinician, patient)
    shown = set(access.visible(Condition.objects.filter(patient=patient), decision))
    assert shown == {mine, plain}
    assert theirs not in shown


@pytest.mark.hazard("H-03")
def test_a_patient_not_in_the_database_is_refused_not_an_error(clinician):
    ghost = Patient(pk=uuid.uuid4(), nhs_number="9990000018")
    decision = access.decide(clinician, ghost)
    assert not decision.allowed and decision.reason == "no-care-relationship"
