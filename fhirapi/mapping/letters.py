"""DocumentReference and Composition -> Letter; a document's content -> LetterAttachment.

Kind from the document type: a discharge summary if it says so (SNOMED 373942005 or "discharge"), a letter
to GP if addressed to one, otherwise a clinic letter. The body is the document's own text (a text attachment,
or a Composition's sections); a binary attachment (PDF) is kept with the letter and named in its body.

**A Composition is one letter**, its sections in order under their titles (a subsection under its section): a
clinician reads a discharge summary whole, as its author wrote it, not as fifteen letters. A section with no
narrative says what it holds instead ("nothing to report: nil known"; "2 entries, in their own categories"). The
resources a document's sections list (allergies, medications, conditions...) travel in the same Bundle and land
in their own categories, where a clinician looks for them.

**Content** (`content[].attachment`): `data` inline, or a `url` naming a Binary of the same submission (its
fullUrl, `Binary/<id>`, or its urn:uuid), is kept as a LetterAttachment (content type, bytes, size, SHA-256,
title) with its letter; a `url` anywhere else stays a link, never fetched. Refused, the whole DocumentReference
with nothing of it kept (H-05): content over `FHIR_ATTACHMENT_MAX_BYTES` (`too-costly`), a `size` or `hash` the
data does not match (truncated or corrupted), a `url` naming a Binary (`Binary/x`, a urn:uuid) that is not in
the submission. A content type not kept here (sharing.attachments.CONTENT_TYPES: PDF, text, HTML, RTF,
images) leaves the letter without it, saying so in its body and in a warning to the sender. A Binary is accepted
only as the content of a DocumentReference in the same submission that refers to it; on its own, or with nothing
referring to it, it is refused (a warning, like a type the record has no place for: it holds no patient, no
date, no author, nothing a clinician could read it by).

A letter's attachments are those of the latest version its source sent: sending the same again stores nothing
new (unique per letter and SHA-256), a version with other content replaces them. The kept DocumentReference and
Binary (fhirapi.models.ReceivedResource) are as sent but for the content itself, kept once, in the attachment:
`data` gives way to an extension naming its SHA-256 (`KEPT_CONTENT`), which the read API turns into carerecord's
`Binary/<id>` url (read.py).

Dates: a letter's date is the document's `date`, else the period of care it documents, else when its attachment
was created; `date` is also its recorded date. None when the source gave none of them.
"""

import base64
import hashlib
from collections import defaultdict
from dataclasses import dataclass

from lxml import etree
from lxml import html as lxml_html

from patients.categories import Category
from patients.models import Letter, LetterAttachment
from sharing import attachments

from ..context import Unmappable
from ..outcome import error, warning
from ..references import key_of
from ..registry import builds, maps, reads
from ..serialise import patient_reference
from ..systems import SNOMED
from ..upsert import CREATED, REJECTED, UNCHANGED, UPDATED
from .common import codes_in, entry_fields, first, narrative, period_start, text_of, texts_of, to_datetime

BINARY = "Binary"
# The extension that stands, in a kept DocumentReference, for content kept as an attachment (valueString: its
# SHA-256); and the tag that says the same of a kept Binary. Never given out: reads replace it with a Binary url.
KEPT_CONTENT = "https://carerecord.example/fhir/StructureDefinition/content-kept-as-attachment"
DISCHARGE_CODES = {"373942005", "1658141000000102"}  # discharge summary, discharge letter
TO_GP_WORDS = ("letter to gp", "to general practitioner", "gp letter", "letter to general practitioner")
_BLOCKS = {"p", "tr", "br", "div", "li", "pre", "h1", "h2", "h3", "h4", "h5", "h6", "table"}


def letter_kind(*concepts) -> str:
    concepts = [concept for concept in concepts if concept is not None]
    words = " ".join(texts_of(concepts)).lower()
    codes = set().union(*(codes_in(concept) for concept in concepts))
    if codes & DISCHARGE_CODES or "discharge" in words:
        return Letter.Kind.DISCHARGE
    if any(word in words for word in TO_GP_WORDS):
        return Letter.Kind.TO_GP
    return Letter.Kind.CLINIC


# --- a document's content ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Content:
    """One `content[n].attachment` whose bytes carerecord holds: inline, or a Binary of the same submission."""

    index: int
    content_type: str
    data: bytes
    title: str
    binary_key: str = ""  # the Binary it came from

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


@dataclass(frozen=True)
class Contents:
    kept: list[Content]
    skipped: list[tuple[int, str, str]]  # (index, content type, Binary key) of content in a type not kept here


def contents(resource, ctx) -> Contents:
    """What of a DocumentReference's content is kept here; Unmappable for content that must refuse it."""
    kept, skipped = [], []
    for index, content in enumerate(resource.content or []):
        attachment = content.attachment
        if attachment is None:
            continue
        where = f"DocumentReference.content[{index}].attachment"
        data, content_type, binary_key = attachment.data, attachment.contentType, ""
        if data is None:
            binary_key = _binary_key(attachment.url, ctx, f"{where}.url")
            if not binary_key:
                continue  # a link to somewhere else: kept as a link, never fetched
            binary = ctx.binaries[binary_key].entry.resource
            data, content_type = binary.data, binary.contentType or content_type
            if data is None:
                raise Unmappable(error("required", f"{binary_key}, this content, has no data.", f"{where}.url"))
        _check(where, attachment, data, content_type)
        if attachments.is_kept(content_type):
            title = attachment.title or ""
            kept.append(Content(index, attachments.normalised_type(content_type), data, title, binary_key))
        else:
            skipped.append((index, attachments.base_type(content_type), binary_key))
    return Contents(kept, skipped)


def _binary_key(url, ctx, expression: str) -> str:
    """The key of the Binary of this submission a content's url names; "" for a url that points elsewhere."""
    if not url:
        return ""
    key = ctx.full_urls.get(url) or ""
    if key.startswith(f"{BINARY}/") and key in ctx.binaries:
        return key
    named = key_of(url) or ""
    relative = not url.startswith(("http://", "https://"))
    if relative and named.startswith(f"{BINARY}/") and named in ctx.binaries:
        return named
    if url.startswith("urn:uuid:") or (relative and named.startswith(f"{BINARY}/")):
        raise Unmappable(
            error(
                "not-found",
                f"The content's url {url} names a Binary that is not in this submission: a Binary is kept only when "
                "sent with the DocumentReference that refers to it. Send them together.",
                expression,
            )
        )
    return ""


def _check(where: str, attachment, data: bytes, content_type) -> None:
    """Content that cannot be kept whole refuses its DocumentReference: nothing of it is half-stored (H-05)."""
    if not content_type:
        raise Unmappable(
            error("required", "The content has no contentType: it cannot be shown safely.", f"{where}.contentType")
        )
    if not data:
        raise Unmappable(error("invalid", "The content is empty.", f"{where}.data"))
    limit = attachments.max_bytes()
    if len(data) > limit:
        raise Unmappable(
            error(
                "too-costly",
                f"The content is {_megabytes(len(data))}: documents are kept up to {_megabytes(limit)} "
                "(FHIR_ATTACHMENT_MAX_BYTES). Nothing of this DocumentReference was kept.",
                where,
            )
        )
    if attachment.size is not None and attachment.size != len(data):
        raise Unmappable(
            error(
                "invalid",
                f"size says {attachment.size} bytes but the content holds {len(data)}: it may be truncated.",
                f"{where}.size",
            )
        )
    if attachment.hash is not None and attachment.hash != hashlib.sha1(data).digest():  # noqa: S324 - FHIR's hash
        raise Unmappable(
            error("invalid", "hash (SHA-1) does not match the content: it may be corrupted.", f"{where}.hash")
        )


def _megabytes(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MB"


def attachment_text(attachment, content: Content | None) -> str:
    """What the letter's body says of one attachment: its text if it is text, else what it is and where."""
    content_type = content.content_type if content else attachment.contentType
    kind = attachments.base_type(content_type)
    data = content.data if content else attachment.data
    if data and kind == "text/html":
        return html_text(data)
    if data and (kind or "text/plain").startswith("text/") and kind not in ("text/rtf",):
        return data.decode("utf-8", errors="replace")
    described = attachment.title or "Attached document"
    if content is not None:
        return f"{described} ({attachments.label(content_type)}, attached)"
    if data:  # content in a type not kept here
        return f"{described} ({kind or 'no content type'}: not kept here)"
    kind = f" ({attachment.contentType})" if attachment.contentType else ""
    return f"{described}{kind}" + (f": {attachment.url}" if attachment.url else "")


def html_text(data: bytes) -> str:
    """An HTML document's words, a line per block: the letter's body is text (the HTML itself is kept whole)."""
    try:
        root = lxml_html.fromstring(data)
    except (etree.ParserError, ValueError):
        return ""
    for element in root.iter("script", "style"):
        element.drop_tree()
    for element in root.iter():
        if isinstance(element.tag, str) and element.tag in _BLOCKS:
            element.tail = "\n" + (element.tail or "")
    lines = (" ".join(line.split()) for line in root.text_content().splitlines())
    return "\n".join(line for line in lines if line)


@maps("DocumentReference")
def map_document_reference(resource, ctx):
    found = contents(resource, ctx)
    held = {content.index: content for content in found.kept}
    texts = [
        attachment_text(content.attachment, held.get(index))
        for index, content in enumerate(resource.content or [])
        if content.attachment is not None
    ]
    attached = [content.attachment for content in resource.content or [] if content.attachment is not None]
    body = "\n\n".join(filter(None, [resource.description, *texts]))
    title = first(*(a.title for a in attached if a.title), text_of(resource.type) or None) or "Document"
    context_period = resource.context.period if resource.context else None
    effective = first(
        to_datetime(resource.date),
        period_start(context_period),
        *(to_datetime(a.creation) for a in attached if a.creation),
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


# --- writing the attachments (after the letters: ingest._apply) -------------------------------------------------


def save_attachments(documents: list, binaries: list, ctx) -> None:
    """Each imported DocumentReference's kept content, as its letter's attachments (replacing those of an earlier
    version), and what became of each Binary sent. A few queries whatever the submission's size."""
    wanted, used, not_kept = {}, {}, set()
    for outcome in documents:
        if outcome.key and outcome.status not in ("", REJECTED) and not outcome.stale:
            found = contents(outcome.entry.resource, ctx)  # as the mapper found it: it refused what cannot be kept
            wanted[outcome.key] = (outcome, found)
            used.update((content.binary_key, outcome) for content in found.kept if content.binary_key)
            not_kept.update(binary_key for _, _, binary_key in found.skipped if binary_key)
            outcome.issues.extend(_skipped(outcome, found.skipped))
    created = _write(wanted, ctx) if wanted else set()
    for outcome, found in wanted.values():
        _keep_without_content(outcome, found.kept)
    for outcome in binaries:
        if outcome.status:  # refused before anything was written (invalid, unkeyed)
            continue
        document = used.get(outcome.key)
        if document is None:
            outcome.status = REJECTED
            outcome.issues.append(_binary_not_kept(outcome, outcome.key in not_kept))
            continue
        content = next(c for c in wanted[document.key][1].kept if c.binary_key == outcome.key)
        outcome.finish(CREATED if (document.key, content.sha256) in created else UNCHANGED)
        outcome.patient_id = document.patient_id
        _keep_binary_without_content(outcome, content)


def _skipped(outcome, skipped) -> list:
    kept = ", ".join(sorted(attachments.CONTENT_TYPES))
    return [
        warning(
            "not-supported",
            f"Content of type {kind or '(none)'} is not kept here (kept: {kept}): the letter is kept without it, "
            "and says so.",
            _at(outcome, f"DocumentReference.content[{index}].attachment.contentType"),
        )
        for index, kind, _ in skipped
    ]


def _at(outcome, path: str) -> str:
    """`path` ("DocumentReference.content[0]...") where the resource sits in what was sent (a Bundle's entry)."""
    where = outcome.entry.expression
    return where + path.removeprefix("DocumentReference") if where not in ("", "DocumentReference") else path


def _binary_not_kept(outcome, type_not_kept: bool):
    if type_not_kept:
        why = "its content type is not one kept here (its DocumentReference's warning says which are)."
    else:
        why = (
            "a Binary is kept only as the content of a DocumentReference imported with it that refers to it "
            "(content.attachment.url), and none did. Send it with its DocumentReference."
        )
    return warning("not-supported", f"Not kept: {why}", outcome.entry.expression)


def _write(wanted: dict, ctx) -> set[tuple[str, str]]:
    """Replace each letter's attachments with its latest version's; (key, sha256) of those newly stored."""
    rows = Letter.objects.filter(source_organisation=ctx.organisation, source_id__in=list(wanted))
    letters = {
        source_id: (pk, patient_id) for source_id, pk, patient_id in rows.values_list("source_id", "pk", "patient_id")
    }
    held = defaultdict(dict)
    stored = LetterAttachment.objects.filter(letter_id__in=[pk for pk, _ in letters.values()])
    for letter_id, sha256, pk in stored.values_list("letter_id", "sha256", "pk"):
        held[letter_id][sha256] = pk
    new, gone, created = [], [], set()
    for key, (outcome, found) in wanted.items():
        letter_id, patient_id = letters[key]
        by_sha = {content.sha256: content for content in found.kept}
        have = held[letter_id]
        gone += [pk for sha256, pk in have.items() if sha256 not in by_sha]
        for sha256, content in by_sha.items():
            if sha256 in have:
                continue
            created.add((key, sha256))
            new.append(
                LetterAttachment(
                    letter_id=letter_id,
                    patient_id=patient_id,
                    title=content.title[:300],
                    content_type=content.content_type[:100],
                    data=content.data,
                    size=len(content.data),
                    sha256=sha256,
                )
            )
        if set(have) != set(by_sha) and outcome.status == UNCHANGED:
            outcome.finish(UPDATED)  # the letter's row is as it was; its content is not
    if gone:
        LetterAttachment.objects.filter(pk__in=gone).delete()
    LetterAttachment.objects.bulk_create(new, ignore_conflicts=True)
    return created


def _keep_without_content(outcome, kept: list[Content]) -> None:
    """The DocumentReference as it will be kept: each kept content's `data` replaced by the extension naming it."""
    if not kept:
        return
    resource = outcome.as_sent()
    shas = {content.index: content.sha256 for content in kept}
    items = []
    for index, item in enumerate(resource.get("content") or []):
        if index in shas and isinstance(item, dict) and isinstance(item.get("attachment"), dict):
            attachment = {k: v for k, v in item["attachment"].items() if k not in ("data", "_data")}
            marker = {"url": KEPT_CONTENT, "valueString": shas[index]}
            attachment["extension"] = [*(attachment.get("extension") or []), marker]
            item = {**item, "attachment": attachment}
        items.append(item)
    outcome.keep_as({**resource, "content": items})


def _keep_binary_without_content(outcome, content: Content) -> None:
    """A Binary is kept without its data (held once, in the attachment), tagged with its SHA-256."""
    resource = {k: v for k, v in outcome.as_sent().items() if k not in ("data", "_data")}
    meta = dict(resource.get("meta") or {})
    meta["tag"] = [*(meta.get("tag") or []), {"system": KEPT_CONTENT, "code": content.sha256}]
    outcome.keep_as({**resource, "meta": meta})


# --- Composition ---------------------------------------------------------------------------------------------


def section_text(sections, depth: int = 0) -> list[str]:
    """Each section under its title, in order, subsections within their section; a section with no narrative
    says what it holds instead, so no heading stands empty."""
    lines = []
    for section in sections or []:
        title = section.title or text_of(section.code)
        if title:
            lines.append(title)
        text = narrative(section.text)
        if text:
            lines.append(text)
        elif section.emptyReason is not None:
            lines.append(f"Nothing to report: {text_of(section.emptyReason).lower() or 'no reason given'}.")
        elif section.entry and not section.section:
            count = len(section.entry)
            lines.append(f"{count} entr{'y' if count == 1 else 'ies'}, in their own sections of the record.")
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
    """A letter not received as FHIR: its body as text (its attachments are added as Binary urls: read.py)."""
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
