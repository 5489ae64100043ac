"""Finding a patient. Results carry demographics only: nothing clinical is shown before the access decision."""

from django.conf import settings
from django.db.models import QuerySet

from .models import Patient


def by_nhs_number(nhs_number: str) -> QuerySet:
    return Patient.objects.filter(nhs_number=nhs_number).select_related("registered_gp")


def by_name_and_birth_date(*, family_name: str, date_of_birth, given_name: str = "") -> QuerySet:
    """Family name as a case-insensitive prefix (partial allowed), exact date of birth."""
    patients = Patient.objects.filter(date_of_birth=date_of_birth, family_name__istartswith=family_name.strip())
    if given_name.strip():
        patients = patients.filter(given_name__istartswith=given_name.strip())
    return patients.select_related("registered_gp").order_by("family_name", "given_name")[: settings.SEARCH_MAX_RESULTS]
