"""DocumentReference and Composition -> Letter.

Kind from the document type: a discharge summary if it says so (SNOMED 373942005 or "discharge"), a letter
to GP if addressed to one, otherwise a clinic letter. The body is the document's own text (a text attachment,
or a Composition's section narratives); a binary attachment (PDF) is described with its link instead.

Dates: a letter's date is the document's `date`, else the period of care it documents, else when its attachment
was created; `date` is also its recorded date. None when the source gave none of them.
"""

import base64

from patients.categories import Category
from patients.models import Letter

from ..context import Unmappable
from ..outcome import error
from ..registry import builds, maps, reads
from ..serialise import patient_reference
from ..systems import SNOMED
from .common import codes_in, entry_fields, first, narrative, period_start, text_of, texts_of, to_datetime

DISCHARGE_CODES = {"373942005", "1658141000000102"}  # discharge summary, discharge letter
TO_GP_WORDS = ("letter to gp", "to general practitioner", "gp letter", "letter to general practitioner")


def letter_kind(*concepts) -> str:
    concepts = [concept for concept in concepts if concept is not None]
    words = " ".join(texts_of(concepts)).lower()
    codes = set().union(*(codes_in(concept) for concept in concepts))
    if codes & DISCHARGE_CODES or "discharge" in words:
        return Letter.Kind.DISCHARGE
    if any(word in words for word in TO_GP_WORDS):
        return Letter.Kind.TO_GP
    return Letter.Kind.CLINIC


def attachment_text(attachment) -> str:
    if attachment.data and (attachment.contentType or "text/plain").startswith("text/"):
        return attachment.data.decode("utf-8", errors="replace")
    described = attachment.title or "Attached document"
    kind = f" ({attachment.contentType})" if attachment.contentType else ""
    return f"{described}{kind}" + (f": {attachment.url}" if attachment.url else "")


@maps("DocumentReference")
def map_document_reference(resource, ctx):
    attachments = [content.attachment for content in resource.content or [] if content.attachment is not None]
    body = "\n\n".join(filter(None, [resource.description, *(attachment_text(a) for a in attachments)]))
    title = first(*(a.title for a in attachments if a.title), text_of(resource.type) or None) or "Document"
    context_period = resource.context.period if resource.context else None
    effective = first(
        to_datetime(resource.date),
        period_start(context_period),
        *(to_datetime(a.creation) for a in attachments if a.creation),
    )
    return Letter, {
        **entry_fields(
            resource,
            ctx,
            patient=resource.subject,
            patient_expression="DocumentReference.subject",
            effective_at=effective,
            recorded_at=to_datetime(resource.date),
            entered_in_error=resource.status == "entered-in-error" or resource.docStatus == "entered-in-error",
        ),
        "kind": letter_kind(resource.type, *(resource.category or [])),
        "title": title,
        "author": ", ".join(filter(None, (ctx.name_of(a) for a in resource.author or []))),
        "body": body,
    }


def section_text(sections, depth: int = 0) -> list[str]:
    lines = []
    for section in sections or []:
        if section.title:
            lines.append(section.title)
        text = narrative(section.text)
        if text:
            lines.append(text)
        lines.extend(section_text(section.section, depth + 1))
        if depth == 0:
            lines.append("")
    return lines


@maps("Composition")
def map_composition(resource, ctx):
    body = "\n".join(section_text(resource.section)).strip() or narrative(resource.text)
    if not body:
        raise Unmappable(error("required", "A composition with no text has nothing to show.", "Composition.section"))
    return Letter, {
        **entry_fields(
            resource,
            ctx,
            patient=resource.subject,
            patient_expression="Composition.subject",
            effective_at=to_datetime(resource.date),
            recorded_at=to_datetime(resource.date),
            entered_in_error=resource.status == "entered-in-error",
        ),
        "kind": letter_kind(resource.type, *(resource.category or [])),
        "title": resource.title or text_of(resource.type) or "Document",
        "author": ", ".join(filter(None, (ctx.name_of(a) for a in resource.author or []))),
        "body": body,
    }


# --- out: the read API ------------------------------------------------------------------------------------

LETTER_TYPES = {
    Letter.Kind.DISCHARGE: ("373942005", "Discharge summary"),
    Letter.Kind.TO_GP: ("371531000", "Report of clinical encounter"),
    Letter.Kind.CLINIC: ("371531000", "Report of clinical encounter"),
}

reads("DocumentReference", Category.LETTERS, rank=110)


@builds(Letter)
def letter(entry: Letter) -> dict:
    code, display = LETTER_TYPES[entry.kind]
    return {
        "resourceType": "DocumentReference",
        "status": "current",
        "type": {"coding": [{"system": SNOMED, "code": code, "display": display}], "text": entry.get_kind_display()},
        "subject": patient_reference(entry.patient_id),
        "date": entry.effective_at,
        "author": [{"display": entry.author}] if entry.author else None,
        "description": entry.title,
        "content": [
            {
                "attachment": {
                    "contentType": "text/plain; charset=utf-8",
                    "data": base64.b64encode(entry.body.encode()).decode(),
                    "title": entry.title,
                }
            }
        ],
    }
