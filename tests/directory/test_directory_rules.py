"""Issue 11, findings 3 (organisations) and 7: who takes part is decided by IG, through audited actions.

Finding 3: an organisation a feed adds (any sender can name any ODS code) is not a public partner until IG
approve it. Finding 7: nobody changes their own profile's organisation or active flag; a team's members work
for its organisation; switching an account, a professional or an organisation off ends their sessions and
revokes their tokens at once; personal tokens expire; memberships have a review date IG can see overdue.
"""

import datetime
import json

import pytest
from django.contrib.auth import SESSION_KEY
from django.contrib.sessions.models import Session
from django.core.exceptions import PermissionDenied, ValidationError
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEvent
from audit.names import Action
from directory import actions
from directory.models import ApiToken, CareTeamMembership, Organisation, Professional
from fhirapi.systems import ODS_CODE
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _admin_settings(admin_settings):
    """Admin pages render the same whatever the environment's static and TLS settings."""


def url(model, view, *args):
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def sessions_of(user) -> int:
    return sum(1 for s in Session.objects.all() if s.get_decoded().get(SESSION_KEY) == str(user.pk))


def partner_names(client=None):
    response = (client or Client()).get(reverse("optout-partners"))
    assert response.status_code == 200
    return {o.name for group in response.context["kinds"] for o in group["organisations"]}


def post_organization(sender, name="Totally Real Clinic", ods_code="RZZ9X"):
    _, secret = actions.create_api_token(by=None, name="EPR feed", organisation=sender)
    resource = {
        "resourceType": "Organization",
        "id": "org1",
        "name": name,
        "identifier": [{"system": ODS_CODE, "value": ods_code}],
    }
    response = Client().post(
        "/fhir/Organization",
        json.dumps(resource),
        content_type="application/fhir+json",
        HTTP_AUTHORIZATION=f"Bearer {secret}",
    )
    assert response.status_code in (200, 201), response.content
    return Organisation.objects.get(ods_code=ods_code)


# --- finding 3: organisations a feed adds ----------------------------------------------------------------------


def test_finding_3_an_organisation_a_feed_adds_is_not_a_public_partner(other_organisation):
    added = post_organization(other_organisation, name="Totally Real Clinic")
    assert added.active and not added.listed
    assert "Totally Real Clinic" not in partner_names()


def test_ig_approve_a_feed_added_organisation_for_the_partners_page_through_an_audited_action(
    ig_client, ig_user, other_organisation
):
    added = post_organization(other_organisation, name="Riverside Hospice")
    response = ig_client.post(
        url(Organisation, "changelist"), {"action": "approve_listing", "_selected_action": [added.pk]}
    )
    assert response.status_code == 302
    added.refresh_from_db()
    assert added.listed and "Riverside Hospice" in partner_names()
    event = AuditEvent.objects.get(action=Action.ORGANISATION_LISTED)
    assert (event.actor_id, event.target_id) == (ig_user.pk, str(added.pk))

    ig_client.post(url(Organisation, "changelist"), {"action": "remove_listing", "_selected_action": [added.pk]})
    assert "Riverside Hospice" not in partner_names()
    assert AuditEvent.objects.filter(action=Action.ORGANISATION_UNLISTED, target_id=str(added.pk)).count() == 1


def test_organisations_ig_add_in_admin_are_listed(ig_client):
    response = ig_client.post(
        url(Organisation, "add"),
        {
            "ods_code": "ZZH9",
            "name": "Harbour Hospice",
            "kind": "hospice",
            "region": "SEL",
            "active": "on",
            "sso_provisioning": "admin",
            **{f"sharing_agreements-{n}": v for n, v in (("TOTAL_FORMS", 0), ("INITIAL_FORMS", 0))},
        },
    )
    assert response.status_code == 302, response.context and response.context["adminform"].form.errors
    assert Organisation.objects.get(ods_code="ZZH9").listed and "Harbour Hospice" in partner_names()


def test_listed_is_not_edited_on_the_change_form(ig_client, other_organisation):
    """Only the audited approve / take-off actions change it."""
    page = ig_client.get(url(Organisation, "change", other_organisation.pk))
    assert "listed" not in page.context["adminform"].form.fields


# --- finding 7: your own profile ---------------------------------------------------------------------------------


def professional_form(professional, **changes):
    return {
        "organisation": professional.organisation_id,
        "role": professional.role,
        "job_title": professional.job_title,
        "registration_number": professional.registration_number,
        "active": "on" if professional.active else "",
        "memberships-TOTAL_FORMS": "0",
        "memberships-INITIAL_FORMS": "0",
        "memberships-MIN_NUM_FORMS": "0",
        "memberships-MAX_NUM_FORMS": "0",
        "sso_subject": professional.sso_subject or "",
        **{f"role_profiles-{name}": "0" for name in ("TOTAL_FORMS", "INITIAL_FORMS", "MIN_NUM_FORMS")},
        "role_profiles-MAX_NUM_FORMS": "1000",
        **changes,
    }


def test_finding_7_nobody_moves_their_own_profile_to_another_organisation(ig_client, ig_user, other_organisation):
    own = ig_user.professional
    response = ig_client.post(
        url(Professional, "change", own.pk), professional_form(own, organisation=other_organisation.pk)
    )
    assert response.status_code == 200
    assert "You cannot change the organisation or the active status of your own profile" in response.content.decode()
    assert Professional.objects.get(pk=own.pk).organisation_id == own.organisation_id


def test_finding_7_nobody_switches_their_own_profile_off(ig_user):
    own = ig_user.professional
    with pytest.raises(PermissionDenied):
        actions.deactivate_professional(by=ig_user, professional=own)
    assert Professional.objects.get(pk=own.pk).active


def organisation_form(organisation, **changes):
    return {
        "ods_code": organisation.ods_code,
        "name": organisation.name,
        "kind": organisation.kind,
        "region": organisation.region,
        "address": organisation.address,
        "active": "on" if organisation.active else "",
        "short_name": organisation.short_name,
        "problem_contact_email": organisation.problem_contact_email,
        "local_sign_in": "on" if organisation.local_sign_in else "",
        "sso_provisioning": organisation.sso_provisioning,
        "sso_roles": organisation.sso_roles,
        "sharing_agreements-TOTAL_FORMS": "0",
        "sharing_agreements-INITIAL_FORMS": "0",
        **changes,
    }


def test_nobody_switches_off_their_own_organisation(ig_client, organisation, other_organisation):
    response = ig_client.post(url(Organisation, "change", organisation.pk), organisation_form(organisation, active=""))
    assert response.status_code == 200
    assert "You cannot switch off your own organisation" in response.content.decode()
    assert Organisation.objects.get(pk=organisation.pk).active
    response = ig_client.post(
        url(Organisation, "change", other_organisation.pk), organisation_form(other_organisation, active="")
    )
    assert response.status_code == 302 and not Organisation.objects.get(pk=other_organisation.pk).active


def test_another_ig_officer_can_move_a_profile(ig_client, organisation, other_organisation):
    colleague = factories.ProfessionalFactory(organisation=organisation)
    response = ig_client.post(
        url(Professional, "change", colleague.pk), professional_form(colleague, organisation=other_organisation.pk)
    )
    assert response.status_code == 302
    assert Professional.objects.get(pk=colleague.pk).organisation == other_organisation
    assert AuditEvent.objects.filter(action=Action.PROFESSIONAL_CHANGED, target_id=str(colleague.pk)).exists()


def test_finding_7_moving_a_professional_takes_them_out_of_the_teams_they_left(ig_user, clinician, care_team):
    elsewhere = factories.OrganisationFactory(name="Elsewhere Trust")
    actions.move_professional(by=ig_user, professional=clinician.professional, organisation=elsewhere)
    assert not CareTeamMembership.objects.filter(professional=clinician.professional).exists()
    assert not clinician.groups.filter(pk=care_team.group_id).exists()
    assert AuditEvent.objects.filter(action=Action.CARE_TEAM_MEMBER_REMOVED, actor_id=ig_user.pk).count() == 1


# --- finding 7: a team's members work for its organisation -------------------------------------------------------


def test_finding_7_a_member_must_work_for_the_teams_organisation(care_team, other_organisation):
    stranger = factories.ProfessionalFactory(organisation=other_organisation)
    with pytest.raises(ValidationError, match="only the team's own organisation's staff"):
        actions.add_team_member(by=None, team=care_team, professional=stranger)
    assert not CareTeamMembership.objects.filter(professional=stranger).exists()


def test_finding_7_admin_refuses_a_team_member_from_another_organisation(ig_client, care_team, other_organisation):
    stranger = factories.ProfessionalFactory(organisation=other_organisation)
    members = list(care_team.memberships.all())
    data = {
        "organisation": care_team.organisation_id,
        "name": care_team.name,
        "kind": care_team.kind,
        "phone": "",
        "memberships-TOTAL_FORMS": str(len(members) + 1),
        "memberships-INITIAL_FORMS": str(len(members)),
        "memberships-MIN_NUM_FORMS": "0",
        "memberships-MAX_NUM_FORMS": "1000",
    }
    for i, membership in enumerate(members):
        data |= {
            f"memberships-{i}-id": membership.pk,
            f"memberships-{i}-team": care_team.pk,
            f"memberships-{i}-professional": membership.professional_id,
            f"memberships-{i}-role_in_team": membership.role_in_team,
        }
    data |= {f"memberships-{len(members)}-professional": stranger.pk, f"memberships-{len(members)}-role_in_team": ""}
    response = ig_client.post(url(care_team, "change", care_team.pk), data)
    assert response.status_code == 200
    assert "only the team&#x27;s own organisation&#x27;s staff" in response.content.decode()
    assert not CareTeamMembership.objects.filter(professional=stranger).exists()


def test_the_membership_admin_refuses_a_member_from_another_organisation(ig_client, care_team, other_organisation):
    stranger = factories.ProfessionalFactory(organisation=other_organisation)
    response = ig_client.post(
        url(CareTeamMembership, "add"), {"team": care_team.pk, "professional": stranger.pk, "role_in_team": ""}
    )
    assert response.status_code == 200
    assert "professional" in response.context["adminform"].form.errors
    assert not CareTeamMembership.objects.filter(professional=stranger).exists()


def test_finding_7_overdue_membership_reviews_are_listed_for_ig(ig_client, organisation, care_team):
    today = timezone.localdate()
    overdue = factories.ProfessionalFactory(organisation=organisation)
    later = factories.ProfessionalFactory(organisation=organisation)
    actions.add_team_member(by=None, team=care_team, professional=overdue, review_on=today - datetime.timedelta(days=1))
    actions.add_team_member(by=None, team=care_team, professional=later, review_on=today + datetime.timedelta(days=90))
    response = ig_client.get(url(CareTeamMembership, "changelist"), {"review": "overdue"})
    assert [m.professional for m in response.context["cl"].result_list] == [overdue]


def test_a_review_date_set_in_admin_is_kept_and_audited(ig_client, ig_user, clinician, care_team):
    membership = CareTeamMembership.objects.get(professional__user=clinician)
    response = ig_client.post(
        url(CareTeamMembership, "change", membership.pk),
        {
            "team": care_team.pk,
            "professional": membership.professional_id,
            "role_in_team": "GP",
            "review_on": "2031-01-31",
        },
    )
    assert response.status_code == 302, response.context and response.context["adminform"].form.errors
    assert CareTeamMembership.objects.get(pk=membership.pk).review_on == datetime.date(2031, 1, 31)
    event = AuditEvent.objects.filter(action=Action.CARE_TEAM_MEMBER_CHANGED).latest("pk")
    assert event.actor_id == ig_user.pk and event.detail["review_on"] == "2031-01-31"


# --- finding 7: switching off ends access at once ----------------------------------------------------------------


def test_finding_7_deactivating_an_account_ends_its_sessions_at_once(clinician, ig_user):
    clinician_browser = signed_in(clinician)
    signed_in(ig_user)  # someone else's session, which stays
    assert sessions_of(clinician) == 1
    clinician.is_active = False
    clinician.save()  # as Django's user admin or a shell would
    assert sessions_of(clinician) == 0 and sessions_of(ig_user) == 1  # theirs only
    response = clinician_browser.get(reverse("my-patients"))
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_finding_7_deactivating_an_account_revokes_its_tokens(clinician):
    token, secret = actions.create_api_token(by=None, name="viewer", user=clinician)
    actions.deactivate_user(by=None, user=clinician)
    assert actions.api_token_for(secret) is None
    assert ApiToken.objects.get(pk=token.pk).revoked_at is not None


def test_deactivating_an_account_in_the_user_admin_is_audited_with_who_did_it(ig_officer, clinician):
    signed_in(clinician)
    admin_browser = signed_in(ig_officer)
    page = admin_browser.get(url(clinician, "change", clinician.pk))
    form = page.context["adminform"].form
    data = {
        name: value
        for name, value in {**form.initial, "is_active": ""}.items()
        if name in form.fields and name not in ("password", "last_login", "date_joined", "groups", "user_permissions")
    }
    joined = timezone.localtime(clinician.date_joined)
    data |= {"date_joined_0": joined.date().isoformat(), "date_joined_1": joined.time().strftime("%H:%M:%S")}
    data = {k: ("" if v is None or v is False else "on" if v is True else v) for k, v in data.items()}
    response = admin_browser.post(url(clinician, "change", clinician.pk), data)
    assert response.status_code == 302, response.context and response.context["adminform"].form.errors
    event = AuditEvent.objects.get(action=Action.ACCESS_ENDED)
    assert (event.actor_id, event.target_type, event.target_id) == (ig_officer.pk, "User", str(clinician.pk))
    assert event.detail == {"reason": "account-deactivated", "sessions": "1", "tokens": "0"}


def test_saving_an_account_that_stays_active_ends_nothing(clinician):
    signed_in(clinician)
    clinician.first_name = "Renamed"
    clinician.save()
    assert sessions_of(clinician) == 1 and not AuditEvent.objects.filter(action=Action.ACCESS_ENDED).exists()


def test_finding_7_deactivating_a_professional_in_admin_ends_their_sessions_and_revokes_their_tokens(
    ig_client, ig_user, clinician
):
    signed_in(clinician)
    token, _ = actions.create_api_token(by=None, name="viewer", user=clinician)
    professional = clinician.professional
    response = ig_client.post(url(Professional, "change", professional.pk), professional_form(professional, active=""))
    assert response.status_code == 302, response.context and response.context["adminform"].form.errors
    assert sessions_of(clinician) == 0 and ApiToken.objects.get(pk=token.pk).revoked_at is not None
    event = AuditEvent.objects.get(action=Action.ACCESS_ENDED)
    assert (event.actor_id, event.target_type) == (ig_user.pk, "Professional")
    assert event.detail == {"reason": "professional-deactivated", "sessions": "1", "tokens": "1"}


def test_finding_7_deactivating_an_organisation_ends_all_its_professionals_access_and_its_feeds(
    clinician, outsider, organisation, clinician_other_org
):
    ig_elsewhere = factories.ProfessionalFactory(role=Professional.Role.IG_OFFICER).user
    for user in (clinician, outsider, clinician_other_org):
        signed_in(user)
    personal, _ = actions.create_api_token(by=None, name="viewer", user=clinician)
    feed, _ = actions.create_api_token(by=None, name="EPR feed", organisation=organisation)
    organisation.active = False
    actions.save_organisation(by=ig_elsewhere, organisation=organisation, changed=["active"])
    assert (sessions_of(clinician), sessions_of(outsider), sessions_of(clinician_other_org)) == (0, 0, 1)
    assert set(ApiToken.objects.filter(revoked_at__isnull=False)) == {personal, feed}
    event = AuditEvent.objects.get(action=Action.ACCESS_ENDED)
    assert (event.target_type, event.target_id) == ("Organisation", str(organisation.pk))
    assert event.detail == {"reason": "organisation-deactivated", "sessions": "2", "tokens": "2"}
    revoked = AuditEvent.objects.filter(action=Action.API_TOKEN_REVOKED)
    assert {e.detail["reason"] for e in revoked} == {"organisation-deactivated"} and revoked.count() == 2


# --- finding 7: personal tokens expire ---------------------------------------------------------------------------


def test_finding_7_an_expired_personal_token_is_refused(clinician):
    token, secret = actions.create_api_token(by=None, name="viewer", user=clinician)
    ApiToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - datetime.timedelta(seconds=1))
    assert actions.api_token_for(secret) is None


def test_personal_tokens_last_personal_token_hours_and_organisation_tokens_until_revoked(
    settings, clinician, organisation
):
    settings.PERSONAL_TOKEN_HOURS = 2
    before = timezone.now()
    personal, _ = actions.create_api_token(by=None, name="viewer", user=clinician)
    feed, _ = actions.create_api_token(by=None, name="EPR feed", organisation=organisation)
    assert before + datetime.timedelta(hours=2) <= personal.expires_at <= timezone.now() + datetime.timedelta(hours=2)
    assert feed.expires_at is None and feed.active
    with pytest.raises(ValueError, match="positive"):
        actions.create_api_token(by=None, name="never", user=clinician, hours=0)


def test_ig_set_a_tokens_lifetime_in_admin(ig_officer, clinician, organisation):
    browser = signed_in(ig_officer)
    response = browser.post(
        url(ApiToken, "add"), {"name": "Short-lived viewer", "user": clinician.pk, "lifetime_hours": "1"}
    )
    assert response.status_code == 302, response.context and response.context["adminform"].form.errors
    token = ApiToken.objects.get(name="Short-lived viewer")
    assert timezone.now() < token.expires_at <= timezone.now() + datetime.timedelta(hours=1)

    browser.post(url(ApiToken, "add"), {"name": "Default viewer", "user": clinician.pk, "lifetime_hours": ""})
    default = ApiToken.objects.get(name="Default viewer")
    assert default.expires_at - default.created_at == datetime.timedelta(hours=actions.personal_token_hours())

    browser.post(url(ApiToken, "add"), {"name": "Feed", "organisation": organisation.pk, "lifetime_hours": ""})
    assert ApiToken.objects.get(name="Feed").expires_at is None
    expired = browser.get(url(ApiToken, "changelist"), {"state": "usable"})
    assert {t.name for t in expired.context["cl"].result_list} == {"Short-lived viewer", "Default viewer", "Feed"}
