"""HTTP responses carrying FHIR: JSON or XML as the client asks (`_format`, then Accept, then what it sent)."""

import json

from django.conf import settings
from django.http import HttpResponse, QueryDict
from django.urls import reverse
from django.utils.http import http_date
from fhir.resources.R4B.bundle import Bundle

from .ingest import IngestReport, Outcome
from .locations import locate
from .outcome import UNPRINTABLE, Issue, error, information, operation_outcome
from .parse import JSON, XML
from .resource import compare, dumps, map_strings, model_of
from .upsert import CREATED, REJECTED

HTTP_STATUS = {
    200: "200 OK",
    201: "201 Created",
    400: "400 Bad Request",
    412: "412 Precondition Failed",  # a conditional operation matched several, or If-Match is not the version held
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
    model = model_of(resource)
    try:
        return model.model_dump_xml()
    except ValueError:
        cleaned = _replace_unprintable(json.loads(model.model_dump_json()))
        return type(model).model_validate(cleaned).model_dump_xml()


def _replace_unprintable(value):
    return map_strings(value, lambda text: UNPRINTABLE.sub("\ufffd", text))


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
    """One resource's answer. Written: `Location` = where it is served, at its current version
    (`[base]Type/<our id>/_history/<v>`; a Patient without one), with its `ETag` and `Last-Modified`."""
    outcome = report.outcomes[0]
    status = entry_status(outcome)
    issues = outcome.issues if status >= 400 else [information(f"{outcome.key}: {outcome.status}"), *outcome.issues]
    headers = {}
    if status < 400:
        [place] = locate(report)
        if place is not None:
            headers["Location"] = request.build_absolute_uri(reverse("fhir:base")) + place.versioned
            if place.version:
                headers["ETag"] = place.etag
                headers["Last_Modified"] = http_date(place.last_updated.timestamp())
        elif outcome.location:  # a conditional create that matched: where the resource it matched is
            headers["Location"] = outcome.location
    return outcome_response(request, issues, status, **headers)


def bundle_response(request, report: IngestReport) -> HttpResponse:
    """A failed transaction is one OperationOutcome (nothing was applied); otherwise a response Bundle with
    one entry per entry sent, in order, each with its status, where the resource is served (`location`, at its
    current version, with its `etag` and `lastModified`) and, where there is one, its outcome."""
    if not report.applied:
        status = 400 if any(malformed(o) for o in report.outcomes) else 422
        if status == 422 and any(o.http_status == 412 for o in report.outcomes):
            status = 412  # a conditional operation or reference matched several: the spec's answer
        issues = [error("processing", "The transaction was not applied: nothing was changed."), *report.errors]
        return outcome_response(request, issues, status)
    # Entries are built as FHIR JSON directly: most differ (each its location), and R4B's serialiser, model by
    # model, was the slow part of answering 1,000 entries. XML goes through R4B (validated as a whole).
    entries, instants = [], {}  # the versions one submission kept share one time: written once
    for outcome, place in zip(report.outcomes, locate(report), strict=True):
        response = {"status": HTTP_STATUS[entry_status(outcome)]}
        if place is not None:
            response["location"] = place.versioned
            if place.version:
                response["etag"] = place.etag
                moment = place.last_updated
                response["lastModified"] = instants.get(moment) or instants.setdefault(moment, _instant(moment))
        elif outcome.location:  # a conditional create that matched: where the resource it matched is
            response["location"] = outcome.location
        if outcome.issues:
            response["outcome"] = json.loads(operation_outcome(outcome.issues).model_dump_json())
        entries.append({"response": response})
    kind = "transaction-response" if report.atomic else "batch-response"
    if wants_xml(request):
        return fhir_response(
            request, Bundle.model_validate({"resourceType": "Bundle", "type": kind, "entry": entries or None})
        )
    body = {**json.loads(Bundle(type=kind).model_dump_json()), **({"entry": entries} if entries else {})}
    return HttpResponse(json.dumps(body), content_type=f"{JSON}; charset=utf-8")


def _instant(moment) -> str:
    """A FHIR instant as R4B writes one (UTC as "Z")."""
    text = moment.isoformat()
    return text.removesuffix("+00:00") + "Z" if text.endswith("+00:00") else text


def searchset(
    request,
    page,
    resources: list,
    base_url: str,
    *,
    applied: list[tuple[str, str]] | None = None,
    included: list | None = None,
    outcomes: list[Issue] | None = None,
    summary: bool = False,
) -> HttpResponse:
    """A page of results. Links carry only the parameters `applied` (as given; an ignored one never: the link
    says what the search did), with `_offset`/`_count` moved for next/previous; without `applied`, the query as
    sent. `included` (the patient, Provenance) come as search mode include, not counted in `total`; `outcomes`
    (what a lenient search ignored) as one OperationOutcome, mode outcome. `summary` (_summary=count): the
    total and the self link only."""

    def query(offset: int | None) -> QueryDict:
        if applied is None:
            params = request.GET.copy()
        else:
            params = QueryDict(mutable=True)
            for name, value in applied:
                params.appendlist(name, value)
        if offset is not None:
            params["_offset"], params["_count"] = str(offset), str(page.count)
        return params

    def link(offset: int | None) -> str:
        params = query(offset)
        return f"{request.build_absolute_uri(request.path)}" + (f"?{params.urlencode()}" if params else "")

    if summary:
        links = [{"relation": "self", "url": link(None)}]
        return bundle(request, {"resourceType": "Bundle", "type": "searchset", "total": page.total, "link": links})
    links = [{"relation": "self", "url": link(page.offset)}]
    if page.has_next:
        links.append({"relation": "next", "url": link(page.offset + page.count)})
    if page.has_previous:
        links.append({"relation": "previous", "url": link(max(page.offset - page.count, 0))})

    def entry(resource, mode: str) -> dict:
        return {
            "fullUrl": f"{base_url}{resource.get_resource_type()}/{resource.id}",
            "resource": resource,
            "search": {"mode": mode},
        }

    entries = [entry(resource, "match") for resource in resources]
    entries += [entry(resource, "include") for resource in included or []]
    if outcomes:
        entries.append({"resource": operation_outcome(outcomes), "search": {"mode": "outcome"}})
    data = {"resourceType": "Bundle", "type": "searchset", "total": page.total, "link": links}
    return bundle(request, {**data, **({"entry": entries} if entries else {})})


def bundle(request, data: dict, status: int = 200) -> HttpResponse:
    """A Bundle from its data, its entries' resources as built (Resource) or R4B models: JSON written as it is
    (with FHIR_VERIFY_OUTPUT, the tests, held to what R4B's Bundle writes), XML through R4B's Bundle."""

    def model():
        entries = [{**entry, "resource": model_of(entry["resource"])} for entry in data.get("entry", [])]
        return Bundle.model_validate({**data, "entry": entries or None})

    if wants_xml(request):
        return fhir_response(request, model(), status)
    body = dumps(data)  # before any entry's model is made: the fast path is what is written, and checked
    if getattr(settings, "FHIR_VERIFY_OUTPUT", False):
        compare(body, model(), "Bundle")
    return HttpResponse(body, status=status, content_type=f"{JSON}; charset=utf-8")
