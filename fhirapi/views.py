"""The FHIR endpoints. Thin: who is calling (auth), then parse + ingest to send in, or the access decision
(sharing.access.get_patient_for: one decision, one audit row) + read + serialise to read out.

CSRF-exempt and outside LoginRequiredMiddleware: callers are systems with bearer tokens (a signed-in
professional's session may read too). Sending in needs an organisation's token, whatever the session.
"""

from urllib.parse import parse_qsl

from django.contrib.auth.decorators import login_not_required
from django.core.exceptions import RequestDataTooBig
from django.urls import reverse
from django.utils.http import http_date
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods

from audit.writers import record_search
from directory.profiles import professional_for
from patients import search
from patients.models import Patient
from patients.nhs_numbers import looks_like_nhs_number, normalise
from sharing import attachments
from sharing.access import RecordAccessDenied, can_search, get_patient_for

from . import asynchronous, history, messaging, read, responses, serialise
from . import search as searching
from .auth import caller_for, token_actor
from .capability import capability_statement
from .ingest import Channel, audit_unread, ingest
from .outcome import error
from .parse import Unreadable, if_match_problem, url_mismatch
from .parse import read as parse
from .systems import NHS_NUMBER

# FHIR's id datatype; what a PUT's URL names must be one (it becomes the resource's id).
# Accept values that ask for a resource rather than a Binary's own content (R4 and the older forms).
FHIR_TYPES = ("application/fhir+json", "application/fhir+xml", "application/json+fhir", "application/xml+fhir")


def _base_url(request) -> str:
    return request.build_absolute_uri(reverse("fhir:base"))


def _fhir_view(methods):
    def decorate(view):
        return csrf_exempt(login_not_required(require_http_methods(methods)(view)))

    return decorate


# Sending in


def _sender(request):
    """(organisation, channel, None) for an active organisation's token; else (None, None, the 401 or 403)."""
    caller = caller_for(request)
    if caller is None:
        return None, None, responses.not_authenticated(request)
    if caller.organisation is None or not caller.organisation.active:
        issue = error("forbidden", "Sending records in needs an active organisation's API token.")
        return None, None, responses.outcome_response(request, [issue], 403)
    channel = Channel(
        actor=token_actor(caller.token),
        token=caller.token,
        endpoint=f"{request.method} {request.path}"[:200],
        request_id=getattr(request, "request_id", ""),
    )
    return caller.organisation, channel, None


def _read_body(request, organisation, channel):
    """(submission, None), or (None, the 413 or 400) for a body too large or unreadable (audited)."""
    try:
        body = request.body
    except RequestDataTooBig:
        issue = error("too-costly", "The body is larger than DATA_UPLOAD_MAX_MEMORY_SIZE: send smaller bundles.")
        audit_unread(organisation=organisation, channel=channel, issues=[issue])
        return None, responses.outcome_response(request, [issue], 413)
    try:
        # The whole Content-Type, parameters too: a fhirVersion other than R4's is refused (versions.py).
        return parse(body, request.META.get("CONTENT_TYPE") or request.content_type), None
    except Unreadable as exc:
        audit_unread(organisation=organisation, channel=channel, issues=exc.issues)
        return None, responses.outcome_response(request, exc.issues, 400)


def _receive(request, *, resource_type=None, resource_id=None, condition=None):
    """Refused for who is calling (401, 403): nothing is written. From a valid organisation token, whatever
    comes of it (imported, rejected, unreadable), one AuditEvent naming the token (`ingest`). `condition`: a
    conditional update's search (PUT [base]/Type?identifier=...)."""
    organisation, channel, refused = _sender(request)
    if refused:
        return refused
    submission, refused = _read_body(request, organisation, channel)
    if refused:
        return refused
    problem = url_mismatch(submission, resource_type, resource_id)
    if problem:
        audit_unread(organisation=organisation, channel=channel, issues=[problem], bundle_type=submission.bundle_type)
        return responses.outcome_response(request, [problem], 400)
    problem = _conditional(request, submission, resource_type, condition)
    if problem:
        audit_unread(organisation=organisation, channel=channel, issues=[problem], bundle_type=submission.bundle_type)
        return responses.outcome_response(request, [problem], 400)
    try:
        report = ingest(submission, organisation=organisation, channel=channel)
    except Unreadable as exc:  # audited by ingest
        return responses.outcome_response(request, exc.issues, 400)
    if submission.bundle_type is None:
        return responses.single_response(request, report)
    return responses.bundle_response(request, report)


def _conditional(request, submission, resource_type, condition):
    """A conditional create (the If-None-Exist header on POST [base]/Type) or update (PUT [base]/Type?...), or an
    update made only to the version If-Match names (PUT [base]/Type/<id>; ingest.check_if_match): the one entry
    carries it as a Bundle entry's request would. An If-Match that is no version, or not on a PUT: the issue."""
    if_match = request.headers.get("If-Match")
    if resource_type is None:
        if if_match is not None:
            return error("invalid", "If-Match on a Bundle names no resource: give each entry its request.ifMatch.")
        return None
    entry = submission.entries[0]
    if condition is not None:
        entry.method, entry.url = "PUT", f"{resource_type}?{condition}"
    elif request.method == "POST" and request.headers.get("If-None-Exist"):
        entry.method, entry.if_none_exist = "POST", request.headers["If-None-Exist"]
    if if_match is not None:
        problem = if_match_problem(if_match, request.method, "")
        if problem:
            return problem
        entry.if_match = if_match
    return None


def _conditional_put(request, resource_type):
    """PUT [base]/Type?identifier=system|value: update the one resource it finds, create it if none (FHIR's
    conditional update). A PUT with neither an id nor a search names nothing to update."""
    query = request.META.get("QUERY_STRING", "")
    if not any(name not in ("_format", "_pretty") for name, _ in parse_qsl(query, keep_blank_values=True)):
        issue = error(
            "required",
            f"PUT needs an id (PUT [base]/{resource_type}/<id>) or a search (PUT [base]/{resource_type}?identifier="
            "system|value, a conditional update).",
        )
        return responses.outcome_response(request, [issue], 400)
    return _receive(request, resource_type=resource_type, condition=query)


@_fhir_view(["POST"])
def base(request):
    """POST a transaction, batch or collection Bundle; with `Prefer: respond-async`, through the queue
    (asynchronous.py) where one is configured."""
    if not asynchronous.wants_async(request):
        return _receive(request)
    organisation, channel, refused = _sender(request)
    if refused:
        return refused
    try:
        body = request.body
    except RequestDataTooBig:
        return _read_body(request, organisation, channel)[1]  # the 413, audited
    return asynchronous.accept(request, organisation, channel, body)[1]


@_fhir_view(["GET", "DELETE"])
def async_status(request, job_id):
    """The status URL of a queued submission: only its own organisation's tokens see it (else 404)."""
    organisation, channel, refused = _sender(request)
    if refused:
        return refused
    job = asynchronous.job_of(organisation, job_id)
    if job is None:
        return responses.outcome_response(request, [error("not-found", "No such job.")], 404)
    if request.method == "DELETE":
        return asynchronous.cancel(request, job, channel)
    return asynchronous.status(request, job)


@_fhir_view(["POST"])
def process_message(request):
    """POST [base]/$process-message: a message Bundle, answered at once with a response message (messaging.py).
    Who may send is decided as for any other write; only the synchronous pattern is offered."""
    organisation, channel, refused = _sender(request)
    if refused:
        return refused
    if "async" in request.GET or "response-url" in request.GET:
        issue = error("not-supported", "Messages are processed synchronously here: POST without async or response-url.")
        audit_unread(organisation=organisation, channel=channel, issues=[issue], bundle_type="message")
        return responses.outcome_response(request, [issue], 400)
    submission, refused = _read_body(request, organisation, channel)
    if refused:
        return refused
    endpoint = request.build_absolute_uri(reverse("fhir:process-message"))
    answer = messaging.process(submission, organisation=organisation, channel=channel, endpoint=endpoint)
    if answer.issues:
        return responses.outcome_response(request, answer.issues, answer.status)
    return responses.fhir_response(request, answer.bundle(), answer.status, **answer.headers)


# Reading out


def _reader(request):
    """A 401/403 response if the caller may not read at all; None if it may go on to the access decision."""
    caller = caller_for(request)
    if caller is None:
        return responses.not_authenticated(request)
    if caller.user is None:
        issue = error("forbidden", "An organisation's token sends records in; reading needs a professional's.")
        return responses.outcome_response(request, [issue], 403)
    return None


@_fhir_view(["GET", "POST", "PUT"])
def resource_type(request, resource_type):
    if request.method == "POST":
        return _receive(request, resource_type=resource_type)
    if request.method == "PUT":
        return _conditional_put(request, resource_type)
    refused = _reader(request)
    if refused:
        return refused
    if resource_type == "Patient":
        return _patient_search(request, request.GET)
    if resource_type not in read.SEARCHABLE:
        issue = error("not-supported", f"{resource_type} cannot be searched here.")
        return responses.outcome_response(request, [issue], 404)
    try:
        query = searching.parse(
            resource_type, request.GET, is_lenient=searching.lenient(request), base_url=_base_url(request)
        )
    except searching.Invalid as exc:
        return responses.outcome_response(request, [exc.issue], 400)
    try:
        patient, decision = get_patient_for(request, query.patient_id, page=f"fhir:{resource_type}")
    except RecordAccessDenied:
        return responses.record_not_available(request)
    lists = query.filter([(resource_type, rows) for rows in read.resources_of(resource_type, patient, decision)])
    count = 0 if query.summary_count else query.count
    page = read.page_of(lists, offset=query.offset, count=count, order=query.order())
    if query.summary_count:
        applied = [*query.applied, *([("_count", "0")] if "_count" in request.GET else [])]
        return responses.searchset(request, page, [], _base_url(request), applied=applied, summary=True)
    resources = read.resources(page.items, patient)
    included = [serialise.patient(patient)] if query.include_patient and page.items else []
    if query.revinclude_provenance:
        from . import provenance  # the PROVENANCE part (fhirapi/provenance.py)

        included += provenance.revincluded(page.items, resources, patient)
    return responses.searchset(
        request,
        page,
        resources,
        _base_url(request),
        applied=query.applied,
        included=included,
        outcomes=query.warnings,
    )


@_fhir_view(["POST"])
def patient_search(request):
    """POST /Patient/_search: the identifier in the body, so NHS numbers stay out of URLs and access logs."""
    refused = _reader(request)
    return refused or _patient_search(request, request.POST)


def _patient_search(request, params):
    """Demographics only, for any active professional (as the search page): audited, one row per match. By
    identifier only (search.parse_patient_search); the links carry what the URL did (a POST's body, and the NHS
    number in it, stays out of them)."""
    if not can_search(request.user):
        issue = error("forbidden", "Only an active professional can search for patients.")
        return responses.outcome_response(request, [issue], 403)
    try:
        query = searching.parse_patient_search(params, is_lenient=searching.lenient(request))
    except searching.Invalid as exc:
        return responses.outcome_response(request, [exc.issue], 400)
    system, _, value = query.identifier.rpartition("|")
    if system not in (NHS_NUMBER, "") or not value:
        issue = error("required", f"Search by identifier={NHS_NUMBER}|<NHS number>.", "identifier")
        return responses.outcome_response(request, [issue], 400)
    if not looks_like_nhs_number(normalise(value)):
        issue = error("invalid", "An NHS number is 10 digits (0-9); spaces are allowed.", "identifier")
        return responses.outcome_response(request, [issue], 400)
    patients = list(search.by_nhs_number(normalise(value)))
    record_search(request=request, professional=professional_for(request.user), by="fhir-identifier", patients=patients)
    page = read.Page(items=patients, total=len(patients), offset=0, count=query.count)
    applied = query.applied if params is request.GET else searching.pairs(request.GET)
    return responses.searchset(
        request,
        page,
        [serialise.patient(p) for p in patients],
        _base_url(request),
        applied=applied,
        outcomes=query.warnings,
    )


@_fhir_view(["GET", "PUT"])
def instance(request, resource_type, resource_id):
    if request.method == "PUT":
        return _receive(request, resource_type=resource_type, resource_id=resource_id)
    refused = _reader(request)
    if refused:
        return refused
    if resource_type == read.BINARY:
        return _read_binary(request, resource_id)
    if resource_type != "Patient" and resource_type not in read.SEARCHABLE:
        # Answered before any access decision: a type we do not hold has no patient to decide on or audit.
        issue = error("not-supported", f"{resource_type[:100]} cannot be read here.")
        return responses.outcome_response(request, [issue], 404)
    if resource_type == "Patient":
        try:
            patient, _ = get_patient_for(request, resource_id, page="fhir:Patient")
        except RecordAccessDenied:
            return responses.record_not_available(request)
        return responses.fhir_response(request, serialise.patient(patient))
    return _read_entry(request, resource_type, resource_id)


def _read_binary(request, resource_id):
    """A letter's attachment: decided on its patient, given only if that patient's record shows its letter (a
    refused or unknown one is the same 403). As FHIR has it, a Binary resource for a client asking for FHIR
    (Accept or _format), else the content itself in its own type (sharing.attachments: a PDF inline, all else
    a download)."""
    found = read.find_attachment(resource_id)
    try:
        patient_id = found.patient_id if found else None
        patient, decision = get_patient_for(request, patient_id, page="fhir:Binary:read")
    except RecordAccessDenied:
        return responses.record_not_available(request)
    attachment = read.visible_attachment(found, patient, decision)
    if attachment is None:
        return responses.record_not_available(request)
    if _asks_for_fhir(request):
        return responses.fhir_response(request, read.binary(attachment))
    return attachments.content_response(attachment)


def _asks_for_fhir(request) -> bool:
    accept = request.headers.get("Accept", "")
    return bool(request.GET.get("_format")) or any(kind in accept for kind in FHIR_TYPES)


def _read_entry(request, resource_type, resource_id):
    """One item by our id: decided on its patient, and returned only if that patient's record would show it."""
    found = read.find_entry(resource_type, resource_id)
    try:
        # An unknown id is decided (and audited) as "no such patient": refused like any other refusal.
        patient_id = found.patient_id if found else None
        patient, decision = get_patient_for(request, patient_id, page=f"fhir:{resource_type}:read")
    except RecordAccessDenied:
        return responses.record_not_available(request)
    item = read.visible_item(resource_type, found, patient, decision)
    if item is None:
        return responses.record_not_available(request)
    [resource] = read.resources([(resource_type, item)], patient)
    return responses.fhir_response(request, resource, **_version_headers(resource))


def _version_headers(resource) -> dict:
    """ETag and Last-Modified of a version carerecord keeps (none for what it builds from the record)."""
    if resource.meta is None or not resource.meta.versionId:
        return {}
    headers = {"ETag": f'W/"{resource.meta.versionId}"'}
    last_updated = history.last_updated_of(resource)
    if last_updated is not None:
        headers["Last_Modified"] = http_date(last_updated.timestamp())
    return headers


# Versions: _history and vread (fhirapi.history)


def _decided(request, resource_type, resource_id, action):
    """(patient, decision, item, None) for a resource the reader may see now, decided as a read is (one
    decision, one AccessEvent `fhir:<Type>:<action>`); else (None, None, None, the refusal). Patient's item is
    the patient."""
    if resource_type == read.BINARY:
        issue = error("not-supported", "Binary is read only here: carerecord keeps no versions of attachments.")
        return None, None, None, responses.outcome_response(request, [issue], 404)
    if resource_type != "Patient" and resource_type not in read.SEARCHABLE:
        issue = error("not-supported", f"{resource_type[:100]} cannot be read here.")
        return None, None, None, responses.outcome_response(request, [issue], 404)
    page = f"fhir:{resource_type}:{action}"
    found = None if resource_type == "Patient" else read.find_entry(resource_type, resource_id)
    try:
        patient_id = resource_id if resource_type == "Patient" else (found.patient_id if found else None)
        patient, decision = get_patient_for(request, patient_id, page=page)
    except RecordAccessDenied:
        return None, None, None, responses.record_not_available(request)
    item = patient if resource_type == "Patient" else read.visible_item(resource_type, found, patient, decision)
    if item is None:
        return None, None, None, responses.record_not_available(request)
    return patient, decision, item, None


@_fhir_view(["GET"])
def history_instance(request, resource_type, resource_id):
    """GET [base]/Type/<id>/_history: the versions kept of one resource the reader may see, newest first; a
    resource carerecord keeps none of (built from the record; Patient, the master view) has its current state."""
    refused = _reader(request)
    if refused:
        return refused
    try:
        query = history.history_query(request.GET)
    except history.BadParameter as exc:
        return responses.outcome_response(request, [exc.issue], 400)
    patient, decision, item, refused = _decided(request, resource_type, resource_id, "history")
    if refused:
        return refused
    entries, total = history.history_page(resource_type, item, patient, decision, query, _base_url(request))
    links = _page_links(request, query.offset, query.count, total)
    return responses.fhir_response(request, history.history_bundle(entries, total=total, links=links))


def _page_links(request, offset: int, count: int, total: int) -> list[dict]:
    def link(at: int) -> str:
        params = request.GET.copy()
        params["_offset"], params["_count"] = str(at), str(count)
        return f"{request.build_absolute_uri(request.path)}?{params.urlencode()}"

    links = [{"relation": "self", "url": link(offset)}]
    if count and offset + count < total:
        links.append({"relation": "next", "url": link(offset + count)})
    if offset > 0:
        links.append({"relation": "previous", "url": link(max(offset - max(count, 1), 0))})
    return links


@_fhir_view(["GET"])
def vread(request, resource_type, resource_id, version_id):
    """GET [base]/Type/<id>/_history/<vid>: one kept version, decided as a read of the resource is. A version
    not held, or not given to this reader (another patient's, or labelled sensitive), is 404 alike."""
    refused = _reader(request)
    if refused:
        return refused
    patient, decision, item, refused = _decided(request, resource_type, resource_id, "vread")
    if refused:
        return refused
    versions = [] if resource_type == "Patient" else history.versions_of(resource_type, item, patient, decision)
    if not versions:
        issue = error("not-found", history.NO_VERSIONS.format(type=resource_type, id=resource_id[:64]))
        return responses.outcome_response(request, [issue], 404)
    number = history.version_number(version_id)
    version = next((v for v in versions if v.version == number), None)
    if version is None:
        issue = error("not-found", f"Version {version_id[:20]} of {resource_type}/{resource_id[:64]} is not held.")
        return responses.outcome_response(request, [issue], 404)
    [resource] = history.as_read(resource_type, item, patient, [version])
    return responses.fhir_response(request, resource, **_version_headers(resource))


@_fhir_view(["GET"])
def everything(request, patient_id):
    """Patient/$everything: the patient and every visible item, paginated across types; `_since`, `_type`,
    `_count` (search.EVERYTHING_PARAMS). The Patient always comes."""
    refused = _reader(request)
    if refused:
        return refused
    try:
        query = searching.parse_everything(request.GET, is_lenient=searching.lenient(request))
    except searching.Invalid as exc:
        return responses.outcome_response(request, [exc.issue], 400)
    try:
        patient, decision = get_patient_for(request, patient_id, page="fhir:everything")
    except RecordAccessDenied:
        return responses.record_not_available(request)
    kinds = [kind for kind in read.SEARCHABLE if query.types is None or kind in query.types]
    lists = query.filter([(kind, rows) for kind in kinds for rows in read.resources_of(kind, patient, decision)])
    lists.insert(0, ("Patient", Patient.objects.filter(pk=patient.pk).select_related("registered_gp")))
    page = read.page_of(lists, offset=query.offset, count=query.count)
    resources = read.resources(page.items, patient)
    return responses.searchset(
        request, page, resources, _base_url(request), applied=query.applied, outcomes=query.warnings
    )


@login_not_required
@require_GET
def metadata(request):
    return responses.fhir_response(request, capability_statement(_base_url(request)))
