"""HL7 v2 replays through the queue (bulk/): `hl7_replay --queue` and admin's "replay in the background" give
the chosen message ids to a worker, which applies each again (feeds.actions.retry, audited as whoever asked),
oldest first. Progress is the messages done; a retry resumes after the last ADVANCE_EVERY-th (replaying a
message twice changes nothing: the import is idempotent)."""

from collections import Counter

from bulk import actions as bulk
from bulk.models import Job

from . import actions
from .models import Message

ADVANCE_EVERY = 25


def submit(message_ids: list[int], *, by: bulk.Requester, channel: dict, submission_id: str = ""):
    return bulk.submit(
        kind=Job.Kind.HL7_REPLAY,
        by=by,
        total=len(message_ids),
        submission_id=submission_id,
        channel=channel,
        params={"messages": list(message_ids)},
    )


def run(job: Job) -> dict:
    ids = job.params["messages"]
    by = bulk.requester_of(job)
    endpoint = job.channel.get("endpoint", "replay")
    result = job.result or {"outcomes": {}, "skipped": 0, "missing": 0}
    outcomes = Counter(result["outcomes"])
    messages = Message.objects.select_related("feed__organisation", "organisation").in_bulk(ids[job.done :])
    for index in range(job.done, len(ids)):
        message = messages.get(ids[index])
        if message is None:
            result["missing"] += 1
        else:
            try:
                outcomes[actions.retry(message, by=by, endpoint=endpoint).status] += 1
            except actions.CannotRetry:
                result["skipped"] += 1
        if (index + 1) % ADVANCE_EVERY == 0 or index + 1 == len(ids):
            result["outcomes"] = dict(outcomes)
            bulk.advance(job, index + 1, result)
    result["outcomes"] = dict(outcomes)
    shown = ", ".join(f"{status} {count}" for status, count in sorted(outcomes.items())) or "none"
    result["summary"] = f"Replayed {sum(outcomes.values())}: {shown}; {result['skipped']} skipped (raw cleared)"
    if result["missing"]:
        result["summary"] += f", {result['missing']} no longer held"
    return result
