"""HTTP responses carrying FHIR: JSON or XML as the client asks (`_format`, then Accept, then what it sent)."""

import json

from django.http import HttpResponse
from fhir.resources.R4B.bundle import Bundle, BundleEntry

from .ingest import IngestReport, Outcome
from .outcome import UNPRINTABLE, Issue, error, information, operation_outcome
from .parse import JSON, XML
from .upsert import CREATED, REJECTED

HTTP_STATUS = {
    200: "200 OK",
    201: "201 Created",
    400: "400 Bad Request",
    412: "412 Precondition Failed",  # a conditional operation matched several resources
    422: "422 Unprocessable Entity",
}


def wants_xml(request) -> bool:
    requested = request.GET.get("_format", "")
    if requested:
        return "xml" in requested
    accept = request.headers.get("Accept", "")
    if "xml" in accept and "json" not in accept:
        return True
    return "xml" in request.content_type and accept in ("", "*/*")


def fhir_response(request, resource, status: int = 200, **headers) -> HttpResponse:
    if wants_xml(request):
        body, content_type = _xml(resource), XML
    else:
        body, content_type = resource.model_dump_json(), JSON
    response = HttpResponse(body, status=status, content_type=f"{content_type}; charset=utf-8")
    for name, value in headers.items():
        response[name.replace("_", "-")] = value
    return response


def _xml(resource) -> bytes | str:
    """XML 1.0 cannot carry some characters JSON can (C0 controls): a stored text holding one is served with
    U+FFFD in its place rather than failing the response."""
    try:
        return resource.model_dump_xml()
    except ValueError:
        cleaned = _replace_unprintable(json.loads(resource.model_dump_json()))
        return type(resource).model_validate(cleaned).model_dump_xml()


def _replace_unprintable(value):
    if isinstance(value, dict):
        return {key: _replace_unprintable(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_replace_unprintable(item) for item in value]
    if isinstance(value, str):
        return UNPRINTABLE.sub("\ufffd", value)
    return value


def outcome_response(request, issues: list[Issue], status: int, **headers) -> HttpResponse:
    return fhir_response(request, operation_outcome(issues), status, **headers)


def not_authenticated(request) -> HttpResponse:
    issue = error("login", "A valid bearer token (Authorization: Bearer <token>) or a signed-in session is required.")
    return outcome_response(request, [issue], 401, WWW_Authenticate='Bearer realm="fhir"')


def record_not_available(request) -> HttpResponse:
    """Refused and unknown look the same, so no one can probe which patients exist."""
    return outcome_response(request, [error("forbidden", "Record not available.")], 403)


def malformed(outcome: Outcome) -> bool:
    """Rejected for what was sent (400: it failed FHIR validation), not for what it says (422)."""
    return outcome.http_status == 400 or (bool(outcome.entry.issues) and not outcome.entry.unprocessable)


def entry_status(outcome: Outcome) -> int:
    if outcome.status == CREATED:
        return 201
    if outcome.status == REJECTED:
        return outcome.http_status or (400 if malformed(outcome) else 422)
    return 200


def single_response(request, report: IngestReport) -> HttpResponse:
    outcome = report.outcomes[0]
    status = entry_status(outcome)
    issues = outcome.issues if status >= 400 else [information(f"{outcome.key}: {outcome.status}"), *outcome.issues]
    located = {"Location": outcome.location} if outcome.location and status < 400 else {}
    return outcome_response(request, issues, status, **located)


def bundle_response(request, report: IngestReport) -> HttpResponse:
    """A failed transaction is one OperationOutcome (nothing was applied); otherwise a response Bundle with
    one entry per entry sent, in order, each with its status and, where there is one, its outcome."""
    if not report.applied:
        status = 400 if any(malformed(o) for o in report.outcomes) else 422
        if status == 422 and any(o.http_status == 412 for o in report.outcomes):
            status = 412  # a conditional operation or reference matched several: the spec's answer
        issues = [error("processing", "The transaction was not applied: nothing was changed."), *report.errors]
        return outcome_response(request, issues, status)
    # Most entries answer alike ("201 Created"): build each distinct answer once and share it.
    plain = {status: BundleEntry(response={"status": text}) for status, text in HTTP_STATUS.items()}
    entries = []
    for outcome in report.outcomes:
        status = entry_status(outcome)
        if outcome.issues:
            response = {"status": HTTP_STATUS[status], "outcome": operation_outcome(outcome.issues)}
            if outcome.location:  # a conditional create that matched: where the resource it matched is
                response["location"] = outcome.location
            entries.append(BundleEntry(response=response))
        else:
            entries.append(plain[status])
    kind = "transaction-response" if report.atomic else "batch-response"
    if wants_xml(request):
        return fhir_response(request, Bundle(type=kind, entry=entries or None))
    # JSON: each distinct entry is serialised once (R4B's serialiser is the slow part for 1,000 entries).
    serialised = {}
    for entry in entries:
        if id(entry) not in serialised:
            serialised[id(entry)] = json.loads(entry.model_dump_json())
    body = {**json.loads(Bundle(type=kind).model_dump_json()), "entry": [serialised[id(e)] for e in entries]}
    return HttpResponse(json.dumps(body), content_type=f"{JSON}; charset=utf-8")


def searchset(request, page, resources: list, base_url: str) -> HttpResponse:
    """A page of results with self/next/previous links that keep the query and move `_offset`."""

    def link(offset: int) -> str:
        params = request.GET.copy()
        params["_offset"], params["_count"] = str(offset), str(page.count)
        return f"{request.build_absolute_uri(request.path)}?{params.urlencode()}"

    links = [{"relation": "self", "url": link(page.offset)}]
    if page.has_next:
        links.append({"relation": "next", "url": link(page.offset + page.count)})
    if page.has_previous:
        links.append({"relation": "previous", "url": link(max(page.offset - page.count, 0))})
    entries = [
        {
            "fullUrl": f"{base_url}{resource.get_resource_type()}/{resource.id}",
            "resource": resource,
            "search": {"mode": "match"},
        }
        for resource in resources
    ]
    return fhir_response(request, Bundle(type="searchset", total=page.total, link=links, entry=entries or None))
