"""directory.actions: each write has its effect and exactly the audit row it should (none when nothing changed).

The fixtures write audit rows of their own (team memberships, involvements), so each test reads only the rows
written after its `mark()`.
"""

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from audit.names import Action
from directory import actions
from directory.models import CareTeam, CareTeamMembership, Organisation, Professional, Region
from tests import factories
from tests.audit_rows import assert_one_event, mark, written_since

pytestmark = pytest.mark.django_db


def test_provision_professional_creates_an_account_with_no_usable_password_and_its_profile(ig_officer, organisation):
    start = mark()
    professional = actions.provision_professional(
        by=ig_officer,
        email="new.nurse@test.carerecord.test",
        first_name="Nia",
        last_name="Newcombe",
        organisation=organisation,
        role=Professional.Role.NURSE,
        job_title="Practice nurse",
    )
    user = get_user_model().objects.get(username="new.nurse@test.carerecord.test")
    assert (user.email, user.first_name, user.last_name) == ("new.nurse@test.carerecord.test", "Nia", "Newcombe")
    assert not user.has_usable_password()
    assert not user.is_staff and not user.groups.exists()
    assert Professional.objects.get(user=user) == professional
    assert (professional.organisation, professional.role, professional.job_title) == (
        organisation,
        Professional.Role.NURSE,
        "Practice nurse",
    )
    assert_one_event(
        start,
        action=Action.PROFESSIONAL_PROVISIONED,
        by=ig_officer,
        target=professional,
        detail={
            "email": "new.nurse@test.carerecord.test",
            "organisation": organisation.ods_code,
            "role": "nurse",
            "via": "admin",
        },
    )


def test_save_professional_audits_the_fields_that_changed(ig_officer, organisation, other_organisation):
    professional = factories.ProfessionalFactory(organisation=organisation)
    start = mark()
    professional.organisation, professional.active = other_organisation, False
    actions.save_professional(by=ig_officer, professional=professional, changed=["organisation", "active"])
    professional.refresh_from_db()
    assert (professional.organisation, professional.active) == (other_organisation, False)
    changed, ended = written_since(start)
    assert (changed.action, changed.actor_id, changed.target_id) == (
        Action.PROFESSIONAL_CHANGED,
        ig_officer.pk,
        str(professional.pk),
    )
    assert changed.detail == {
        "changed": "organisation,active",
        "organisation": other_organisation.ods_code,
        "active": "False",
    }
    # Switched off: their access ends in the same step (test_directory_rules.py has the details).
    assert ended.action == Action.ACCESS_ENDED
    assert ended.detail == {"reason": "professional-deactivated", "sessions": "0", "tokens": "0"}


def test_save_professional_without_changes_writes_no_audit_row(ig_officer, organisation):
    professional = factories.ProfessionalFactory(organisation=organisation)
    start = mark()
    actions.save_professional(by=ig_officer, professional=professional, changed=[])
    assert written_since(start) == []


def test_save_organisation_audits_a_new_organisation_and_the_fields_that_changed(ig_officer):
    start = mark()
    organisation = Organisation(ods_code="ZZT01", name="Test Hospice", kind=Organisation.Kind.HOSPICE, region="SEL")
    actions.save_organisation(by=ig_officer, organisation=organisation, changed=["ods_code", "name", "kind", "region"])
    assert Organisation.objects.get(ods_code="ZZT01").name == "Test Hospice"
    assert_one_event(
        start,
        action=Action.ORGANISATION_CHANGED,
        by=ig_officer,
        target=organisation,
        detail={"changed": "ods_code,name,kind,region", "ods_code": "ZZT01", "active": "True"},
    )

    start = mark()
    organisation.active = False
    actions.save_organisation(by=ig_officer, organisation=organisation, changed=["active"])
    assert not Organisation.objects.get(ods_code="ZZT01").active
    changed, ended = written_since(start)
    assert (changed.action, changed.target_id) == (Action.ORGANISATION_CHANGED, str(organisation.pk))
    assert changed.detail == {"changed": "active", "ods_code": "ZZT01", "active": "False"}
    assert (ended.action, ended.detail["reason"]) == (Action.ACCESS_ENDED, "organisation-deactivated")


def test_save_organisation_without_changes_writes_no_audit_row(ig_officer, organisation):
    start = mark()
    actions.save_organisation(by=ig_officer, organisation=organisation, changed=[])
    assert written_since(start) == []
    assert Organisation.objects.get(pk=organisation.pk).region == Region.SEL


def test_change_member_role_audits_the_new_role_and_keeps_the_membership(ig_officer, care_team, clinician):
    membership = CareTeamMembership.objects.get(team=care_team, professional__user=clinician)
    start = mark()
    actions.change_member_role(by=ig_officer, membership=membership, role_in_team="Lead GP")
    assert CareTeamMembership.objects.get(pk=membership.pk).role_in_team == "Lead GP"
    assert clinician.groups.filter(pk=care_team.group_id).exists()  # still in the team: access unchanged
    assert_one_event(
        start,
        action=Action.CARE_TEAM_MEMBER_CHANGED,
        by=ig_officer,
        target=care_team,
        detail={"professional": clinician.email, "role_in_team": "Lead GP"},
    )


def test_delete_care_team_removes_the_team_and_its_group(ig_officer, organisation):
    member = factories.ProfessionalFactory(organisation=organisation)
    team = factories.CareTeamFactory(organisation=organisation, name="Disbanded team", members=[member])
    group_id, team_pk = team.group_id, team.pk
    assert member.user.groups.filter(pk=group_id).exists()
    start = mark()
    actions.delete_care_team(by=ig_officer, team=team)
    assert not CareTeam.objects.filter(pk=team_pk).exists()
    assert not Group.objects.filter(pk=group_id).exists()
    assert not CareTeamMembership.objects.filter(team_id=team_pk).exists()
    assert not member.user.groups.exists()
    [event] = written_since(start)
    assert event.action == Action.CARE_TEAM_DELETED
    assert (event.actor_id, event.actor_email) == (ig_officer.pk, ig_officer.email)
    assert (event.target_type, event.target_id, event.patient_id) == ("CareTeam", str(team_pk), None)
    assert event.detail == {"team": "Disbanded team"}


def test_api_token_for_finds_an_active_token_by_its_secret_and_audits_nothing(organisation):
    token, secret = actions.create_api_token(by=None, name="EPR feed", organisation=organisation)
    start = mark()
    found = actions.api_token_for(secret)
    assert found == token and found.organisation == organisation
    token.refresh_from_db()
    assert token.last_used_at is not None
    assert actions.api_token_for("not-the-secret") is None and actions.api_token_for("") is None
    assert written_since(start) == []  # a look-up, not a change
    actions.revoke_api_token(by=None, token=token)
    assert actions.api_token_for(secret) is None


def test_note_received_writes_last_received_at_most_once_a_minute_per_instance(organisation, django_assert_num_queries):
    """A feed's listener keeps its organisation: within the minute after it wrote "last received", no statement at
    all; after it, written again; another instance (another process) still asks the database, which keeps the
    newer time."""
    import datetime

    from django.utils import timezone

    start = timezone.now()
    with django_assert_num_queries(1):
        actions.note_received(organisation, start)
    with django_assert_num_queries(0):
        actions.note_received(organisation, start + datetime.timedelta(seconds=59))
    later = start + datetime.timedelta(seconds=61)
    with django_assert_num_queries(1):
        actions.note_received(organisation, later)
    organisation.refresh_from_db()
    assert organisation.last_received_at == later
    elsewhere = Organisation.objects.get(pk=organisation.pk)
    elsewhere.last_received_at = None  # as a process that loaded it before: asks, and changes nothing newer
    with django_assert_num_queries(1):
        actions.note_received(elsewhere, later + datetime.timedelta(seconds=30))
    organisation.refresh_from_db()
    assert organisation.last_received_at == later
    assert elsewhere.last_received_at is None  # not written by it, so it will ask again next time
