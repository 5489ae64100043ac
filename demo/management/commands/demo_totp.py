"""Print the current sign-in code of a demo account, so a newcomer can try the service without a phone."""

from allauth.mfa.adapter import get_adapter
from allauth.mfa.models import Authenticator
from allauth.mfa.totp.internal.auth import format_hotp_value, hotp_value, yield_hotp_counters_from_time
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

DEMO_EMAIL_DOMAIN = "@demo.carerecord.test"


class Command(BaseCommand):
    help = "Print the current TOTP code of a demo account (development only)."

    def add_arguments(self, parser):
        parser.add_argument("email")

    def handle(self, *args, email, **options):
        if not settings.DEBUG:
            raise CommandError("demo_totp works only with DEBUG on: it would defeat multi-factor sign-in.")
        if not email.lower().endswith(DEMO_EMAIL_DOMAIN):
            raise CommandError(f"{email} is not a demo account (demo accounts end in {DEMO_EMAIL_DOMAIN}).")
        user = get_user_model().objects.filter(email__iexact=email).first()
        authenticator = Authenticator.objects.filter(user=user, type=Authenticator.Type.TOTP).first()
        if user is None or authenticator is None:
            raise CommandError(f"No demo account with an authenticator: {email}. Run `manage.py seed_demo`.")
        secret = get_adapter().decrypt(authenticator.data["secret"])
        counters = list(yield_hotp_counters_from_time())
        self.stdout.write(format_hotp_value(hotp_value(secret, counters[len(counters) // 2])))
