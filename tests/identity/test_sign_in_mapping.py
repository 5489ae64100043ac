"""A single sign-on the provider vouched for → a professional in one role, or refused and audited (H-19).

identity.adapters.resolve decides; pre_social_login's refusal page and audit row are tested through the real
provider in test_sso_flow.py."""

import pytest

from audit.models import AuditEvent
from audit.names import Action
from directory.models import Professional, RoleProfile
from identity.adapters import Refused, resolve
from identity.claims import Claims, RoleClaim
from tests import factories

pytestmark = [pytest.mark.django_db, pytest.mark.hazard("H-19")]


def claims(subject="sub-1", org="RBA", national="R8000", role_id="555021935107", **extra) -> Claims:
    role = RoleClaim(role_id=role_id, org_code=org, national_role=national, activity_codes=("B0172",))
    return Claims(
        subject=subject, given_name="Ada", family_name="Testperson", email="ada@nhs.test", roles=(role,), **extra
    )


@pytest.fixture
def trust():
    return factories.OrganisationFactory(ods_code="RBA", name="Test Acute Trust")


@pytest.fixture
def doctor(trust):
    return factories.ProfessionalFactory(organisation=trust, role=Professional.Role.DOCTOR, sso_subject="sub-1")


def refused_for(claim) -> str:
    with pytest.raises(Refused) as refused:
        resolve(claim)
    return refused.value.reason


def test_the_subject_finds_the_professional_in_their_home_role(doctor):
    assert resolve(claims()) == (doctor, None)


def test_the_email_never_links_an_account(trust):
    factories.ProfessionalFactory(organisation=trust, user__email="ada@nhs.test", sso_subject=None)
    assert refused_for(claims()) == "not-provisioned"


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"org": "ZZZ99"}, "unknown-organisation"),
        ({"national": "R5080"}, "unknown-role"),
        ({"subject": ""}, "no-subject"),
    ],
)
def test_what_carerecord_does_not_know_is_refused(doctor, change, reason):
    assert refused_for(claims(**change)) == reason


def test_no_role_selected_among_several_is_refused(doctor):
    two = Claims(subject="sub-1", roles=(RoleClaim("1", "RBA", "R8000"), RoleClaim("2", "RBA", "R8001")))
    assert refused_for(two) == "no-role-selected"


def test_an_inactive_organisation_professional_or_account_is_refused(doctor, trust):
    trust.active = False
    trust.save()
    assert refused_for(claims()) == "organisation-inactive"
    trust.active = True
    trust.save()
    Professional.objects.filter(pk=doctor.pk).update(active=False)
    assert refused_for(claims()) == "inactive"
    Professional.objects.filter(pk=doctor.pk).update(active=True)
    doctor.user.is_active = False
    doctor.user.save()
    assert refused_for(claims()) == "inactive"


def test_just_in_time_creates_the_professional_only_where_allowed_audited(trust):
    assert refused_for(claims()) == "not-provisioned"  # the organisation needs a professional made in admin
    trust.sso_provisioning, trust.sso_roles = "just-in-time", "nurse"
    trust.save()
    assert refused_for(claims()) == "not-provisioned"  # doctor is not among the roles it allows
    trust.sso_roles = "doctor,nurse"
    trust.save()
    professional, role_profile = resolve(claims())
    assert role_profile is None
    assert (professional.sso_subject, professional.organisation, professional.role) == ("sub-1", trust, "doctor")
    assert (professional.user.email, professional.user.first_name, professional.user.has_usable_password()) == (
        "ada@nhs.test",
        "Ada",
        False,
    )
    event = AuditEvent.objects.get(action=Action.PROFESSIONAL_PROVISIONED)
    assert (event.actor_id, event.detail["via"], event.detail["organisation"]) == (None, "single sign-on", "RBA")
    assert resolve(claims()) == (professional, None)  # the second sign-in finds them
    assert Professional.objects.count() == 1


def test_just_in_time_never_takes_over_an_account_with_the_same_email(trust):
    trust.sso_provisioning, trust.sso_roles = "just-in-time", "doctor"
    trust.save()
    factories.ProfessionalFactory(organisation=trust, user__email="ada@nhs.test")
    assert refused_for(claims()) == "email-in-use"


def test_a_role_at_another_organisation_is_their_role_profile(doctor):
    practice = factories.OrganisationFactory(ods_code="F81001")
    held = RoleProfile.objects.create(professional=doctor, organisation=practice, role="gp")
    professional, role_profile = resolve(claims(org="F81001", national="R0260", role_id="777"))
    assert (professional, role_profile) == (doctor, held)
    held.refresh_from_db()
    assert (held.provider_role_id, held.national_role_code, held.activities) == ("777", "R0260", "B0172")
    held.active = False
    held.save()
    assert refused_for(claims(org="F81001", national="R0260", role_id="777")) == "inactive"


def test_a_role_profile_not_held_is_created_only_where_that_organisation_allows(doctor):
    practice = factories.OrganisationFactory(ods_code="F81001")
    assert refused_for(claims(org="F81001", national="R0260")) == "role-not-provisioned"
    assert not RoleProfile.objects.exists()
    practice.sso_provisioning, practice.sso_roles = "just-in-time", "gp"
    practice.save()
    _, role_profile = resolve(claims(org="F81001", national="R0260"))
    assert (role_profile.organisation, role_profile.role, role_profile.from_sign_in) == (practice, "gp", True)
    assert AuditEvent.objects.filter(action=Action.PROFESSIONAL_CHANGED, target_id=str(doctor.pk)).exists()


def test_a_provider_role_id_now_naming_another_role_here_is_refused(doctor):
    practice = factories.OrganisationFactory(ods_code="F81001")
    RoleProfile.objects.create(professional=doctor, organisation=practice, role="gp", provider_role_id="777")
    assert refused_for(claims(org="F81001", national="R8001", role_id="777")) == "role-not-provisioned"
