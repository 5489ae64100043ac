from django.apps import AppConfig


class DirectoryConfig(AppConfig):
    name = "directory"
    verbose_name = "Directory: organisations, professionals and teams"

    def ready(self):
        from audit import subjects

        from . import profiles, signals
        from .models import Organisation

        signals.connect()

        subjects.register(
            organisation_names=lambda codes: dict(
                Organisation.objects.filter(ods_code__in=set(codes)).values_list("ods_code", "name")
            ),
            # Who an IG user is, for the audit rows of the audit app's own pages (the subject-access letter).
            professional_for=profiles.professional_for,
        )
