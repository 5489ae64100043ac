"""The HTTP floor of `make bench-http`: a constant small JSON answer, served by gunicorn exactly as carerecord is
(one sync worker, 127.0.0.1), so that its p50/p95 is what a request costs before any framework or database work.

    gunicorn bench.http_floor:application
"""

BODY = b'{"resourceType":"OperationOutcome","issue":[{"severity":"information","code":"informational"}]}'
HEADERS = [("Content-Type", "application/fhir+json"), ("Content-Length", str(len(BODY)))]


def application(environ, start_response):
    start_response("200 OK", HEADERS)
    return [BODY]
