"""The feeds' Prometheus counter: messages answered, by feed and what became of them (carerecord/metrics.py serves
it). Labels are the feed's id and its organisation's ODS code: nothing about a patient, ever."""

from prometheus_client import Counter

MESSAGES = Counter(
    "carerecord_feed_messages",
    "HL7 v2 messages taken in, by feed, sending organisation and what became of them (each attempt counted).",
    ["feed", "organisation", "status"],
)


def counted(row) -> None:
    """One attempt at a message finished with row.status."""
    MESSAGES.labels(feed=str(row.feed_id or "none"), organisation=row.organisation.ods_code, status=row.status).inc()
