"""IG register the clinical systems that launch in context (identity/admin.py): the key is checked when saved with the
code that checks launches, a bad one is a form error, and every change is audited (the key by fingerprint, never its
text)."""

import datetime
import json

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID
from django.urls import reverse

from audit.models import AuditEvent
from audit.names import Action
from identity.actions import key_fingerprint
from identity.models import LaunchPartner
from tests import factories
from tests.identity.test_launch import EC_KEY, OTHER_RSA_KEY, jwks

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("admin_settings")]
ADD = reverse("admin:identity_launchpartner_add")
PEM = factories.public_pem(factories.launch_private_key())


@pytest.fixture
def ig(ig_client):
    """The IG officer: staff, with the IG group's permissions (demo/accounts.py), which include launch partners."""
    return ig_client


def form(organisation, **changes):
    data = {
        "name": "SystmOne, Riverside",
        "organisation": organisation.pk,
        "issuer": "https://systmone.example.test/riverside",
        "algorithm": "RS256",
        "public_key": PEM,
        "active": "on",
    }
    return {key: value for key, value in {**data, **changes}.items() if value is not None}


def partner_events():
    return AuditEvent.objects.filter(action=Action.LAUNCH_PARTNER_CHANGED).order_by("pk")


def private_pem(key) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


@pytest.mark.hazard("H-19")
def test_ig_add_a_partner_whose_key_is_checked_and_the_addition_is_audited(ig, ig_user, organisation):
    response = ig.post(ADD, form(organisation, public_key=f"\n  {PEM}\n"))
    assert response.status_code == 302, response.context["adminform"].form.errors if response.context else ""
    partner = LaunchPartner.objects.get()
    assert (partner.issuer, partner.organisation, partner.active) == (
        "https://systmone.example.test/riverside",
        organisation,
        True,
    )
    assert partner.public_key == PEM.strip()
    (event,) = partner_events()
    assert (event.actor_id, event.target_id, event.detail["change"]) == (ig_user.pk, str(partner.pk), "created")
    assert event.detail["key_sha256"] == key_fingerprint(PEM)
    assert event.detail["organisation"] == organisation.ods_code and event.detail["algorithm"] == "RS256"
    assert "BEGIN PUBLIC KEY" not in json.dumps(event.detail) and PEM.splitlines()[1] not in json.dumps(event.detail)


def certificate_pem(private_key) -> str:
    """A self-signed certificate for the key: what some partners send instead of a bare public key."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "emis.example.test")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(private_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=365))
        .sign(private_key, hashes.SHA256())
    )
    return certificate.public_bytes(serialization.Encoding.PEM).decode()


@pytest.mark.hazard("H-19")
def test_a_partners_certificate_is_accepted_and_its_key_checks_launches(ig, organisation, patient, clinician):
    from tests.identity.test_launch import Launcher, link_subject

    certificate = certificate_pem(OTHER_RSA_KEY)
    assert ig.post(ADD, form(organisation, public_key=certificate)).status_code == 302
    partner = LaunchPartner.objects.get()
    ig.force_login(link_subject(clinician))
    launched = ig.get(reverse("launch"), Launcher(partner=partner, patient=patient, key=OTHER_RSA_KEY).params())
    assert (launched.status_code, launched["Location"]) == (302, reverse("launch-continue"))


@pytest.mark.hazard("H-19")
def test_ig_add_an_ec_partner_with_a_jwks(ig, organisation):
    keys = jwks(("2026-01", EC_KEY))
    assert ig.post(ADD, form(organisation, algorithm="ES256", public_key=keys)).status_code == 302
    assert LaunchPartner.objects.get().algorithm == "ES256"


SMALL_RSA = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505 (the point: refused)
BAD_KEYS = {
    "not a key": ("RS256", "hello", "not a PEM public key"),
    "a private key": ("RS256", private_pem(OTHER_RSA_KEY), "private key"),
    "an EC key for RS256": ("RS256", factories.public_pem(EC_KEY), "not an RSA public key"),
    "an RSA key for ES256": ("ES256", PEM, "not an elliptic curve P-256 public key"),
    "an EC key on another curve": ("ES256", factories.public_pem(ec.generate_private_key(ec.SECP384R1())), "P-256"),
    "RSA of 1024 bits": ("RS256", factories.public_pem(SMALL_RSA), "1024 bits"),
    "JSON that is not a JWKS": ("RS256", '{"kty": "RSA"}', '"keys" list'),
    "broken JSON": ("RS256", '{"keys": [', "not valid JSON"),
    "a JWKS key without kid": (
        "RS256",
        json.dumps({"keys": [json.loads(jwks(("a", OTHER_RSA_KEY)))["keys"][0] | {"kid": ""}]}),
        "kid",
    ),
    "a JWKS key for another algorithm": (
        "RS256",
        json.dumps({"keys": [json.loads(jwks(("a", OTHER_RSA_KEY)))["keys"][0] | {"alg": "PS256"}]}),
        "is for PS256",
    ),
    "a JWKS private key": (
        "RS256",
        json.dumps({"keys": [{**json.loads(jwks(("a", OTHER_RSA_KEY)))["keys"][0], "d": "AQAB"}]}),
        "private key",
    ),
    "a JWKS entry that is not an object": ("RS256", '{"keys": ["a"]}', "JSON object (a JWK)"),
    "a JWKS encryption key": (
        "RS256",
        json.dumps({"keys": [json.loads(jwks(("a", OTHER_RSA_KEY)))["keys"][0] | {"use": "enc"}]}),
        "not a signing key",
    ),
    "a JWKS key that is not a key": ("RS256", json.dumps({"keys": [{"kty": "RSA", "kid": "a", "n": "!"}]}), "usable"),
    "two JWKS keys with one kid": (
        "RS256",
        jwks(("a", OTHER_RSA_KEY), ("a", factories.launch_private_key())),
        "Two keys",
    ),
}


@pytest.mark.hazard("H-19")
@pytest.mark.parametrize("case", list(BAD_KEYS))
def test_a_key_that_cannot_check_launches_is_a_form_error(ig, organisation, case):
    algorithm, key, says = BAD_KEYS[case]
    response = ig.post(ADD, form(organisation, algorithm=algorithm, public_key=key))
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert list(errors) == ["public_key"] and says in errors["public_key"][0], errors
    assert not LaunchPartner.objects.exists() and not partner_events().exists()


@pytest.mark.hazard("H-19")
def test_changes_are_audited_with_what_changed_and_deactivation_is_named(ig, ig_user, organisation):
    partner = factories.LaunchPartnerFactory(organisation=organisation, issuer="https://emis.example.test")
    change = reverse("admin:identity_launchpartner_change", args=[partner.pk])
    new_key = factories.public_pem(EC_KEY)
    response = ig.post(change, form(organisation, issuer=partner.issuer, algorithm="ES256", public_key=new_key))
    assert response.status_code == 302
    first = partner_events().last()
    assert first.detail["change"] == "changed"
    assert set(first.detail["changed"].split(",")) == {"name", "algorithm", "public_key"}
    assert first.detail["key_sha256"] == key_fingerprint(new_key) and "BEGIN" not in json.dumps(first.detail)
    ig.post(change, form(organisation, issuer=partner.issuer, algorithm="ES256", public_key=new_key, active=None))
    deactivated = partner_events().last()
    assert (deactivated.detail["change"], deactivated.detail["changed"], deactivated.detail["active"]) == (
        "deactivated",
        "active",
        "False",
    )
    assert deactivated.actor_id == ig_user.pk
    partner.refresh_from_db()
    assert not partner.active
    ig.post(change, form(organisation, issuer=partner.issuer, algorithm="ES256", public_key=new_key))
    assert partner_events().last().detail["change"] == "reactivated"
    # Saved unchanged: nothing to audit.
    ig.post(change, form(organisation, issuer=partner.issuer, algorithm="ES256", public_key=new_key))
    assert partner_events().count() == 3


def test_the_change_page_shows_the_fingerprint_and_partners_are_never_deleted(ig, organisation):
    partner = factories.LaunchPartnerFactory(organisation=organisation)
    page = ig.get(reverse("admin:identity_launchpartner_change", args=[partner.pk]))
    assert key_fingerprint(partner.public_key) in page.content.decode()
    assert ig.get(reverse("admin:identity_launchpartner_delete", args=[partner.pk])).status_code == 403
