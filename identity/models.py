"""Partners whose clinical systems may open carerecord in context, and the launch tokens already used.

A partner signs each launch with its own private key; IG register the public key here (PEM, or a JWKS with
one or more keys for rotation). A token's `jti` is kept until the token would have expired anyway, so the same
token cannot open a record twice (identity.launch).
"""

from django.db import models
from django.utils import timezone

from directory.models import Organisation


class LaunchPartner(models.Model):
    class Algorithm(models.TextChoices):
        RS256 = "RS256", "RS256 (RSA)"
        PS256 = "PS256", "PS256 (RSA-PSS)"
        ES256 = "ES256", "ES256 (elliptic curve P-256)"

    name = models.CharField(
        max_length=200, help_text="The clinical system and where it runs, e.g. 'EMIS Web, Lambeth'."
    )
    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="launch_partners")
    issuer = models.CharField(
        max_length=300, unique=True, help_text="What the partner's tokens carry as `iss` (agreed with the partner)."
    )
    public_key = models.TextField(
        help_text="The partner's public key: PEM ('-----BEGIN PUBLIC KEY-----...'), or a JWKS JSON document "
        '({"keys": [...]}) whose key the token names by `kid`.'
    )
    algorithm = models.CharField(max_length=10, choices=Algorithm.choices, default=Algorithm.RS256)
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return f"{self.name} ({self.issuer})"


class LaunchUse(models.Model):
    """A launch token seen once: its (partner, jti) may not open anything again."""

    partner = models.ForeignKey(LaunchPartner, on_delete=models.CASCADE, related_name="uses")
    jti = models.CharField(max_length=200)
    used_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(db_index=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["partner", "jti"], name="launchuse_once")]

    def __str__(self):
        return f"{self.partner.issuer} {self.jti}"
