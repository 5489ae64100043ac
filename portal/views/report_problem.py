"""Report a problem with an entry: from any item of a record, a professional tells the organisation it came from
that it looks wrong. Through the access decision; the entry is looked up only among what the viewer may see."""

from django.http import Http404
from django.shortcuts import render
from django.views.decorators.http import require_http_methods

from sharing import actions, problems
from sharing.access import get_patient_for

from ..problem_form import EntryProblemForm


@require_http_methods(["GET", "POST"])
def report_problem(request, patient_id, entry):
    patient, decision = get_patient_for(request, patient_id, page="record:report-problem")
    found = problems.visible_entry(patient, decision, entry)
    if found is None:  # another patient's, withdrawn, sensitive, not shared, or none: the same 404
        raise Http404("No such entry")
    form = EntryProblemForm(request.POST if request.method == "POST" else None)
    context = {"patient": patient, "decision": decision, "entry": found, "summary": problems.describe(found)}
    if request.method == "POST" and form.is_valid():
        problem = actions.report_entry_problem(
            by=request.user, patient=patient, entry=found, what_is_wrong=form.cleaned_data["what_is_wrong"]
        )
        return render(request, "patients/record/report_problem_done.html", {**context, "problem": problem})
    status = 400 if form.is_bound else 200
    return render(request, "patients/record/report_problem.html", {**context, "form": form}, status=status)
