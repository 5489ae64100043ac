"""Audited writes for HL7 v2 feeds: what IG do in admin and what the commands do, each naming its actor.

A feed decides whose record a hospital's messages land on (its organisation) and who may send them, and a code
mapping what a laboratory's result means nationally: each change is audited with the fields that changed (a shared
secret's change is named, never its value or hash). A retry re-runs a kept message's raw text through the pipeline
(feeds.receive.process), audited as the person (or command) who asked, with what became of it.
"""

from django.db import transaction
from django.utils import timezone

from audit.names import Action
from audit.writers import audit

from .models import CodeMapping, Feed, Message
from .receive import Reply, feed_actor, hash_secret, process

__all__ = ["feed_actor", "retry", "save_code_mapping", "save_feed", "set_secret"]


class CannotRetry(Exception):
    """A message whose raw text retention has cleared: there is nothing left to apply."""


def set_secret(feed: Feed, secret: str) -> None:
    """Keep only the secret's hash (blank: no secret required). Saved by save_feed."""
    feed.shared_secret_hash = hash_secret(secret) if secret else ""


@transaction.atomic
def save_feed(*, by, feed: Feed, changed: list[str]) -> Feed:
    """Create or change a feed; audited with the fields that changed."""
    new = feed._state.adding
    feed.save()
    if changed or new:
        audit(
            by=by,
            action=Action.HL7_FEED_CHANGED,
            target=feed,
            created=new,
            changed=",".join(changed),
            name=feed.name,
            organisation=feed.organisation.ods_code,
            active=feed.active,
            message_types=feed.message_types,
            unaccepted=feed.unaccepted,
        )
    return feed


@transaction.atomic
def save_code_mapping(*, by, mapping: CodeMapping, changed: list[str]) -> CodeMapping:
    """Create or change a local test code's national meaning (it joins trends across laboratories: H-10)."""
    new = mapping._state.adding
    mapping.save()
    if changed or new:
        audit(
            by=by,
            action=Action.HL7_CODE_MAPPING_CHANGED,
            target=mapping,
            created=new,
            changed=",".join(changed),
            organisation=mapping.organisation.ods_code,
            local=f"{mapping.local_system}|{mapping.local_code}",
            national=f"{mapping.system}|{mapping.code}",
            display=mapping.display,
        )
    return mapping


def retry(message: Message, *, by, now=None, endpoint: str = "retry") -> Reply:
    """Apply a kept message again (after a fix, a new code mapping, or IG's match): its stored raw text through the
    same pipeline, under its feed as configured now. Audited as `by` (then the pipeline's own hl7.message row says
    what became of it). A message whose raw text was cleared cannot be retried (CannotRetry)."""
    if not message.raw:
        cleared = f" (cleared {message.raw_cleared_at:%Y-%m-%d})" if message.raw_cleared_at else ""
        raise CannotRetry(f"Message {message.pk} has no raw text left to apply{cleared}.")
    before = message.status
    audit(
        by=by,
        action=Action.HL7_MESSAGE_RETRIED,
        target=message,
        patient_id=message.patient_id,
        message_type=message.message_type,
        control_id=message.control_id,
        status_before=before,
        endpoint=endpoint,
    )
    return process(message, feed=message.feed, now=now or timezone.now(), endpoint=endpoint)
