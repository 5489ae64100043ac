"""Issue 20, operations: the Prometheus endpoint (protected, no patient data in any label), structured logs with
the request id and no patient identifiers, and the alerting rules (promtool, in CI)."""

import json
import logging
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection
from django.urls import reverse
from prometheus_client import REGISTRY

from audit import seals
from carerecord import logs
from feeds.models import Feed, Message
from feeds.receive import receive

pytestmark = pytest.mark.django_db

TOKEN = "metrics-scraper-token-for-tests-only"
RULES = Path(settings.BASE_DIR) / "docs" / "ops"


@pytest.fixture
def scraper(client, settings):
    settings.METRICS_TOKEN = TOKEN

    def scrape():
        response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
        assert response.status_code == 200
        assert response["Content-Type"].startswith("text/plain")
        return response.content.decode()

    return scrape


def sample(name, **labels):
    return REGISTRY.get_sample_value(name, labels) or 0


def test_no_token_configured_no_endpoint(client, settings):
    settings.METRICS_TOKEN = ""
    assert client.get("/metrics").status_code == 404


def test_a_scraper_without_the_token_is_refused(client, settings):
    settings.METRICS_TOKEN = TOKEN
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer not-the-token").status_code == 401
    assert client.post("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").status_code == 405


def test_requests_are_counted_and_timed_by_pattern_name(client, scraper):
    before = sample("carerecord_http_requests_total", method="GET", route="healthz", status="200")
    timed = sample("carerecord_http_request_duration_seconds_count", route="healthz")
    assert client.get(reverse("healthz")).status_code == 200
    assert sample("carerecord_http_requests_total", method="GET", route="healthz", status="200") == before + 1
    assert sample("carerecord_http_request_duration_seconds_count", route="healthz") == timed + 1
    assert 'carerecord_http_requests_total{method="GET",route="healthz",status="200"}' in scraper()


def test_a_record_page_is_counted_without_the_patient_in_any_label(client, clinician, patient, scraper):
    client.force_login(clinician)
    assert client.get(reverse("record-summary", args=[patient.pk])).status_code == 200
    client.logout()
    text = scraper()
    assert 'route="record-summary"' in text
    assert str(patient.pk) not in text and patient.pk.hex not in text and patient.nhs_number not in text


def test_a_fhir_token_request_is_counted_too(client, organisation, patient, scraper):
    from directory.actions import create_api_token

    _, secret = create_api_token(by=None, name="partner", organisation=organisation)
    client.get(f"/fhir/Patient/{patient.pk}", HTTP_AUTHORIZATION=f"Bearer {secret}")
    text = scraper()
    assert 'route="fhir:' in text and str(patient.pk) not in text


def test_the_database_says_audit_rows_seals_and_each_feeds_queue_and_newest_message(
    organisation, patient, scraper, django_capture_on_commit_callbacks
):
    feed = Feed.objects.create(organisation=organisation, name="Lab", message_types="ORU^R01")
    quiet = Feed.objects.create(organisation=organisation, name="Never sent", message_types="ADT")
    raw = "MSH|^~\\&|LAB|H|||20240301||ORU^R01|M-1|P|2.4\rPID|1||X1^^^H^MR"  # no OBR: invalid
    invalid = {"feed": str(feed.pk), "organisation": organisation.ods_code, "status": Message.Status.INVALID}
    before = sample("carerecord_feed_messages_total", **invalid)
    with django_capture_on_commit_callbacks(execute=True):
        reply = receive(raw, feed=feed, peer="test")
    assert reply.message.status == Message.Status.INVALID
    assert sample("carerecord_feed_messages_total", **invalid) == before + 1
    text = scraper()
    labels = f'feed="{feed.pk}",organisation="{organisation.ods_code}"'
    assert f"carerecord_feed_last_message_timestamp_seconds{{{labels}}}" in text
    assert f'carerecord_feed_last_message_timestamp_seconds{{feed="{quiet.pk}"' not in text  # never sent: absent
    assert f"carerecord_feed_queue_depth{{{labels}}} 1.0" in text  # the invalid message waits for IG
    assert 'carerecord_audit_unsealed_rows{table="auditevent"}' in text
    assert "carerecord_audit_last_seal_timestamp_seconds{" not in text  # nothing sealed yet
    seals.seal()
    text = scraper()
    assert 'carerecord_audit_unsealed_rows{table="auditevent"} 0.0' in text
    assert 'carerecord_audit_last_seal_timestamp_seconds{table="auditevent"}' in text
    assert str(patient.pk) not in text and patient.nhs_number not in text


def test_log_lines_name_the_request_and_no_patient_identifier(client, caplog, settings):
    settings.BEHIND_PROXY = True
    record = logging.makeLogRecord(
        {"name": "feeds.receive", "levelname": "WARNING", "levelno": logging.WARNING, "msg": "x"}
    )
    formatter = logs.JsonFormatter()
    masking = logs.WithoutPatientIdentifiers()
    token = logs.REQUEST_ID.set("req-abc-12345")
    try:
        record.msg, record.args = (
            "Patient %s (NHS %s, also 943 476 5919) not matched",
            (
                "3f2504e0-4f89-11d3-9a0c-0305e82c3301",
                "9434765919",
            ),
        )
        masking.filter(record)
    finally:
        logs.REQUEST_ID.reset(token)
    line = json.loads(formatter.format(record))
    assert line["request_id"] == "req-abc-12345" and line["level"] == "WARNING" and line["logger"] == "feeds.receive"
    assert line["message"] == "Patient [id] (NHS [nhs-number], also [nhs-number]) not matched"
    # The request line the metrics middleware writes: the pattern name and the request id, never the path.
    with caplog.at_level(logging.INFO, logger="carerecord.requests"):
        client.get(reverse("healthz"), HTTP_X_REQUEST_ID="req-from-lb-0001")
    (line,) = [r for r in caplog.records if r.name == "carerecord.requests"]
    assert line.route == "healthz" and line.status == 200
    masking.filter(line)
    assert "/healthz" not in line.getMessage()


def test_the_json_formatter_is_what_production_logs_with(settings):
    assert settings.LOGGING["formatters"]["json"]["()"] == "carerecord.logs.JsonFormatter"
    assert "no_patient_ids" in settings.LOGGING["handlers"]["console"]["filters"]


def _promtool():
    found = shutil.which("promtool")
    if found is None:
        if os.environ.get("CI") or os.environ.get("REQUIRE_PROMTOOL"):
            pytest.fail("promtool (Debian's prometheus package) is needed: .ci/run installs it")
        pytest.skip("promtool is not installed (apt-get install prometheus)")
    return found


def test_the_alerting_rules_are_valid_and_fire_as_their_tests_say():
    promtool = _promtool()
    checked = subprocess.run([promtool, "check", "rules", "prometheus-rules.yml"], cwd=RULES, capture_output=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = subprocess.run([promtool, "test", "rules", "prometheus-rules-test.yml"], cwd=RULES, capture_output=True)
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_every_metric_the_rules_read_is_served(scraper, organisation):
    import re

    Feed.objects.create(organisation=organisation, name="Lab")
    served = {m.group(1) for m in re.finditer(r"^# TYPE (\S+) (\w+)", scraper(), re.M)}
    served |= {f"{name}_total" for name in served} | {f"{name}_bucket" for name in served}
    read = set(re.findall(r"\b(carerecord_[a-z_]+)", (RULES / "prometheus-rules.yml").read_text()))
    assert read <= served, read - served


def test_with_a_shared_directory_every_process_counts(scraper, tmp_path, monkeypatch):
    """gunicorn's workers and the HL7 listeners are separate processes: /metrics adds up what each wrote."""
    import sys

    child = (
        "from prometheus_client import Counter\n"
        "Counter('carerecord_feed_messages', 'x', ['feed', 'organisation', 'status'])"
        ".labels('9', 'ZZT01', 'applied').inc(3)\n"
    )
    for _ in range(2):  # two listener processes
        subprocess.run(
            [sys.executable, "-c", child], env={**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}, check=True
        )
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    assert 'carerecord_feed_messages_total{feed="9",organisation="ZZT01",status="applied"} 6.0' in scraper()


def test_gunicorn_forgets_a_worker_that_exits(tmp_path, monkeypatch):
    from carerecord import gunicorn_conf

    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    (tmp_path / "gauge_livesum_4242.db").write_bytes(b"")
    gunicorn_conf.child_exit(None, type("Worker", (), {"pid": 4242})())
    assert not (tmp_path / "gauge_livesum_4242.db").exists()


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's audit partitions")
def test_the_audit_partitions_made_ahead_and_rows_no_month_covers_are_served(scraper):
    import datetime

    from audit import partitions
    from audit.models import AccessEvent

    text = scraper()
    ahead = partitions.months_ahead("audit_accessevent")
    assert ahead >= 1 and f'carerecord_audit_partition_months_ahead{{table="audit_accessevent"}} {ahead}.0' in text
    assert 'carerecord_audit_default_partition_rows{table="audit_accessevent"} 0.0' in text
    far = datetime.datetime(2199, 1, 1, tzinfo=datetime.UTC)
    AccessEvent.objects.create(at=far, outcome="allowed", basis="care-team", page="record:summary")
    assert 'carerecord_audit_default_partition_rows{table="audit_accessevent"} 1.0' in scraper()


def test_each_read_replica_says_whether_it_is_used_and_its_lag(scraper, monkeypatch):
    from carerecord import replicas

    monkeypatch.setattr(replicas, "aliases", lambda: ("replica_1", "replica_2"))
    found = {
        "replica_1": replicas.Health(0, True, 0.25, "in bound", "usable"),
        "replica_2": replicas.Health(0, False, None, "unreachable (OperationalError)", "unreachable"),
    }
    monkeypatch.setattr(replicas, "health", found.get)
    text = scraper()
    assert 'carerecord_replica_usable{replica="replica_1"} 1.0' in text
    assert 'carerecord_replica_lag_seconds{replica="replica_1"} 0.25' in text
    assert 'carerecord_replica_usable{replica="replica_2"} 0.0' in text
    assert 'carerecord_replica_lag_seconds{replica="replica_2"}' not in text  # it did not answer
