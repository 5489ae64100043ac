"""`make loadtest`: gunicorn with production settings on 127.0.0.1, driven by 50 simulated clinicians.

Each clinician is a thread with its own bench account and its own loopback source address (127.0.0.x, as
clinicians at different desks have different addresses: allauth limits sign-ins per address). It signs in
the whole way (email + password, then a TOTP code computed from its known secret), then for the rest of the
run searches (NHS number, or name + date of birth) and reads records of patients its care team holds, with a
think time between clicks. Every successful record page's X-Request-ID is kept, and at the end the audit
trail is checked: each must have its AccessEvent.

With FAULT=1 PostgreSQL is restarted halfway through; the app must recover by itself (CONN_HEALTH_CHECKS),
with errors only during the outage and every successful record view audited.

Bounded: LOADTEST_CLINICIANS (50) threads for LOADTEST_SECONDS (60) after a LOADTEST_RAMP (30 s) of
staggered sign-ins, think time LOADTEST_THINK (3 s mean, exponential: a clinician reads a page, or types an NHS
number, for a few seconds before the next click), gunicorn LOADTEST_WORKERS (5) sync workers. LOADTEST_THINK=1
offers ~45 requests/s, more than this 2-core machine serves (docs/SCALING.md): use it to find the saturation point.
Before the clock starts, one more bench clinician warms every worker up (first requests compile templates).
Only loopback addresses; everything started here is stopped here.
"""

import contextlib
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import threading
import time
import warnings
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from .config import BENCH_PASSWORD, RESULTS, ROOT, database_url, production_environment, scale_from_env, setup_django
from .ports import free_port

TARGET_P95_MS = 300.0
RECORD_PAGES = ("", "results/", "medications/", "letters/", "appointments/", "conditions/")


def env_number(name, default, kind=float):
    return kind(os.environ.get(name) or default)


@dataclass
class Sample:
    kind: str
    at: float  # seconds since the run started
    ms: float
    status: int  # 0: no response (connection refused, reset, timed out)


@dataclass
class Clinician:
    user_id: int
    email: str
    secret: str
    address: str
    patients: list  # (id, nhs number, family name, date of birth)
    samples: list = field(default_factory=list)
    audited_request_ids: list = field(default_factory=list)
    signed_in: bool = False


# --- the server ---------------------------------------------------------------------------------------------------


def start_gunicorn(
    scale, port: int, workers: int, app: str = "carerecord.wsgi:application", extra_env: dict | None = None
) -> subprocess.Popen:
    """gunicorn serving `app` (carerecord unless told; bench.http_floor for the HTTP floor) with production
    settings on 127.0.0.1:`port`, `workers` sync workers (and `extra_env` over them: bench.scaleout's pooler);
    returns once it answers /healthz."""
    env = {**os.environ, **production_environment(scale), **(extra_env or {})}
    command = [
        str(Path(sys.executable).with_name("gunicorn")),
        app,
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(workers),
        "--worker-class",
        "sync",
        "--timeout",
        "30",
        "--graceful-timeout",
        "5",
        "--log-level",
        "warning",
    ]
    server = subprocess.Popen(command, cwd=ROOT, env=env, start_new_session=True)  # noqa: S603 - our own server
    import requests

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if requests.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                return server
        except requests.RequestException:
            pass
        if server.poll() is not None:
            raise SystemExit("gunicorn exited before it answered /healthz")
        time.sleep(0.3)
    stop(server)
    raise SystemExit("gunicorn did not answer /healthz within 30 s")


def stop(server: subprocess.Popen) -> None:
    """Stop the gunicorn we started (its own process group), waiting for it."""
    if server.poll() is None:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=5)


# --- the clinicians -----------------------------------------------------------------------------------------------


def clinicians(scale, count: int, per_user: int) -> list[Clinician]:
    """Bench professionals with the most patients in their care teams' lists, each with a sample of them."""
    import psycopg
    from django.db import connection

    from .dataset import totp_secret

    with connection.cursor() as cursor:
        cursor.execute(
            """SELECT u.id, u.email FROM auth_user u
               JOIN auth_user_groups ug ON ug.user_id = u.id
               JOIN directory_careteam t ON t.group_id = ug.group_id
               WHERE u.email LIKE %s ORDER BY t.kind = 'gp-practice' DESC, u.id LIMIT %s""",
            ["%.bench.carerecord.test", count],
        )
        users = cursor.fetchall()
    if len(users) < count:
        raise SystemExit(f"only {len(users)} bench clinicians with a care team; the load test needs {count}")
    chosen = []
    with psycopg.connect(database_url(scale)) as conn:
        for n, (user_id, email) in enumerate(users):
            rows = conn.execute(
                """SELECT p.id, p.nhs_number, p.family_name, p.date_of_birth FROM patients_patient p
                   WHERE p.id IN (SELECT g.content_object_id FROM sharing_patientgroupobjectpermission g
                       JOIN auth_user_groups ug ON ug.group_id = g.group_id WHERE ug.user_id = %s)
                   ORDER BY random() LIMIT %s""",
                [user_id, per_user],
            ).fetchall()
            chosen.append(Clinician(user_id, email, totp_secret(email), f"127.0.0.{10 + n}", rows))
    return chosen


def session_for(address: str):
    """A requests session whose connections come from `address` (a loopback address of its own)."""
    import requests
    from requests.adapters import HTTPAdapter

    class FromAddress(HTTPAdapter):
        def init_poolmanager(self, *args, **kwargs):
            kwargs["source_address"] = (address, 0)
            super().init_poolmanager(*args, **kwargs)

    session = requests.Session()
    session.mount("http://", FromAddress(pool_connections=1, pool_maxsize=1))
    return session


class Run:
    def __init__(self, base: str, seconds: float, ramp: float, think: float, fault: bool):
        self.base, self.seconds, self.ramp, self.think, self.fault = base, seconds, ramp, think, fault
        self.started = time.monotonic()
        self.deadline = self.started + ramp + seconds
        self.outage: list[float] = []  # [began, ended] of the PostgreSQL restart, seconds since start

    def now(self) -> float:
        return time.monotonic() - self.started

    def request(self, clinician, session, kind, method, path, **kwargs):
        import requests

        began = time.monotonic()
        try:
            response = session.request(method, self.base + path, timeout=10, allow_redirects=False, **kwargs)
            status = response.status_code
        except requests.RequestException:
            response, status = None, 0
        clinician.samples.append(Sample(kind, began - self.started, (time.monotonic() - began) * 1000, status))
        return response

    def csrf(self, session) -> dict:
        return {"X-CSRFToken": session.cookies.get("csrftoken", ""), "Referer": self.base + "/"}

    def sign_in(self, clinician, session) -> bool:
        from allauth.mfa.totp.internal.auth import format_hotp_value, hotp_value

        self.request(clinician, session, "sign-in: form", "GET", "/accounts/login/")
        response = self.request(
            clinician,
            session,
            "sign-in: password",
            "POST",
            "/accounts/login/",
            data={"login": clinician.email, "password": BENCH_PASSWORD},
            headers=self.csrf(session),
        )
        if response is None or response.status_code != 302 or "2fa" not in response.headers.get("Location", ""):
            return False
        self.request(clinician, session, "sign-in: TOTP form", "GET", "/accounts/2fa/authenticate/")
        code = format_hotp_value(hotp_value(clinician.secret, int(time.time()) // 30))
        response = self.request(
            clinician,
            session,
            "sign-in: TOTP code",
            "POST",
            "/accounts/2fa/authenticate/",
            data={"code": code},
            headers=self.csrf(session),
        )
        return response is not None and response.status_code == 302

    def read(self, clinician, session, kind, patient_id, page=""):
        response = self.request(clinician, session, kind, "GET", f"/patients/{patient_id}/{page}")
        if response is not None and response.status_code == 200:
            clinician.audited_request_ids.append(response.headers.get("X-Request-ID", ""))

    def clinician(self, clinician: Clinician, offset: float) -> None:
        rng = random.Random(clinician.email)
        time.sleep(offset)
        session = session_for(clinician.address)
        while not clinician.signed_in and time.monotonic() < self.deadline:
            clinician.signed_in = self.sign_in(clinician, session)
            if not clinician.signed_in:
                session = session_for(clinician.address)
                time.sleep(1 + rng.random())
        while time.monotonic() < self.deadline:
            patient_id, nhs_number, family, born = rng.choice(clinician.patients)
            roll = rng.random()
            if roll < 0.3:
                self.request(
                    clinician,
                    session,
                    "search: NHS number",
                    "POST",
                    "/patients/search/",
                    data={"by": "nhs", "nhs_number": nhs_number},
                    headers=self.csrf(session),
                )
                self.pause(rng)
                self.read(clinician, session, "record: summary", patient_id)
            elif roll < 0.5:
                form = {"by": "name", "family_name": family, "dob_day": born.day, "dob_month": born.month}
                form["dob_year"] = born.year
                self.request(
                    clinician, session, "search: name + DOB", "POST", "/patients/search/", data=form,
                    headers=self.csrf(session),
                )  # fmt: skip
                self.pause(rng)
                self.read(clinician, session, "record: summary", patient_id)
            elif roll < 0.6:
                self.request(clinician, session, "my patients", "GET", "/patients/")
            else:
                page = rng.choice(RECORD_PAGES[1:])
                self.read(clinician, session, f"record: {page.strip('/')}", patient_id, page)
            self.pause(rng)
        session.close()

    def pause(self, rng):
        if self.think > 0 and time.monotonic() < self.deadline:
            time.sleep(min(rng.expovariate(1 / self.think), 5 * self.think))

    def restart_database(self) -> None:
        """Halfway through, restart PostgreSQL (FAULT=1) or Redis (FAULT=redis) and note when it was down."""
        time.sleep(self.ramp + self.seconds / 2)
        began = self.now()
        if self.fault == "redis":
            restart_redis()
        else:
            version = sorted(os.listdir("/etc/postgresql"))[-1]
            subprocess.run(  # noqa: S603 - the machine's own cluster tool
                ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "restart"],  # noqa: S607
                check=True,
            )
        self.outage = [began, self.now()]
        what = "Redis" if self.fault == "redis" else "PostgreSQL"
        print(f"  {what} restarted: {began:.1f} s to {self.outage[1]:.1f} s into the run", flush=True)


def restart_redis() -> None:
    """The machine's Redis stopped (keeping nothing: sessions and rate limits in the cache are gone) and started
    again as .ci/run starts it; sessions must survive from PostgreSQL (cached_db)."""
    subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", "6379", "shutdown", "nosave"], check=False)  # noqa: S607
    subprocess.run(
        ["redis-server", "--bind", "127.0.0.1", "--port", "6379", "--save", "", "--appendonly", "no",  # noqa: S607
         "--daemonize", "yes"],
        check=True,
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    for _ in range(50):
        done = subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", "6379", "ping"], capture_output=True)  # noqa: S607
        if done.stdout.strip() == b"PONG":
            return
        time.sleep(0.1)
    raise RuntimeError("Redis did not come back")


def warm_up(base: str, clinician: Clinician, workers: int) -> None:
    """Sign one extra clinician in and visit every kind of page from a few threads at once, so that every
    gunicorn worker has loaded its templates and connected to the database before the clock starts."""
    run = Run(base, seconds=0, ramp=0, think=0, fault=False)
    session = session_for(clinician.address)
    if not run.sign_in(clinician, session):
        raise SystemExit(f"warm-up: {clinician.email} could not sign in")

    def visit():
        session_here = session_for(clinician.address)  # a session per thread, signed in with the same cookie
        session_here.cookies.update(session.cookies)
        for patient_id, nhs_number, *_ in clinician.patients[:4]:
            run.request(clinician, session_here, "warm-up", "POST", "/patients/search/",
                        data={"by": "nhs", "nhs_number": nhs_number}, headers=run.csrf(session_here))  # fmt: skip
            for page in RECORD_PAGES:
                run.read(clinician, session_here, "warm-up", patient_id, page)
            run.request(clinician, session_here, "warm-up", "GET", "/patients/")

    threads = [threading.Thread(target=visit) for _ in range(workers * 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)


def other_databases_busy(scale) -> list[str]:
    """Databases other than the bench's with connections: a restart would break someone else's work."""
    import psycopg

    from .config import database_name, server_url

    with psycopg.connect(f"{server_url()}/postgres", autocommit=True) as conn:
        rows = conn.execute(
            """SELECT DISTINCT datname FROM pg_stat_activity WHERE datname IS NOT NULL
               AND datname NOT IN (%s, 'postgres') AND pid <> pg_backend_pid()""",
            [database_name(scale)],
        ).fetchall()
    return [row[0] for row in rows]


# --- the report ---------------------------------------------------------------------------------------------------


def percentiles(values):
    if not values:
        return None, None, None
    if len(values) == 1:
        return values[0], values[0], values[0]
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return cuts[49], cuts[94], cuts[98]


def audit_check(people: list[Clinician], window: tuple[datetime, datetime]) -> dict:
    """Every successful record page's request id must have an AccessEvent; count those missing."""
    from audit.models import AccessEvent

    ids = [rid for c in people for rid in c.audited_request_ids]
    found = set(
        AccessEvent.objects.filter(
            user_id__in=[c.user_id for c in people],
            at__gte=window[0],
            at__lte=window[1],
            outcome="allowed",
            page__startswith="record:",
        ).values_list("request_id", flat=True)
    )
    events = AccessEvent.objects.filter(
        user_id__in=[c.user_id for c in people], at__gte=window[0], at__lte=window[1], page__startswith="record:"
    ).count()
    missing = [rid for rid in ids if rid not in found]
    return {"record_views_ok": len(ids), "access_events": events, "missing": len(missing)}


def main() -> None:
    warnings.filterwarnings("ignore", message="No directory at", category=UserWarning)
    scale = scale_from_env()
    # FAULT=1 (or postgres): PostgreSQL restarted halfway; FAULT=redis: Redis restarted halfway.
    fault = {"": "", "0": "", "1": "postgres", "postgres": "postgres", "redis": "redis"}.get(
        os.environ.get("FAULT", "")
    )
    if fault is None:
        raise SystemExit("FAULT must be 0, 1 (postgres) or redis")
    count = env_number("LOADTEST_CLINICIANS", 50, int)
    seconds = env_number("LOADTEST_SECONDS", 60)
    # Sign-ins hash a password (PBKDF2, ~0.3 s of CPU here): 50 at once would take the machine for seconds.
    ramp = env_number("LOADTEST_RAMP", 30)
    think = env_number("LOADTEST_THINK", 3.0)
    workers = env_number("LOADTEST_WORKERS", 5, int)
    # "one": one gunicorn straight to PostgreSQL; "two": two behind HAProxy, through PgBouncer (bench.scaleout).
    topology = os.environ.get("LOADTEST_TOPOLOGY", "one")
    if topology not in ("one", "two"):
        raise SystemExit("LOADTEST_TOPOLOGY must be one or two")
    if count > 240:
        raise SystemExit("LOADTEST_CLINICIANS: at most 240 (one loopback address each, 127.0.0.10 upwards)")
    setup_django(scale)
    from . import dataset

    dataset.ensure(scale)
    if fault == "postgres":
        busy = other_databases_busy(scale)
        if busy and os.environ.get("FAULT_FORCE") != "1":
            raise SystemExit(
                f"FAULT=1 restarts PostgreSQL, but other databases are in use ({', '.join(busy)}): "
                "wait until they are idle, or set FAULT_FORCE=1"
            )
    *people, warmer = clinicians(scale, count + 1, per_user=40)
    port = free_port()
    print(
        f"load test: {count} clinicians, {seconds:g} s after a {ramp:g} s ramp, think {think:g} s, "
        + (
            f"two gunicorns of {max(workers // 2, 1)} workers behind HAProxy, through PgBouncer"
            if topology == "two"
            else f"gunicorn {workers} workers on 127.0.0.1:{port}"
        )
        + f", {dataset.database_name(scale)}"
        + (f", FAULT: {'Redis' if fault == 'redis' else 'PostgreSQL'} restarted halfway" if fault else ""),
        flush=True,
    )
    stack = contextlib.ExitStack()
    if topology == "two":
        from .scaleout import two_instances

        base = stack.enter_context(two_instances(scale, workers))
    else:
        stack.callback(stop, start_gunicorn(scale, port, workers))
        base = f"http://127.0.0.1:{port}"
    warm_up(base, warmer, workers)
    window_start = datetime.now(UTC)
    load_before = os.getloadavg()[0]
    try:
        run = Run(base, seconds, ramp, think, fault)
        threads = [
            threading.Thread(target=run.clinician, args=(c, ramp * n / count), daemon=True)
            for n, c in enumerate(people)
        ]
        if fault:
            threads.append(threading.Thread(target=run.restart_database, daemon=True))
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=max(run.deadline - time.monotonic(), 0) + 30)
        elapsed = run.now()
    finally:
        stack.close()
    window = (window_start, datetime.now(UTC))
    from django.db import close_old_connections

    close_old_connections()
    report(scale, people, run, elapsed, window, fault, load_before, workers)


def _ok(sample: Sample) -> bool:
    """A record page must show the record (200): a redirect there means the session was lost (signed out)."""
    return sample.status == 200 if sample.kind.startswith("record") else 200 <= sample.status < 400


def report(scale, people, run, elapsed, window, fault, load_before, workers) -> None:
    samples = [s for c in people for s in c.samples]
    by_kind = defaultdict(list)
    for s in samples:
        by_kind[s.kind].append(s)
    print(f"\n{'request':<24} {'n':>6} {'errors':>6} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8}")
    rows = {}
    for kind in sorted(by_kind):
        group = by_kind[kind]
        ok = [s.ms for s in group if _ok(s)]
        errors = sum(1 for s in group if not _ok(s))
        p50, p95, p99 = percentiles(ok)
        rows[kind] = {"n": len(group), "errors": errors, "p50": p50, "p95": p95, "p99": p99}
        print(f"{kind:<24} {len(group):>6} {errors:>6} {p50 or 0:>8.1f} {p95 or 0:>8.1f} {p99 or 0:>8.1f}")

    def overall(selected):
        ok = [s.ms for s in selected if _ok(s)]
        return percentiles(ok), sum(1 for s in selected if not _ok(s))

    (a50, a95, a99), all_errors = overall(samples)
    browse = [s for s in samples if not s.kind.startswith("sign-in")]
    (b50, b95, b99), browse_errors = overall(browse)
    steady_samples = [s for s in samples if s.at >= run.ramp]
    (s50, s95, s99), steady_errors = overall(steady_samples)
    record_views = sum(len(c.audited_request_ids) for c in people)
    steady = max(elapsed - run.ramp, 1e-9)
    for label, group, errors, (p50, p95, p99) in (
        ("all requests", samples, all_errors, (a50, a95, a99)),
        ("all but sign-in", browse, browse_errors, (b50, b95, b99)),
        ("after the ramp", steady_samples, steady_errors, (s50, s95, s99)),
    ):
        print(f"{label:<24} {len(group):>6} {errors:>6} {p50 or 0:>8.1f} {p95 or 0:>8.1f} {p99 or 0:>8.1f}")
    throughput = len(samples) / elapsed
    print(
        f"\n{len(samples)} requests in {elapsed:.1f} s ({throughput:.1f}/s), {record_views} record views "
        f"({record_views / steady:.1f}/s after the ramp), signed in {sum(c.signed_in for c in people)}/{len(people)}, "
        f"load average before {load_before:.2f}"
    )
    audit = audit_check(people, window)
    print(
        f"audit: {audit['record_views_ok']} successful record views, {audit['access_events']} record AccessEvents "
        f"in the window, {audit['missing']} successful views without their AccessEvent"
    )
    checks = [
        (a95 is not None and a95 <= TARGET_P95_MS, f"p95 of all requests {a95 or 0:.1f} ms ≤ {TARGET_P95_MS:g} ms"),
        (audit["missing"] == 0, "every successful record view has its AccessEvent"),
        (all(c.signed_in for c in people), "every clinician signed in (password + TOTP)"),
        (record_views > 0, f"record pages shown: {record_views}"),
    ]
    if fault:
        began, ended = run.outage or (None, None)
        grace = 5.0
        outside = [s for s in samples if not _ok(s) and not (began is not None and began - 1 <= s.at <= ended + grace)]
        after = [s for s in samples if began is not None and s.at > ended + grace]
        recovered = bool(after) and all(_ok(s) for s in after)
        checks.append((not outside, f"errors only during the outage (±{grace:g} s): {len(outside)} outside it"))
        checks.append((recovered, f"recovered by itself: {len(after)} requests after the outage, all succeeded"))
    else:
        checks.append((all_errors == 0, f"0 errors ({all_errors})"))
    print()
    for met, text in checks:
        print(f"{'met   ' if met else 'MISSED'} {text}")
    line = (
        f"loadtest_p95_ms={a95 or 0:.1f} loadtest_p99_ms={a99 or 0:.1f} errors={all_errors} "
        f"record_views_per_s={record_views / steady:.1f} audit_missing={audit['missing']}"
    )
    result = {
        "scale": scale.name,
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "fault": fault,
        "topology": os.environ.get("LOADTEST_TOPOLOGY", "one"),
        "settings": {
            "clinicians": len(people),
            "seconds": run.seconds,
            "ramp": run.ramp,
            "think": run.think,
            "workers": workers,
            "cpus": os.cpu_count(),
        },
        "load_average_before": load_before,
        "elapsed": elapsed,
        "requests": len(samples),
        "throughput": throughput,
        "record_views": record_views,
        "kinds": rows,
        "all": {"p50": a50, "p95": a95, "p99": a99, "errors": all_errors},
        "browse": {"p50": b50, "p95": b95, "p99": b99, "errors": browse_errors},
        "after_ramp": {"p50": s50, "p95": s95, "p99": s99, "errors": steady_errors, "n": len(steady_samples)},
        "outage": run.outage,
        "audit": audit,
        "checks": [{"met": met, "check": text} for met, text in checks],
        "summary": line,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    name = f"loadtest{f'-fault-{fault}' if fault else ''}-{scale.name}-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    (RESULTS / name).write_text(json.dumps(result, indent=2, default=str))
    print(f"\nresults: bench/results/{name}")
    print(line, flush=True)


if __name__ == "__main__":
    main()
