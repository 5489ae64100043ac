"""Does partitioning observations by patient hash pay at this scale? (issue 20: "where the bench shows it pays")

On the bench database (BENCH_SCALE, default `default`: 100,000 patients), a copy of patients_observation
partitioned by HASH (patient_id) into BENCH_HASH_PARTITIONS (16) is made beside the plain table, with the same
indexes, and the same queries timed on both (p50 and p95 of BENCH_HASH_QUERIES each, server-side prepared, warm):
a patient's observations, a trend (one patient, one code, newest first), observations by their results (what the
results page reads: no patient in the predicate, so every partition is probed) and an insert of 5,000 rows (rolled
back). The copy is dropped afterwards. `python -m bench.observation_partitions`.
"""

import os
import random
import statistics
import time

import psycopg

from .config import SCALES, database_url

PLAIN, HASHED = "patients_observation", "bench_observation_by_hash"


def _time(cursor, sql: str, params_list) -> tuple[float, float]:
    times = []
    for params in params_list:
        began = time.perf_counter()
        cursor.execute(sql, params, prepare=True)
        cursor.fetchall()
        times.append((time.perf_counter() - began) * 1000)
    times.sort()
    return statistics.median(times), times[int(0.95 * (len(times) - 1))]


def build_copy(cursor, partitions: int) -> None:
    cursor.execute(f"DROP TABLE IF EXISTS {HASHED}")
    cursor.execute(f"CREATE TABLE {HASHED} (LIKE {PLAIN} INCLUDING DEFAULTS) PARTITION BY HASH (patient_id)")
    for remainder in range(partitions):
        cursor.execute(
            f"CREATE TABLE {HASHED}_{remainder} PARTITION OF {HASHED} "
            f"FOR VALUES WITH (MODULUS {partitions}, REMAINDER {remainder})"
        )
    cursor.execute(f"INSERT INTO {HASHED} SELECT * FROM {PLAIN}")  # noqa: S608 (our own names)
    cursor.execute("SELECT indexdef FROM pg_indexes WHERE tablename = %s", [PLAIN])
    for (definition,) in cursor.fetchall():
        if "UNIQUE" in definition and "(id)" in definition:
            cursor.execute(f"ALTER TABLE {HASHED} ADD PRIMARY KEY (id, patient_id)")
            continue
        name = definition.split(" INDEX ", 1)[1].split(" ON ", 1)[0]
        cursor.execute(
            definition.replace(f" {name} ON ", f" {name}_h ON ").replace(f"public.{PLAIN} ", f"public.{HASHED} ")
        )
    cursor.execute(f"ANALYZE {PLAIN}")
    cursor.execute(f"ANALYZE {HASHED}")


def main() -> None:
    scale = SCALES[os.environ.get("BENCH_SCALE") or "default"]
    partitions = int(os.environ.get("BENCH_HASH_PARTITIONS", "16"))
    queries = int(os.environ.get("BENCH_HASH_QUERIES", "500"))
    rng = random.Random(20)
    with psycopg.connect(database_url(scale), autocommit=True) as conn, conn.cursor() as cursor:
        cursor.execute(f"SELECT count(*), pg_total_relation_size('{PLAIN}') FROM {PLAIN}")  # noqa: S608
        rows, size = cursor.fetchone()
        print(f"{PLAIN}: {rows:,} rows, {size / 2**20:,.0f} MB; building the copy by hash ({partitions} partitions)")
        began = time.perf_counter()
        build_copy(cursor, partitions)
        print(f"  copy built in {time.perf_counter() - began:.0f} s")
        cursor.execute(f"SELECT patient_id, code, result_id FROM {PLAIN} TABLESAMPLE SYSTEM (1) LIMIT 20000")  # noqa: S608
        sample = cursor.fetchall()
        picks = [rng.choice(sample) for _ in range(queries)]
        results = [[rng.choice(sample)[2] for _ in range(20)] for _ in range(queries)]
        measures = {
            "a patient's observations": ("SELECT * FROM {t} WHERE patient_id = %s", [(p,) for p, _, _ in picks]),
            "a trend (patient, code)": (
                "SELECT * FROM {t} WHERE patient_id = %s AND code = %s ORDER BY effective_at DESC LIMIT 50",
                [(p, c) for p, c, _ in picks],
            ),
            "by 20 results (no patient)": ("SELECT * FROM {t} WHERE result_id = ANY(%s)", [(r,) for r in results]),
        }
        print(f"  {'query':<30} {'plain p50/p95 ms':>18} {'by hash p50/p95 ms':>20}")
        for name, (sql, params) in measures.items():
            for table in (PLAIN, HASHED):  # warm both
                _time(cursor, sql.format(t=table), params[:50])
            plain = _time(cursor, sql.format(t=PLAIN), params)
            hashed = _time(cursor, sql.format(t=HASHED), params)
            print(f"  {name:<30} {plain[0]:>8.3f} / {plain[1]:<8.3f} {hashed[0]:>9.3f} / {hashed[1]:<8.3f}")
        cursor.execute("SELECT max(id) FROM patients_observation")
        top = cursor.fetchone()[0]
        cursor.execute(
            "SELECT string_agg(column_name, ', ' ORDER BY ordinal_position) FROM information_schema.columns "
            "WHERE table_name = %s AND column_name <> 'id'",
            [PLAIN],
        )
        columns = cursor.fetchone()[0]
        for table in (PLAIN, HASHED):
            conn.autocommit = False
            began = time.perf_counter()
            cursor.execute(
                f"INSERT INTO {table} (id, {columns}) SELECT id + {top}, {columns} FROM {PLAIN} "  # noqa: S608
                "ORDER BY id LIMIT 5000"
            )
            elapsed = (time.perf_counter() - began) * 1000
            conn.rollback()
            conn.autocommit = True
            print(f"  insert 5,000 rows into {table}: {elapsed:.0f} ms")
        cursor.execute(f"DROP TABLE {HASHED}")


if __name__ == "__main__":
    main()
