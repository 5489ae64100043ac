"""A letter's attachment (the PDF a hospital sent with its discharge letter), opened from the letters page.

One access decision and one audit event, as every record page (`get_patient_for`); the attachment is found only
among the letters this viewer may see (sharing.attachments), so one withheld, another patient's or missing is
the same 404 to an allowed viewer, and a refused record the same 403 as every other record URL."""

from django.http import Http404

from sharing import attachments
from sharing.access import get_patient_for


def letter_attachment(request, patient_id, attachment_id):
    patient, decision = get_patient_for(request, patient_id, page="record:letters:attachment")
    attachment = attachments.visible_attachment(patient, decision, attachment_id)
    if attachment is None:
        raise Http404("No such attachment")
    return attachments.content_response(attachment)
