"""`make bench-http`: shared/PEERS.md's FHIR workload sent to carerecord over HTTP, beside Medplum's figures.

The same client and server shape as the peer was measured with: gunicorn with ONE sync worker and production
settings (bench.config.production_environment) on the scale's bench database, on 127.0.0.1; one keep-alive HTTP
client (requests.Session), concurrency 1.

1. **Ingest**: an acute trust's organisation token posts BENCH_HTTP_BUNDLES (5) transaction Bundles of 1,000
   entries (bench.workload.bundle: 100 Patients with 9 heart-rate Observations each), fresh NHS numbers every run
   (bench.dataset.next_ingest_block); resources/s per bundle and over all of them.
2. **Reads**: a professional of the dataset (the bench's viewer) with a personal token, whose care team is given
   an involvement with every ingested patient through sharing.actions.start_involvement (the audited write that
   creates the guardian grant), so every read passes the access decision and writes its AccessEvent (ended
   again at the end of the run, so that the viewer's list `make bench` measures stays as built). 20 warm-up
   reads, then `GET Patient/{id}` ×500, `GET Observation?subject=Patient/{id}` ×300 (9 hits),
   `GET Patient?identifier=<NHS number system>|N` ×300 (1 hit), `GET Patient/{id}/$everything` ×200 (10 entries:
   the Patient and its 9 Observations; carerecord's also holds the reader's CareTeam, counted apart). Every
   answer must be 200 with those hit counts; anything else is an error.
3. **Floors**: the HTTP floor, a constant JSON answer (bench.http_floor) through a gunicorn of its own with the
   same worker settings, GET ×500; and the SQL floor of a read's access decision and audit row, hand-written over
   one psycopg connection: one statement for the care-team grant, an upheld objection and an active
   professional, then bench.floor's AccessEvent INSERT (autocommit: its own commit, as the app's). A read's floor
   is HTTP floor + SQL floor (p50 + p50, p95 + p95); it leaves out the resource's own rows, so it is a lower bound.

Environment: BENCH_SCALE (small | default | large); BENCH_HTTP_SCALE (1.0) multiplies every count (0.1 for a
smoke: 1 bundle, 50/30/30/20 reads); BENCH_HTTP_BUNDLES overrides the number of bundles.
Prints the PEERS.md table and issue 19's targets met/MISSED; writes bench/results/http-<scale>-<time>.json.
Exit status 0 whether or not targets are met; 1 when any answer was not 200 or not the expected hits.
"""

import json
import os
import platform
import sys
import time
import warnings
from dataclasses import dataclass, field
from datetime import UTC, datetime

from . import peers
from .config import RESULTS, ROOT, database_url, scale_from_env, setup_django
from .run import Measured, dataset_and_machine

WARMUP = 20
BUNDLES = 5
HTTP_FLOOR_REQUESTS = 500
SQL_FLOOR_REQUESTS = 500
# PEERS.md's read workload: (measure, requests, expected hits)
READS = (
    (peers.READ_PATIENT, 500, 1),
    (peers.SEARCH_OBSERVATION, 300, 9),
    (peers.SEARCH_IDENTIFIER, 300, 1),
    (peers.EVERYTHING, 200, 10),
)
TIMEOUT = 60

# The access decision of a FHIR read, as sharing.access.decide() makes it, in one statement: an active user
# with an active professional profile at an active organisation, the care-team grant on the patient, and whether
# the patient has an upheld objection. The AccessEvent row is bench.floor.AUDIT.
DECIDE = """SELECT u.is_active AND pr.active AND o.active,
    EXISTS (SELECT 1 FROM sharing_patientgroupobjectpermission g JOIN auth_user_groups ug ON ug.group_id = g.group_id
        WHERE g.content_object_id = %(patient)s AND ug.user_id = %(user)s AND g.permission_id = %(permission)s),
    EXISTS (SELECT 1 FROM optout_objection WHERE patient_id = %(patient)s AND status = 'upheld')
    FROM auth_user u JOIN directory_professional pr ON pr.user_id = u.id
    JOIN directory_organisation o ON o.id = pr.organisation_id WHERE u.id = %(user)s"""


def scaled(count: int, factor: float) -> int:
    return max(1, round(count * factor))


def percentiles(values) -> tuple[float | None, float | None]:
    return Measured._pct(values, 50), Measured._pct(values, 95)


@dataclass
class Ingest:
    bundle_ms: list = field(default_factory=list)
    resources_per_bundle: int = 0
    errors: int = 0
    note: str = ""

    @property
    def per_bundle_rps(self) -> list[float]:
        return [round(self.resources_per_bundle / (ms / 1000), 1) for ms in self.bundle_ms]

    @property
    def rps(self) -> float | None:
        total = sum(self.bundle_ms)
        return round(len(self.bundle_ms) * self.resources_per_bundle / (total / 1000), 1) if total else None

    def as_dict(self) -> dict:
        return {
            "bundles": len(self.bundle_ms),
            "resources_per_bundle": self.resources_per_bundle,
            "bundle_ms": [round(ms, 1) for ms in self.bundle_ms],
            "per_bundle_resources_per_second": self.per_bundle_rps,
            "resources_per_second": self.rps,
            "errors": self.errors,
            "note": self.note,
        }


# --- pure pieces: floors, targets, the table (tests/bench/test_http.py) ------------------------------------------


def read_floor(http: tuple, sql: tuple) -> tuple[float | None, float | None]:
    """A read's floor: the HTTP floor plus the SQL floor of its decision and audit row, p50 + p50, p95 + p95."""
    return tuple(None if a is None or b is None else a + b for a, b in zip(http, sql, strict=True))


def targets(reads: dict[str, tuple], ingest_rps: float | None) -> list[tuple[bool, str]]:
    """Issue 19's targets: `reads` maps each measure to its (p50, p95) ms."""
    checks = []
    for name, target in peers.TARGET_P95_MS.items():
        p95 = reads.get(name, (None, None))[1]
        if p95 is not None:
            medplum = "a third of Medplum's" if name == peers.EVERYTHING else "Medplum's"
            checks.append((p95 <= target, f"{name} p95 {p95:.2f} ms ≤ {medplum} {target:.2f} ms"))
    if ingest_rps is not None:
        checks.append(
            (
                ingest_rps >= peers.TARGET_INGEST_RPS,
                f"ingest {ingest_rps:,.0f} resources/s ≥ {peers.TARGET_INGEST_RPS:,.0f}",
            )
        )
    return checks


def _ms(pair) -> str:
    return "-" if pair is None or pair[0] is None else f"{pair[0]:.2f} / {pair[1]:.2f}"


def _ratio(value, reference) -> str:
    return "-" if value is None or not reference else f"{value / reference:.1f}×"


def table(reads: dict[str, tuple], ingest_rps: float | None, floors: dict[str, tuple]) -> list[str]:
    """PEERS.md's table: measure | carerecord p50 / p95 | Medplum run 1 | run 2 | ratio to Medplum run 1 (p95, or
    resources/s for ingest), then each read's floor (HTTP + SQL, p50 / p95) and read ÷ floor (p50, p95)."""
    rows = [("measure", "carerecord", "Medplum run 1", "Medplum run 2", "÷ Medplum", "floor p50 / p95", "÷ floor")]
    one, two = peers.MEDPLUM[peers.INGEST]
    rows.append(
        (
            "ingest, resources/s",
            "-" if ingest_rps is None else f"{ingest_rps:,.0f}",
            f"{one:,.0f}",
            f"{two:,.0f}",
            _ratio(ingest_rps, one),
            "",
            "",
        )
    )
    for name, _, _ in READS:
        mine = reads.get(name)
        one, two = peers.MEDPLUM[name]
        floor = floors.get(name)
        by_floor = "-"
        if mine and floor and floor[0] and mine[0] is not None:
            by_floor = f"{mine[0] / floor[0]:.1f}× / {mine[1] / floor[1]:.1f}×"
        rows.append(
            (
                f"{name} p50 / p95 ms",
                _ms(mine),
                _ms(one),
                _ms(two),
                _ratio(mine[1] if mine else None, one[1]),
                _ms(floor),
                by_floor,
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for n, row in enumerate(rows):
        cells = [row[0].ljust(widths[0])] + [cell.rjust(width) for cell, width in zip(row[1:], widths[1:], strict=True)]
        lines.append(" | ".join(cells).rstrip())
        if n == 0:
            lines.append("-+-".join("-" * width for width in widths))
    return lines


def git_commit() -> str:
    """The checked-out commit, read from .git without running git ("" when there is none)."""
    git = ROOT / ".git"
    try:
        head = (git / "HEAD").read_text().strip()
        if not head.startswith("ref: "):
            return head
        ref = head[5:]
        if (git / ref).exists():
            return (git / ref).read_text().strip()
        for line in (git / "packed-refs").read_text().splitlines():
            if line.endswith(f" {ref}"):
                return line.split()[0]
    except OSError:
        pass
    return ""


# --- measuring ---------------------------------------------------------------------------------------------------


class HttpBench:
    def __init__(self, scale, detail: dict, factor: float, bundles: int):
        self.scale, self.detail, self.factor, self.bundles = scale, detail, factor, bundles
        self.reads: dict[str, Measured] = {}
        self.ingest = Ingest()
        self.http_floor: list[float] = []
        self.sql_floor: list[float] = []
        self.sql_floor_errors = 0
        self.patients: list = []  # the ingested Patients, in the order sent
        self.connection_header = ""
        self.involvements: list = []

    @staticmethod
    def session():
        import requests

        session = requests.Session()
        session.headers["Accept"] = "application/fhir+json"
        return session

    def measure_http_floor(self) -> None:
        from .loadtest import start_gunicorn, stop
        from .ports import free_port

        port = free_port()
        server = start_gunicorn(self.scale, port, 1, app="bench.http_floor:application")
        try:
            session, url = self.session(), f"http://127.0.0.1:{port}/fhir/Patient/floor"
            for _ in range(WARMUP):
                session.get(url, timeout=TIMEOUT)
            for _ in range(scaled(HTTP_FLOOR_REQUESTS, self.factor)):
                began = time.perf_counter()
                response = session.get(url, timeout=TIMEOUT)
                self.http_floor.append((time.perf_counter() - began) * 1000)
                if response.status_code != 200:
                    raise SystemExit(f"HTTP floor answered {response.status_code}")
            session.close()
        finally:
            stop(server)

    def run_carerecord(self) -> None:
        from directory.actions import create_api_token
        from directory.models import Organisation

        from .loadtest import start_gunicorn, stop
        from .ports import free_port

        organisation = Organisation.objects.get(ods_code=self.detail["ingest_organisation"])
        if organisation.kind != Organisation.Kind.ACUTE_TRUST:
            raise SystemExit(f"{organisation.ods_code} is {organisation.kind}, not an acute trust")
        _, ingest_secret = create_api_token(by=None, name="bench-http: ingest", organisation=organisation)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        print(f"  gunicorn (1 sync worker, production settings) on {base}", flush=True)
        server = start_gunicorn(self.scale, port, 1)
        try:
            session = self.session()
            self.send_bundles(session, base, ingest_secret)
            secret = self.give_reader_access()
            analyse_what_ingest_wrote()
            session.headers["Authorization"] = f"Bearer {secret}"
            self.time_reads(session, base)
            session.close()
        finally:
            stop(server)

    def send_bundles(self, session, base: str, secret: str) -> None:
        from . import workload
        from .dataset import next_ingest_block

        numbers = workload.nhs_numbers(next_ingest_block(self.scale))
        batches = [[next(numbers) for _ in range(workload.PATIENTS_PER_BUNDLE)] for _ in range(self.bundles)]
        bodies = [workload.bundle(batch) for batch in batches]
        self.ingest.resources_per_bundle = workload.RESOURCES_PER_BUNDLE
        headers = {"Authorization": f"Bearer {secret}", "Content-Type": "application/fhir+json"}
        print(f"  ingest: {len(bodies)} bundles of {workload.RESOURCES_PER_BUNDLE:,} entries", flush=True)
        for body in bodies:
            began = time.perf_counter()
            response = session.post(f"{base}/fhir/", data=body, headers=headers, timeout=TIMEOUT * 5)
            self.ingest.bundle_ms.append((time.perf_counter() - began) * 1000)
            self.connection_header = response.headers.get("Connection", "")
            if response.status_code != 200:
                self.ingest.errors += 1
                self.ingest.note = self.ingest.note or f"HTTP {response.status_code}: {response.content[:300]!r}"
        from patients.models import Patient

        sent = [number for batch in batches for number in batch]
        found = {patient.nhs_number: patient for patient in Patient.objects.filter(nhs_number__in=sent)}
        self.patients = [found[number] for number in sent if number in found]
        if len(self.patients) != len(sent):
            self.ingest.errors += 1
            self.ingest.note = self.ingest.note or f"{len(sent) - len(self.patients)} sent patients not found"

    def give_reader_access(self) -> str:
        """The viewer's care team gets an involvement with every ingested patient (audited, grants access);
        returns the viewer's personal token."""
        from django.contrib.auth import get_user_model

        from directory.actions import create_api_token
        from directory.models import CareTeamMembership, Professional
        from sharing.actions import start_involvement
        from sharing.models import Involvement

        self.viewer = get_user_model().objects.get(email=self.detail["viewer_email"])
        self.professional = Professional.objects.get(user=self.viewer)
        team = CareTeamMembership.objects.filter(professional=self.professional).select_related("team").first().team
        print(f"  reader: {self.viewer.email}, team {team.name}: {len(self.patients)} involvements", flush=True)
        self.involvements = [
            start_involvement(by=None, patient=patient, care_team=team, reason=Involvement.Reason.REFERRAL)
            for patient in self.patients
        ]
        _, secret = create_api_token(by=None, name="bench-http: reader", user=self.viewer)
        return secret

    def time_reads(self, session, base: str) -> None:
        """Each measure's requests go to the ingested patients in turn; URLs are built before the clock starts."""
        urls = {name: [base + path for path in paths(name, self.patients)] for name, _, _ in READS}
        for i in range(WARMUP):  # the four kinds in turn
            name = READS[i % len(READS)][0]
            session.get(urls[name][i % len(urls[name])], timeout=TIMEOUT)
        for name, count, hits in READS:
            measured = Measured(name)
            print(f"  {name} ×{scaled(count, self.factor)}", flush=True)
            for i in range(scaled(count, self.factor)):
                url = urls[name][i % len(urls[name])]
                began = time.perf_counter()
                response = session.get(url, timeout=TIMEOUT)
                measured.times_ms.append((time.perf_counter() - began) * 1000)
                problem = answer_problem(name, response.status_code, response.content, hits)
                if i == 0 and not problem and name != peers.READ_PATIENT:
                    measured.extra["entries"] = entry_types(response.content)
                if problem:
                    measured.errors += 1
                    measured.note = measured.note or f"{url.removeprefix(base)}: {problem}"
            self.connection_header = response.headers.get("Connection", "")
            measured.n = len(measured.times_ms)
            self.reads[name] = measured

    def measure_sql_floor(self) -> None:
        import psycopg

        from .floor import AUDIT

        with psycopg.connect(database_url(self.scale), autocommit=True) as conn:
            permission = conn.execute(
                """SELECT p.id FROM auth_permission p JOIN django_content_type c ON c.id = p.content_type_id
                   WHERE c.app_label = 'patients' AND p.codename = 'read_shared_record'"""
            ).fetchone()[0]
            base = {"user": self.viewer.pk, "permission": permission}

            def read(i):
                params = {**base, "patient": self.patients[i % len(self.patients)].pk}
                active, granted, opted_out = conn.execute(DECIDE, params).fetchone()
                if active and granted:
                    conn.execute(AUDIT, params)
                return active and granted and not opted_out

            for i in range(WARMUP):
                read(i)
            for i in range(scaled(SQL_FLOOR_REQUESTS, self.factor)):
                began = time.perf_counter()
                allowed = read(i)
                self.sql_floor.append((time.perf_counter() - began) * 1000)
                self.sql_floor_errors += not allowed

    def take_back_access(self) -> None:
        """End the run's involvements (audited; the grants go), so that the viewer's list, which `make bench`
        measures, does not grow by every run's patients."""
        from sharing.actions import end_involvement

        for involvement in self.involvements:
            end_involvement(by=None, involvement=involvement)
        self.involvements = []

    # --- the report ---

    def figures(self) -> dict[str, tuple]:
        return {name: (m.p50, m.p95) for name, m in self.reads.items()}

    def floors(self) -> dict[str, tuple]:
        floor = read_floor(percentiles(self.http_floor), percentiles(self.sql_floor))
        return {name: floor for name in self.reads}

    def errors(self) -> int:
        return self.ingest.errors + sum(m.errors for m in self.reads.values()) + self.sql_floor_errors


# The tables a run's ingest and reader access fill: the dataset's build analysed them when some were still empty
# (fhir_receivedresource), and a live system's autovacuum would have analysed them again long before anyone read
# them. Without it, the planner still believes the kept resources table empty and scans every row of the sender's
# resources for a page's nine (12 ms in place of 0.1).
INGESTED_TABLES = (
    "fhir_receivedresource",
    "fhir_submission",
    "patients_patient",
    "patients_sourcepatientid",
    "patients_result",
    "patients_observation",
    "sharing_involvement",
    "sharing_patientgroupobjectpermission",
)


def analyse_what_ingest_wrote() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        for table in INGESTED_TABLES:
            cursor.execute(f"ANALYZE {table}")


def paths(name: str, patients) -> list[str]:
    """The path of each request of a measure, one per patient (PEERS.md's requests)."""
    from urllib.parse import urlencode

    from .workload import NHS_NUMBER_SYSTEM

    if name == peers.READ_PATIENT:
        return [f"/fhir/Patient/{p.pk}" for p in patients]
    if name == peers.SEARCH_OBSERVATION:
        return ["/fhir/Observation?" + urlencode({"subject": f"Patient/{p.pk}"}) for p in patients]
    if name == peers.SEARCH_IDENTIFIER:
        return ["/fhir/Patient?" + urlencode({"identifier": f"{NHS_NUMBER_SYSTEM}|{p.nhs_number}"}) for p in patients]
    return [f"/fhir/Patient/{p.pk}/$everything" for p in patients]


def answer_problem(name: str, status: int, content: bytes, hits: int) -> str:
    """Why an answer is not the one PEERS.md's workload expects ("" when it is): 200, and `hits` resources
    (read: the Patient itself; searches: that many of the type searched; $everything: that many Patient and
    Observation entries. carerecord's $everything also holds the CareTeam whose involvement lets the reader in,
    which Medplum's workload has no counterpart of: counted apart, see `entry_types`)."""
    if status != 200:
        return f"HTTP {status}: {content[:200]!r}"
    try:
        body = json.loads(content)
    except ValueError:
        return f"not JSON: {content[:200]!r}"
    if name == peers.READ_PATIENT:
        found = int(body.get("resourceType") == "Patient")
    else:
        entries = body.get("entry", [])
        if name == peers.EVERYTHING:
            found = sum(1 for e in entries if e.get("resource", {}).get("resourceType") in ("Patient", "Observation"))
        else:
            wanted = "Observation" if name == peers.SEARCH_OBSERVATION else "Patient"
            found = sum(1 for e in entries if e.get("resource", {}).get("resourceType") == wanted)
    return "" if found == hits else f"{found} hits, not {hits}"


def entry_types(content: bytes) -> dict[str, int]:
    """How many entries of each resource type an answer (a Bundle) holds."""
    types: dict[str, int] = {}
    for entry in json.loads(content).get("entry", []):
        kind = entry.get("resource", {}).get("resourceType", "?")
        types[kind] = types.get(kind, 0) + 1
    return types


def main() -> None:
    warnings.filterwarnings("ignore", message="No directory at", category=UserWarning)
    scale = scale_from_env()
    factor = float(os.environ.get("BENCH_HTTP_SCALE") or 1.0)
    bundles = int(os.environ.get("BENCH_HTTP_BUNDLES") or scaled(BUNDLES, factor))
    setup_django(scale)
    from . import dataset

    began = time.perf_counter()
    detail, machine, load_before = dataset_and_machine(scale)
    bench = HttpBench(scale, detail, factor, bundles)
    print(f"PEERS.md workload over HTTP against {dataset.database_name(scale)} (BENCH_HTTP_SCALE {factor:g})")
    print("  HTTP floor: bench.http_floor through gunicorn (1 sync worker)", flush=True)
    bench.measure_http_floor()
    try:
        bench.run_carerecord()
        print("  SQL floor: the access decision and AccessEvent INSERT over psycopg", flush=True)
        bench.measure_sql_floor()
    finally:
        bench.take_back_access()

    reads, floors, ingest_rps = bench.figures(), bench.floors(), bench.ingest.rps
    http_floor, sql_floor = percentiles(bench.http_floor), percentiles(bench.sql_floor)
    print(
        f"\ncarerecord over HTTP, scale {scale.name}: one sync gunicorn worker, one client, concurrency 1 "
        f"(Medplum: {peers.MEDPLUM_SOURCE})"
    )
    for line in table(reads, ingest_rps, floors):
        print(line)
    print(
        f"\ningest per bundle, resources/s: {', '.join(f'{r:,.0f}' for r in bench.ingest.per_bundle_rps)}"
        + (f" (errors {bench.ingest.errors}: {bench.ingest.note})" if bench.ingest.errors else "")
    )
    print(
        f"floors: HTTP (constant JSON, same gunicorn) p50 {_ms(http_floor)} ms; SQL decision + audit INSERT "
        f"p50 {_ms(sql_floor)} ms; read floor = HTTP + SQL"
    )
    if bench.connection_header:
        print(f"server's Connection header: {bench.connection_header!r} (gunicorn's sync worker does no keep-alive)")
    if peers.EVERYTHING in bench.reads and "entries" in bench.reads[peers.EVERYTHING].extra:
        types = bench.reads[peers.EVERYTHING].extra["entries"]
        print(f"$everything's entries: {', '.join(f'{n} {kind}' for kind, n in types.items())}")
    for m in bench.reads.values():
        if m.errors:
            print(f"  {m.name}: {m.errors} errors of {m.n}: {m.note}")
    if bench.sql_floor_errors:
        print(f"  SQL floor: {bench.sql_floor_errors} reads the decision refused")
    checks = targets(reads, ingest_rps)
    print()
    for met, text in checks:
        print(f"{'met   ' if met else 'MISSED'} {text}")

    result = {
        "scale": scale.name,
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": git_commit(),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            **machine,
        },
        "load_average": {"before": round(load_before, 2), "after": round(os.getloadavg()[0], 2)},
        "factor": factor,
        "server": {"gunicorn_workers": 1, "worker_class": "sync", "connection_header": bench.connection_header},
        "ingest": bench.ingest.as_dict(),
        "reads": [m.as_dict() for m in bench.reads.values()],
        "floors": {
            "http_p50": http_floor[0],
            "http_p95": http_floor[1],
            "http_n": len(bench.http_floor),
            "sql_p50": sql_floor[0],
            "sql_p95": sql_floor[1],
            "sql_n": len(bench.sql_floor),
            "sql_refused": bench.sql_floor_errors,
            "read": {name: {"p50": p50, "p95": p95} for name, (p50, p95) in floors.items()},
        },
        "medplum": {"source": peers.MEDPLUM_SOURCE, "figures": peers.MEDPLUM},
        "targets": [{"met": met, "check": text} for met, text in checks],
        "wall_seconds": round(time.perf_counter() - began, 1),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"http-{scale.name}-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    path.write_text(json.dumps(result, indent=2, default=str))
    print(f"\nresults: {path.relative_to(ROOT)} ({result['wall_seconds']} s)", flush=True)
    # Timings are reported, never asserted; answers that were not 200 with the expected hits fail the run.
    if bench.errors():
        sys.exit(1)


if __name__ == "__main__":
    main()
