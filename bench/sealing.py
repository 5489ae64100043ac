"""`make bench`'s audit-sealing measures (issue 21): what sealing costs the audit writes, and how fast seals are
made and checked (audit/seals.py).

- AccessEvent inserts as a page writes them (one INSERT and its COMMIT each, through the ORM), with no sealer —
  which is how every commit before issue 21 wrote them, the same code — and then with `manage.py seal_audit
  --every 1` running beside them as its own process with production settings: the insert latency p50/p95 of each;
- the sealer on a backlog (rows written with bulk_create, then sealed until caught up): rows sealed per second;
- `verify()` over the seals made in this run: rows checked per second.

BENCH_SEAL_ROWS (default 2,000) inserts a measure; the backlog is ten times that.
"""

import os
import subprocess
import sys
import time

from .config import ROOT, production_environment

WITHOUT = "AccessEvent insert, no sealer"
WITH = "AccessEvent insert, sealer running (every 1 s)"
SEAL = "audit sealing, a backlog"
VERIFY = "audit verify, the run's seals"


def _row(n: int):
    from audit.models import AccessEvent

    return AccessEvent(
        user_email=f"bench.sealing.{n}@bench.carerecord.test",
        professional_name="Bench Sealing",
        organisation_code="ZZP0001",
        outcome="allowed",
        basis="care-team",
        page="summary",
        path="/bench/sealing/",
    )


def _inserts(m, count: int) -> None:
    for n in range(count):
        row = _row(n)
        began = time.perf_counter()
        row.save()
        m.times_ms.append((time.perf_counter() - began) * 1000)
    m.n = len(m.times_ms)


def measure_all(bench) -> None:
    from django.utils import timezone

    from audit import seals
    from audit.models import AccessEvent

    count = int(os.environ.get("BENCH_SEAL_ROWS", "2000"))
    began = timezone.now()
    for n in range(200):  # warm: the connection, the statement, the table's pages
        _row(n).save()
    seals.seal(batch_rows=50_000)  # what earlier runs left unsealed: not this run's measure

    bench.measure(WITHOUT, lambda m: _inserts(m, count))

    def with_sealer(m):
        env = {**os.environ, **production_environment(bench.scale)}
        command = [sys.executable, "manage.py", "seal_audit", "--every", "1", "--verbosity", "0"]
        sealer = subprocess.Popen(command, cwd=ROOT, env=env)  # noqa: S603 - our own command
        try:
            time.sleep(2)  # started, and caught up with the rows above
            _inserts(m, count)
            time.sleep(1.5)
            if sealer.poll() is not None:
                raise RuntimeError(f"the sealer exited ({sealer.returncode})")
        finally:
            sealer.terminate()
            sealer.wait(timeout=60)
        last = seals.AuditSeal.objects.filter(table="accessevent").order_by("-last_id").first()
        newest = AccessEvent.objects.order_by("-pk").values_list("pk", flat=True).first()
        m.extra["sealed_all"] = bool(last and newest and last.last_id >= newest)
        if not m.extra["sealed_all"]:
            m.note = "the sealer left rows unsealed"
            m.errors += 1

    bench.measure(WITH, with_sealer)

    def backlog(m):
        AccessEvent.objects.bulk_create([_row(n) for n in range(10 * count)], batch_size=5_000)
        started = time.perf_counter()
        sealed = 0
        while True:
            batch = seals.seal(batch_rows=seals.BATCH_ROWS)
            sealed += sum(s.row_count for s in batch)
            if not any(s.row_count >= seals.BATCH_ROWS for s in batch):
                break
        elapsed = time.perf_counter() - started
        m.n, m.times_ms = 1, [elapsed * 1000]
        m.extra["rows"] = sealed
        m.extra["rows_per_second"] = round(sealed / elapsed) if elapsed else None

    bench.measure(SEAL, backlog)

    def check(m):
        started = time.perf_counter()
        report = seals.verify(since=began)
        elapsed = time.perf_counter() - started
        m.n, m.times_ms = 1, [elapsed * 1000]
        m.extra["rows"] = report.rows
        m.extra["seals"] = report.seals
        m.extra["rows_per_second"] = round(report.rows / elapsed) if elapsed else None
        if not report.intact:
            m.errors, m.note = len(report.problems), "; ".join(report.lines())[:300]

    bench.measure(VERIFY, check)


def targets(bench) -> list[tuple[bool, str]]:
    """The sealer must keep up: it seals a backlog faster than one connection can write audit rows."""
    without, backlog = bench.by_name(WITHOUT), bench.by_name(SEAL)
    if not (without and without.p50 and backlog and backlog.extra.get("rows_per_second")):
        return []
    insert_rate = 1000 / without.p50
    sealed = backlog.extra["rows_per_second"]
    return [(sealed >= insert_rate, f"{SEAL}: {sealed:,} rows/s ≥ one writer's {insert_rate:,.0f} audit rows/s")]


def report(bench) -> None:
    without, with_ = bench.by_name(WITHOUT), bench.by_name(WITH)
    if without and with_ and without.p50 and with_.p50:
        print(
            f"audit sealing: insert p50 {without.p50:.2f} → {with_.p50:.2f} ms, p95 {without.p95:.2f} → "
            f"{with_.p95:.2f} ms with the sealer running"
        )
    for name in (SEAL, VERIFY):
        m = bench.by_name(name)
        if m and m.extra.get("rows_per_second"):
            seconds = m.times_ms[0] / 1000
            print(f"{name}: {m.extra['rows']:,} rows in {seconds:.2f} s, {m.extra['rows_per_second']:,} rows/s")


def main() -> None:
    """These measures alone, against the bench dataset (built first if missing)."""
    from .run import alone

    alone(sys.modules[__name__])


if __name__ == "__main__":
    main()
