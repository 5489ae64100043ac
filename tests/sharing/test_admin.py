"""The admin as an IG officer uses it: every page loads, the audit trail cannot be touched, and grants made in
admin take effect (and are taken away) exactly as in the app."""

import datetime
import uuid

import pytest
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.urls import reverse
from django.utils import timezone

from audit.models import AccessBasis, AccessEvent, AuditEvent
from directory import actions as directory_actions
from directory.models import CareTeamMembership, Professional
from patients.models import SourcePatientId, SourceResource
from sharing import actions
from sharing.access import Decision, Reason, has_care_team_permission
from sharing.models import (
    BreakGlass,
    Involvement,
    PatientGroupObjectPermission,
    PatientUserObjectPermission,
    SharingAgreement,
)
from tests import factories

# Admin pages render with the plain static storage and no HTTPS redirect (tests/conftest.py).
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("admin_settings")]


@pytest.fixture
def access_event(patient, clinician):
    professional = clinician.professional
    return AccessEvent.objects.create(
        user_id=clinician.pk,
        user_email=clinician.email,
        professional_name=professional.name,
        organisation_code=professional.organisation.ods_code,
        patient_id=patient.pk,
        patient_nhs_number=patient.nhs_number,
        outcome="allowed",
        basis=AccessBasis.CARE_TEAM,
        page="record:summary",
    )


@pytest.fixture
def every_model(patient, full_record, clinician, clinician_other_org, access_event, organisation):
    """At least one row of every registered model, so each changelist renders real rows."""
    actions.break_glass(by=clinician_other_org, patient=patient, reason_code=BreakGlass.ReasonCode.EMERGENCY_TREATMENT)
    directory_actions.create_api_token(by=None, name="GP feed", organisation=organisation)
    SourcePatientId.objects.create(organisation=organisation, resource_id="pat-1", patient=patient)
    SourceResource.objects.create(organisation=organisation, resource_id="prac-1", name="Dr A Practitioner")
    procedure = next(entry for model, entry in full_record.items() if model.__name__ == "Procedure")
    actions.report_entry_problem(by=clinician, patient=patient, entry=procedure, what_is_wrong="Wrong hip.")
    return patient


@pytest.fixture
def other_team(other_organisation):
    return factories.CareTeamFactory(organisation=other_organisation, name="Diabetes clinic")


@pytest.fixture
def other_team_member(other_team):
    professional = factories.ProfessionalFactory(organisation=other_team.organisation)
    directory_actions.add_team_member(by=None, team=other_team, professional=professional)
    return professional.user


def registered(*app_labels):
    return [model for model in admin.site._registry if model._meta.app_label in app_labels]


def url(model, view, *args):
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


def split(moment):
    local = timezone.localtime(moment)
    return {"0": local.date().isoformat(), "1": local.time().strftime("%H:%M:%S")}


def test_ig_officer_can_open_every_list_and_item(ig_client, ig_user, every_model):
    for model in registered("patients", "sharing"):
        response = ig_client.get(url(model, "changelist"))
        assert response.status_code == 200, model
        item = model.objects.first()
        assert item is not None, model
        assert ig_client.get(url(model, "change", item.pk)).status_code == 200, model
        can_add = ig_user.has_perm(f"{model._meta.app_label}.add_{model._meta.model_name}")
        assert ig_client.get(url(model, "add")).status_code == (200 if can_add else 403), model


def test_searches_take_nhs_numbers_as_typed_and_patient_ids(ig_client, every_model, patient, access_event):
    spaced = patient.nhs_number_display  # "999 500 0001": as read off a letter
    for model in ("patient", "involvement", "breakglass"):
        app = "patients" if model == "patient" else "sharing"
        response = ig_client.get(reverse(f"admin:{app}_{model}_changelist"), {"q": spaced})
        assert response.status_code == 200
        assert response.context["cl"].result_count >= 1, model

    changelist = url(AccessEvent, "changelist")
    for term in (spaced, str(patient.pk), "not-a-uuid", "record:summary"):
        assert ig_client.get(changelist, {"q": term}).status_code == 200
    found = list(ig_client.get(changelist, {"q": str(patient.pk)}).context["cl"].result_list)
    # The clinician's look, and IG's own search of the patient list above (basis ig-admin): that patient's only.
    assert access_event in found and {event.patient_id for event in found} == {patient.pk}
    assert {event.basis for event in found} == {AccessBasis.CARE_TEAM, AccessBasis.IG_ADMIN}
    assert not ig_client.get(changelist, {"q": str(uuid.uuid4())}).context["cl"].result_list


def test_guardian_grant_tables_are_not_in_admin():
    assert PatientGroupObjectPermission not in admin.site._registry
    assert PatientUserObjectPermission not in admin.site._registry


@pytest.mark.parametrize("as_superuser", [False, True])
def test_the_access_log_cannot_be_added_to_changed_or_deleted(client, ig_user, access_event, as_superuser):
    if as_superuser:
        ig_user.is_superuser = True
        ig_user.save()
    client.force_login(ig_user)

    assert client.get(url(AccessEvent, "add")).status_code == 403
    assert client.post(url(AccessEvent, "change", access_event.pk), {"page": "edited"}).status_code == 403
    assert client.get(url(AccessEvent, "delete", access_event.pk)).status_code == 403
    assert client.post(url(AccessEvent, "delete", access_event.pk), {"post": "yes"}).status_code == 403
    listing = client.get(url(AccessEvent, "changelist"))
    assert b"action-select" not in listing.content  # no bulk actions, so no bulk delete
    access_event.refresh_from_db()
    assert access_event.page == "record:summary"
    with pytest.raises(PermissionError):
        access_event.delete()
    with pytest.raises(PermissionError):
        access_event.save()


def test_adding_an_involvement_in_admin_grants_access_and_ending_it_revokes(
    ig_client, ig_user, patient, other_team, other_team_member
):
    assert not has_care_team_permission(other_team_member, patient)
    started = timezone.now() - datetime.timedelta(days=1)
    response = ig_client.post(
        url(Involvement, "add"),
        {
            "patient": patient.pk,
            "care_team": other_team.pk,
            "reason": Involvement.Reason.REFERRAL,
            **{f"started_at_{part}": value for part, value in split(started).items()},
            "ended_at_0": "",
            "ended_at_1": "",
            "source_id": "",
        },
    )
    assert response.status_code == 302, response.context and response.context["adminform"].form.errors
    involvement = Involvement.objects.get(patient=patient, care_team=other_team)
    assert has_care_team_permission(other_team_member, patient)
    assert AuditEvent.objects.filter(action="involvement.started", actor_email=ig_user.email).exists()

    ended = timezone.now() - datetime.timedelta(minutes=5)
    response = ig_client.post(
        url(Involvement, "change", involvement.pk),
        {f"ended_at_{part}": value for part, value in split(ended).items()},
    )
    assert response.status_code == 302, response.context and response.context["adminform"].form.errors
    involvement.refresh_from_db()
    assert involvement.ended_at is not None and not involvement.is_current
    assert not has_care_team_permission(other_team_member, patient)
    assert AuditEvent.objects.filter(action="involvement.ended", actor_email=ig_user.email).exists()


def test_involvements_are_ended_not_deleted(ig_client, patient):
    involvement = Involvement.objects.get(patient=patient)
    assert ig_client.get(url(Involvement, "delete", involvement.pk)).status_code == 403


def test_team_members_added_and_removed_in_admin_join_and_leave_the_teams_group(ig_client, other_team):
    professional = factories.ProfessionalFactory(organisation=other_team.organisation)
    team_form = {
        "organisation": other_team.organisation.pk,
        "name": other_team.name,
        "kind": other_team.kind,
        "phone": "",
        "memberships-INITIAL_FORMS": "0",
        "memberships-MIN_NUM_FORMS": "0",
        "memberships-MAX_NUM_FORMS": "1000",
    }
    response = ig_client.post(
        url(other_team, "change", other_team.pk),
        {
            **team_form,
            "memberships-TOTAL_FORMS": "1",
            "memberships-0-id": "",
            "memberships-0-professional": professional.pk,
            "memberships-0-role_in_team": "Diabetes specialist nurse",
        },
    )
    assert response.status_code == 302, response.context and response.context["inline_admin_formsets"][0].formset.errors
    membership = CareTeamMembership.objects.get(team=other_team, professional=professional)
    assert membership.role_in_team == "Diabetes specialist nurse"
    assert professional.user.groups.filter(pk=other_team.group_id).exists()

    response = ig_client.post(
        url(other_team, "change", other_team.pk),
        {
            **team_form,
            "memberships-TOTAL_FORMS": "1",
            "memberships-INITIAL_FORMS": "1",
            "memberships-0-id": membership.pk,
            "memberships-0-team": other_team.pk,
            "memberships-0-professional": professional.pk,
            "memberships-0-role_in_team": "Diabetes specialist nurse",
            "memberships-0-DELETE": "on",
        },
    )
    assert response.status_code == 302
    assert not CareTeamMembership.objects.filter(pk=membership.pk).exists()
    assert not professional.user.groups.filter(pk=other_team.group_id).exists()
    assert AuditEvent.objects.filter(action="care-team.member-removed").exists()


def test_ig_provisions_a_professional_with_their_sign_in_account(ig_client, organisation):
    response = ig_client.post(
        url(Professional, "add"),
        {
            "email": "New.Starter@nhs.test",
            "first_name": "New",
            "last_name": "Starter",
            "organisation": organisation.pk,
            "role": Professional.Role.NURSE,
            "job_title": "Practice nurse",
            "registration_number": "12A3456E",
            "active": "on",
        },
    )
    assert response.status_code == 302, response.context and response.context["adminform"].form.errors
    user = get_user_model().objects.get(email="new.starter@nhs.test")
    assert user.username == user.email and not user.has_usable_password()
    assert user.professional.organisation == organisation


@pytest.mark.hazard("H-12")
def test_break_glass_review_is_recorded_through_the_action(ig_client, ig_user, patient, clinician_other_org):
    grant = actions.break_glass(
        by=clinician_other_org,
        patient=patient,
        reason_code=BreakGlass.ReasonCode.OTHER,
        reason_text="Collapsed in clinic",
    )
    change = url(BreakGlass, "change", grant.pk)

    assert ig_client.post(change, {"review_outcome": "", "review_note": ""}).status_code == 200  # outcome required
    response = ig_client.post(change, {"review_outcome": BreakGlass.Outcome.APPROPRIATE, "review_note": "Emergency"})
    assert response.status_code == 302
    grant.refresh_from_db()
    assert grant.review_outcome == BreakGlass.Outcome.APPROPRIATE and grant.reviewed_by == ig_user
    assert AuditEvent.objects.filter(action="break-glass.reviewed", actor_email=ig_user.email).exists()
    assert ig_client.get(url(BreakGlass, "add")).status_code == 403


def test_sharing_agreement_changes_are_audited(ig_client, ig_user, organisation):
    agreement = SharingAgreement.objects.filter(organisation=organisation).first()
    response = ig_client.post(
        url(SharingAgreement, "change", agreement.pk),
        {
            "organisation": organisation.pk,
            "category": agreement.category,
            "since": agreement.since.isoformat(),
        },  # "shares" unticked
    )
    assert response.status_code == 302
    agreement.refresh_from_db()
    assert not agreement.shares
    assert AuditEvent.objects.filter(action="sharing-agreement.changed", actor_email=ig_user.email).exists()


@pytest.mark.hazard("H-03")
def test_admin_rights_are_no_licence_to_read_records(ig_user, patient):
    """Being IG staff shows the audit trail, not the record: the access decision ignores admin rights."""
    from sharing.access import decide

    decision = decide(ig_user, patient)
    assert not decision.allowed
    assert decision == Decision(
        allowed=False, basis=AccessBasis.NONE, reason=Reason.NO_RELATIONSHIP, professional=decision.professional
    )


@pytest.mark.hazard("H-03")
@pytest.mark.parametrize("superuser", [False, True])
def test_finding_1_a_global_read_shared_record_permission_is_no_care_relationship(ig_user, patient, superuser):
    """`patients.read_shared_record` counts only as a per-patient grant to a care team's group: held globally
    (directly or through a group), with the superuser flag besides, it opens no record."""
    from django.contrib.auth.models import Group, Permission

    from sharing.access import decide

    permission = Permission.objects.get(content_type__app_label="patients", codename="read_shared_record")
    ig_user.user_permissions.add(permission)
    group = Group.objects.create(name="Everyone's records")
    group.permissions.add(permission)
    ig_user.groups.add(group)
    ig_user.is_superuser = superuser
    ig_user.save()
    user = get_user_model().objects.get(pk=ig_user.pk)  # no cached permissions
    assert user.has_perm("patients.read_shared_record")  # Django says yes; the access decision does not ask Django
    decision = decide(user, patient)
    assert (decision.allowed, decision.reason) == (False, Reason.NO_RELATIONSHIP)
    assert not has_care_team_permission(user, patient)


@pytest.mark.hazard("H-03")
def test_finding_1_admins_view_permission_on_a_patient_is_no_care_relationship(patient, other_team, other_team_member):
    """Django's `view_patient` is admin's: even granted per patient to a care team's group, it opens no record."""
    from guardian.shortcuts import assign_perm

    from sharing.access import decide

    assign_perm("patients.view_patient", other_team.group, patient)
    assert not decide(other_team_member, patient).allowed
    actions.start_involvement(by=None, patient=patient, care_team=other_team, reason=Involvement.Reason.REFERRAL)
    assert decide(other_team_member, patient).allowed  # the grant an involvement makes: read_shared_record
    assert PatientGroupObjectPermission.objects.filter(
        content_object=patient, group=other_team.group, permission__codename="read_shared_record"
    ).exists()


@pytest.mark.hazard("H-01")
def test_finding_1_break_glass_review_page_writes_one_ig_admin_access_event(
    ig_client, ig_user, patient, clinician_other_org
):
    grant = actions.break_glass(
        by=clinician_other_org,
        patient=patient,
        reason_code=BreakGlass.ReasonCode.OTHER,
        reason_text="Collapsed in clinic",
    )
    before = AccessEvent.objects.count()
    queue = ig_client.get(url(BreakGlass, "changelist"))
    assert queue.status_code == 200
    assert AccessEvent.objects.count() == before  # the queue names patients, as the access log does

    response = ig_client.get(url(BreakGlass, "change", grant.pk))
    assert response.status_code == 200
    (event,) = AccessEvent.objects.filter(request_id=response["X-Request-ID"])
    assert AccessEvent.objects.count() == before + 1
    assert (event.basis, event.outcome, event.page, event.patient_id, event.user_id) == (
        AccessBasis.IG_ADMIN,
        "allowed",
        "admin:break-glass-review",
        patient.pk,
        ig_user.pk,
    )
    seen = ig_client.get(reverse("admin:audit_accessevent_patient", args=[patient.pk]))
    assert event in seen.context["page_obj"].object_list

    # Recording the outcome redirects: the page was seen once, so the save writes no second look.
    done = ig_client.post(url(BreakGlass, "change", grant.pk), {"review_outcome": "appropriate", "review_note": ""})
    assert done.status_code == 302
    assert AccessEvent.objects.count() == before + 1
