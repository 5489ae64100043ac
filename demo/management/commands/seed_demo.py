"""Load the synthetic London demo data set (see the demo package). Safe to run again: it only fills in gaps."""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from demo.accounts import DEMO_ACCOUNTS, DEMO_PASSWORD
from demo.seeder import seed


class Command(BaseCommand):
    help = "Create synthetic demo organisations, staff, patients and records, and the demo accounts."

    def add_arguments(self, parser):
        parser.add_argument("--patients", type=int, default=200, help="How many patients (default 200).")
        parser.add_argument(
            "--force", action="store_true", help="Run even with DEBUG off. The demo accounts have known passwords."
        )

    def handle(self, *args, patients, force, **options):
        if not settings.DEBUG and not force:
            raise CommandError(
                "seed_demo creates accounts with a published password, so it refuses to run with DEBUG off. "
                "Use --force only on a throwaway or demo server."
            )
        if patients < 1:
            raise CommandError("--patients must be at least 1.")
        summary = seed(patients=patients)
        self.stdout.write("Created this run: " + _counts(summary.created))
        self.stdout.write("Now in the database: " + _counts(summary.totals))
        self.stdout.write(f"\nDemo accounts (password {DEMO_PASSWORD}):")
        for account in DEMO_ACCOUNTS:
            self.stdout.write(f"  {account.email:34} {account.description}")
        patient = summary.demo_patient
        self.stdout.write(
            self.style.SUCCESS(
                f"\nShared demo patient: {patient.given_name} {patient.family_name}, NHS number "
                f"{patient.nhs_number_display}: registered with the GP, under the diabetes clinic and the "
                "mental health team, with six years of blood tests; on the Acute Medical Unit now (every record "
                "page's banner says she is in hospital), with a referral and a dispensed medicine."
            )
        )
        opted_out = summary.opted_out_patient
        if opted_out:
            self.stdout.write(
                self.style.SUCCESS(
                    f"Opted-out demo patient: {opted_out.given_name} {opted_out.family_name}, NHS number "
                    f"{opted_out.nhs_number_display}: registered with the GP's practice, with an upheld objection, "
                    "so the GP sees only the practice's own entries, under an opted-out banner."
                )
            )
        for patient, kind, what in (
            (summary.restricted_patient, "Restricted", "S-flag: no address, phone or contacts shown"),
            (summary.deceased_patient, "Deceased", "the banner says so, with the date of death"),
        ):
            if patient:
                self.stdout.write(
                    f"{kind} demo patient: {patient.given_name} {patient.family_name}, NHS number "
                    f"{patient.nhs_number_display}: {what}."
                )


def _counts(counts):
    return ", ".join(f"{number} {name}" for name, number in counts.items() if number) or "nothing"
