"""A letter's attachments (patients.LetterAttachment: the PDF of a discharge letter, a scanned report): what is
kept, who may open one, and how it is served. The record pages and the FHIR API (`Binary`) both come here.

Visibility follows the letter, always: an attachment is found only through the letters the access decision lets
the viewer see (sharing agreements, sensitive entries, an upheld objection, entered in error), so a viewer who may
not read the letter gets nothing of its attachment, not even that it exists.

Serving: a PDF opens in the browser (`Content-Disposition: inline`); everything else is a download
(`attachment`), HTML above all: a partner's HTML opened inline would run on carerecord's origin, with the
viewer's session. Every response says `X-Content-Type-Options: nosniff` and `Cache-Control: no-store`, and a
Content-Security-Policy of its own: nothing loads from or runs in a download (`sandbox`); a PDF may only embed
itself (browsers' PDF viewers are plugins, which the pages' `object-src 'none'` would block).
"""

import re

from django.conf import settings
from django.db.models import Case, Count, IntegerField, OuterRef, QuerySet, Subquery, Value, When
from django.http import HttpResponse
from django.utils.cache import add_never_cache_headers
from django.utils.http import content_disposition_header

from patients.models import Letter, LetterAttachment

from .access import Decision, visible

PDF = "application/pdf"
# The content types kept, each as the letter page names it. Anything else a partner sends is not kept (the letter
# says so); Word documents and other formats that carry macros or active content are left out on purpose.
CONTENT_TYPES = {
    PDF: "PDF",
    "text/plain": "text",
    "text/html": "web page",
    "text/rtf": "RTF document",
    "application/rtf": "RTF document",
    "image/jpeg": "JPEG image",
    "image/png": "PNG image",
    "image/gif": "GIF image",
    "image/tiff": "TIFF image",
}
EXTENSIONS = {
    PDF: ".pdf",
    "text/plain": ".txt",
    "text/html": ".html",
    "text/rtf": ".rtf",
    "application/rtf": ".rtf",
    "image/jpeg": ".jpg",
    "image/png": ".png",
    "image/gif": ".gif",
    "image/tiff": ".tif",
}
_CHARSET = re.compile(r";\s*charset\s*=\s*\"?([A-Za-z0-9._:-]{1,40})\"?", re.IGNORECASE)
_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9 ._()-]+")
PDF_POLICY = "default-src 'none'; object-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
DOWNLOAD_POLICY = "default-src 'none'; sandbox; frame-ancestors 'none'"


def base_type(content_type: str | None) -> str:
    """'Text/HTML; charset=UTF-8' -> 'text/html'."""
    return (content_type or "").split(";", 1)[0].strip().lower()


def normalised_type(content_type: str | None) -> str:
    """What is kept and served as the Content-Type: the base type, and a charset for text (nothing else a sender
    wrote reaches a response header)."""
    kind = base_type(content_type)
    charset = _CHARSET.search(content_type or "")
    return f"{kind}; charset={charset[1].lower()}" if charset and kind.startswith("text/") else kind


def is_kept(content_type: str | None) -> bool:
    return base_type(content_type) in CONTENT_TYPES


def label(content_type: str | None) -> str:
    return CONTENT_TYPES.get(base_type(content_type), "file")


def opens_inline(content_type: str | None) -> bool:
    return base_type(content_type) == PDF


def max_bytes() -> int:
    return settings.FHIR_ATTACHMENT_MAX_BYTES


def visible_attachment(patient, decision: Decision, attachment_id) -> LetterAttachment | None:
    """The attachment, if it belongs to one of the patient's letters this viewer may see; else None (missing,
    another patient's, or its letter withheld: all alike)."""
    letters = visible(Letter.objects.filter(patient=patient), decision).values("pk")
    return (
        LetterAttachment.objects.filter(pk=attachment_id, patient=patient, letter__in=letters)
        .select_related("letter__source_organisation")
        .first()
    )


def with_first_attachment(letters: QuerySet) -> QuerySet:
    """Letters annotated with their first attachment (a PDF first) and how many they hold, for the letter page's
    link: subqueries of the same query, never a query per letter, and never the content itself."""
    held = LetterAttachment.objects.filter(letter_id=OuterRef("pk"))
    first = held.order_by(
        Case(When(content_type__startswith=PDF, then=Value(0)), default=Value(1), output_field=IntegerField()), "pk"
    )
    count = held.order_by().values("letter_id").annotate(n=Count("pk")).values("n")[:1]
    return letters.annotate(
        attachment_id=Subquery(first.values("pk")[:1]),
        attachment_type=Subquery(first.values("content_type")[:1]),
        attachment_size=Subquery(first.values("size")[:1]),
        attachment_count=Subquery(count, output_field=IntegerField()),
    )


def filename(attachment: LetterAttachment) -> str:
    """A plain file name from the title ("Discharge summary.pdf"), never a path or anything a header could
    misread."""
    stem = _UNSAFE_NAME.sub("", attachment.title or "").strip(" .")[:80] or "letter"
    extension = EXTENSIONS.get(base_type(attachment.content_type), "")
    return stem if stem.lower().endswith(extension) else f"{stem}{extension}"


def content_response(attachment: LetterAttachment) -> HttpResponse:
    """The attachment's bytes as its own content type: a PDF inline, anything else as a download."""
    inline = opens_inline(attachment.content_type)
    response = HttpResponse(bytes(attachment.data), content_type=normalised_type(attachment.content_type))
    response["Content-Disposition"] = content_disposition_header(not inline, filename(attachment))
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = PDF_POLICY if inline else DOWNLOAD_POLICY
    add_never_cache_headers(response)
    response["Pragma"] = "no-cache"
    return response
