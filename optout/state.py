"""The objection state the access decision reads: one indexed query per record request, or a subquery of the
decision's own query (`upheld_objection`)."""

from django.db.models import Exists, OuterRef

from .models import Objection


def upheld_objection(patient_ref=None) -> Exists:
    """EXISTS an upheld objection for the patient `patient_ref` names (default: the outer query's row)."""
    ref = OuterRef("pk") if patient_ref is None else patient_ref
    return Exists(Objection.objects.filter(patient=ref, status=Objection.Status.UPHELD))


def has_upheld_objection(patient) -> bool:
    return Objection.objects.filter(patient=patient, status=Objection.Status.UPHELD).exists()
