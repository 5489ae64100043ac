"""Prometheus metrics (issue 20): what the service does and how fast, never whom it does it for.

- Requests: a counter by method, URL pattern name and status, and a latency histogram by pattern name. The
  pattern's name ("record-summary"), never the path: paths hold patient ids.
- Read from the database at each scrape (a few index probes): audit rows written (each table's newest id, a
  counter), audit rows not yet sealed, each feed's queue of messages needing action and the time of its newest
  message (what the quiet-feed alert in docs/ops/prometheus-rules.yml reads), and the bulk-load queue's jobs by
  kind and status (its depth, and the dead letters an alert reads).
- The feeds' own counter (feeds/metrics.py), from whichever process took the message.

With several processes (gunicorn workers, `hl7_listen`), set PROMETHEUS_MULTIPROC_DIR to a directory they share
(emptied before they start): each process writes its counters there and `/metrics` adds them up. The endpoint
answers only a scraper holding METRICS_TOKEN (`Authorization: Bearer …`); with no token configured it is not
there at all (404).
"""

import hashlib
import hmac
import logging
import os
import time

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.db import connection
from django.db.models import Count, Max
from django.http import Http404, HttpResponse
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector

from audit import partitions as audit_partitions
from audit.models import AccessEvent, AuditEvent, AuditSeal
from bulk.models import Job
from carerecord import replicas
from feeds.models import Feed, Message
from feeds.retention import NEEDS_ACTION

logger = logging.getLogger("carerecord.requests")

METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}
REQUESTS = Counter(
    "carerecord_http_requests",
    "Requests answered, by method, URL pattern name and status.",
    ["method", "route", "status"],
)
LATENCY = Histogram(
    "carerecord_http_request_duration_seconds",
    "Time from the request reaching Django to its response, by URL pattern name.",
    ["route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 1, 2, 5, 10),
)


def route_of(request) -> str:
    match = getattr(request, "resolver_match", None)
    return (match.view_name or match.route or "unnamed") if match else "unresolved"


class MetricsMiddleware:
    """Counts and times every request (the FHIR API's lean path included: this sits above it), and writes one
    log line per request — method, pattern name, status, milliseconds, request id — that names no path."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        began = time.perf_counter()
        response = self.get_response(request)
        elapsed = time.perf_counter() - began
        route = route_of(request)
        method = request.method if request.method in METHODS else "other"
        REQUESTS.labels(method=method, route=route, status=str(response.status_code)).inc()
        LATENCY.labels(route=route).observe(elapsed)
        logger.info(
            "request %s %s %s %.1f ms",
            method,
            route,
            response.status_code,
            elapsed * 1000,
            extra={"route": route, "status": response.status_code, "duration_ms": round(elapsed * 1000, 1)},
        )
        return response


class DatabaseCollector:
    """What the database says, read at each scrape."""

    def collect(self):
        audit_rows = CounterMetricFamily(
            "carerecord_audit_rows", "Audit rows written (the table's newest id).", labels=["table"]
        )
        unsealed = GaugeMetricFamily(
            "carerecord_audit_unsealed_rows", "Audit rows newer than the table's newest seal.", labels=["table"]
        )
        sealed_at = GaugeMetricFamily(
            "carerecord_audit_last_seal_timestamp_seconds",
            "When the table's newest seal was made (Unix time); absent before the first.",
            labels=["table"],
        )
        for table, model in (("accessevent", AccessEvent), ("auditevent", AuditEvent)):
            newest = model.objects.aggregate(newest=Max("pk"))["newest"] or 0
            seal = AuditSeal.objects.filter(table=table).order_by("-last_id").values("last_id", "sealed_at").first()
            audit_rows.add_metric([table], newest)
            unsealed.add_metric([table], model.objects.filter(pk__gt=seal["last_id"] if seal else 0).count())
            if seal:
                sealed_at.add_metric([table], seal["sealed_at"].timestamp())
        yield audit_rows
        yield unsealed
        yield sealed_at
        yield from self.partitions()
        yield self.bulk_jobs()
        yield from self.replicas()
        queue = GaugeMetricFamily(
            "carerecord_feed_queue_depth",
            "Messages needing action (held, invalid, failed, not yet processed), by feed.",
            labels=["feed", "organisation"],
        )
        last = GaugeMetricFamily(
            "carerecord_feed_last_message_timestamp_seconds",
            "When each active feed's newest message arrived (Unix time); absent for a feed that never sent.",
            labels=["feed", "organisation"],
        )
        waiting = dict(
            Message.objects.filter(status__in=NEEDS_ACTION)
            .order_by()
            .values_list("feed_id")
            .annotate(n=Count("pk"))
            .values_list("feed_id", "n")
        )
        for feed in Feed.objects.filter(active=True).select_related("organisation").order_by("pk"):
            labels = [str(feed.pk), feed.organisation.ods_code]
            queue.add_metric(labels, waiting.get(feed.pk, 0))
            newest = Message.objects.filter(feed=feed).order_by("-received_at").values_list("received_at").first()
            if newest:
                last.add_metric(labels, newest[0].timestamp())
        yield queue
        yield last

    @staticmethod
    def bulk_jobs():
        """The bulk-load queue's depth (waiting, running, waiting to retry) and its dead letters, by kind."""
        jobs = GaugeMetricFamily(
            "carerecord_bulk_jobs",
            "Bulk-load jobs not finished, and dead letters, by kind and status.",
            labels=["kind", "status"],
        )
        shown = (*Job.OPEN, Job.Status.DEAD)
        counted = Job.objects.filter(status__in=shown).values("kind", "status").annotate(n=Count("pk"))
        held = {(row["kind"], row["status"]): row["n"] for row in counted}
        for kind in Job.Kind.values:
            for status in shown:
                jobs.add_metric([kind, status], held.get((kind, status), 0))
        return jobs

    @staticmethod
    def partitions():
        """PostgreSQL's audit month partitions (audit/partitions.py): how far ahead they are made, and rows no
        month covers (capped: an alert needs to know there are some, not how many)."""
        ahead = GaugeMetricFamily(
            "carerecord_audit_partition_months_ahead",
            "Whole months after the current one that have their audit partition made.",
            labels=["table"],
        )
        stray = GaugeMetricFamily(
            "carerecord_audit_default_partition_rows",
            "Audit rows in the default partition, which no month partition covers (counted up to 10,000).",
            labels=["table"],
        )
        for table in audit_partitions.TABLES:
            months = audit_partitions.months_ahead(table)
            if months is None:
                continue
            ahead.add_metric([table], months)
            with connection.cursor() as cursor:
                stray.add_metric([table], audit_partitions.default_rows(table, cursor))
        yield ahead
        yield stray

    @staticmethod
    def replicas():
        """Each configured read replica: whether the router may use it, and its replay lag when it answered."""
        usable = GaugeMetricFamily(
            "carerecord_replica_usable", "1 when the read replica is in bound and used, else 0.", labels=["replica"]
        )
        lag = GaugeMetricFamily(
            "carerecord_replica_lag_seconds", "The read replica's replay lag at its last check.", labels=["replica"]
        )
        for alias in replicas.aliases():
            health = replicas.health(alias)
            usable.add_metric([alias], 1 if health.usable else 0)
            if health.lag is not None and health.lag != float("inf"):
                lag.add_metric([alias], health.lag)
        yield usable
        yield lag


def registry() -> CollectorRegistry:
    """This process's metrics, or every process's when PROMETHEUS_MULTIPROC_DIR is set; and the database's."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        collected = CollectorRegistry()
        MultiProcessCollector(collected)
    else:
        from prometheus_client import REGISTRY as collected
    out = CollectorRegistry()
    out.register(_Union(collected))
    out.register(DatabaseCollector())
    return out


class _Union:
    def __init__(self, inner):
        self.inner = inner

    def collect(self):
        return self.inner.collect()


def _authorised(request) -> bool:
    sent = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
    wanted = hashlib.sha256(settings.METRICS_TOKEN.encode()).digest()
    return bool(sent) and hmac.compare_digest(hashlib.sha256(sent.encode()).digest(), wanted)


@login_not_required
@require_GET
def metrics(request):
    if not settings.METRICS_TOKEN:
        raise Http404
    if not _authorised(request):
        return HttpResponse(
            "A metrics token is needed.\n",
            status=401,
            content_type="text/plain",
            headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
        )
    connection.ensure_connection()
    return HttpResponse(generate_latest(registry()), content_type=CONTENT_TYPE_LATEST)
