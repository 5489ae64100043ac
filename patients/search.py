"""Finding a patient by NHS number (by name: patients.crew_search). Results carry demographics only: nothing
clinical is shown before the access decision."""

from django.db.models import QuerySet

from .models import Patient


def by_nhs_number(nhs_number: str) -> QuerySet:
    return Patient.objects.filter(nhs_number=nhs_number).select_related("registered_gp")
