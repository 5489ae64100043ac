"""HL7 v2 → FHIR R4 (UK Core): each accepted message becomes one transaction Bundle, imported by fhirapi.ingest.

The contract between the pipeline (feeds.receive) and the converters (feeds.convert.adt, feeds.convert.oru):
`convert(message, feed)` returns a Conversion, or raises Held (accepted, waiting for a match: ACK AA),
Invalid (content wrong: ACK AE naming the segment and field) or NotAccepted (a type or event this feed does
not take: AR, or kept and ignored, as the feed says). A converter never writes: the pipeline imports the Bundle
atomically, so a message is applied whole or not at all.
"""

from dataclasses import dataclass, field

from feeds.errors import Invalid  # defined there so that feeds.segments can raise it (no import cycle)

__all__ = ["Conversion", "Held", "Invalid", "NotAccepted"]


@dataclass
class Conversion:
    """What one message becomes: a FHIR transaction Bundle (JSON), where each entry came from (entry index ->
    "OBX[3]", for an ERR segment if ingest refuses it), and whom it is about (for the queue)."""

    bundle: dict
    origins: dict[int, str] = field(default_factory=dict)
    local_id: str = ""
    patient_id: object = None
    # Applied, the message links local_id to its patient for the first time: the messages held for that local
    # identifier are retried (receive.retry_held). False when it was linked already, which spares the lookup.
    learns: bool = True
    # Work the converter asks the pipeline to do in the same transaction after the import (an A40 merge's
    # re-pointed identifiers, a cancel's undo): callables taking (organisation, actor).
    after: list = field(default_factory=list)


class Held(Exception):
    """Accepted and kept, not applied yet: no patient matches, or the match is in doubt. Retried when IG act or
    when a later message teaches the match (the same local identifier)."""

    def __init__(self, reason: str, *, local_id: str = "", location: str = ""):
        super().__init__(reason)
        self.reason, self.local_id, self.location = reason, local_id, location


class NotAccepted(Exception):
    """A message type or event carerecord (or this feed) does not take: AR, or kept and ignored."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason
