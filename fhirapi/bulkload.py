"""FHIR imports through the queue (bulk/): what `import_fhir --queue` and POST [base] with `Prefer: respond-async`
submit, and what the worker runs. A job's parts are planned exactly as the synchronous command plans them
(`plan`): everything but transaction Bundles imported together, then each transaction on its own; a retry
resumes after the parts it finished (each part is one submission: applied whole or not at all)."""

import json
from collections import Counter
from dataclasses import dataclass, field, replace

import orjson
from django.http import HttpRequest

from bulk import actions as bulk
from bulk.models import Job

from . import responses
from .ingest import ACCEPTED_BUNDLES, Channel, IngestReport, audit_unread, ingest
from .parse import JSON, Submission, Unreadable, read, url_mismatch

STATUSES = ["created", "updated", "unchanged", "rejected"]


@dataclass
class Plan:
    """`parts`: (what it is called, the submission) in the order they are applied."""

    parts: list[tuple[str, Submission]] = field(default_factory=list)
    unreadable: list[tuple[str, str]] = field(default_factory=list)
    sources: dict[int, str] = field(default_factory=dict)  # id(entry) -> the file it came from


def plan(files: list[tuple[str, bytes, str]]) -> Plan:
    """(name, body, content type) per file: read each, then one part of all that is not a transaction and a part
    per transaction Bundle, so a Condition in one file finds the Patient in another whatever the file order."""
    result, together, transactions = Plan(), [], []
    for name, body, content_type in files:
        try:
            submission = read(body, content_type or None)
        except Unreadable as exc:
            result.unreadable.append((name, str(exc)))
            continue
        if submission.bundle_type not in (None, *ACCEPTED_BUNDLES):
            result.unreadable.append((name, f"a {submission.bundle_type} Bundle is not imported"))
            continue
        result.sources.update({id(entry): name for entry in submission.entries})
        if submission.bundle_type == "transaction":
            transactions.append((name, submission))
        else:
            together.extend(submission.entries)
    if together:
        read_from = {result.sources[id(entry)] for entry in together}
        described = next(iter(read_from)) if len(read_from) == 1 else f"{len(read_from)} files"
        result.parts.append((described, Submission("batch", together)))
    result.parts.extend(transactions)
    return result


def counts_of(reports: list[IngestReport]) -> dict[str, Counter]:
    counts: dict[str, Counter] = {}
    for report in reports:
        for resource_type, counter in report.counts().items():
            counts.setdefault(resource_type, Counter()).update(counter)
    return counts


# --- submitting -----------------------------------------------------------------------------------------------


def submit_files(files, *, organisation, channel: Channel, submission_id: str = "") -> tuple[Job, bool]:
    """`import_fhir --queue`: the files as read, kept in the job until it is done."""
    inputs = [bulk.Input(name=name, content_type=content_type, data=body) for name, body, content_type in files]
    return bulk.submit(
        kind=Job.Kind.FHIR_IMPORT,
        by=_requester(channel),
        inputs=inputs,
        total=0,  # parts are known once read, by the worker
        organisation=organisation,
        submission_id=submission_id,
        channel=_channel_fields(channel),
    )


def looks_like_bundle(body: bytes, content_type: str) -> str:
    """A queued body is read in full by the worker; before it is taken, what can be told cheaply: JSON that is a
    Bundle of a type imported here. "" when it may be queued, else what is wrong (answered 400 at once)."""
    if "xml" in (content_type or "") or body.lstrip()[:1] == b"<":
        return ""  # read by the worker, which answers an unreadable one in the job's result
    try:
        sent = orjson.loads(body)
    except orjson.JSONDecodeError:
        return "The body is not JSON."
    if not isinstance(sent, dict) or sent.get("resourceType") != "Bundle":
        return "Only a Bundle is taken asynchronously: POST [base] with a batch, transaction or collection Bundle."
    if sent.get("type") not in ACCEPTED_BUNDLES:
        return f"A {sent.get('type')} Bundle cannot be imported: send a transaction, batch or collection."
    return ""


def submit_body(body: bytes, content_type: str, *, organisation, channel: Channel, submission_id: str):
    """POST [base] with `Prefer: respond-async`: the body, answered later as the synchronous call would have."""
    return bulk.submit(
        kind=Job.Kind.FHIR_IMPORT,
        by=_requester(channel),
        inputs=[bulk.Input(name=channel.endpoint or "POST /fhir/", content_type=content_type, data=body)],
        total=1,
        organisation=organisation,
        token=channel.token,
        submission_id=submission_id,
        channel={**_channel_fields(channel), "answer": "http"},
    )


def _requester(channel: Channel) -> bulk.Requester:
    actor = channel.actor
    return bulk.Requester(
        email=str(getattr(actor, "email", "") or channel.operator)[:200], pk=getattr(actor, "pk", None)
    )


def _channel_fields(channel: Channel) -> dict:
    names = ("endpoint", "request_id", "command", "operator", "source", "run")
    return {name: getattr(channel, name) for name in names if getattr(channel, name)}


# --- running (the worker) -------------------------------------------------------------------------------------


def run(job: Job) -> dict:
    fields = {key: value for key, value in job.channel.items() if key != "answer"}
    channel = Channel(actor=bulk.requester_of(job), token=job.token, **fields)
    inputs = list(job.inputs.all())
    if job.channel.get("answer") == "http":
        return _run_http(job, inputs[0], channel)
    planned = plan([(item.name, item.data(), item.content_type) for item in inputs])
    if job.total != len(planned.parts):
        job.total = len(planned.parts)
        job.save(update_fields=["total"])
    result = job.result or {"counts": {}, "not_applied": [], "unreadable": [], "errors": 0}
    result["unreadable"] = [f"{name}: {why}" for name, why in planned.unreadable][:200]
    for index, (name, submission) in enumerate(planned.parts):
        if index < job.done:
            continue  # applied by an earlier attempt
        report = ingest(submission, organisation=job.organisation, channel=replace(channel, source=name[:200]))
        for resource_type, counter in report.counts().items():
            held = Counter(result["counts"].get(resource_type, {}))
            held.update(counter)
            result["counts"][resource_type] = dict(held)
        result["errors"] += len(report.errors)
        if not report.applied:
            result["not_applied"].append(name)
        bulk.advance(job, index + 1, result)
    totals = sum((Counter(counter) for counter in result["counts"].values()), Counter())
    result["summary"] = ", ".join(f"{status} {totals[status]}" for status in STATUSES) + (
        f"; {len(result['unreadable'])} files unreadable" if result["unreadable"] else ""
    )
    return result


def _json_request() -> HttpRequest:
    """The synchronous answer is built by the same code as the API's, as JSON (the poll converts it to XML)."""
    request = HttpRequest()
    request.content_type = JSON
    return request


def _run_http(job: Job, item, channel: Channel) -> dict:
    """One body sent to POST [base]: the answer the synchronous call would have given (status and body)."""
    request = _json_request()
    try:
        submission = read(item.data(), item.content_type or None)
    except Unreadable as exc:
        audit_unread(organisation=job.organisation, channel=channel, issues=exc.issues)
        response = responses.outcome_response(request, exc.issues, 400)
    else:
        problem = url_mismatch(submission)  # what POST [base] answers a single resource
        if problem is not None:
            audit_unread(organisation=job.organisation, channel=channel, issues=[problem])
            response = responses.outcome_response(request, [problem], 400)
        else:
            try:
                report = ingest(submission, organisation=job.organisation, channel=channel)
            except Unreadable as exc:  # audited by ingest
                response = responses.outcome_response(request, exc.issues, 400)
            else:
                response = responses.bundle_response(request, report)
    body = json.loads(response.content)
    entries = body.get("entry") or []
    rejected = sum(1 for entry in entries if not entry["response"]["status"].startswith("2"))
    summary = f"HTTP {response.status_code}" + (f", {rejected} of {len(entries)} entries refused" if entries else "")
    return {"status": response.status_code, "body": body, "summary": summary, "rejected": rejected}
