"""A professional with role profiles in two organisations acts in one at a time (H-19): the access decision,
"own organisation's entries" and the audit rows read the session's role; a role switched off ends its access."""

import pytest
from django.contrib.sessions.models import Session
from django.urls import reverse

from audit.models import AccessEvent, AuditEvent
from audit.names import Action
from directory import actions
from directory.models import Professional, RoleProfile
from directory.profiles import ROLE_SESSION_KEY, professional_for
from sharing.access import decide
from tests import factories

pytestmark = [pytest.mark.django_db, pytest.mark.hazard("H-19")]


@pytest.fixture
def practice():
    return factories.OrganisationFactory(ods_code="F81001", name="Test Lane Surgery")


@pytest.fixture
def hospital():
    return factories.OrganisationFactory(ods_code="RBA", name="Test Acute Trust")


@pytest.fixture
def locum(practice, hospital):
    """A doctor whose home is the hospital, also a GP at the practice (a role profile), in a team of each."""
    professional = factories.ProfessionalFactory(organisation=hospital, role=Professional.Role.DOCTOR)
    role = actions.add_role_profile(by=None, professional=professional, organisation=practice, role="gp")
    ward = factories.CareTeamFactory(organisation=hospital, members=[professional])
    practice_team = factories.CareTeamFactory(organisation=practice, members=[professional])
    ward_patient, practice_patient = factories.PatientFactory(), factories.PatientFactory()
    factories.InvolvementFactory(patient=ward_patient, care_team=ward)
    factories.InvolvementFactory(patient=practice_patient, care_team=practice_team)
    return professional, role, ward_patient, practice_patient


def acting(client, role):
    session = client.session
    if role is None:
        session.pop(ROLE_SESSION_KEY, None)
    else:
        session[ROLE_SESSION_KEY] = role.pk
    session.save()


def test_the_home_role_sees_its_own_teams_patients_only(client, locum):
    professional, _, ward_patient, practice_patient = locum
    client.force_login(professional.user)
    assert client.get(reverse("record-summary", args=[ward_patient.pk])).status_code == 200
    assert client.get(reverse("record-summary", args=[practice_patient.pk])).status_code == 403
    codes = list(AccessEvent.objects.order_by("at").values_list("organisation_code", "outcome"))
    assert codes == [("RBA", "allowed"), ("RBA", "refused")]


def test_acting_in_a_role_profile_sees_that_organisations_teams_patients_only(client, locum):
    professional, role, ward_patient, practice_patient = locum
    client.force_login(professional.user)
    acting(client, role)
    assert client.get(reverse("record-summary", args=[practice_patient.pk])).status_code == 200
    assert client.get(reverse("record-summary", args=[ward_patient.pk])).status_code == 403
    codes = list(AccessEvent.objects.order_by("at").values_list("organisation_code", "outcome"))
    assert codes == [("F81001", "allowed"), ("F81001", "refused")]


def test_the_acting_copy_reads_the_roles_organisation_and_is_never_saved(locum, rf):
    professional, role, _, practice_patient = locum
    user = professional.user
    user._carerecord_role_profile_id = role.pk
    seat = professional_for(user)
    assert (seat.organisation.ods_code, seat.role, seat.acting_role) == ("F81001", "gp", role)
    assert decide(user, practice_patient).organisation_id == role.organisation_id
    with pytest.raises(RuntimeError):
        seat.save()
    assert Professional.objects.get(pk=professional.pk).organisation.ods_code == "RBA"


def test_a_role_profile_switched_off_or_not_theirs_refuses_everything(locum):
    professional, role, ward_patient, practice_patient = locum
    other = factories.ProfessionalFactory()
    theirs = actions.add_role_profile(by=None, professional=other, organisation=role.organisation, role="nurse")
    user = professional.user
    user._carerecord_role_profile_id = theirs.pk  # someone else's role: never the home role instead
    assert not professional_for(user).active
    assert not decide(user, ward_patient).allowed and not decide(user, practice_patient).allowed
    RoleProfile.objects.filter(pk=role.pk).update(active=False)
    del user._carerecord_professional
    user._carerecord_role_profile_id = role.pk
    assert decide(user, practice_patient).reason == "inactive"


def test_switching_a_role_profile_off_in_admin_ends_its_access(client, locum):
    professional, role, _, _ = locum
    client.force_login(professional.user)
    role.active = False
    actions.save_role_profile(by=None, role_profile=role, changed=["active"])
    assert not professional.memberships.filter(team__organisation=role.organisation).exists()
    assert professional.memberships.filter(team__organisation=professional.organisation).exists()
    assert not Session.objects.exists()
    assert AuditEvent.objects.filter(action=Action.ACCESS_ENDED).exists()


def test_membership_needs_the_organisation_as_home_or_a_role_profile(locum):
    professional, _, _, _ = locum
    elsewhere = factories.CareTeamFactory()
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError):
        actions.add_team_member(by=None, team=elsewhere, professional=professional)


def test_change_role_lists_the_roles_held_and_switches_audited(client, locum):
    professional, role, _, practice_patient = locum
    client.force_login(professional.user)
    page = client.get(reverse("change-role")).content.decode()
    assert "Doctor, Test Acute Trust" in page and "General practitioner, Test Lane Surgery" in page
    response = client.post(reverse("change-role"), {"role": str(role.pk)})
    assert response.status_code == 302
    assert client.session[ROLE_SESSION_KEY] == role.pk
    event = AuditEvent.objects.get(action=Action.ROLE_SELECTED)
    assert (event.actor_id, event.detail["organisation"], event.detail["role"]) == (
        professional.user_id,
        "F81001",
        "gp",
    )
    assert client.get(reverse("record-summary", args=[practice_patient.pk])).status_code == 200
    client.post(reverse("change-role"), {"role": "home"})
    assert ROLE_SESSION_KEY not in client.session


def test_change_role_refuses_a_role_not_held_with_a_field_error(client, locum):
    professional, _, _, _ = locum
    other = actions.add_role_profile(
        by=None,
        professional=factories.ProfessionalFactory(),
        organisation=factories.OrganisationFactory(),
        role="nurse",
    )
    client.force_login(professional.user)
    response = client.post(reverse("change-role"), {"role": str(other.pk)})
    assert response.status_code == 200
    assert "Select a valid choice" in response.content.decode()
    assert ROLE_SESSION_KEY not in client.session
    assert not AuditEvent.objects.filter(action=Action.ROLE_SELECTED).exists()


@pytest.mark.parametrize("path", ["/accounts/email/", "/accounts/3rdparty/"])
def test_allauths_self_service_for_emails_and_linked_identities_is_not_offered(client, locum, path):
    professional, _, _, _ = locum
    client.force_login(professional.user)
    assert client.get(path).status_code == 404
    assert client.post(path, {"action_remove": "", "account": "1"}).status_code == 404


@pytest.mark.hazard("H-03")
def test_each_access_event_keeps_the_role_acted_in_at_the_time(client, locum):
    """What "who has seen my record" says of a person is who they were then: the role profile's job title (or
    its role's name) while acting in it, the home role's otherwise; a later change in the directory rewrites
    nothing."""
    professional, role, ward_patient, practice_patient = locum
    professional.job_title = "Consultant in acute medicine"
    professional.save()
    client.force_login(professional.user)
    client.get(reverse("record-summary", args=[ward_patient.pk]))
    acting(client, role)
    client.get(reverse("record-summary", args=[practice_patient.pk]))
    professional.job_title = "Medical director"
    professional.save()
    rows = list(AccessEvent.objects.order_by("at", "pk").values_list("organisation_code", "professional_role"))
    assert rows == [("RBA", "Consultant in acute medicine"), ("F81001", role.job_title or "General practitioner")]
