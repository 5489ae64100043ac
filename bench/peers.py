"""A peer's figures on the same workload and machine kind, for `make bench-http` to print beside carerecord's.

Source: shared/PEERS.md, 2026-12-01 — Medplum server 5.0.2 (one Node 22 process, PostgreSQL 15, Redis 7) on the
same 2-core machine kind, one keep-alive HTTP client on loopback, concurrency 1, 20 warm-up reads, two runs (the
second on a database already holding 5,000 resources). Copied here so that the bench never reads ../shared.
Latencies in ms (p50, p95); ingest in resources/s over 5 transaction bundles of 1,000 entries.
"""

MEDPLUM_SOURCE = "shared/PEERS.md, 2026-12-01 (Medplum 5.0.2, same 2-core machine kind)"

INGEST = "ingest"
READ_PATIENT = "read Patient"
SEARCH_OBSERVATION = "search Observation by subject"
SEARCH_IDENTIFIER = "search Patient by identifier"
EVERYTHING = "$everything"

# measure -> (run 1, run 2); reads as (p50, p95), ingest as resources/s.
MEDPLUM = {
    INGEST: (122.0, 107.0),
    READ_PATIENT: ((2.46, 3.61), (1.77, 3.53)),
    SEARCH_OBSERVATION: ((3.33, 6.35), (3.04, 5.25)),
    SEARCH_IDENTIFIER: ((2.24, 4.29), (2.42, 4.10)),
    EVERYTHING: ((36.7, 41.8), (37.4, 49.2)),
}

# Issue 19's targets: each read's p95 at most Medplum's run 1 p95 ($everything: a third of it), ingest at least
# 3,000 resources/s in one stream.
TARGET_P95_MS = {
    READ_PATIENT: MEDPLUM[READ_PATIENT][0][1],
    SEARCH_OBSERVATION: MEDPLUM[SEARCH_OBSERVATION][0][1],
    SEARCH_IDENTIFIER: MEDPLUM[SEARCH_IDENTIFIER][0][1],
    EVERYTHING: MEDPLUM[EVERYTHING][0][1] / 3,
}
TARGET_INGEST_RPS = 3_000.0
