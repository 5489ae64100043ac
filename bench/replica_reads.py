"""`make bench-replica`: the record and FHIR reads served with their entries from a streaming replica and from
the primary, in the same run, and the replica's lag under FHIR ingest (issue 20; carerecord/replicas.py).

The bench dataset (built if missing), then a hot standby of the whole cluster (`bench.replica start`: the bench
database is copied with everything else), then in-process through the whole Django stack with production
settings and DATABASE_REPLICA_URLS pointing at the standby's copy of the bench database:

- each page and FHIR read timed over BENCH_REQUESTS requests with the router free to use the replica, then with
  it told none is usable (everything on the primary) — alternately, in blocks, so drift in the machine falls on
  both — and its queries on the replica counted, so the replica run provably read there;
- FHIR ingest (BENCH_BUNDLES 1,000-resource bundles, one stream) while the replica's lag is sampled every 0.1 s:
  the primary's WAL position against the replica's replayed one, in bytes and in seconds as the router measures
  it, p50/p95/max.

On one 2-core machine a replica adds no capacity (it shares the cores and the disk); what this shows is what
reading a replica costs a request (a second connection, the lag check) and how far behind it runs under ingest.
The standby is stopped afterwards unless BENCH_REPLICA_KEEP=1. Results: bench/results/replica-<scale>-<time>.json.
"""

import json
import os
import sys
import threading
import time
from datetime import UTC, datetime

from .config import RESULTS, database_name, scale_from_env, server_url, setup_django

BLOCKS = 4  # each page's requests alternate between replica and primary in this many blocks


def percentile(values, q):
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, max(0, int(len(ordered) * q) - 1))], 2) if ordered else None


def measured_both(bench, name, request, count):
    """Times `request(i)` `count` times on each side, alternating in blocks; counts one request's replica queries."""
    from django.db import connections
    from django.test.utils import CaptureQueriesContext

    from carerecord import replicas

    times = {"replica": [], "primary": []}
    errors = 0
    original = replicas.usable_replica
    for i in range(10):  # warm both connections and the statements
        request(i)
    per_block = max(1, count // BLOCKS)
    for block in range(BLOCKS):
        for side in ("replica", "primary") if block % 2 == 0 else ("primary", "replica"):
            replicas.usable_replica = original if side == "replica" else (lambda: None)
            try:
                for i in range(per_block):
                    began = time.perf_counter()
                    response = request(block * per_block + i)
                    times[side].append((time.perf_counter() - began) * 1000)
                    errors += response.status_code != 200
            finally:
                replicas.usable_replica = original
    with CaptureQueriesContext(connections["replica"]) as on_replica:
        request(0)
    row = {
        "name": name,
        "replica_p50_ms": percentile(times["replica"], 0.5),
        "replica_p95_ms": percentile(times["replica"], 0.95),
        "primary_p50_ms": percentile(times["primary"], 0.5),
        "primary_p95_ms": percentile(times["primary"], 0.95),
        "queries_on_replica": len(on_replica.captured_queries),
        "n": len(times["replica"]),
        "errors": errors,
    }
    print(
        f"  {name:42} replica {row['replica_p50_ms']:>7} / {row['replica_p95_ms']:<7} "
        f"primary {row['primary_p50_ms']:>7} / {row['primary_p95_ms']:<7} ms "
        f"({row['queries_on_replica']} queries on the replica)",
        flush=True,
    )
    return row


def lag_under_ingest(bench, replica_url: str) -> dict:
    import psycopg

    from carerecord import replicas

    from .run import Measured

    ingest = Measured("FHIR ingest during the lag samples")
    worker = threading.Thread(target=bench.ingest, args=(ingest,))
    samples_bytes, samples_seconds = [], []
    with (
        psycopg.connect(f"{server_url()}/{database_name(bench.scale)}", autocommit=True) as primary,
        psycopg.connect(replica_url, autocommit=True) as replica,
    ):
        worker.start()
        while worker.is_alive():
            [(position,)] = primary.execute("SELECT pg_current_wal_lsn()::text").fetchall()
            [(behind,)] = replica.execute(
                "SELECT pg_wal_lsn_diff(%s::pg_lsn, pg_last_wal_replay_lsn())", [position]
            ).fetchall()
            samples_bytes.append(max(0, float(behind)))
            health = replicas.measure("replica")
            samples_seconds.append(health.lag if health.lag is not None else float("inf"))
            time.sleep(0.1)
        worker.join()
    resources = ingest.extra.get("resources", 0)
    row = {
        "ingest_resources_per_second": ingest.extra.get("resources_per_second"),
        "ingest_resources": resources,
        "ingest_errors": ingest.errors,
        "samples": len(samples_bytes),
        "lag_bytes_p50": percentile(samples_bytes, 0.5),
        "lag_bytes_p95": percentile(samples_bytes, 0.95),
        "lag_bytes_max": max(samples_bytes, default=None),
        "lag_seconds_p50": percentile(samples_seconds, 0.5),
        "lag_seconds_p95": percentile(samples_seconds, 0.95),
        "lag_seconds_max": max(samples_seconds, default=None),
        "samples_out_of_bound": sum(s > bench.max_lag for s in samples_seconds),
    }
    print(
        f"  replica lag under ingest ({resources:,} resources, {row['ingest_resources_per_second']} res/s): "
        f"p50 {row['lag_seconds_p50']} s / p95 {row['lag_seconds_p95']} s / max {row['lag_seconds_max']} s; "
        f"{row['lag_bytes_p95']:,.0f} bytes at p95; {row['samples_out_of_bound']} of {row['samples']} samples "
        f"past the {bench.max_lag} s bound",
        flush=True,
    )
    return row


def main() -> None:
    import warnings

    from . import replica as standby

    warnings.filterwarnings("ignore", message="No directory at", category=UserWarning)

    scale = scale_from_env()
    requests = int(os.environ.get("BENCH_REQUESTS", "200"))
    replica_url = f"postgres://root@127.0.0.1:{standby.PORT}/{database_name(scale)}"
    os.environ["DATABASE_REPLICA_URLS"] = replica_url
    os.environ.setdefault("REPLICA_MAX_LAG_SECONDS", "5")
    setup_django(scale)
    from django.conf import settings

    from . import dataset
    from .run import Bench

    detail = dataset.ensure(scale)
    began = time.perf_counter()
    standby.start()
    copy_seconds = round(time.perf_counter() - began, 1)
    bench = Bench(scale, detail, requests, int(os.environ.get("BENCH_BUNDLES", "8")))
    bench.max_lag = settings.REPLICA_MAX_LAG_SECONDS
    rows = []
    try:
        from directory.actions import create_api_token

        client = bench.signed_in()
        _, secret = create_api_token(by=None, name="bench: replica reads", user=bench.viewer)
        api = bench.client(HTTP_AUTHORIZATION=f"Bearer {secret}")
        import psycopg

        with psycopg.connect(f"{server_url()}/{database_name(scale)}", autocommit=True) as conn:
            _, mine = bench.samples(conn)
        heavy = bench.heavy
        print(f"reads with their entries from the replica and from the primary ({requests} each):", flush=True)
        pages = [
            ("record summary (heavy patient)", lambda i: client.get(f"/patients/{heavy}/")),
            ("record summary (typical patient)", lambda i: client.get(f"/patients/{mine[i % len(mine)]}/")),
            ("record results (heavy patient)", lambda i: client.get(f"/patients/{heavy}/results/")),
            (
                "FHIR Observation?patient (page 1)",
                lambda i: api.get("/fhir/Observation", {"patient": str(mine[i % len(mine)])}),
            ),
            ("FHIR $everything (heavy patient)", lambda i: api.get(f"/fhir/Patient/{heavy}/$everything")),
        ]
        for name, request in pages:
            rows.append(measured_both(bench, name, request, requests))
        lag = lag_under_ingest(bench, replica_url)
    finally:
        if os.environ.get("BENCH_REPLICA_KEEP") != "1":
            standby.stop()
    result = {
        "scale": scale.name,
        "at": datetime.now(UTC).isoformat(),
        "replica_copy_seconds": copy_seconds,
        "reads": rows,
        "lag_under_ingest": lag,
        "max_lag_seconds": bench.max_lag,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"replica-{scale.name}-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    path.write_text(json.dumps(result, indent=2))
    print(f"results: {path.relative_to(RESULTS.parent.parent)}")
    unread = [row["name"] for row in rows if not row["queries_on_replica"]]
    if unread or any(row["errors"] for row in rows) or lag["ingest_errors"]:
        print(f"FAILED: errors, or nothing read on the replica for {unread}")
        sys.exit(1)


if __name__ == "__main__":
    main()
