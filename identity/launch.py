"""Launch in context: is this token a registered partner's genuine, fresh, single launch, for which user and patient?

A partner's clinical system sends the browser to /launch/?launch=<JWT> (SMART App Launch's EHR launch names the
parameter; here it carries the context itself, signed by the partner: docs/launch.md says what was adopted and
why). `verify` checks everything the token says about itself, in an order that never trusts a claim before the
signature over it is checked (only `iss` is read first, to find whose key to check it with); each failure is one
`Reason`. PyJWT does the JWT work; what is ours is which partner, which key, and which claims a launch needs.
The token's one write, its single use, is identity.actions.use_token; the pending launch across a sign-in lives
in the session (keep_pending / take_pending).
"""

import enum
import json
import math
import time
from dataclasses import dataclass
from datetime import UTC, datetime

import jwt
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from django.conf import settings
from django.core.exceptions import ValidationError
from django.urls import reverse

from patients.nhs_numbers import looks_like_nhs_number, validate_nhs_number

from .models import LaunchPartner

LEEWAY_SECONDS = 5  # clocks differ a little between a partner's servers and ours; never more than this
MAX_TOKEN_LENGTH = 8192  # a launch token is a few hundred characters; anything far longer is not one
MAX_CLAIM_LENGTH = 200  # LaunchUse.jti and Professional.sso_subject hold 200
PENDING_SECONDS = 300  # how long a verified launch waits for the sign-in it needs
PENDING_SESSION_KEY = "carerecord_launch_pending"
MIN_RSA_BITS = 2048
ALGORITHMS = frozenset(LaunchPartner.Algorithm.values)  # asymmetric only: never "none", never HS*
CLAIMS = ("iss", "aud", "exp", "iat", "jti", "sub", "nhs_number")


class Reason(enum.StrEnum):
    """Why a launch was refused (stored in audit rows: plain strings, never renamed)."""

    NO_TOKEN = "no-token"  # noqa: S105 (a reason, not a secret)
    MALFORMED = "malformed"
    ALGORITHM_NOT_ALLOWED = "algorithm-not-allowed"
    ALGORITHM_MISMATCH = "algorithm-mismatch"
    UNKNOWN_ISSUER = "unknown-issuer"
    ISSUER_MISMATCH = "issuer-mismatch"
    PARTNER_INACTIVE = "partner-inactive"
    ORGANISATION_INACTIVE = "organisation-inactive"
    KEY_UNUSABLE = "key-unusable"
    UNKNOWN_KEY = "unknown-key"
    BAD_SIGNATURE = "bad-signature"
    MISSING_CLAIM = "missing-claim"
    INVALID_CLAIM = "invalid-claim"
    WRONG_AUDIENCE = "wrong-audience"
    EXPIRED = "expired"
    NOT_YET_VALID = "not-yet-valid"
    TOO_LONG_LIVED = "lifetime-too-long"
    REPLAYED = "replayed"
    INVALID_NHS_NUMBER = "invalid-nhs-number"
    SSO_NOT_ENABLED = "single-sign-on-not-enabled"
    NO_SUBJECT = "no-single-sign-on-subject"
    USER_MISMATCH = "user-mismatch"
    NO_PENDING = "no-pending-launch"
    PENDING_EXPIRED = "pending-launch-expired"
    NO_SUCH_PATIENT = "no-such-patient"  # audited only: the page is the record pages' own refusal


# Who the launch is for, not what it is, went wrong: 403. Everything else is a bad or spent token (or no launch
# waiting): 400.
FORBIDDEN = {Reason.SSO_NOT_ENABLED, Reason.NO_SUBJECT, Reason.USER_MISMATCH}
# What the clinician reads, per reason ({claim} and {max_seconds} filled in).
EXPLANATIONS = {
    Reason.NO_TOKEN: "The link from your clinical system did not include the launch details.",
    Reason.MALFORMED: "The launch details from your clinical system could not be read.",
    Reason.ALGORITHM_NOT_ALLOWED: "The launch was not signed in a way this service accepts.",
    Reason.ALGORITHM_MISMATCH: "The launch was not signed the way your clinical system is registered to sign.",
    Reason.UNKNOWN_ISSUER: "The launch came from a clinical system that is not registered with this service.",
    Reason.ISSUER_MISMATCH: "The launch named a different sending system from the one it came from.",
    Reason.PARTNER_INACTIVE: "Opening records from your clinical system has been switched off.",
    Reason.ORGANISATION_INACTIVE: "The organisation of your clinical system no longer takes part in this service.",
    Reason.KEY_UNUSABLE: "The key registered for your clinical system cannot be used to check launches.",
    Reason.UNKNOWN_KEY: "The launch was signed with a key this service does not hold for your clinical system.",
    Reason.BAD_SIGNATURE: "The launch's signature does not match the key registered for your clinical system.",
    Reason.MISSING_CLAIM: "The launch did not include everything needed (it had no “{claim}”).",
    Reason.INVALID_CLAIM: "Part of the launch (“{claim}”) was not in the form expected.",
    Reason.WRONG_AUDIENCE: "The launch was meant for a different service.",
    Reason.EXPIRED: "The launch link has expired. Links from your clinical system work for less than a minute.",
    Reason.NOT_YET_VALID: "The launch is dated in the future: the clock of your clinical system may be wrong.",
    Reason.TOO_LONG_LIVED: "The launch was made to last longer than this service allows ({max_seconds} seconds).",
    Reason.REPLAYED: "This launch link has already been used. Each link opens a record once.",
    Reason.INVALID_NHS_NUMBER: "The NHS number your clinical system sent is not a valid NHS number.",
    Reason.SSO_NOT_ENABLED: "Opening a record from your clinical system needs single sign-on (NHS Care Identity), "
    "which is not set up for this service. Sign in to this service first, then open the record from your clinical "
    "system again.",
    Reason.NO_SUBJECT: "Your account here is not linked to an NHS Care Identity, so we cannot check that the launch "
    "was for you.",
    Reason.USER_MISMATCH: "The launch was for a different person from the one signed in here. You are still signed "
    "in as yourself, and nothing was opened.",
    Reason.NO_PENDING: "There is no launch from your clinical system waiting to be opened.",
    Reason.PENDING_EXPIRED: "The launch waited too long for you to sign in (more than 5 minutes).",
    Reason.NO_SUCH_PATIENT: "",
}
# Opening the record again from the clinical system (a fresh link) may well work.
TRY_AGAIN = {
    Reason.EXPIRED,
    Reason.REPLAYED,
    Reason.NO_PENDING,
    Reason.PENDING_EXPIRED,
    Reason.SSO_NOT_ENABLED,
}


class LaunchRefused(Exception):
    """A launch that opens nothing: the reason, and what is known of it (for the audit row)."""

    def __init__(self, reason: Reason, *, claim: str = "", partner=None, jti: str = "", issuer: str = ""):
        super().__init__(reason.value)
        self.reason, self.claim, self.partner, self.jti, self.issuer = reason, claim, partner, jti, issuer

    @property
    def status(self) -> int:
        return 403 if self.reason in FORBIDDEN else 400

    @property
    def explanation(self) -> str:
        return EXPLANATIONS[self.reason].format(claim=self.claim, max_seconds=settings.LAUNCH_MAX_SECONDS)

    @property
    def try_again(self) -> bool:
        return self.reason in TRY_AGAIN


@dataclass(frozen=True)
class Launch:
    """A verified launch: which partner, which token (jti), for whom (the IdP subject) and which patient."""

    partner: LaunchPartner
    jti: str
    sub: str
    nhs_number: str
    expires_at: datetime  # verify: the token's exp (its use is remembered until then); take_pending: the wait's end

    @property
    def label(self) -> str:
        """How the AccessEvent names the launch that opened a record."""
        return f"{self.partner.name} ({self.partner.issuer}) jti={self.jti}"


class KeyProblem(ValueError):
    """A registered public key that cannot check this algorithm's signatures (an admin form error)."""


def audience(request) -> str:
    """What a launch's `aud` must be: LAUNCH_AUDIENCE, or this service's /launch/ as the request reached it."""
    return settings.LAUNCH_AUDIENCE or request.build_absolute_uri(reverse("launch"))


def verify(token: str, *, audience: str, issuer: str = "") -> Launch:
    """The launch `token` proves, or LaunchRefused. `issuer`: the `iss` parameter beside it, when sent (SMART's
    name for the sender), which must then be the token's own. Writes nothing (its use: actions.use_token)."""
    if not token:
        raise LaunchRefused(Reason.NO_TOKEN)
    if len(token) > MAX_TOKEN_LENGTH:
        raise LaunchRefused(Reason.MALFORMED)
    try:
        header = jwt.get_unverified_header(token)
        unverified = jwt.decode(token, options={"verify_signature": False})
    except (jwt.PyJWTError, ValueError, TypeError):
        raise LaunchRefused(Reason.MALFORMED) from None
    algorithm = header.get("alg")
    if not isinstance(algorithm, str) or algorithm not in ALGORITHMS:
        raise LaunchRefused(Reason.ALGORITHM_NOT_ALLOWED)
    claimed_issuer = _text_claim(unverified, "iss", max_length=300)
    if issuer and issuer != claimed_issuer:
        raise LaunchRefused(Reason.ISSUER_MISMATCH, issuer=claimed_issuer)
    partner = LaunchPartner.objects.select_related("organisation").filter(issuer=claimed_issuer).first()
    if partner is None:
        raise LaunchRefused(Reason.UNKNOWN_ISSUER, issuer=claimed_issuer)
    if not partner.active:
        raise LaunchRefused(Reason.PARTNER_INACTIVE, partner=partner)
    if not partner.organisation.active:
        raise LaunchRefused(Reason.ORGANISATION_INACTIVE, partner=partner)
    if algorithm != partner.algorithm:
        raise LaunchRefused(Reason.ALGORITHM_MISMATCH, partner=partner)
    key = _key_for(partner, header.get("kid"))
    claims = _signed_claims(token, key, partner)
    return _launch_from(token, key, claims, partner, audience)


def _key_for(partner: LaunchPartner, kid):
    try:
        keys = load_public_keys(partner.public_key, partner.algorithm)
    except KeyProblem:
        raise LaunchRefused(Reason.KEY_UNUSABLE, partner=partner) from None
    if None in keys:  # a PEM key: the one key, whatever the token's kid
        return keys[None]
    if not isinstance(kid, str) or kid not in keys:
        raise LaunchRefused(Reason.UNKNOWN_KEY, partner=partner)
    return keys[kid]


def _signed_claims(token: str, key, partner: LaunchPartner) -> dict:
    """The payload, once its signature is proved; nothing else is checked yet."""
    only_signature = {"verify_signature": True, "verify_exp": False, "verify_iat": False, "verify_nbf": False}
    only_signature |= {"verify_aud": False, "verify_iss": False, "verify_sub": False, "verify_jti": False}
    try:
        return jwt.decode(token, key, algorithms=[partner.algorithm], options=only_signature)
    except (jwt.PyJWTError, ValueError, TypeError):
        raise LaunchRefused(Reason.BAD_SIGNATURE, partner=partner) from None


def _launch_from(token: str, key, claims: dict, partner: LaunchPartner, audience: str) -> Launch:
    """The signed claims a launch needs, each present and in its form; then PyJWT's time and audience checks."""
    jti = claims.get("jti")
    known = {"partner": partner, "jti": jti if _clean(jti) else ""}
    for claim in CLAIMS:
        if claims.get(claim) in (None, "", []):
            raise LaunchRefused(Reason.MISSING_CLAIM, claim=claim, **known)
    for claim in ("exp", "iat", "nbf"):
        value = claims.get(claim)
        if claim in claims and not (isinstance(value, int | float) and not isinstance(value, bool)):
            raise LaunchRefused(Reason.INVALID_CLAIM, claim=claim, **known)
        if isinstance(value, float) and not math.isfinite(value):
            raise LaunchRefused(Reason.INVALID_CLAIM, claim=claim, **known)
    for claim in ("jti", "sub", "nhs_number"):
        if not _clean(claims[claim]):
            raise LaunchRefused(Reason.INVALID_CLAIM, claim=claim, **known)
    try:
        jwt.decode(
            token,
            key,
            algorithms=[partner.algorithm],
            audience=audience,
            leeway=LEEWAY_SECONDS,
            options={"require": list(CLAIMS), "strict_aud": False},
        )
    except jwt.ExpiredSignatureError:
        raise LaunchRefused(Reason.EXPIRED, **known) from None
    except jwt.ImmatureSignatureError:
        raise LaunchRefused(Reason.NOT_YET_VALID, **known) from None
    except jwt.InvalidAudienceError:
        raise LaunchRefused(Reason.WRONG_AUDIENCE, **known) from None
    except (jwt.PyJWTError, ValueError, TypeError):  # what the checks above left PyJWT to find: none known
        raise LaunchRefused(Reason.INVALID_CLAIM, **known) from None
    if claims["exp"] - claims["iat"] > settings.LAUNCH_MAX_SECONDS:
        raise LaunchRefused(Reason.TOO_LONG_LIVED, **known)
    nhs_number = claims["nhs_number"]
    if not looks_like_nhs_number(nhs_number) or not _valid_nhs_number(nhs_number):
        raise LaunchRefused(Reason.INVALID_NHS_NUMBER, **known)
    expires_at = datetime.fromtimestamp(int(claims["exp"]), tz=UTC)  # bounded: within a minute of now
    return Launch(partner=partner, jti=jti, sub=claims["sub"], nhs_number=nhs_number, expires_at=expires_at)


def _text_claim(claims: dict, claim: str, *, max_length: int) -> str:
    value = claims.get(claim)
    if value in (None, ""):
        raise LaunchRefused(Reason.MISSING_CLAIM, claim=claim)
    if not _clean(value, max_length=max_length):
        raise LaunchRefused(Reason.INVALID_CLAIM, claim=claim)
    return value


def _clean(value, *, max_length: int = MAX_CLAIM_LENGTH) -> bool:
    """A non-empty string the database can hold as it is (no NUL, no lone surrogate) and not too long."""
    if not isinstance(value, str) or not value or len(value) > max_length or "\x00" in value:
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _valid_nhs_number(value: str) -> bool:
    try:
        validate_nhs_number(value)
    except ValidationError:
        return False
    return True


# --- the partner's public key(s) --------------------------------------------------------------------------------


def load_public_keys(text: str, algorithm: str) -> dict:
    """The keys registered text holds, usable for `algorithm`: {None: key} for PEM (a public key or a
    certificate), {kid: key, ...} for a JWKS. KeyProblem (saying what is wrong) otherwise: admin's validation and
    verify's both call this, so a key admin accepted is a key a launch can be checked with."""
    text = (text or "").strip()
    if algorithm not in ALGORITHMS:
        raise KeyProblem(f"{algorithm!r} is not an algorithm launches may use.")
    if text.startswith("{"):
        return _jwks_keys(text, algorithm)
    return {None: _checked(_pem_key(text), algorithm)}


def _pem_key(text: str):
    data = text.encode("utf-8", "replace")
    if b"PRIVATE KEY-----" in data:
        raise KeyProblem(
            "This is a private key. Register the partner's public key only; the private key stays with the partner."
        )
    try:
        if b"-----BEGIN CERTIFICATE-----" in data:
            return x509.load_pem_x509_certificate(data).public_key()
        return load_pem_public_key(data)
    except (ValueError, TypeError):
        raise KeyProblem(
            "This is not a PEM public key ('-----BEGIN PUBLIC KEY-----' ...), a PEM certificate, or a JWKS "
            '({"keys": [...]}).'
        ) from None


def _jwks_keys(text: str, algorithm: str) -> dict:
    try:
        document = json.loads(text)
    except ValueError:
        raise KeyProblem("This looks like JSON but is not valid JSON.") from None
    jwks = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(jwks, list) or not jwks:
        raise KeyProblem('A JWKS is a JSON object with a non-empty "keys" list.')
    keys = {}
    for jwk in jwks:
        if not isinstance(jwk, dict):
            raise KeyProblem('Each entry of "keys" is a JSON object (a JWK).')
        kid = jwk.get("kid")
        if not isinstance(kid, str) or not kid:
            raise KeyProblem('Each key in the JWKS needs a "kid": the token names its key by it.')
        if kid in keys:
            raise KeyProblem(f"Two keys in the JWKS have the kid {kid!r}.")
        if "d" in jwk:
            raise KeyProblem(f"Key {kid!r} is a private key. Register the public key only.")
        if jwk.get("alg", algorithm) != algorithm:
            raise KeyProblem(f"Key {kid!r} is for {jwk['alg']}, not {algorithm}.")
        if jwk.get("use", "sig") != "sig":
            raise KeyProblem(f"Key {kid!r} is not a signing key (use {jwk['use']!r}).")
        try:
            key = jwt.PyJWK(jwk, algorithm=algorithm).key
        except (jwt.PyJWTError, ValueError, TypeError, KeyError):
            raise KeyProblem(f"Key {kid!r} is not a usable {algorithm} public key.") from None
        keys[kid] = _checked(key, algorithm, kid=kid)
    return keys


def _checked(key, algorithm: str, *, kid=None):
    """The key, if it is the kind `algorithm` signs with: RSA of 2048 bits or more, or EC on P-256."""
    which = f"Key {kid!r}" if kid else "The key"
    if algorithm in ("RS256", "PS256"):
        if not isinstance(key, rsa.RSAPublicKey):
            raise KeyProblem(f"{which} is not an RSA public key, which {algorithm} needs.")
        if key.key_size < MIN_RSA_BITS:
            raise KeyProblem(f"{which} is an RSA key of {key.key_size} bits; use {MIN_RSA_BITS} or more.")
    elif not (isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1)):
        raise KeyProblem(f"{which} is not an elliptic curve P-256 public key, which {algorithm} needs.")
    return key


# --- a verified launch waiting for its sign-in ------------------------------------------------------------------


def keep_pending(session, launch: Launch, *, now: float | None = None) -> None:
    """Remember a verified launch across the sign-in it needs (for PENDING_SECONDS at most)."""
    now = time.time() if now is None else now
    session[PENDING_SESSION_KEY] = {
        "partner_id": launch.partner.pk,
        "jti": launch.jti,
        "sub": launch.sub,
        "nhs_number": launch.nhs_number,
        "expires_at": now + PENDING_SECONDS,
    }


def drop_pending(session) -> None:
    session.pop(PENDING_SESSION_KEY, None)


def take_pending(session, *, now: float | None = None) -> Launch:
    """The launch waiting in this session, taken once; LaunchRefused when none is, it waited too long, or its
    partner has since been switched off."""
    now = time.time() if now is None else now
    pending = session.pop(PENDING_SESSION_KEY, None)
    if not isinstance(pending, dict):
        raise LaunchRefused(Reason.NO_PENDING)
    partner = LaunchPartner.objects.select_related("organisation").filter(pk=pending.get("partner_id")).first()
    jti = str(pending.get("jti", ""))
    if pending.get("expires_at", 0) <= now:
        raise LaunchRefused(Reason.PENDING_EXPIRED, partner=partner, jti=jti)
    if partner is None or not partner.active:
        raise LaunchRefused(Reason.PARTNER_INACTIVE, partner=partner, jti=jti)
    if not partner.organisation.active:
        raise LaunchRefused(Reason.ORGANISATION_INACTIVE, partner=partner, jti=jti)
    expires_at = datetime.fromtimestamp(pending["expires_at"], tz=UTC)
    return Launch(partner=partner, jti=jti, sub=pending["sub"], nhs_number=pending["nhs_number"], expires_at=expires_at)


def check_user(launch: Launch, subject: str | None) -> None:
    """The launch names the signed-in user (their identity provider subject), or LaunchRefused."""
    if not subject:
        raise LaunchRefused(Reason.NO_SUBJECT, partner=launch.partner, jti=launch.jti)
    if subject != launch.sub:
        raise LaunchRefused(Reason.USER_MISMATCH, partner=launch.partner, jti=launch.jti)
