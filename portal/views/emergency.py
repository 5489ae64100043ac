"""The emergency view: one screen for ambulance crews, NHS 111 and emergency departments, through the one access
decision (page "record:emergency"). Allergies and medications come first, before anything else of the record."""

from django.shortcuts import render

from patients.categories import Category
from sharing.access import get_patient_for
from sharing.demographics import notes_for
from sharing.emergency import emergency_view
from sharing.record import current_admissions


def emergency(request, patient_id):
    patient, decision = get_patient_for(request, patient_id, page="record:emergency")
    view = emergency_view(patient, decision)
    context = {
        "patient": patient,
        "decision": decision,
        "categories": list(Category),
        "view": view,
        "sources": view.sources(),
        # The banner's safety notes, said in a line each at the top (the full banner would push allergies down).
        "admissions": current_admissions(patient, decision),
        "demographics_notes": notes_for(patient, decision),
    }
    return render(request, "patients/record/emergency.html", context)
