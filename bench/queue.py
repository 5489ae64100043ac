"""`make bench-queue`: bulk loads through the queue (bulk/, issue 20) on this machine, against the bench database
(BENCH_SCALE, default small; built by `python -m bench.dataset` if missing), with production settings, gunicorn (2
sync workers) and real Celery worker processes on the local Redis.

The workload is PEERS.md's ingest: transaction Bundles of 1,000 entries (100 Patients, 9 Observations each), every
measure with NHS numbers of its own so that each Bundle creates. BENCH_QUEUE_BUNDLES (default 12) Bundles a measure:

- synchronous: POST [base], one after another (what a partner that waits gets);
- through the queue, 1 and 2 worker processes: POST [base] with `Prefer: respond-async` (the 202's latency), then
  the time until every job is done (resources/s from the first POST to the last job finished);
- faults, 2 workers: Redis restarted once the first job is done (its queued messages go with it: the sweep,
  `bulk_jobs --dispatch` as cron runs it, sends them again), and PostgreSQL restarted once the first job is done
  (the jobs in flight fail and are retried with back-off; a POST refused meanwhile is sent again by the client with
  its Idempotency-Key). Each reports jobs done, dead letters, attempts beyond one, and the `fhir.submission` audit
  rows against the Bundles sent: one each, none lost, none twice.
"""

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

from .config import ROOT, SCALES, production_environment, setup_django
from .loadtest import stop

BROKER = "redis://127.0.0.1:6379/12"
QUEUE = "bench-bulk"
TIMEOUT = 600


def _environment(scale) -> dict:
    return {
        **os.environ,
        **production_environment(scale),
        "CELERY_BROKER_URL": BROKER,
        "BULK_QUEUE": QUEUE,
        "BULK_REDISPATCH_SECONDS": "5",
        "BULK_RETRY_BASE_SECONDS": "1",
        "BULK_RETRY_MAX_SECONDS": "8",
        "BULK_MAX_ATTEMPTS": "8",
    }


def start_worker(scale, concurrency: int) -> subprocess.Popen:
    command = [
        str(Path(sys.executable).with_name("celery")),
        "-A",
        "carerecord",
        "worker",
        "-Q",
        QUEUE,
        "--concurrency",
        str(concurrency),
        "--loglevel",
        "WARNING",
        "--without-gossip",
        "--without-mingle",
    ]
    return subprocess.Popen(command, cwd=ROOT, env=_environment(scale), start_new_session=True)  # noqa: S603


def percentile(values: list[float], share: float) -> float | None:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else None


class Measure:
    def __init__(self, scale, base: str, secret: str, bundles: int):
        self.scale, self.base, self.secret, self.bundles = scale, base, secret, bundles

    def bodies(self) -> list[bytes]:
        from . import workload
        from .dataset import next_ingest_block

        numbers = workload.nhs_numbers(next_ingest_block(self.scale))
        return [
            workload.bundle([next(numbers) for _ in range(workload.PATIENTS_PER_BUNDLE)]) for _ in range(self.bundles)
        ]

    def post(self, session, body: bytes, headers: dict) -> tuple:
        """POST, sending again (the same Idempotency-Key) while the server is away: (response, tries)."""
        import requests

        for tries in range(1, 61):
            try:
                response = session.post(f"{self.base}/fhir/", data=body, headers=headers, timeout=120)
            except requests.ConnectionError:
                time.sleep(1)
                continue
            if response.status_code < 500:
                return response, tries
            time.sleep(1)
        raise SystemExit("the server did not come back within a minute")

    def synchronous(self, session) -> dict:
        from . import workload

        headers = self.headers(prefer_async=False)
        times, errors = [], 0
        began = time.perf_counter()
        for body in self.bodies():
            start = time.perf_counter()
            response, _ = self.post(session, body, headers)
            times.append((time.perf_counter() - start) * 1000)
            errors += response.status_code != 200
        elapsed = time.perf_counter() - began
        return {"bundle_ms_p50": percentile(times, 0.5), "resources_per_s": workload.RESOURCES_PER_BUNDLE * len(times)
                / elapsed, "errors": errors}  # fmt: skip

    def queued(self, session, fault: str = "") -> dict:
        from bulk.models import Job

        from . import workload

        headers = self.headers(prefer_async=True)
        accepted, jobs, retried_posts = [], [], 0
        began = time.perf_counter()
        bodies = self.bodies()
        faulted = None
        for index, body in enumerate(bodies):
            if fault and faulted is None and index == len(bodies) // 2:
                faulted = self._fault(fault, jobs)
            start = time.perf_counter()
            response, tries = self.post(session, body, {**headers, "Idempotency-Key": f"bench-{uuid.uuid4().hex}"})
            retried_posts += tries - 1
            accepted.append((time.perf_counter() - start) * 1000)
            if response.status_code != 202:
                raise SystemExit(f"not queued: HTTP {response.status_code} {response.content[:300]!r}")
            jobs.append(response.headers["Content-Location"].rsplit("/", 1)[1])
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            if fault == "redis":
                subprocess.run([sys.executable, "manage.py", "bulk_jobs", "--dispatch"], cwd=ROOT,
                               env=_environment(self.scale), check=False, capture_output=True)  # fmt: skip
            left = Job.objects.filter(pk__in=jobs).exclude(status__in=[Job.Status.DONE, Job.Status.DEAD]).count()
            if not left:
                break
            time.sleep(2)
        elapsed = time.perf_counter() - began
        return {**self._accounting(jobs), "accept_ms_p50": percentile(accepted, 0.5),
                "accept_ms_p95": percentile(accepted, 0.95), "resources_per_s":
                workload.RESOURCES_PER_BUNDLE * len(jobs) / elapsed, "posts_sent_again": retried_posts,
                "fault": faulted or ""}  # fmt: skip

    def _fault(self, fault: str, jobs: list[str]) -> str:
        """Once the first job is done (so others wait in Redis or run), restart Redis or PostgreSQL."""
        from bulk.models import Job

        from .loadtest import restart_redis

        deadline = time.monotonic() + TIMEOUT
        while not Job.objects.filter(pk__in=jobs, status=Job.Status.DONE).exists() and time.monotonic() < deadline:
            time.sleep(0.5)
        waiting = Job.objects.filter(pk__in=jobs).exclude(status=Job.Status.DONE).count()
        if fault == "redis":
            restart_redis()
        else:
            version = sorted(os.listdir("/etc/postgresql"))[-1]
            subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "restart"],  # noqa: S603,S607
                           check=True)  # fmt: skip
            from django.db import connection

            connection.close()
        return f"{fault} restarted with {waiting} of {len(jobs)} jobs sent not done"

    def _accounting(self, jobs: list[str]) -> dict:
        from audit.models import AuditEvent
        from bulk.models import Job

        rows = Job.objects.filter(pk__in=jobs)
        request_ids = list(rows.values_list("channel__request_id", flat=True))
        submissions = AuditEvent.objects.filter(action="fhir.submission", target_id__in=request_ids)
        audited = list(submissions.values_list("target_id", flat=True))
        return {
            "jobs": len(jobs),
            "done": rows.filter(status=Job.Status.DONE).count(),
            "dead": rows.filter(status=Job.Status.DEAD).count(),
            "attempts_beyond_one": sum(max(0, n - 1) for n in rows.values_list("attempts", flat=True)),
            "submissions_audited": len(audited),
            "submissions_audited_twice": len(audited) - len(set(audited)),
        }

    def headers(self, *, prefer_async: bool) -> dict:
        headers = {"Authorization": f"Bearer {self.secret}", "Content-Type": "application/fhir+json",
                   "Accept": "application/fhir+json"}  # fmt: skip
        return {**headers, "Prefer": "respond-async"} if prefer_async else headers


def main() -> None:
    import requests

    scale = SCALES[os.environ.get("BENCH_SCALE") or "small"]
    setup_django(scale)
    from directory.actions import create_api_token
    from directory.models import Organisation

    from .loadtest import start_gunicorn
    from .ports import free_port

    bundles = int(os.environ.get("BENCH_QUEUE_BUNDLES", "12"))
    organisation = Organisation.objects.filter(kind=Organisation.Kind.ACUTE_TRUST).order_by("ods_code").first()
    _, secret = create_api_token(by=None, name="bench-queue", organisation=organisation)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = start_gunicorn(scale, port, 2, extra_env={"CELERY_BROKER_URL": BROKER, "BULK_QUEUE": QUEUE})
    results = {}
    session = requests.Session()
    measure = Measure(scale, base, secret, bundles)
    try:
        print(f"bench-queue: {bundles} transaction Bundles of 1,000 entries a measure, scale {scale.name}", flush=True)
        results["synchronous"] = measure.synchronous(session)
        print("  synchronous:", results["synchronous"], flush=True)
        for concurrency, fault in ((1, ""), (2, ""), (2, "redis"), (2, "postgres")):
            worker = start_worker(scale, concurrency)
            try:
                name = f"queue, {concurrency} worker{'s' if concurrency > 1 else ''}" + (
                    f", {fault} restarted" if fault else ""
                )
                results[name] = measure.queued(session, fault)
                print(f"  {name}:", results[name], flush=True)
            finally:
                stop(worker)
    finally:
        stop(server)
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / "queue.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
