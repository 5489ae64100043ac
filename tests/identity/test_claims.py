"""Reading the identity provider's claims (identity.claims): CIS2's shape, and what a malformed claim gives."""

import pytest

from identity.claims import Claims, RoleClaim, national_role, read

pytestmark = pytest.mark.hazard("H-19")

ROLE = {
    "person_roleid": "555021935107",
    "person_orgid": "555021936101",
    "org_code": "rba",
    "role_code": "S8000:G8000:R8000",
    "role_name": '"Clinical":"Clinical Provision":"Clinical Practitioner Access Role"',
    "activity_codes": ["B0172", "B0264"],
}


def test_a_cis2_sign_in_reads_as_subject_role_and_assurance():
    data = {
        "id_token": {"sub": "910000000001", "acr": "AAL3_ANY", "selected_roleid": "555021935107"},
        "userinfo": {
            "sub": "910000000001",
            "given_name": "Ada",
            "family_name": "Testperson",
            "email": "Ada.Testperson@NHS.test",
            "nhsid_nrbac_roles": [ROLE],
        },
    }
    claims = read(data)
    assert (claims.subject, claims.given_name, claims.family_name, claims.email) == (
        "910000000001",
        "Ada",
        "Testperson",
        "ada.testperson@nhs.test",
    )
    assert claims.selected == RoleClaim("555021935107", "RBA", "R8000", ROLE["role_name"], ("B0172", "B0264"))
    assert claims.selected.role == "doctor"
    assert claims.strong


def test_the_selected_role_is_the_one_named_never_another():
    other = dict(ROLE, person_roleid="555021935108", org_code="RAL", role_code="S8001:G8001:R8001")
    claims = read(
        {"id_token": {"sub": "s", "selected_roleid": "555021935108"}, "userinfo": {"nhsid_nrbac_roles": [ROLE, other]}}
    )
    assert (claims.selected.org_code, claims.selected.role) == ("RAL", "nurse")
    assert (
        read(
            {"id_token": {"sub": "s", "selected_roleid": "999"}, "userinfo": {"nhsid_nrbac_roles": [ROLE, other]}}
        ).selected
        is None
    )


def test_two_roles_and_none_selected_is_no_role():
    other = dict(ROLE, person_roleid="2")
    assert read({"id_token": {"sub": "s"}, "userinfo": {"nhsid_nrbac_roles": [ROLE, other]}}).selected is None
    assert (
        read({"id_token": {"sub": "s"}, "userinfo": {"nhsid_nrbac_roles": [ROLE]}}).selected.role_id
        == ROLE["person_roleid"]
    )


@pytest.mark.parametrize(
    "roles",
    [
        None,
        "R8000",
        [None, 3, "x"],
        [{"org_code": "RBA"}],
        [{"person_roleid": "1"}],
        [{"person_roleid": "", "org_code": ""}],
    ],
)
def test_malformed_roles_are_no_roles(roles):
    assert read({"id_token": {"sub": "s"}, "userinfo": {"nhsid_nrbac_roles": roles}}).roles == ()


def test_a_weaker_sign_in_or_an_unknown_role_reads_as_such():
    claims = read(
        {
            "id_token": {"sub": "s", "acr": "AAL2_OR_ABOVE"},
            "userinfo": {"nhsid_nrbac_roles": [dict(ROLE, role_code="S0080:G0450:R5080")]},
        }
    )
    assert not claims.strong
    assert claims.selected.role is None  # R5080 (a receptionist's) is not in SSO_ROLE_MAP: refused at sign-in
    assert not Claims(subject="s").strong


def test_the_claim_names_and_role_map_are_settings(settings):
    settings.SSO_CLAIM_ROLES, settings.SSO_CLAIM_SELECTED_ROLE = "roles", "role"
    settings.SSO_ROLE_MAP = {"R5080": "clinician-111"}
    claims = read(
        {
            "id_token": {"sub": "s", "role": "1"},
            "userinfo": {"roles": [dict(ROLE, person_roleid="1", role_code="R5080")]},
        }
    )
    assert claims.selected.role == "clinician-111"


@pytest.mark.parametrize(("code", "role"), [("S8000:G8000:R8000", "R8000"), ("r8001", "R8001"), ("", ""), (":", "")])
def test_national_role_is_the_job_role_code(code, role):
    assert national_role(code) == role


def test_the_subject_comes_from_the_id_token_and_is_never_the_email():
    claims = read({"id_token": {"sub": "abc"}, "userinfo": {"sub": "abc", "email": "x@nhs.test"}})
    assert claims.subject == "abc"
    assert read({"userinfo": {"email": "x@nhs.test"}}).subject == ""
