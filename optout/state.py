"""The objection state the access decision reads: one indexed query per record request."""

from .models import Objection


def has_upheld_objection(patient) -> bool:
    return Objection.objects.filter(patient=patient, status=Objection.Status.UPHELD).exists()
