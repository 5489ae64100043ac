"""A professional records a patient's objection from the record: through the access decision, into IG's queue."""

from django.shortcuts import render
from django.views.decorators.http import require_http_methods

from optout import actions
from optout.forms import ProfessionalObjectionForm
from sharing.access import get_patient_for


@require_http_methods(["GET", "POST"])
def record_objection(request, patient_id):
    patient, decision = get_patient_for(request, patient_id, page="record:objection")
    region = patient.registered_gp.region if patient.registered_gp else None
    form = ProfessionalObjectionForm(request.POST or None, initial={"region": region})
    if request.method == "POST" and form.is_valid():
        objection = actions.record_professional_objection(by=request.user, patient=patient, **form.cleaned_data)
        return render(
            request,
            "optout/record_objection_done.html",
            {"patient": patient, "decision": decision, "objection": objection},
        )
    status = 400 if form.is_bound else 200
    return render(
        request, "optout/record_objection.html", {"patient": patient, "decision": decision, "form": form}, status=status
    )
